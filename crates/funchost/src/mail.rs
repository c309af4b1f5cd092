//! `--dev-mail`: a stand-in for Azure Communication Services Email on the host's own
//! address (`/.dev-mail/...`), so a local run sends and shows mail with no cloud.
//! Development only, like the identity provider: Azure has the real service.
//!
//! - `POST /.dev-mail/emails:send?api-version=…`: checks the HMAC-SHA256 signature with the
//!   made-up access key it gave the handler (as the service checks its key), keeps the
//!   mail, prints its subject and recipient domain in the run's output, answers 202. A
//!   repeat of a `Repeatability-Request-Id` it has is one mail, as at the service.
//! - `GET /.dev-mail/`: the caught mails as a page, newest first, links clickable;
//!   `GET /.dev-mail/messages.json`: the same as JSON, for tests.

use std::sync::Mutex;

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use warp::{
    http::{HeaderMap, Method, StatusCode},
    reply::Reply,
};

use crate::settings::HostSettings;

/// Where the catcher is served.
pub const PATH_PREFIX: &str = "/.dev-mail";
/// A made-up key (base64 of "local-development-key-not-a-secret"): it protects nothing,
/// it only lets the handler sign as it would for the real service.
pub const DEV_ACCESS_KEY: &str = "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1hLXNlY3JldA==";

/// One caught mail.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Caught {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct DevMail {
    key: Vec<u8>,
    mails: Mutex<Vec<Caught>>,
}

/// The settings the handler gets so it sends here (each unless the settings give it).
pub fn provide(address: &str, settings: &mut HostSettings) {
    let given = |settings: &HostSettings, name: &str| {
        settings
            .get(name)
            .is_some_and(|value| !value.trim().is_empty())
    };
    for (name, value) in [
        (
            "SIGNUP_MAIL_ENDPOINT",
            format!("http://{address}{PATH_PREFIX}"),
        ),
        ("SIGNUP_MAIL_ACCESS_KEY", DEV_ACCESS_KEY.to_owned()),
        (
            "SIGNUP_MAIL_SENDER",
            "DoNotReply@b2b-signup.invalid".to_owned(),
        ),
        ("SIGNUP_ORG_NAME", "Contoso (local development)".to_owned()),
        ("SIGNUP_SITE_URL", format!("http://{address}/")),
    ] {
        if !given(settings, name) {
            settings.provide(name, &value);
        }
    }
}

impl Default for DevMail {
    fn default() -> Self {
        Self {
            key: STANDARD.decode(DEV_ACCESS_KEY).unwrap_or_default(),
            mails: Mutex::default(),
        }
    }
}

impl DevMail {
    pub fn serve(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> warp::reply::Response {
        let rest = path.trim_start_matches(PATH_PREFIX);
        match (method.as_str(), rest) {
            ("POST", "/emails:send") => self.receive(path, query, headers, body),
            ("GET", "/messages.json") => warp::reply::json(&self.all()).into_response(),
            ("GET", "" | "/") => warp::reply::html(self.page()).into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }

    fn all(&self) -> Vec<Caught> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Whether the request is signed with the dev key, as the service checks.
    fn signed(&self, path: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> bool {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let hash = STANDARD.encode(Sha256::digest(body));
        if get("x-ms-content-sha256") != hash {
            return false;
        }
        let text = format!(
            "POST\n{path}?{query}\n{};{};{hash}",
            get("x-ms-date"),
            get("host")
        );
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return false;
        };
        mac.update(text.as_bytes());
        let expected = format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={}",
            STANDARD.encode(mac.finalize().into_bytes())
        );
        get("authorization") == expected
    }

    fn receive(
        &self,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> warp::reply::Response {
        if !self.signed(path, query, headers, body) {
            println!("dev-mail: refused a mail whose signature does not match (401)");
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let id = headers
            .get("repeatability-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = |pointer: &str| {
            json.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let caught = Caught {
            id: id.clone(),
            to: text("/recipients/to/0/address"),
            subject: text("/content/subject"),
            text: text("/content/plainText"),
            html: text("/content/html"),
        };
        let Ok(mut mails) = self.mails.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        if id.is_empty() || !mails.iter().any(|m| m.id == id) {
            let domain = caught.to.rsplit('@').next().unwrap_or_default();
            println!(
                "dev-mail: to …@{domain}: {} (see {PATH_PREFIX}/)",
                caught.subject
            );
            mails.push(caught);
        }
        warp::reply::with_status(
            warp::reply::json(&serde_json::json!({"id": id, "status": "Running"})),
            StatusCode::ACCEPTED,
        )
        .into_response()
    }

    fn page(&self) -> String {
        let escape = |t: &str| {
            t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut out = String::from(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Caught mail</title></head><body><h1>Caught mail (development)</h1>\n",
        );
        for mail in self.all().iter().rev() {
            let text: String = escape(&mail.text)
                .split_inclusive(char::is_whitespace)
                .map(|word| {
                    let trimmed = word.trim_end();
                    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
                        format!(
                            "<a href=\"{trimmed}\">{trimmed}</a>{}",
                            &word[trimmed.len()..]
                        )
                    } else {
                        word.to_owned()
                    }
                })
                .collect();
            out.push_str(&format!(
                "<article><h2>{}</h2><p>To: {}</p><pre>{text}</pre></article><hr>\n",
                escape(&mail.subject),
                escape(&mail.to)
            ));
        }
        out.push_str("</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    /// The product's signing test vector (src/mail/sign.rs), computed with Python's
    /// standard library: the catcher accepts exactly what the service would.
    fn signed_headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "contoso.communication.azure.com"),
            ("x-ms-date", "Sun, 29 Nov 2026 08:30:00 GMT"),
            (
                "x-ms-content-sha256",
                "YtH5Gcx/CKf1+ocUoLgkNZLhJ3U13ev2HfjqQiP9Q8c=",
            ),
            (
                "repeatability-request-id",
                "6f1c2d7e-0000-4000-8000-000000000001",
            ),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let auth = format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        );
        headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        headers
    }

    const BODY: &[u8] = br#"{"senderAddress":"DoNotReply@contoso.example"}"#;

    #[test]
    fn only_correctly_signed_mail_is_caught_and_a_repeat_is_one_mail() {
        let catcher = DevMail::default();
        let body = Bytes::from_static(BODY);
        let post = |headers: &HeaderMap| {
            catcher
                .receive("/emails:send", "api-version=2023-03-31", headers, &body)
                .status()
        };
        let good = signed_headers("3g9IjY6l9K1OnaAXVg9YinOcVdOtE65K3IiJVMTwkpc=");
        assert_eq!(post(&good), StatusCode::ACCEPTED);
        assert_eq!(post(&good), StatusCode::ACCEPTED, "a repeat is accepted…");
        assert_eq!(catcher.all().len(), 1, "…and is one mail");
        let forged = signed_headers("AAAAY6l9K1OnaAXVg9YinOcVdOtE65K3IiJVMTwkpc=");
        assert_eq!(post(&forged), StatusCode::UNAUTHORIZED);
        assert_eq!(catcher.all().len(), 1);
    }

    #[test]
    fn the_page_escapes_mail_and_links_what_it_can() {
        let catcher = DevMail::default();
        catcher.mails.lock().unwrap().push(Caught {
            id: "1".into(),
            to: "ada@contoso.com".into(),
            subject: "<b>Hi</b>".into(),
            text: "open http://127.0.0.1:7071/verify.html#t=a.b.c now".into(),
            html: String::new(),
        });
        let page = catcher.page();
        assert!(page.contains("&lt;b&gt;Hi&lt;/b&gt;"));
        assert!(page.contains(
            "<a href=\"http://127.0.0.1:7071/verify.html#t=a.b.c\">http://127.0.0.1:7071/verify.html#t=a.b.c</a> now"
        ));
    }
}
