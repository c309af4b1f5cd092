//! The Communication Services Email client: one `POST /emails:send` per mail, signed or
//! with a bearer token, retried briefly on 429, 5xx and timeouts.

use std::{sync::Arc, time::Duration};

use reqwest::{StatusCode, header::HeaderMap};
use serde::Serialize;
use time::OffsetDateTime;
use url::Url;

use super::{
    API_VERSION, Mail, MailConfigError, MailError, Mailer,
    settings::{AccessKey, MailSettings},
    sign::{http_date, sign},
};
use crate::graph::{GraphSettings, TokenCache, credential};

/// The scope of Communication Services' Entra ID tokens.
/// <https://learn.microsoft.com/azure/communication-services/concepts/authentication>
pub const TOKEN_SCOPE: &str = "https://communication.azure.com/.default";
/// Tries of one send before the mail is left owed.
const MAX_ATTEMPTS: u32 = 3;
/// The wait before trying again after a timeout or a 5xx without `Retry-After`.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// How long Communication Services remembers a `Repeatability-Request-Id`, less a margin
/// for clock skew: an older `Repeatability-First-Sent` is refused with 412.
const REPEATABILITY_WINDOW: time::Duration = time::Duration::minutes(4);

enum Auth {
    Key(AccessKey),
    Token(Arc<TokenCache>),
}

/// The client; cheap to share (`Arc`), one per process.
pub struct AcsMailer {
    http: reqwest::Client,
    url: Url,
    /// `host[:port]` as signed (the port only when it is not the scheme's default).
    host: String,
    path_and_query: String,
    sender: String,
    auth: Auth,
    max_inline_retry: Duration,
}

impl AcsMailer {
    /// A client for `settings`. Without an access key it uses the app's Entra ID identity,
    /// which `graph` describes (client secret locally, managed identity in Azure).
    pub fn new(
        settings: &MailSettings,
        graph: Option<&GraphSettings>,
    ) -> Result<Self, MailConfigError> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(MailConfigError::HttpClient)?;
        let auth = match (&settings.access_key, graph) {
            (Some(key), _) => Auth::Key(key.clone()),
            (None, Some(graph)) => Auth::Token(Arc::new(TokenCache::new(
                credential(graph, http.clone()).map_err(|e| match e {
                    crate::graph::GraphConfigError::Credential(e) => MailConfigError::Credential(e),
                    _ => MailConfigError::Missing("SIGNUP_MAIL_ACCESS_KEY"),
                })?,
                TOKEN_SCOPE.to_owned(),
                settings.timeout,
            ))),
            (None, None) => {
                return Err(MailConfigError::Missing(
                    "SIGNUP_MAIL_ACCESS_KEY (or an Entra ID identity: a managed identity, or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET)",
                ));
            }
        };
        let mut url = settings.endpoint.clone();
        url.set_path(&format!(
            "{}/emails:send",
            settings.endpoint.path().trim_end_matches('/')
        ));
        url.set_query(Some(&format!("api-version={API_VERSION}")));
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let path_and_query = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        Ok(Self {
            http,
            url,
            host,
            path_and_query,
            sender: settings.sender.as_str().to_owned(),
            auth,
            max_inline_retry: settings.max_inline_retry,
        })
    }

    async fn attempt(&self, body: &[u8], mail: &Mail, first_sent: &str) -> Attempt {
        let mut request = self
            .http
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("operation-id", mail.key.id.to_string())
            .header("repeatability-request-id", mail.key.id.to_string())
            .header("repeatability-first-sent", first_sent);
        let mut bearer = None;
        match &self.auth {
            Auth::Key(key) => {
                let signed = sign(
                    key,
                    "POST",
                    &self.path_and_query,
                    &self.host,
                    OffsetDateTime::now_utc(),
                    body,
                );
                request = request
                    .header("x-ms-date", signed.date)
                    .header("x-ms-content-sha256", signed.content_sha256)
                    .header("authorization", signed.authorization);
            }
            Auth::Token(cache) => match cache.token().await {
                Ok(token) => {
                    request = request.bearer_auth(token.secret());
                    bearer = Some(token);
                }
                Err(e) => return Attempt::Retry(format!("no token: {e}"), None),
            },
        }
        let response = match request.body(body.to_vec()).send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return Attempt::Retry("timed out".into(), None),
            Err(_) => return Attempt::Retry("unreachable".into(), None),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        match status {
            // 409: a repeat of a request the service has (still in progress): one mail.
            s if s.is_success() || s == StatusCode::CONFLICT => Attempt::Sent,
            StatusCode::UNAUTHORIZED => {
                if let (Auth::Token(cache), Some(token)) = (&self.auth, bearer) {
                    cache.invalidate(&token).await;
                }
                Attempt::Retry("401".into(), None)
            }
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry("429".into(), retry_after),
            s if s.is_server_error() => Attempt::Retry(s.as_u16().to_string(), retry_after),
            s => {
                let code = response
                    .json::<ErrorBody>()
                    .await
                    .ok()
                    .and_then(|b| b.error.and_then(|e| e.code))
                    .unwrap_or_default();
                Attempt::Refused(format!("{} {code}", s.as_u16()).trim().to_owned())
            }
        }
    }
}

enum Attempt {
    Sent,
    Retry(String, Option<Duration>),
    Refused(String),
}

#[async_trait::async_trait]
impl Mailer for AcsMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let body = serde_json::to_vec(&Body::of(&self.sender, mail))
            .map_err(|e| MailError::Refused(format!("body: {e}")))?;
        let now = OffsetDateTime::now_utc();
        let since = mail.key.first_sent;
        let first_sent = if (now - since).abs() < REPEATABILITY_WINDOW {
            since
        } else {
            now
        };
        let first_sent = http_date(first_sent);
        let domain = mail.to.domain().to_string();
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            match self.attempt(&body, mail, &first_sent).await {
                Attempt::Sent => {
                    tracing::info!(%domain, attempt, "mail sent");
                    return Ok(());
                }
                Attempt::Refused(why) => {
                    tracing::warn!(%domain, why, "mail refused by Communication Services");
                    return Err(MailError::Refused(why));
                }
                Attempt::Retry(why, wait) => {
                    tracing::warn!(%domain, attempt, why, "mail not sent yet");
                    let wait = wait.unwrap_or(DEFAULT_BACKOFF);
                    if attempt == MAX_ATTEMPTS || wait > self.max_inline_retry {
                        return Err(MailError::Transient(why));
                    }
                    last = why;
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(MailError::Transient(last))
    }
}

/// `Retry-After` in seconds (possibly fractional); an HTTP date is not waited for inline.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: Option<ErrorDetail>,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: Option<String>,
}

/// The request body: `EmailMessage` of the REST reference.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    sender_address: &'a str,
    content: Content<'a>,
    recipients: Recipients<'a>,
    /// No tracking pixels or rewritten links in mail about someone's access.
    user_engagement_tracking_disabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content<'a> {
    subject: &'a str,
    plain_text: &'a str,
    html: &'a str,
}

#[derive(Serialize)]
struct Recipients<'a> {
    to: [Address<'a>; 1],
}

#[derive(Serialize)]
struct Address<'a> {
    address: &'a str,
}

impl<'a> Body<'a> {
    fn of(sender: &'a str, mail: &'a Mail) -> Self {
        Self {
            sender_address: sender,
            content: Content {
                subject: &mail.subject,
                plain_text: &mail.text,
                html: &mail.html,
            },
            recipients: Recipients {
                to: [Address {
                    address: mail.to.as_str(),
                }],
            },
            user_engagement_tracking_disabled: true,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The client against a local stand-in (wiremock): each answer class once.
    use super::*;
    use crate::domain::EmailAddress;
    use crate::mail::MailKey;
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{header_exists, method, path, query_param},
    };

    fn mailer(server: &MockServer, timeout: Duration) -> AcsMailer {
        let settings = MailSettings {
            endpoint: Url::parse(&server.uri()).unwrap(),
            sender: EmailAddress::parse("DoNotReply@contoso.example").unwrap(),
            access_key: AccessKey::parse("bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1hLXNlY3JldA=="),
            timeout,
            max_inline_retry: Duration::from_secs(2),
        };
        AcsMailer::new(&settings, None).unwrap()
    }

    fn mail() -> Mail {
        Mail {
            to: EmailAddress::parse("ada@contoso.com").unwrap(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>t</p>".into(),
            key: MailKey::derive("one", OffsetDateTime::now_utc()),
        }
    }

    async fn answering(template: ResponseTemplate, times: u64) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/emails:send"))
            .and(query_param("api-version", API_VERSION))
            .and(header_exists("authorization"))
            .respond_with(template)
            .expect(times)
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn accepted_and_repeated_requests_are_one_sent_mail() {
        for status in [202, 200, 409] {
            let server = answering(ResponseTemplate::new(status), 1).await;
            let sent = mailer(&server, Duration::from_secs(2)).send(&mail()).await;
            assert!(sent.is_ok(), "{status}: {sent:?}");
        }
    }

    #[tokio::test]
    async fn a_short_retry_after_is_waited_out_and_the_same_request_sent_again() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0.2"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(202))
            .expect(1)
            .mount(&server)
            .await;
        let started = std::time::Instant::now();
        mailer(&server, Duration::from_secs(2))
            .send(&mail())
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        let ids: Vec<_> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| r.headers.get("repeatability-request-id").cloned())
            .collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ids[1], "one idempotency key for every try");
    }

    #[tokio::test]
    async fn a_long_retry_after_leaves_the_mail_owed_at_once() {
        let server = answering(
            ResponseTemplate::new(429).insert_header("retry-after", "60"),
            1,
        )
        .await;
        let started = std::time::Instant::now();
        let error = mailer(&server, Duration::from_secs(2))
            .send(&mail())
            .await
            .unwrap_err();
        assert!(matches!(error, MailError::Transient(_)), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "not waited inline"
        );
    }

    #[tokio::test]
    async fn server_errors_and_timeouts_are_tried_three_times_then_transient() {
        let server = answering(ResponseTemplate::new(503), 3).await;
        let error = mailer(&server, Duration::from_secs(2))
            .send(&mail())
            .await
            .unwrap_err();
        assert!(matches!(error, MailError::Transient(_)), "{error}");

        let slow = answering(
            ResponseTemplate::new(202).set_delay(Duration::from_millis(800)),
            3,
        )
        .await;
        let error = mailer(&slow, Duration::from_millis(200))
            .send(&mail())
            .await
            .unwrap_err();
        assert!(
            matches!(error, MailError::Transient(ref why) if why == "timed out"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_refused_message_is_permanent_and_names_the_service_s_code() {
        let server = answering(
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": {"code": "InvalidRecipient"}})),
            1,
        )
        .await;
        let error = mailer(&server, Duration::from_secs(2))
            .send(&mail())
            .await
            .unwrap_err();
        assert!(
            matches!(error, MailError::Refused(ref why) if why == "400 InvalidRecipient"),
            "{error}"
        );
    }
}
