//! Who is calling the admin API: Microsoft Entra ID v2.0 access tokens, validated here and
//! nowhere else (DESIGN, "Administrators: the admin API and who decided").
//!
//! The admin API's handlers call [`Authenticator::authenticate`] with the request's
//! `Authorization` header and the [`Role`] the action needs, and get the verified
//! [`Principal`] — the only source of who decided — or an [`AuthError`] that converts into
//! the answer (401, 403 or 503 problem+json). Function keys and `X-MS-CLIENT-PRINCIPAL*`
//! headers play no part.
//!
//! - `settings`: `SIGNUP_ADMIN_APP_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`;
//! - `keys`: the tenant's OpenID configuration and signing keys, fetched once, refreshed on
//!   an unknown `kid` at most once a minute, by one caller at a time;
//! - `token`: the checks of one token (RS256 signature, `iss`, `aud`, `tid`, `exp`/`nbf`),
//!   pure functions of the token, the key and the time.
//!
//! Tokens are never logged; a rejection logs only the name of the check that failed, at
//! debug level, and the caller never learns it.

mod keys;
mod settings;
mod token;

#[cfg(test)]
mod tests;

use std::{fmt, sync::Arc};

use jsonwebtoken::Validation;
use warp::http::HeaderValue;

pub use settings::{APP_ID_SETTING, AdminAuthConfigError, AdminAuthSettings, TENANT_SETTING};

use crate::{
    clock::Clock,
    domain::{Administrator, Decider},
    problem::{ErrorCode, Problem},
};
use keys::{KeyError, KeyStore};

/// What an action of the admin API needs: the app roles of its app registration, assigned
/// to people (or a group) and granted to automations.
/// <https://learn.microsoft.com/entra/identity-platform/howto-add-app-roles-in-apps>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `Signup.Read`: list and show requests.
    Read,
    /// `Signup.Approve`: approve, deny and retry requests, and everything `Signup.Read`
    /// allows.
    Approve,
}

impl Role {
    /// The role's value, as the app registration declares it and tokens carry it.
    pub const fn value(self) -> &'static str {
        match self {
            Self::Read => "Signup.Read",
            Self::Approve => "Signup.Approve",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.value())
    }
}

/// The admin API's roles a token holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    read: bool,
    approve: bool,
}

impl Roles {
    /// Whether these roles allow an action that needs `needed`: `Signup.Approve` implies
    /// `Signup.Read`.
    pub fn allow(self, needed: Role) -> bool {
        match needed {
            Role::Read => self.read || self.approve,
            Role::Approve => self.approve,
        }
    }
}

/// A caller whose token passed every check and holds the role the action needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    administrator: Administrator,
    roles: Roles,
}

impl Principal {
    /// Who acted: `DecidedBy` is its name (`preferred_username` or `app:{azp}`),
    /// `DecidedById` its object id (`oid`).
    pub fn administrator(&self) -> &Administrator {
        &self.administrator
    }

    /// The decider to record for a decision this principal makes.
    pub fn decider(&self) -> Decider {
        Decider::Administrator(self.administrator.clone())
    }

    pub fn roles(&self) -> Roles {
        self.roles
    }
}

/// Why a token was refused: one variant per check, for the debug log and the tests. The
/// caller is never told which (a 401 says only that the token was not accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization` header.
    MissingHeader,
    /// An `Authorization` header of another scheme (`Basic`, a bare token, …).
    NotBearer,
    /// Not three base64url parts, no `kid`, or too long.
    Malformed,
    /// Signed with anything but RS256 (`none`, HS256, …).
    Algorithm,
    /// Signed with a key the tenant does not publish (after the allowed refresh).
    UnknownKey,
    /// The signature does not match the key.
    Signature,
    /// A claim is missing or of the wrong type.
    Claims,
    /// `iss` is not the tenant's issuer.
    Issuer,
    /// `aud` is neither the admin API's app id nor `api://{app id}`.
    Audience,
    /// `tid` is another tenant.
    Tenant,
    /// `exp` is more than the allowed skew in the past.
    Expired,
    /// `nbf` is more than the allowed skew in the future.
    NotYetValid,
    /// No usable `oid`, or no `preferred_username` / `azp` to name who acted.
    Identity,
}

impl Rejection {
    /// The check's name, for the debug log.
    pub fn check(self) -> &'static str {
        match self {
            Self::MissingHeader => "authorization header",
            Self::NotBearer => "bearer scheme",
            Self::Malformed => "token format",
            Self::Algorithm => "alg",
            Self::UnknownKey => "kid",
            Self::Signature => "signature",
            Self::Claims => "claim types",
            Self::Issuer => "iss",
            Self::Audience => "aud",
            Self::Tenant => "tid",
            Self::Expired => "exp",
            Self::NotYetValid => "nbf",
            Self::Identity => "oid/preferred_username/azp",
        }
    }
}

/// Why a call is refused, grouped by the answer it gets ([`Problem`]'s `From`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `SIGNUP_ADMIN_APP_ID` is not set: every admin call is 401.
    #[error("the admin API is off ({APP_ID_SETTING} is not set)")]
    Off,
    /// No token, or one that failed a check: 401 `unauthenticated`.
    #[error("the access token was refused ({})", .0.check())]
    Unauthenticated(Rejection),
    /// A valid token without the role: 403 `forbidden`.
    #[error("the access token does not hold the {needed} role")]
    Forbidden { needed: Role },
    /// The signing keys cannot be fetched and none are cached: 503, never a 500 (the
    /// caller's token may be fine).
    #[error("the identity provider's signing keys cannot be fetched")]
    Unavailable,
}

/// How long a caller is asked to wait when the keys cannot be fetched.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u32 = 30;

impl From<AuthError> for Problem {
    fn from(error: AuthError) -> Self {
        match error {
            // The same answer whatever failed (or that the API is off): a caller probing
            // with forged tokens learns nothing about which check caught them.
            AuthError::Off | AuthError::Unauthenticated(_) => Problem::new(
                ErrorCode::Unauthenticated,
                "Sign in: send an access token for the admin API as Authorization: Bearer <token>.",
            ),
            AuthError::Forbidden { needed } => Problem::new(
                ErrorCode::Forbidden,
                format!("This action needs the {needed} role of the admin API."),
            ),
            AuthError::Unavailable => Problem::new(
                ErrorCode::ServiceUnavailable,
                "Sign-ins cannot be checked right now. Please try again in a minute.",
            )
            .retry_after(UNAVAILABLE_RETRY_AFTER_SECONDS),
        }
    }
}

/// Validates the admin API's access tokens. Cheap to clone: clones share the cached keys.
#[derive(Clone)]
pub struct Authenticator {
    /// `None` when the admin API is off.
    inner: Option<Arc<Inner>>,
}

struct Inner {
    settings: AdminAuthSettings,
    keys: KeyStore,
    clock: Clock,
    validation: Validation,
}

impl Authenticator {
    /// An authenticator for the admin API `settings` describe (`None`: the API is off and
    /// every call is [`AuthError::Off`]). Nothing is fetched until the first token arrives.
    pub fn new(
        settings: Option<AdminAuthSettings>,
        clock: Clock,
    ) -> Result<Self, AdminAuthConfigError> {
        let Some(settings) = settings else {
            return Ok(Self { inner: None });
        };
        let keys = KeyStore::new(&settings, clock.clone())?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                settings,
                keys,
                clock,
                validation: token::signature_only(),
            })),
        })
    }

    /// Whether the admin API is configured (`SIGNUP_ADMIN_APP_ID` is set).
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// The principal an `Authorization` header proves, if it holds the `needed` role.
    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
        needed: Role,
    ) -> Result<Principal, AuthError> {
        let Some(inner) = &self.inner else {
            tracing::debug!("admin API call refused: the admin API is off");
            return Err(AuthError::Off);
        };
        let result = inner.authenticate(authorization, needed).await;
        match &result {
            Err(AuthError::Unauthenticated(rejection)) => {
                tracing::debug!(check = rejection.check(), "admin API token refused");
            }
            Err(AuthError::Forbidden { needed }) => {
                tracing::debug!(needed = needed.value(), "admin API token lacks the role");
            }
            _ => {}
        }
        result
    }
}

impl Inner {
    async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
        needed: Role,
    ) -> Result<Principal, AuthError> {
        let token = token::bearer(authorization).map_err(AuthError::Unauthenticated)?;
        let kid = token::key_id(token).map_err(AuthError::Unauthenticated)?;
        let keys = self
            .keys
            .key_set_for(&kid)
            .await
            .map_err(|error| match error {
                KeyError::Unknown => AuthError::Unauthenticated(Rejection::UnknownKey),
                KeyError::Unavailable => AuthError::Unavailable,
            })?;
        let key = keys
            .key(&kid)
            .ok_or(AuthError::Unauthenticated(Rejection::UnknownKey))?;
        let expected = token::Expected {
            issuer: &keys.issuer,
            app_id: self.settings.app_id(),
            tenant_id: self.settings.tenant_id(),
            now: self.clock.now().unix_timestamp(),
        };
        let (administrator, roles) = token::verify(token, key, &self.validation, &expected)
            .map_err(AuthError::Unauthenticated)?;
        if !roles.allow(needed) {
            return Err(AuthError::Forbidden { needed });
        }
        Ok(Principal {
            administrator,
            roles,
        })
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("on", &self.is_on())
            .finish_non_exhaustive()
    }
}
