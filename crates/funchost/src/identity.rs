//! `--dev-identity`: a development identity provider, so the admin API works on a machine
//! with no tenant. It plays Microsoft Entra ID's v2.0 endpoints as the handler's token
//! validation (`src/auth`) and a client see them, for one local administrator:
//!
//! - `GET {authority}/{tenant}/v2.0/.well-known/openid-configuration`: `issuer`,
//!   `jwks_uri`, `token_endpoint`;
//! - `GET {authority}/{tenant}/discovery/v2.0/keys`: the public key (JWKS);
//! - `POST {authority}/{tenant}/oauth2/v2.0/token`: a form post
//!   `grant_type=client_credentials&scope=api://{app}/.default` answered with a v2.0 access
//!   token for the local administrator, RS256-signed; and the `authorization_code` and
//!   `refresh_token` grants of the interactive sign-in ([`signin`]).
//!
//! The same provider also answers over HTTPS on a port of its own ([`tls`], the secure
//! door), because MSAL.js refuses an authority over plain HTTP: there, and only there, it
//! adds the interactive sign-in a browser needs — `…/oauth2/v2.0/authorize` (a page where
//! the local person picks who signs in: the administrator, a reader, or a user with no
//! role), `…/oauth2/v2.0/logout`, CORS for a loopback page — with a self-signed
//! certificate made at each start and kept in memory. Tokens name one issuer, the plain
//! authority's, whichever door issued them: the handler (which fetches the keys over plain
//! HTTP, and could not trust a self-signed certificate) trusts that one. The secure door's
//! OpenID configuration names the secure door's issuer instead, because MSAL.js refuses a
//! configuration whose issuer is not on the authority's origin; MSAL.js does not read a
//! token's `iss` (the API does), so this is the one place the two doors differ.
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

pub mod signin;
pub mod tls;

use signin::{AuthorizeError, AuthorizeRequest, Grant, LocalUser};

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
/// How long a token is valid, as Entra ID's default access-token lifetime (60–90 minutes),
/// unless `--dev-identity-token-lifetime` says otherwise.
pub const TOKEN_LIFETIME_SECONDS: i64 = 3600;
/// The delegated scope a signed-in person's token carries (`scp`), as the admin API's app
/// registration exposes it (infra/admin-api.bicep).
pub const DELEGATED_SCOPE: &str = "user_impersonation";

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
    #[error("--dev-identity: cannot make the HTTPS certificate: {0}")]
    Certificate(String),
    #[error("--dev-identity: cannot listen on 127.0.0.1:{port} for HTTPS: {source}")]
    Bind { port: u16, source: std::io::Error },
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
    /// `https://127.0.0.1:{port}/.dev-identity`: the secure door, once it listens.
    pub secure_authority: Option<String>,
    /// Seconds an access token is valid.
    pub token_lifetime: i64,
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
            secure_authority: None,
            token_lifetime: TOKEN_LIFETIME_SECONDS,
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

    /// `{secure authority}/{tenant}`: the authority a single-page app signs in with.
    pub fn secure_tenant_authority(&self) -> Option<String> {
        self.secure_authority
            .as_ref()
            .map(|authority| format!("{authority}/{}", self.tenant_id))
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
        if let Some(authority) = self.secure_tenant_authority() {
            text.push_str(&format!(
                "\tsign-in over HTTPS (the admin console's authority): {authority}\n\
                 \t\tits certificate is self-signed and made at each start: accept it once \
                 per run by opening {authority}/v2.0/.well-known/openid-configuration\n"
            ));
        }
        if self.token_lifetime != TOKEN_LIFETIME_SECONDS {
            text.push_str(&format!(
                "\taccess tokens expire after {} s\n",
                self.token_lifetime
            ));
        }
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
    /// Codes and refresh tokens of the interactive sign-in.
    signins: signin::SignIns,
}

/// Which door a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// The host's own address (plain HTTP): configuration, keys, token endpoint.
    Plain,
    /// The HTTPS port ([`tls`]): all that, plus the interactive sign-in.
    Secure,
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
            signins: signin::SignIns::default(),
        })
    }

    pub fn plan(&self) -> &IdentityPlan {
        &self.plan
    }

    /// The answer for `path` (under [`PATH_PREFIX`], as received) and `body`, at the host's
    /// own (plain) address.
    pub fn serve(&self, method: &Method, path: &str, body: &Bytes) -> warp::reply::Response {
        self.serve_door(Door::Plain, method, path, "", body)
    }

    /// `{authority}` as seen through `door`.
    fn door_authority(&self, door: Door) -> &str {
        match (door, &self.plan.secure_authority) {
            (Door::Secure, Some(secure)) => secure,
            _ => &self.plan.authority,
        }
    }

    /// The answer for `path` and its raw `query` through `door`.
    pub fn serve_door(
        &self,
        door: Door,
        method: &Method,
        path: &str,
        query: &str,
        body: &Bytes,
    ) -> warp::reply::Response {
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
                json_response(StatusCode::OK, &self.configuration(door))
            }
            (["oauth2", "v2.0", "authorize"], &Method::GET | &Method::POST)
                if door == Door::Secure =>
            {
                self.authorize(method, query, body)
            }
            (["oauth2", "v2.0", "logout"], &Method::GET) if door == Door::Secure => logout(query),
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
    /// what a client needs (`token_endpoint`; through the secure door, the sign-in's
    /// `authorization_endpoint` and `end_session_endpoint` too). The issuer is on the
    /// door's origin, as MSAL.js requires of an authority (see the module's notes).
    fn configuration(&self, door: Door) -> Value {
        let base = format!("{}/{}", self.door_authority(door), self.plan.tenant_id);
        let mut configuration = json!({
            "issuer": format!("{base}/v2.0"),
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "development",
        });
        if door == Door::Secure {
            configuration["authorization_endpoint"] =
                json!(format!("{base}/oauth2/v2.0/authorize"));
            configuration["end_session_endpoint"] = json!(format!("{base}/oauth2/v2.0/logout"));
            configuration["response_types_supported"] = json!(["code"]);
            configuration["response_modes_supported"] = json!(["query", "fragment"]);
            configuration["code_challenge_methods_supported"] = json!(["S256"]);
            configuration["scopes_supported"] = json!(["openid", "profile", "offline_access"]);
            configuration["subject_types_supported"] = json!(["pairwise"]);
        }
        configuration
    }

    /// `GET …/authorize`: the page where the local person picks who signs in; `POST` (its
    /// form): back to the app with a code. Errors the app can read go back to it.
    fn authorize(&self, method: &Method, query: &str, body: &Bytes) -> warp::reply::Response {
        let request = match AuthorizeRequest::parse(query) {
            Ok(request) => request,
            Err(AuthorizeError::Page(message)) => {
                return html_response(
                    StatusCode::BAD_REQUEST,
                    &signin::message_page("Cannot sign in", &message),
                    None,
                );
            }
            Err(AuthorizeError::Redirect {
                to,
                error,
                description,
            }) => {
                return redirect(&to.with(&[
                    ("error", error),
                    ("error_description", description.as_str()),
                ]));
            }
        };
        if request.silent {
            // No session is kept here: a silent sign-in always needs the person.
            return redirect(&request.target().with(&[
                ("error", "login_required"),
                (
                    "error_description",
                    "The development identity provider keeps no session: sign in interactively.",
                ),
            ]));
        }
        if method == Method::GET {
            let origin = request.redirect_uri.origin().ascii_serialization();
            return html_response(
                StatusCode::OK,
                &signin::authorize_page(&request, &self.plan.user),
                Some(&origin),
            );
        }
        if body.len() > MAX_FORM_BYTES {
            return empty(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let Some(user) = signin::chosen_user(body) else {
            return html_response(
                StatusCode::BAD_REQUEST,
                &signin::message_page("Cannot sign in", "Choose one of the users offered."),
                None,
            );
        };
        let code = self.signins.issue_code(&request, user);
        tracing::info!(
            user = user.key,
            "dev identity: signed in interactively, code issued"
        );
        let client_info = self.client_info(user);
        redirect(&request.target().with(&[
            ("code", code.as_str()),
            ("client_info", client_info.as_str()),
        ]))
    }

    /// Entra ID's `client_info`: the account's home ids, base64url JSON.
    fn client_info(&self, user: LocalUser) -> String {
        URL_SAFE_NO_PAD
            .encode(json!({ "uid": user.object_id, "utid": self.plan.tenant_id }).to_string())
    }

    /// The username a local user signs in with (the administrator's is configurable).
    fn username(&self, user: LocalUser) -> &str {
        if user.key == signin::USERS[0].key {
            &self.plan.user
        } else {
            user.username
        }
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
            Some("authorization_code") => {
                let grant = self.signins.redeem_code(
                    field("code").unwrap_or_default(),
                    field("client_id").unwrap_or_default(),
                    field("redirect_uri").unwrap_or_default(),
                    field("code_verifier").unwrap_or_default(),
                );
                return self.user_tokens(grant, "authorization_code");
            }
            Some("refresh_token") => {
                let grant = self.signins.redeem_refresh(
                    field("refresh_token").unwrap_or_default(),
                    field("client_id").unwrap_or_default(),
                );
                return self.user_tokens(grant, "refresh_token");
            }
            Some(_) => {
                return oauth_error(
                    "unsupported_grant_type",
                    "The development identity provider supports grant_type=client_credentials, \
                     authorization_code and refresh_token.",
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
        let Some(token) = self.sign(&claims) else {
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        };
        tracing::info!(
            user = self.plan.user,
            roles = roles.join(" "),
            "dev identity: issued an access token"
        );
        no_store(json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "expires_in": self.plan.token_lifetime,
                "ext_expires_in": self.plan.token_lifetime,
                "access_token": token,
            }),
        ))
    }

    /// An RS256 JWT of `claims` with the published key's id.
    fn sign(&self, claims: &Value) -> Option<String> {
        let header = Header {
            kid: Some(self.kid.clone()),
            typ: Some("JWT".to_owned()),
            ..Header::new(Algorithm::RS256)
        };
        jsonwebtoken::encode(&header, claims, &self.encoding_key)
            .inspect_err(|error| tracing::error!(%error, "dev identity: cannot sign a token"))
            .ok()
    }

    /// The answer to a code or refresh-token grant: a delegated access token for the
    /// admin API with the signed-in user's roles, an ID token for the app, and the next
    /// refresh token.
    fn user_tokens(
        &self,
        grant: Result<Grant, signin::GrantError>,
        how: &str,
    ) -> warp::reply::Response {
        let grant = match grant {
            Ok(grant) => grant,
            Err(error) => return oauth_error(error.error, error.description),
        };
        let api_scopes: Vec<&str> = grant
            .scope
            .split(' ')
            .filter(|scope| {
                let lower = scope.to_ascii_lowercase();
                lower.starts_with(&format!("api://{}/", self.plan.app_id))
                    || lower.starts_with(&format!("{}/", self.plan.app_id))
            })
            .collect();
        if api_scopes.is_empty() {
            return oauth_error(
                "invalid_scope",
                &format!(
                    "This provider issues tokens for the admin API only: ask for \
                     api://{}/{DELEGATED_SCOPE} (or .default).",
                    self.plan.app_id
                ),
            );
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let user = grant.user;
        let mut access = self.user_claims(now, user, &grant.client_id);
        access["aud"] = json!(self.plan.app_id);
        access["azp"] = json!(grant.client_id);
        access["scp"] = json!(DELEGATED_SCOPE);
        access["roles"] = json!(user.roles);
        let mut id = self.user_claims(now, user, &grant.client_id);
        id["aud"] = json!(grant.client_id);
        if let Some(nonce) = &grant.nonce {
            id["nonce"] = json!(nonce);
        }
        let (Some(access_token), Some(id_token)) = (self.sign(&access), self.sign(&id)) else {
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let client_info = self.client_info(user);
        let scope = api_scopes.join(" ");
        let refresh_token = self.signins.issue_refresh(grant);
        tracing::info!(
            user = user.key,
            grant = how,
            "dev identity: issued tokens to a signed-in user"
        );
        no_store(json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "scope": scope,
                "expires_in": self.plan.token_lifetime,
                "ext_expires_in": self.plan.token_lifetime,
                "access_token": access_token,
                "refresh_token": refresh_token,
                "refresh_token_expires_in": signin::REFRESH_LIFETIME.as_secs(),
                "id_token": id_token,
                "client_info": client_info,
            }),
        ))
    }

    /// What both tokens of a signed-in user say of them.
    fn user_claims(&self, now: i64, user: LocalUser, client_id: &str) -> Value {
        json!({
            "aud": client_id,
            "iss": self.plan.issuer(),
            "iat": now,
            "nbf": now,
            "exp": now + self.plan.token_lifetime,
            "tid": self.plan.tenant_id,
            "oid": user.object_id,
            "sub": user.object_id,
            "preferred_username": self.username(user),
            "name": user.name,
            "ver": "2.0",
        })
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
            "exp": now + self.plan.token_lifetime,
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

/// A token is a credential: no cache may keep it (RFC 6749 §5.1).
fn no_store(mut response: warp::reply::Response) -> warp::reply::Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page of the sign-in; `form_target`: the origin its form's answer redirects to, which
/// the page's own Content-Security-Policy must let the form reach.
fn html_response(
    status: StatusCode,
    html: &str,
    form_target: Option<&str>,
) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(html.to_owned().into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}; \
         base-uri 'none'; frame-ancestors 'none'",
        form_target.unwrap_or("")
    );
    if let Ok(value) = HeaderValue::from_str(policy.trim()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `303 See Other` to `location`.
fn redirect(location: &str) -> warp::reply::Response {
    let mut response = empty(StatusCode::SEE_OTHER);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    no_store(response)
}

/// `GET …/logout`: this provider keeps no session, so signing out is going back to the
/// app's `post_logout_redirect_uri` (a loopback address only), or a page saying it is done.
fn logout(query: &str) -> warp::reply::Response {
    let back = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "post_logout_redirect_uri")
        .and_then(|(_, value)| url::Url::parse(&value).ok())
        .filter(signin::is_loopback);
    match back {
        Some(url) => redirect(url.as_str()),
        None => html_response(
            StatusCode::OK,
            &signin::message_page(
                "Signed out",
                "You are signed out of the development identity provider.",
            ),
            None,
        ),
    }
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
