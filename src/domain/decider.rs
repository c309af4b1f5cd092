//! Who approved, denied or retried a request, as the row's `DecidedBy` (and, for a verified
//! administrator, `DecidedById`) and `RetriedBy` columns record it.

use std::fmt;

use super::{AppId, PrincipalId};

/// Who decided (or retried) a request. Its text ([`fmt::Display`], the one place that writes it) is what
/// rows, answers and the command line show, and what the Python interop tests read:
/// `system`, `cli:<user>`, `key:<name>`, `function key`, a verified administrator's
/// `preferred_username` or `app:<client id>`, or a name as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// Reconcile, denying a request whose decision deadline passed.
    System,
    /// The command line before `local:` (rows written by older versions): read back, never
    /// written any more.
    Cli(String),
    /// The command line deciding straight through storage (a connection string, locally),
    /// run by this operating-system user (`$USER`): `local:` says nobody verified the name.
    Local(String),
    /// An HTTP caller whose function key has this name (`x-functions-key-name`).
    FunctionKey(String),
    /// An HTTP caller with a function key whose name the host did not pass on.
    UnnamedKey,
    /// A person or tool named verbatim: the App Service authentication principal
    /// (`x-ms-client-principal-name`) or the command line's `--by`.
    Named(String),
    /// An administrator whose Entra ID access token the admin API verified (`src/auth`):
    /// the only decider whose name was checked, and the only one with an object id.
    Administrator(Administrator),
}

/// A verified administrator: who the token says acted, and their stable object id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Administrator {
    name: AdministratorName,
    /// The token's `oid`, kept as `DecidedById`: unlike the name, it never changes or gets
    /// reused.
    object_id: PrincipalId,
}

/// How a verified administrator is named in `DecidedBy`.
#[derive(Clone, PartialEq, Eq)]
pub enum AdministratorName {
    /// A person signed in: the token's `preferred_username` (their sign-in name).
    User(String),
    /// An application acting as itself (automation, an app-only token): its client id,
    /// the token's `azp`, written `app:<client id>`.
    App(AppId),
}

const SYSTEM: &str = "system";
const CLI_PREFIX: &str = "cli:";
const LOCAL_PREFIX: &str = "local:";
const KEY_PREFIX: &str = "key:";
const UNNAMED_KEY: &str = "function key";
const APP_PREFIX: &str = "app:";

impl Administrator {
    pub fn new(name: AdministratorName, object_id: PrincipalId) -> Self {
        Self { name, object_id }
    }

    pub fn name(&self) -> &AdministratorName {
        &self.name
    }

    pub fn object_id(&self) -> &PrincipalId {
        &self.object_id
    }
}

impl fmt::Display for AdministratorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => f.write_str(name),
            Self::App(client) => write!(f, "{APP_PREFIX}{client}"),
        }
    }
}

/// Hides the part of a sign-in name before `@`: `Debug` reaches logs, names do not.
impl fmt::Debug for AdministratorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => match name.rsplit_once('@') {
                Some((_, domain)) => write!(f, "User(***@{domain})"),
                None => f.write_str("User(***)"),
            },
            Self::App(client) => write!(f, "App({client})"),
        }
    }
}

impl Decider {
    /// Reads a row's `DecidedBy` back. Any text is some decider (a `--by` name can look like
    /// anything), and reading then writing gives the same text.
    pub fn from_text(text: &str) -> Self {
        if text == SYSTEM {
            Self::System
        } else if text == UNNAMED_KEY {
            Self::UnnamedKey
        } else if let Some(user) = text.strip_prefix(CLI_PREFIX) {
            Self::Cli(user.to_owned())
        } else if let Some(user) = text.strip_prefix(LOCAL_PREFIX) {
            Self::Local(user.to_owned())
        } else if let Some(key) = text.strip_prefix(KEY_PREFIX) {
            Self::FunctionKey(key.to_owned())
        } else {
            Self::Named(text.to_owned())
        }
    }

    /// Reads a row's `DecidedBy` and `DecidedById` back: with an object id, the decision
    /// was made through the admin API by a verified administrator; without one, as
    /// [`Decider::from_text`].
    pub fn from_stored(decided_by: &str, decided_by_id: Option<&str>) -> Self {
        let Some(object_id) = decided_by_id.and_then(PrincipalId::parse) else {
            return Self::from_text(decided_by);
        };
        let name = decided_by
            .strip_prefix(APP_PREFIX)
            .and_then(AppId::parse)
            .map_or_else(
                || AdministratorName::User(decided_by.to_owned()),
                AdministratorName::App,
            );
        Self::Administrator(Administrator::new(name, object_id))
    }

    /// The `DecidedById` to store: a verified administrator's object id, nothing otherwise.
    pub fn object_id(&self) -> Option<&PrincipalId> {
        match self {
            Self::Administrator(administrator) => Some(administrator.object_id()),
            _ => None,
        }
    }
}

impl fmt::Display for Decider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str(SYSTEM),
            Self::Cli(user) => write!(f, "{CLI_PREFIX}{user}"),
            Self::Local(user) => write!(f, "{LOCAL_PREFIX}{user}"),
            Self::FunctionKey(key) => write!(f, "{KEY_PREFIX}{key}"),
            Self::UnnamedKey => f.write_str(UNNAMED_KEY),
            Self::Named(name) => f.write_str(name),
            Self::Administrator(administrator) => administrator.name.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciders_are_written_as_rows_have_always_held_them() {
        let cases = [
            ("expired deadline", Decider::System, "system"),
            (
                "older command line",
                Decider::Cli("alice".into()),
                "cli:alice",
            ),
            (
                "command line",
                Decider::Local("alice".into()),
                "local:alice",
            ),
            (
                "named key",
                Decider::FunctionKey("default".into()),
                "key:default",
            ),
            ("unnamed key", Decider::UnnamedKey, "function key"),
            (
                "principal",
                Decider::Named("admin@contoso.com".into()),
                "admin@contoso.com",
            ),
        ];
        for (description, decider, text) in cases {
            assert_eq!(decider.to_string(), text, "{description}");
            assert_eq!(Decider::from_text(text), decider, "{description}");
        }
    }

    #[test]
    fn verified_administrators_are_written_as_design_says_and_read_back_with_their_id() {
        let oid = "5f0c8e3a-1b2c-4d5e-8f90-0123456789ab";
        let client = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
        let person = Administrator::new(
            AdministratorName::User("admin@contoso.com".into()),
            PrincipalId::parse(oid).unwrap(),
        );
        let app = Administrator::new(
            AdministratorName::App(AppId::parse(client).unwrap()),
            PrincipalId::parse(oid).unwrap(),
        );
        let cases = [
            ("signed-in person", person, "admin@contoso.com"),
            (
                "application",
                app,
                "app:0b1c2d3e-4f50-4617-8899-aabbccddeeff",
            ),
        ];
        for (description, administrator, text) in cases {
            let decider = Decider::Administrator(administrator);
            assert_eq!(decider.to_string(), text, "{description}");
            assert_eq!(
                decider.object_id().map(PrincipalId::as_str),
                Some(oid),
                "{description}"
            );
            assert_eq!(
                Decider::from_stored(text, Some(oid)),
                decider,
                "{description}"
            );
        }
    }

    #[test]
    fn without_an_object_id_a_stored_name_is_not_an_administrator() {
        for (text, id) in [
            ("admin@contoso.com", None),
            ("app:0b1c2d3e-4f50-4617-8899-aabbccddeeff", None),
            ("admin@contoso.com", Some("not a guid")),
        ] {
            let decider = Decider::from_stored(text, id);
            assert_eq!(decider, Decider::from_text(text), "{text:?} {id:?}");
            assert_eq!(decider.object_id(), None, "{text:?} {id:?}");
        }
    }

    #[test]
    fn an_administrators_debug_hides_their_mailbox() {
        let name = AdministratorName::User("grace.hopper@contoso.com".into());
        assert_eq!(format!("{name:?}"), "User(***@contoso.com)");
        assert_eq!(
            format!("{:?}", AdministratorName::User("grace".into())),
            "User(***)"
        );
    }

    #[test]
    fn any_text_reads_back_as_itself() {
        for text in [
            "",
            "cli:",
            "key:",
            "Key:x",
            "System",
            "ops team",
            "cli:bob:key:x",
        ] {
            assert_eq!(Decider::from_text(text).to_string(), text, "{text:?}");
        }
    }
}
