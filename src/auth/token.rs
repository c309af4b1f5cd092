//! One access token, checked as Microsoft asks a web API to check it
//! (<https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-tokens>,
//! <https://learn.microsoft.com/entra/identity-platform/claims-validation>): pure functions
//! of the token, the key, the expected values and the time.
//!
//! `jsonwebtoken` checks the algorithm and the signature, nothing else: every claim is read
//! into a typed struct (a claim of the wrong JSON type fails the whole token) and checked
//! here, against the injected clock.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use warp::http::HeaderValue;

use super::{Rejection, Role, Roles};
use crate::domain::{Administrator, AdministratorName, AppId, PrincipalId, TenantId};

/// The clock skew tolerated on `exp` and `nbf`, at most 5 minutes (DESIGN), as Microsoft's
/// own middleware does by default.
pub(super) const CLOCK_SKEW_SECONDS: i64 = 5 * 60;
/// Longer than any Entra ID access token (a few KiB even with many claims); a longer
/// header is not parsed at all.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// The only signing algorithm Entra ID uses for access tokens, and the only one accepted:
/// `none`, HMAC (which would take the public key as a shared secret) and the rest are
/// refused before any key is looked up.
const ALGORITHM: &str = "RS256";

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1; the scheme's case
/// does not matter).
pub(super) fn bearer(authorization: Option<&HeaderValue>) -> Result<&str, Rejection> {
    let value = authorization.ok_or(Rejection::MissingHeader)?;
    let value = value.to_str().map_err(|_| Rejection::NotBearer)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::Malformed);
    }
    Ok(token)
}

/// The header fields read before any key is looked up.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

/// The `kid` of an RS256 token; anything else is refused here, before a key is looked up
/// or a refresh of the keys is considered.
pub(super) fn key_id(token: &str) -> Result<String, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice::<RawHeader>(&json).ok())
        .ok_or(Rejection::Malformed)?;
    if header.alg != ALGORITHM {
        return Err(Rejection::Algorithm);
    }
    header.kid.ok_or(Rejection::Malformed)
}

/// The claims read from a v2.0 access token.
/// <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference>
#[derive(Deserialize)]
struct Claims {
    iss: String,
    /// A v2.0 access token's audience is one string: the API's client id, or its
    /// identifier URI when the client asked for a scope under it.
    aud: String,
    tid: String,
    exp: i64,
    nbf: i64,
    oid: String,
    /// The app roles assigned to the user, or granted to the calling application.
    #[serde(default)]
    roles: Vec<String>,
    /// Only in a token issued to a signed-in person.
    preferred_username: Option<String>,
    /// The calling application's client id.
    azp: Option<String>,
    /// `app` in an app-only token (an optional claim an app registration can ask for).
    idtyp: Option<String>,
    /// The delegated scopes: only in a token issued for a signed-in person.
    scp: Option<String>,
}

/// What a token must say to be accepted.
pub(super) struct Expected<'a> {
    pub(super) issuer: &'a str,
    pub(super) app_id: &'a AppId,
    pub(super) tenant_id: &'a TenantId,
    /// Seconds since the Unix epoch.
    pub(super) now: i64,
}

/// The `jsonwebtoken` settings: RS256 and the signature, no claim checks of its own.
pub(super) fn signature_only() -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

/// The administrator a token names, with their roles, if `key` signed it and its claims
/// are what `expected` says. Roles are not checked here: a valid token without the role
/// is a 403, not a 401.
pub(super) fn verify(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
    expected: &Expected<'_>,
) -> Result<(Administrator, Roles), Rejection> {
    let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => Rejection::Signature,
            ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
            ErrorKind::Json(_) => Rejection::Claims,
            _ => Rejection::Malformed,
        })?
        .claims;

    if claims.iss != expected.issuer {
        return Err(Rejection::Issuer);
    }
    let audience_is_app = AppId::parse(&claims.aud).is_some_and(|aud| &aud == expected.app_id)
        || claims
            .aud
            .strip_prefix("api://")
            .and_then(AppId::parse)
            .is_some_and(|aud| &aud == expected.app_id);
    if !audience_is_app {
        return Err(Rejection::Audience);
    }
    if TenantId::parse(&claims.tid).as_ref() != Some(expected.tenant_id) {
        return Err(Rejection::Tenant);
    }
    if expected.now >= claims.exp.saturating_add(CLOCK_SKEW_SECONDS) {
        return Err(Rejection::Expired);
    }
    if expected.now.saturating_add(CLOCK_SKEW_SECONDS) < claims.nbf {
        return Err(Rejection::NotYetValid);
    }

    let object_id = PrincipalId::parse(&claims.oid).ok_or(Rejection::Identity)?;
    let roles = Roles::from_claim(&claims.roles);
    Ok((Administrator::new(name(claims)?, object_id), roles))
}

/// Who the token was issued to: an application acting as itself, or a signed-in person.
///
/// An app-only token has no `scp` and, unlike a delegated one, no `preferred_username`;
/// `idtyp: app` says so outright where the app registration asks for it
/// (<https://learn.microsoft.com/entra/identity-platform/optional-claims-reference>).
fn name(claims: Claims) -> Result<AdministratorName, Rejection> {
    let app_only = claims.scp.is_none()
        && (claims.idtyp.as_deref() == Some("app") || claims.preferred_username.is_none());
    if app_only {
        let client = claims.azp.as_deref().and_then(AppId::parse);
        return client
            .map(AdministratorName::App)
            .ok_or(Rejection::Identity);
    }
    claims
        .preferred_username
        .filter(|name| !name.trim().is_empty())
        .map(AdministratorName::User)
        .ok_or(Rejection::Identity)
}

impl Roles {
    /// The admin API's roles among a token's `roles`; others are ignored.
    fn from_claim(values: &[String]) -> Self {
        let has = |role: Role| values.iter().any(|value| value == role.value());
        Self {
            read: has(Role::Read),
            approve: has(Role::Approve),
        }
    }
}
