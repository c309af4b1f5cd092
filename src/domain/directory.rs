//! Ids of Entra ID directory objects: the groups an access option grants, the guest users
//! invitations create, and — for the admin API's tokens — the tenant, the app registrations
//! and the administrator who acted. All are GUIDs; each has its own type so a group id cannot
//! be passed where a user id belongs (`add_member(group, user)` swapped compiles no more).

use std::{fmt, marker::PhantomData};

/// A directory object id of kind `K`: a GUID (`8f1c3c1e-0000-4000-8000-000000000000`),
/// kept lower-case, the form Graph writes and compares.
/// <https://learn.microsoft.com/graph/api/resources/directoryobject>
pub struct ObjectId<K> {
    id: String,
    kind: PhantomData<K>,
}

/// An Entra group's object id, as the policy's `accessOptions.*.groups` list them.
pub type GroupId = ObjectId<Group>;
/// A user's object id (the guest's `invitedUser.id`), as the row's `InvitedUserId` keeps it.
pub type UserId = ObjectId<User>;

/// A tenant's id (`AZURE_TENANT_ID`, a token's `tid`).
pub type TenantId = ObjectId<Tenant>;
/// An app registration's application (client) id: `SIGNUP_ADMIN_APP_ID`, or an app-only
/// token's `azp` (the calling application).
/// <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference>
pub type AppId = ObjectId<Application>;
/// A security principal's object id, a token's `oid`: the user, or the calling
/// application's service principal, as the row's `DecidedById` keeps it. Stable across
/// applications and sign-in names, unlike `preferred_username`.
pub type PrincipalId = ObjectId<SecurityPrincipal>;

/// What kind of object an [`ObjectId`] names; the name shows in `Debug`.
pub trait ObjectKind {
    const NAME: &'static str;
}

/// Marks a [`GroupId`].
#[derive(Debug)]
pub enum Group {}
/// Marks a [`UserId`].
#[derive(Debug)]
pub enum User {}

/// Marks a [`TenantId`].
#[derive(Debug)]
pub enum Tenant {}
/// Marks an [`AppId`].
#[derive(Debug)]
pub enum Application {}
/// Marks a [`PrincipalId`].
#[derive(Debug)]
pub enum SecurityPrincipal {}

impl ObjectKind for Tenant {
    const NAME: &'static str = "TenantId";
}

impl ObjectKind for Application {
    const NAME: &'static str = "AppId";
}

impl ObjectKind for SecurityPrincipal {
    const NAME: &'static str = "PrincipalId";
}

impl ObjectKind for Group {
    const NAME: &'static str = "GroupId";
}

impl ObjectKind for User {
    const NAME: &'static str = "UserId";
}

impl<K> ObjectId<K> {
    /// A GUID in its 36-character hyphenated form, any case; `None` for anything else.
    pub fn parse(input: &str) -> Option<Self> {
        let bytes = input.as_bytes();
        let guid = bytes.len() == 36
            && bytes.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        guid.then(|| Self {
            id: input.to_ascii_lowercase(),
            kind: PhantomData,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

// Written by hand: derives would require `K` itself to be `Clone`, `Eq`…, which the
// markers need not be.
impl<K> Clone for ObjectId<K> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for ObjectId<K> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<K> Eq for ObjectId<K> {}

impl<K> std::hash::Hash for ObjectId<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<K> fmt::Display for ObjectId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl<K: ObjectKind> fmt::Debug for ObjectId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", K::NAME, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_guids_kept_lower_case() {
        let id = GroupId::parse("8F1C3C1E-0000-4000-8000-00000000000A").unwrap();
        assert_eq!(id.as_str(), "8f1c3c1e-0000-4000-8000-00000000000a");
        assert_eq!(
            format!("{id:?}"),
            "GroupId(8f1c3c1e-0000-4000-8000-00000000000a)"
        );
        let cases = [
            ("empty", ""),
            ("not hex", "8f1c3c1e-0000-4000-8000-00000000000g"),
            ("no hyphens", "8f1c3c1e000040008000000000000000000a"),
            ("braces", "{8f1c3c1e-0000-4000-8000-00000000000a}"),
            ("too short", "8f1c3c1e-0000-4000-8000-00000000000"),
            ("a path", "../me-0000-4000-8000-000000000000000"),
            ("a name", "guest-1"),
        ];
        for (description, input) in cases {
            assert!(UserId::parse(input).is_none(), "{description}: {input:?}");
        }
    }
}
