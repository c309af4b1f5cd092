//! `--dev-identity`: a development identity provider, so the admin API works on a machine
//! with no tenant. It plays Microsoft Entra ID's v2.0 endpoints as the handler's token
//! validation (`src/auth`) and a client see them, for one local administrator:
//!
//! - `GET {authority}/{tenant}/v2.0/.well-known/openid-configuration`: `issuer`,
//!   `jwks_uri`, `token_endpoint`;
//! - `GET {authority}/{tenant}/discovery/v2.0/keys`: the public key (JWKS);
//! - `POST {authority}/{tenant}/oauth2/v2.0/token`: a form post
//!   `grant_type=client_credentials&scope=api://{app}/.default` answered with a v2.0 access
//!   token for the local administrator, RS256-signed.
//!
//! `{authority}` is this host's own address under [`PATH_PREFIX`]: one address to print and
//! nothing more to keep free. The prefix cannot meet a function (they live under the route
//! prefix, `api`), the Functions host's own `/admin/...`, or a site file (the site serves no
//! segment that starts with a dot).
//!
//! Development only, like the rest of funchost: the deployed binary never contains this, and
//! in Azure `AZURE_AUTHORITY_HOST` is Entra ID's, so a token from here is worth nothing
//! there. The key pair is made at each start and kept in memory only; tokens are never
//! logged.
//! <https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc>,
//! <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference>

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::{RsaPrivateKey, pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
use serde_json::{Value, json};
use warp::http::{HeaderValue, Method, StatusCode, header};

use super::settings::HostSettings;

/// Where the provider answers on the host's address (with `--dev-identity` only).
pub const PATH_PREFIX: &str = "/.dev-identity";
/// The tenant tokens are issued in unless `AZURE_TENANT_ID` says otherwise: a made-up GUID
/// (tokens carry the tenant's id, never its name).
pub const DEV_TENANT_ID: &str = "00000000-0000-4000-8000-00000000d001";
/// The admin API's app registration unless `SIGNUP_ADMIN_APP_ID` says otherwise.
pub const DEV_APP_ID: &str = "00000000-0000-4000-8000-00000000d002";
/// The local administrator's object id (`oid`, recorded as `DecidedById`).
pub const DEV_ADMIN_OBJECT_ID: &str = "00000000-0000-4000-8000-00000000d003";
/// The client the token is issued to (`azp`), standing for the command line or `curl`.
pub const DEV_CLIENT_ID: &str = "00000000-0000-4000-8000-00000000d004";
/// The local administrator's sign-in name (`.invalid`: no such mailbox can exist).
pub const DEFAULT_USER: &str = "local-admin@b2b-signup.invalid";
/// Setting: another sign-in name for the local administrator (`preferred_username`).
pub const USER_SETTING: &str = "B2B_HOST_DEV_IDENTITY_USER";
/// The admin API's app roles; the local administrator holds both unless the token request
/// asks for fewer (`roles=Signup.Read`, to try what a reader may do).
pub const ROLES: [&str; 2] = ["Signup.Read", "Signup.Approve"];
/// How long a token is valid, as Entra ID's default access-token lifetime (60–90 minutes).
pub const TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// The settings the handler reads to trust a token issuer.
const AUTHORITY_SETTING: &str = "AZURE_AUTHORITY_HOST";
const TENANT_SETTING: &str = "AZURE_TENANT_ID";
const APP_SETTING: &str = "SIGNUP_ADMIN_APP_ID";
/// The Graph client-secret credential: it fetches its tokens from `AZURE_AUTHORITY_HOST`
/// too, which therefore stays Entra ID's when a secret is set.
const CLIENT_SECRET_SETTING: &str = "AZURE_CLIENT_SECRET";
/// RSA-2048, as Entra ID's own signing keys.
const KEY_BITS: usize = 2048;
/// A token request is a short form; anything longer is not one.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Why the provider could not start.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("--dev-identity: cannot generate the signing key: {0}")]
    KeyGeneration(String),
}

/// What the provider issues, and which settings it gives the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPlan {
    /// `http://127.0.0.1:{port}/.dev-identity`.
    pub authority: String,
    pub tenant_id: String,
    pub app_id: String,
    pub user: String,
    /// Settings funchost adds to the handler's environment, by name.
    pub provided: Vec<(&'static str, String)>,
    /// Why the handler will not trust this provider, when a setting points it elsewhere.
    pub not_trusted: Option<String>,
}

impl IdentityPlan {
    /// The plan for a host at `address` (`127.0.0.1:port`): every setting the handler does
    /// not already have (an empty value counts as none, as the handler reads it) comes from
    /// here. `AZURE_AUTHORITY_HOST` is left alone when set, or when a Graph client secret is
    /// set (its credential fetches tokens from the same authority): then the handler keeps
    /// trusting Entra ID, and the start-up lines say so.
    pub fn new(address: &str, settings: &HostSettings) -> Self {
        let given = |name: &str| settings.get(name).filter(|value| !value.trim().is_empty());
        let authority = format!("http://{address}{PATH_PREFIX}");
        let mut provided = Vec::new();
        let tenant_id = given(TENANT_SETTING).unwrap_or_else(|| {
            provided.push((TENANT_SETTING, DEV_TENANT_ID.to_owned()));
            DEV_TENANT_ID.to_owned()
        });
        let app_id = given(APP_SETTING).unwrap_or_else(|| {
            provided.push((APP_SETTING, DEV_APP_ID.to_owned()));
            DEV_APP_ID.to_owned()
        });
        let not_trusted = match (given(AUTHORITY_SETTING), given(CLIENT_SECRET_SETTING)) {
            (Some(host), _) => Some(format!(
                "{AUTHORITY_SETTING} is set ({host}): the handler trusts that authority's \
                 tokens, not these; unset it to use the development identity provider"
            )),
            (None, Some(_)) => Some(format!(
                "{CLIENT_SECRET_SETTING} is set: the Graph credential needs Entra ID at \
                 {AUTHORITY_SETTING}, so the handler trusts Entra ID's tokens, not these"
            )),
            (None, None) => {
                provided.push((AUTHORITY_SETTING, authority.clone()));
                None
            }
        };
        Self {
            authority,
            tenant_id: tenant_id.trim().to_ascii_lowercase(),
            app_id: app_id.trim().to_ascii_lowercase(),
            user: given(USER_SETTING).unwrap_or_else(|| DEFAULT_USER.to_owned()),
            provided,
            not_trusted,
        }
    }

    /// `{authority}/{tenant}`: the tenant's endpoints are under it.
    fn tenant_base(&self) -> String {
        format!("{}/{}", self.authority, self.tenant_id)
    }

    /// `{authority}/{tenant}/v2.0`, as Entra ID writes a v2.0 token's `iss`.
    pub fn issuer(&self) -> String {
        format!("{}/v2.0", self.tenant_base())
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.tenant_base())
    }

    /// The lines printed at start: who tokens are for and how to get one.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "\nDevelopment identity provider (--dev-identity; development only):\n\
             \tauthority: {}\n\
             \ttenant: {}, admin API app: {}\n\
             \tissues tokens for {} (oid {DEV_ADMIN_OBJECT_ID}), roles {}\n\
             \tget one: curl -s -X POST {} -d 'grant_type=client_credentials&scope=api://{}/.default'\n",
            self.authority,
            self.tenant_id,
            self.app_id,
            self.user,
            ROLES.join(" "),
            self.token_endpoint(),
            self.app_id,
        );
        if !self.provided.is_empty() {
            text.push_str("\tthe handler's settings from here:\n");
            for (name, value) in &self.provided {
                text.push_str(&format!("\t\t{name}={value}\n"));
            }
        }
        if let Some(reason) = &self.not_trusted {
            text.push_str(&format!("\tnote: {reason}\n"));
        }
        text
    }
}

/// The provider: the plan and the key pair it signs with.
pub struct DevIdentity {
    plan: IdentityPlan,
    kid: String,
    encoding_key: EncodingKey,
    /// The JWKS document, made once.
    jwks: Value,
}

impl DevIdentity {
    /// Generates the key pair (a CPU-bound second or so: run it off the async threads).
    pub fn generate(plan: IdentityPlan) -> Result<Self, IdentityError> {
        let mut rng = rsa::rand_core::OsRng;
        let key = RsaPrivateKey::new(&mut rng, KEY_BITS)
            .map_err(|e| IdentityError::KeyGeneration(e.to_string()))?;
        let der = key
            .to_pkcs1_der()
            .map_err(|e| IdentityError::KeyGeneration(e.to_string()))?;
        let encoding_key = EncodingKey::from_rsa_der(der.as_bytes());
        // A new id at each start: a token from an earlier run names a key no longer
        // published, and is refused as Entra ID's would be after a key rollover.
        let kid = format!("funchost-dev-{}", uuid::Uuid::new_v4().simple());
        let jwks = json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            }]
        });
        Ok(Self {
            plan,
            kid,
            encoding_key,
            jwks,
        })
    }

    pub fn plan(&self) -> &IdentityPlan {
        &self.plan
    }

    /// The answer for `path` (under [`PATH_PREFIX`], as received) and `body`.
    pub fn serve(&self, method: &Method, path: &str, body: &Bytes) -> warp::reply::Response {
        let Some(rest) = path.strip_prefix(PATH_PREFIX) else {
            return not_found();
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let Some((tenant, endpoint)) = segments.split_first() else {
            return not_found();
        };
        // One tenant only, as the handler trusts one (the GUID's case does not matter).
        if !tenant.eq_ignore_ascii_case(&self.plan.tenant_id) {
            return not_found();
        }
        match (endpoint, method) {
            (["v2.0", ".well-known", "openid-configuration"], &Method::GET) => {
                json_response(StatusCode::OK, &self.configuration())
            }
            (["discovery", "v2.0", "keys"], &Method::GET) => {
                json_response(StatusCode::OK, &self.jwks)
            }
            (["oauth2", "v2.0", "token"], &Method::POST) => self.token(body),
            (
                ["v2.0", ".well-known", "openid-configuration"]
                | ["discovery", "v2.0", "keys"]
                | ["oauth2", "v2.0", "token"],
                _,
            ) => {
                let mut response = empty(StatusCode::METHOD_NOT_ALLOWED);
                let allow = if endpoint[0] == "oauth2" {
                    "POST"
                } else {
                    "GET"
                };
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                response
            }
            _ => not_found(),
        }
    }

    /// The tenant's OpenID configuration: what the handler reads (`issuer`, `jwks_uri`) and
    /// what a client needs (`token_endpoint`).
    fn configuration(&self) -> Value {
        let base = self.plan.tenant_base();
        json!({
            "issuer": self.plan.issuer(),
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "token_endpoint": self.plan.token_endpoint(),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["none"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "development",
        })
    }

    /// `POST …/oauth2/v2.0/token`: a token for the local administrator, or an OAuth error
    /// (RFC 6749 §5.2) as Entra ID words it.
    fn token(&self, body: &Bytes) -> warp::reply::Response {
        if body.len() > MAX_FORM_BYTES {
            return oauth_error("invalid_request", "The request is too long.");
        }
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        let field = |name: &str| {
            form.iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.trim())
        };
        match field("grant_type") {
            Some("client_credentials") => {}
            Some(_) => {
                return oauth_error(
                    "unsupported_grant_type",
                    "The development identity provider supports grant_type=client_credentials only.",
                );
            }
            None => return oauth_error("invalid_request", "grant_type is required."),
        }
        let expected_scopes = [
            format!("api://{}/.default", self.plan.app_id),
            format!("{}/.default", self.plan.app_id),
        ];
        let scope = field("scope").unwrap_or_default();
        if !expected_scopes
            .iter()
            .any(|expected| expected.eq_ignore_ascii_case(scope))
        {
            return oauth_error(
                "invalid_scope",
                &format!(
                    "This provider issues tokens for the admin API only: scope=api://{}/.default.",
                    self.plan.app_id
                ),
            );
        }
        // `roles` is this provider's own field (Entra ID takes roles from the app role
        // assignments): fewer roles than both, to try what a reader may do.
        let roles: Vec<&str> = match field("roles") {
            None => ROLES.to_vec(),
            Some(asked) => {
                let asked: Vec<&str> = asked
                    .split([' ', ','])
                    .filter(|role| !role.is_empty())
                    .collect();
                if let Some(unknown) = asked.iter().find(|role| !ROLES.contains(role)) {
                    return oauth_error(
                        "invalid_request",
                        &format!(
                            "Unknown role {unknown:?}: the admin API's roles are {}.",
                            ROLES.join(" and ")
                        ),
                    );
                }
                ROLES
                    .into_iter()
                    .filter(|role| asked.contains(role))
                    .collect()
            }
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = self.claims(now, &roles);
        let header = Header {
            kid: Some(self.kid.clone()),
            typ: Some("JWT".to_owned()),
            ..Header::new(Algorithm::RS256)
        };
        let token = match jsonwebtoken::encode(&header, &claims, &self.encoding_key) {
            Ok(token) => token,
            Err(error) => {
                tracing::error!(%error, "dev identity: cannot sign a token");
                return empty(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        tracing::info!(
            user = self.plan.user,
            roles = roles.join(" "),
            "dev identity: issued an access token"
        );
        let mut response = json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "ext_expires_in": TOKEN_LIFETIME_SECONDS,
                "access_token": token,
            }),
        );
        // A token is a credential: no cache may keep it (RFC 6749 §5.1).
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// A v2.0 access token's claims for the local administrator, issued at `now`.
    /// A signed-in person's token: `preferred_username` names who acted, as in a token the
    /// command line gets through an Azure CLI sign-in.
    pub fn claims(&self, now: i64, roles: &[&str]) -> Value {
        json!({
            "aud": self.plan.app_id,
            "iss": self.plan.issuer(),
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "tid": self.plan.tenant_id,
            "oid": DEV_ADMIN_OBJECT_ID,
            "sub": DEV_ADMIN_OBJECT_ID,
            "preferred_username": self.plan.user,
            "name": "Local administrator (development)",
            "azp": DEV_CLIENT_ID,
            "azpacr": "0",
            "roles": roles,
            "ver": "2.0",
        })
    }
}

fn json_response(status: StatusCode, body: &Value) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(body.to_string().into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn oauth_error(error: &str, description: &str) -> warp::reply::Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({ "error": error, "error_description": description }),
    )
}

fn not_found() -> warp::reply::Response {
    empty(StatusCode::NOT_FOUND)
}

fn empty(status: StatusCode) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(Bytes::new().into());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(pairs: &[(&str, &str)]) -> IdentityPlan {
        IdentityPlan::new(
            "127.0.0.1:7071",
            &HostSettings::from_pairs(pairs.iter().copied()),
        )
    }

    #[test]
    fn with_nothing_set_the_handler_is_given_all_three_settings() {
        let plan = plan(&[]);
        assert_eq!(plan.authority, "http://127.0.0.1:7071/.dev-identity");
        assert_eq!(
            plan.provided,
            [
                (TENANT_SETTING, DEV_TENANT_ID.to_owned()),
                (APP_SETTING, DEV_APP_ID.to_owned()),
                (AUTHORITY_SETTING, plan.authority.clone()),
            ]
        );
        assert_eq!(plan.not_trusted, None);
        assert_eq!(plan.user, DEFAULT_USER);
        assert_eq!(
            plan.issuer(),
            format!("http://127.0.0.1:7071/.dev-identity/{DEV_TENANT_ID}/v2.0")
        );
        let text = plan.describe();
        assert!(text.contains(DEFAULT_USER), "{text}");
        assert!(
            text.contains(&format!("scope=api://{DEV_APP_ID}/.default")),
            "{text}"
        );
    }

    #[test]
    fn settings_already_given_are_kept_and_empty_ones_count_as_unset() {
        let tenant = "72F988BF-86F1-41AF-91AB-2D7CD011DB47";
        let plan = plan(&[
            (TENANT_SETTING, tenant),
            (APP_SETTING, " "),
            (AUTHORITY_SETTING, ""),
            (USER_SETTING, "ada@contoso.example"),
        ]);
        assert_eq!(plan.tenant_id, tenant.to_ascii_lowercase());
        assert_eq!(plan.app_id, DEV_APP_ID);
        let names: Vec<&str> = plan.provided.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, [APP_SETTING, AUTHORITY_SETTING]);
        assert_eq!(plan.user, "ada@contoso.example");
    }

    #[test]
    fn an_authority_or_a_graph_secret_already_set_keeps_entra_id_trusted() {
        for (pairs, named) in [
            (
                &[(AUTHORITY_SETTING, "https://login.microsoftonline.com")][..],
                AUTHORITY_SETTING,
            ),
            (
                &[(CLIENT_SECRET_SETTING, "s3cret")][..],
                CLIENT_SECRET_SETTING,
            ),
        ] {
            let plan = plan(pairs);
            assert!(
                plan.provided
                    .iter()
                    .all(|(name, _)| *name != AUTHORITY_SETTING),
                "{named}"
            );
            let reason = plan.not_trusted.clone().unwrap_or_default();
            assert!(reason.contains(named), "{reason}");
            assert!(!reason.contains("s3cret"), "a secret is never printed");
            assert!(plan.describe().contains(&reason));
        }
    }
}
