//! The interactive sign-in of the development identity provider: what a single-page app
//! (the admin console, through MSAL.js) needs of Entra ID's v2.0 endpoints — the
//! authorization code flow with PKCE, for a public client (no secret):
//!
//! - `GET …/oauth2/v2.0/authorize`: a small page where the person at the keyboard picks who
//!   signs in (one of [`USERS`]); `POST` (the page's form) redirects to the app's
//!   `redirect_uri` with a one-time `code` in the query or the fragment (`response_mode`);
//!   `prompt=none` (a silent sign-in) answers `login_required`: this provider keeps no
//!   session;
//! - the token endpoint's `authorization_code` grant (the code, once, with the PKCE
//!   `code_verifier` whose S256 digest the authorize request carried) and `refresh_token`
//!   grant (each refresh token once; the answer carries the next);
//! - `GET …/oauth2/v2.0/logout`: back to a loopback `post_logout_redirect_uri`.
//!
//! Redirect URIs must be loopback addresses (a development provider answers local apps
//! only). Codes live 5 minutes, refresh tokens 24 hours as Entra ID's for an SPA; both are
//! kept in memory, bounded, and never logged.
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow>,
//! <https://datatracker.ietf.org/doc/html/rfc7636>

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rsa::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use url::Url;

/// Someone the local person may sign in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalUser {
    /// The form's value for this user.
    pub key: &'static str,
    /// `preferred_username`; the administrator's is the provider's configured user instead.
    pub username: &'static str,
    pub name: &'static str,
    pub object_id: &'static str,
    pub roles: &'static [&'static str],
    /// What the sign-in page says of them.
    pub description: &'static str,
}

/// The local administrator (both roles), a reader, and someone with no role of the API.
pub const USERS: [LocalUser; 3] = [
    LocalUser {
        key: "admin",
        username: super::DEFAULT_USER,
        name: "Local administrator (development)",
        object_id: super::DEV_ADMIN_OBJECT_ID,
        roles: &["Signup.Read", "Signup.Approve"],
        description: "Signup.Read and Signup.Approve: reads and decides",
    },
    LocalUser {
        key: "reader",
        username: "local-reader@b2b-signup.invalid",
        name: "Local reader (development)",
        object_id: "00000000-0000-4000-8000-00000000d005",
        roles: &["Signup.Read"],
        description: "Signup.Read only: reads, cannot decide",
    },
    LocalUser {
        key: "no-role",
        username: "local-no-role@b2b-signup.invalid",
        name: "Local user without a role (development)",
        object_id: "00000000-0000-4000-8000-00000000d006",
        roles: &[],
        description: "no role of the admin API: no access",
    },
];

/// How long an authorization code may wait for its exchange (Entra ID: about 10 minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(300);
/// A single-page app's refresh token lives 24 hours at Entra ID.
pub const REFRESH_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Codes and refresh tokens kept at most: a loop of sign-ins cannot grow memory without end.
const MAX_KEPT: usize = 10_000;

/// What an authorize request asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: Url,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// `fragment` (MSAL.js's default) or `query`.
    pub fragment: bool,
    /// `prompt=none`: a silent sign-in, which this provider cannot give.
    pub silent: bool,
}

/// Why an authorize request is refused: on the page when the redirect URI itself is not
/// usable, else at the redirect URI as OAuth's `error` (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    Page(String),
    Redirect {
        to: Box<AuthorizeRequestTarget>,
        error: &'static str,
        description: String,
    },
}

/// Where an error goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequestTarget {
    pub redirect_uri: Url,
    pub state: Option<String>,
    pub fragment: bool,
}

/// A loopback address: 127.0.0.1, ::1 or localhost, over HTTP or HTTPS.
pub fn is_loopback(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        }
}

impl AuthorizeRequest {
    /// Reads and checks the query of an authorize request.
    pub fn parse(query: &str) -> Result<Self, AuthorizeError> {
        let fields: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        let field = |name: &str| fields.get(name).map(|v| v.trim().to_owned());
        let Some(redirect) = field("redirect_uri") else {
            return Err(AuthorizeError::Page("redirect_uri is required.".into()));
        };
        let redirect_uri = match Url::parse(&redirect) {
            Ok(url) if is_loopback(&url) && url.fragment().is_none() => url,
            _ => {
                return Err(AuthorizeError::Page(
                    "redirect_uri must be an http(s) address on this machine (127.0.0.1, ::1 \
                     or localhost), without a fragment."
                        .into(),
                ));
            }
        };
        let fragment = match field("response_mode").as_deref() {
            None | Some("fragment") => true,
            Some("query") => false,
            Some(_) => {
                return Err(AuthorizeError::Page(
                    "response_mode must be fragment or query.".into(),
                ));
            }
        };
        let state = field("state");
        let target = AuthorizeRequestTarget {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            fragment,
        };
        let refuse = |error: &'static str, description: &str| AuthorizeError::Redirect {
            to: Box::new(target.clone()),
            error,
            description: description.to_owned(),
        };
        let client_id = field("client_id").filter(|id| !id.is_empty());
        let Some(client_id) = client_id else {
            return Err(refuse("invalid_request", "client_id is required."));
        };
        if field("response_type").as_deref() != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "Only response_type=code is supported.",
            ));
        }
        // PKCE is required of a public client, as Entra ID requires it of an SPA.
        let challenge = field("code_challenge").filter(|c| (43..=128).contains(&c.len()));
        let Some(code_challenge) = challenge else {
            return Err(refuse(
                "invalid_request",
                "code_challenge (PKCE, 43 to 128 characters) is required.",
            ));
        };
        if field("code_challenge_method").as_deref() != Some("S256") {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256.",
            ));
        }
        Ok(Self {
            client_id,
            redirect_uri,
            scope: field("scope").unwrap_or_default(),
            state,
            nonce: field("nonce"),
            code_challenge,
            fragment,
            silent: field("prompt").as_deref() == Some("none"),
        })
    }

    pub fn target(&self) -> AuthorizeRequestTarget {
        AuthorizeRequestTarget {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            fragment: self.fragment,
        }
    }
}

impl AuthorizeRequestTarget {
    /// The redirect URI with `pairs` (and the state) in its query or fragment.
    pub fn with(&self, pairs: &[(&str, &str)]) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            serializer.append_pair(name, value);
        }
        if let Some(state) = &self.state {
            serializer.append_pair("state", state);
        }
        let encoded = serializer.finish();
        let mut url = self.redirect_uri.clone();
        if self.fragment {
            url.set_fragment(Some(&encoded));
        } else {
            let query = match url.query() {
                Some(existing) if !existing.is_empty() => format!("{existing}&{encoded}"),
                _ => encoded,
            };
            url.set_query(Some(&query));
        }
        url.to_string()
    }
}

/// What a code or a refresh token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: LocalUser,
    pub client_id: String,
    pub scope: String,
    pub nonce: Option<String>,
}

struct PendingCode {
    grant: Grant,
    redirect_uri: String,
    challenge: String,
    expires: Instant,
}

struct Session {
    grant: Grant,
    expires: Instant,
}

/// Why a token request with a code or a refresh token is refused (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    pub error: &'static str,
    pub description: &'static str,
}

const fn invalid_grant(description: &'static str) -> GrantError {
    GrantError {
        error: "invalid_grant",
        description,
    }
}

/// The codes and refresh tokens given out, in memory.
#[derive(Default)]
pub struct SignIns {
    codes: Mutex<HashMap<String, PendingCode>>,
    sessions: Mutex<HashMap<String, Session>>,
}

/// 256 random bits, base64url: a code or a refresh token.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Keeps `map` within [`MAX_KEPT`] by dropping what has expired, then the oldest to expire.
fn make_room<T>(map: &mut HashMap<String, T>, expires: impl Fn(&T) -> Instant) {
    let now = Instant::now();
    map.retain(|_, value| expires(value) > now);
    while map.len() >= MAX_KEPT {
        let Some(first) = map
            .iter()
            .min_by_key(|(_, value)| expires(value))
            .map(|(key, _)| key.clone())
        else {
            break;
        };
        map.remove(&first);
    }
}

impl SignIns {
    /// A one-time code for `user`, after the person chose them on the authorize page.
    pub fn issue_code(&self, request: &AuthorizeRequest, user: LocalUser) -> String {
        let code = random_token();
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        make_room(&mut codes, |pending| pending.expires);
        codes.insert(
            code.clone(),
            PendingCode {
                grant: Grant {
                    user,
                    client_id: request.client_id.clone(),
                    scope: request.scope.clone(),
                    nonce: request.nonce.clone(),
                },
                redirect_uri: request.redirect_uri.to_string(),
                challenge: request.code_challenge.clone(),
                expires: Instant::now() + CODE_LIFETIME,
            },
        );
        code
    }

    /// `grant_type=authorization_code`: the code once, for the client and redirect URI it
    /// was given to, with the verifier whose S256 digest is the challenge.
    pub fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Grant, GrantError> {
        // Removed whatever happens next: a code is tried once (RFC 6749 §4.1.2).
        let pending = self
            .codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(code)
            .ok_or(invalid_grant(
                "The code is unknown, expired or already used.",
            ))?;
        if pending.expires <= Instant::now() {
            return Err(invalid_grant("The code has expired."));
        }
        if pending.grant.client_id != client_id {
            return Err(invalid_grant("The code was issued to another client."));
        }
        let same_redirect = Url::parse(redirect_uri)
            .is_ok_and(|given| given.as_str() == pending.redirect_uri.as_str());
        if !same_redirect {
            return Err(invalid_grant(
                "redirect_uri differs from the authorize request's.",
            ));
        }
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if !(43..=128).contains(&verifier.len()) || digest != pending.challenge {
            return Err(invalid_grant(
                "The code_verifier does not match the code_challenge (PKCE S256).",
            ));
        }
        Ok(pending.grant)
    }

    /// A refresh token for `grant`.
    pub fn issue_refresh(&self, grant: Grant) -> String {
        let token = random_token();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        make_room(&mut sessions, |session| session.expires);
        sessions.insert(
            token.clone(),
            Session {
                grant,
                expires: Instant::now() + REFRESH_LIFETIME,
            },
        );
        token
    }

    /// `grant_type=refresh_token`: the token once (the answer carries the next), for the
    /// client it was given to.
    pub fn redeem_refresh(&self, token: &str, client_id: &str) -> Result<Grant, GrantError> {
        let session = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token)
            .ok_or(invalid_grant(
                "The refresh token is unknown, expired or already used.",
            ))?;
        if session.expires <= Instant::now() {
            return Err(invalid_grant("The refresh token has expired."));
        }
        if session.grant.client_id != client_id {
            return Err(invalid_grant(
                "The refresh token was issued to another client.",
            ));
        }
        Ok(session.grant)
    }
}

pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The authorize page: who signs in. The form posts back to the same address (its query
/// included), with the chosen user's key.
pub fn authorize_page(request: &AuthorizeRequest, admin_username: &str) -> String {
    let buttons: String = USERS
        .iter()
        .map(|user| {
            let username = if user.key == "admin" {
                admin_username
            } else {
                user.username
            };
            format!(
                "<li><button type=\"submit\" name=\"user\" value=\"{}\" id=\"user-{}\">{}</button> \
                 <span>{} — {}</span></li>\n",
                user.key,
                user.key,
                escape_html(user.name),
                escape_html(username),
                escape_html(user.description),
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign in — development identity provider</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}\
         li{{margin:.75rem 0}}button{{font:inherit;padding:.4rem .8rem}}</style></head>\n\
         <body><main><h1>Sign in (development identity provider)</h1>\n\
         <p>For <code>{}</code>, returning to <code>{}</code>. Development only: \
         nobody is asked for a password; choose who signs in.</p>\n\
         <form method=\"post\"><ul>\n{buttons}</ul></form></main></body></html>\n",
        escape_html(&request.client_id),
        escape_html(request.redirect_uri.as_str()),
    )
}

/// A short page for what cannot go back to the app.
pub fn message_page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{0}</title></head>\n<body><main><h1>{0}</h1><p>{1}</p></main></body></html>\n",
        escape_html(title),
        escape_html(message),
    )
}

/// The user a form's `user` field names.
pub fn chosen_user(form: &[u8]) -> Option<LocalUser> {
    let key = url::form_urlencoded::parse(form)
        .find(|(name, _)| name == "user")
        .map(|(_, value)| value.into_owned())?;
    USERS.iter().copied().find(|user| user.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    // RFC 7636, appendix B.
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn query(extra: &str) -> String {
        format!(
            "client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%3A7071%2Fconsole%2F&response_type=code\
             &scope=openid&state=s1&nonce=n1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
        )
    }

    #[test]
    fn pkce_s256_is_checked_as_rfc_7636_computes_it() {
        let request = AuthorizeRequest::parse(&query("")).unwrap();
        let signins = SignIns::default();
        let redirect = "http://127.0.0.1:7071/console/";
        let code = signins.issue_code(&request, USERS[1]);
        let wrong = "x".repeat(43);
        assert_eq!(
            signins
                .redeem_code(&code, "spa", redirect, &wrong)
                .map(|_| ()),
            Err(invalid_grant(
                "The code_verifier does not match the code_challenge (PKCE S256)."
            ))
        );
        // Tried once: even the right verifier is now too late.
        assert!(
            signins
                .redeem_code(&code, "spa", redirect, CHALLENGE_VERIFIER)
                .is_err()
        );
        let code = signins.issue_code(&request, USERS[1]);
        assert!(
            signins
                .redeem_code(&code, "other", redirect, CHALLENGE_VERIFIER)
                .is_err()
        );
        let code = signins.issue_code(&request, USERS[1]);
        let grant = signins
            .redeem_code(&code, "spa", redirect, CHALLENGE_VERIFIER)
            .unwrap();
        assert_eq!(grant.user.key, "reader");
        assert_eq!(grant.nonce.as_deref(), Some("n1"));

        let refresh = signins.issue_refresh(grant.clone());
        assert_eq!(signins.redeem_refresh(&refresh, "spa"), Ok(grant));
        assert!(signins.redeem_refresh(&refresh, "spa").is_err(), "once");
    }

    #[test]
    fn only_loopback_redirects_with_pkce_are_accepted() {
        assert!(matches!(
            AuthorizeRequest::parse(&query("").replace("127.0.0.1", "evil.example")),
            Err(AuthorizeError::Page(_))
        ));
        match AuthorizeRequest::parse(&query("").replace("S256", "plain")) {
            Err(AuthorizeError::Redirect { to, error, .. }) => {
                assert_eq!(error, "invalid_request");
                let back = to.with(&[("error", error)]);
                assert_eq!(
                    back,
                    "http://127.0.0.1:7071/console/#error=invalid_request&state=s1"
                );
            }
            other => panic!("{other:?}"),
        }
        let request = AuthorizeRequest::parse(&query("&response_mode=query&prompt=none")).unwrap();
        assert!(request.silent && !request.fragment);
        assert_eq!(
            request.target().with(&[("code", "c")]),
            "http://127.0.0.1:7071/console/?code=c&state=s1"
        );
    }
}
