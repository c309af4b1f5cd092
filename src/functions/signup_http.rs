//! `SignupHttp`: `POST /api/signup`, the public sign-up endpoint (docs/openapi.yaml). This
//! module is the HTTP edge: content type, size, field rules and the answer. What happens to
//! a valid sign-up is [`crate::intake`].

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use serde::{Deserialize, de::IgnoredAny};
use warp::{
    Filter,
    http::{HeaderMap, StatusCode},
    reply::Reply,
};

use super::{body, html_redirect::FormPost};
use crate::{
    abuse::{CaptchaError, CaptchaVerifier, RateLimiter, client_ip},
    domain::{AccessKey, DisplayName, EmailAddress, FreeText, Lang, RequestId, TextError},
    intake::{Intake, IntakeError, Receipt, ReceiptStatus, Submission},
    policy::Refusal,
    policy::Terms,
    problem::{ErrorCode, Problem},
    site_base::SiteBase,
};

/// The checks a sign-up passes before intake sees it (SECURITY.md).
pub struct Gatekeeper {
    /// `None`: no captcha provider configured.
    pub captcha: Option<CaptchaVerifier>,
    /// `None`: rate limits off.
    pub rate_limiter: Option<RateLimiter>,
    /// Proxies whose `X-Forwarded-For` entries are trusted (see `abuse::client_ip`).
    pub trusted_proxy_hops: usize,
}

/// Honeypot hits since start, for the log line (a rising number is a bot campaign).
static HONEYPOT_HITS: AtomicU64 = AtomicU64::new(0);

/// Largest body accepted (the public contract: 16 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const MAX_COMPANY_CHARS: usize = 200;
const MAX_JUSTIFICATION_CHARS: usize = 1000;

/// `POST /api/signup`. `site` is where plain HTML form posts are sent on (see
/// [`super::html_redirect`]).
pub fn route(
    intake: Arc<Intake>,
    gate: Arc<Gatekeeper>,
    site: Arc<SiteBase>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "signup")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::limited(MAX_BODY_BYTES))
        .then(move |headers: HeaderMap, body: Result<Bytes, Problem>| {
            let (intake, gate, site) = (intake.clone(), gate.clone(), site.clone());
            async move {
                // A browser's plain form post gets a 303 to the site's pages (html_redirect.rs).
                let form_post = FormPost::detect(&headers, body.as_ref().ok());
                let outcome = handle(&intake, &gate, &headers, body).await;
                if let Some(form_post) = form_post {
                    return form_post.redirect(&site, &outcome);
                }
                match outcome {
                    Ok(receipt) => accepted(receipt),
                    Err(problem) => problem.into_response(),
                }
            }
        })
}

async fn handle(
    intake: &Intake,
    gate: &Gatekeeper,
    headers: &HeaderMap,
    body: Result<Bytes, Problem>,
) -> Result<Receipt, Problem> {
    let ip = client_ip(headers, gate.trusted_proxy_hops);
    let kind = body_kind(headers)?;
    let bytes = body?;
    let form = match kind {
        BodyKind::Json => RawForm::from_json(&bytes)?,
        BodyKind::Form => RawForm::from_urlencoded(&bytes)?,
    };

    if form.honeypot_filled() {
        // Bots fill every field. Answer like a success so they learn nothing; store nothing.
        let total = HONEYPOT_HITS.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            honeypot = true,
            honeypot_total = total,
            "sign-up dropped: honeypot field filled"
        );
        return Ok(Receipt {
            request_id: RequestId::new(),
            status: ReceiptStatus::Queued,
            repeat: false,
            resent: None,
        });
    }

    let captcha_token = gate
        .captcha
        .as_ref()
        .and_then(|c| form.captcha_token(c.provider().form_field()));
    let submission = form.into_submission(intake.policy.terms())?;
    if let Some(captcha) = &gate.captcha {
        captcha
            .verify(captcha_token.as_deref(), ip)
            .await
            .map_err(|error| match error {
                CaptchaError::Failed => Problem::field(
                    ErrorCode::CaptchaFailed,
                    "captcha",
                    "The captcha check did not pass. Please try it again.",
                ),
                // Fail closed: without the check nobody gets in, but nobody is told they failed.
                CaptchaError::Unavailable => Problem::unavailable().retry_after(30),
            })?;
    }
    if let Some(limiter) = &gate.rate_limiter {
        rate_limit_answer(
            limiter.check(ip, &submission.email, intake.now()).await,
            "Too many sign-ups came from here or for this address. Please try again later.",
        )?;
    }
    intake.submit(submission).await.map_err(|error| match error {
        IntakeError::Refused(Refusal::DomainNotAllowed) => Problem::field(
            ErrorCode::DomainNotAllowed,
            "email",
            "Sign-up is not open to addresses of this domain. Ask your contact at the organisation to invite you.",
        ),
        IntakeError::Refused(Refusal::AccessNotAllowed) => access_not_allowed(),
        IntakeError::Busy => Problem::unavailable().retry_after(5),
        IntakeError::Random(e) => {
            tracing::error!(error = %e, "no verification token could be made");
            Problem::unavailable()
        }
        IntakeError::Storage(e) => {
            tracing::error!(error = %e, "sign-up could not be stored");
            Problem::storage(&e)
        }
    })
}

/// A rate limiter's verdict as the answer: `429` with `Retry-After` and `detail`, or
/// `503` when the counters cannot be read (fail closed). Shared with `POST /api/verify`.
pub(super) fn rate_limit_answer(
    verdict: Result<Result<(), crate::abuse::Limited>, crate::storage::StoreError>,
    detail: &str,
) -> Result<(), Problem> {
    match verdict {
        Ok(Ok(())) => Ok(()),
        Ok(Err(limited)) => {
            Err(Problem::new(ErrorCode::RateLimited, detail).retry_after(limited.retry_after))
        }
        Err(e) => {
            tracing::error!(error = %e, "rate limits could not be checked");
            Err(Problem::unavailable())
        }
    }
}

fn access_not_allowed() -> Problem {
    Problem::field(
        ErrorCode::AccessNotAllowed,
        "access",
        "The access you asked for is not available to addresses of this domain.",
    )
}

fn accepted(receipt: Receipt) -> warp::reply::Response {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        request_id: String,
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        resent: Option<bool>,
    }
    let body = Body {
        request_id: receipt.request_id.to_string(),
        status: receipt.status.as_str(),
        resent: receipt.resent,
    };
    warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED).into_response()
}

enum BodyKind {
    Json,
    Form,
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, Problem> {
    let essence = body::media_type(headers);
    match essence.as_deref() {
        Some("application/json") => Ok(BodyKind::Json),
        Some("application/x-www-form-urlencoded") => Ok(BodyKind::Form),
        _ => Err(Problem::new(
            ErrorCode::UnsupportedMediaType,
            "Send the form as application/json or application/x-www-form-urlencoded.",
        )),
    }
}

/// A field as sent: text, or something else (a number, an object) that is a type error.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Field {
    Text(String),
    Other(IgnoredAny),
}

/// The body before any rule is applied. JSON and urlencoded bodies both become this.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawForm {
    email: Option<Field>,
    display_name: Option<Field>,
    access: Option<Field>,
    company: Option<Field>,
    justification: Option<Field>,
    website: Option<Field>,
    accept_terms: Option<Field>,
    lang: Option<Field>,
    // Captcha tokens (checked when a provider is configured).
    captcha_token: Option<Field>,
    #[serde(rename = "cf-turnstile-response")]
    turnstile: Option<Field>,
    #[serde(rename = "h-captcha-response")]
    hcaptcha: Option<Field>,
    #[serde(rename = "g-recaptcha-response")]
    recaptcha: Option<Field>,
}

/// Form field names, as the page and the problem `field` name them.
const FIELDS: [&str; 12] = [
    "lang",
    "email",
    "displayName",
    "access",
    "company",
    "justification",
    "website",
    "acceptTerms",
    "captchaToken",
    "cf-turnstile-response",
    "h-captcha-response",
    "g-recaptcha-response",
];

fn invalid_request(detail: impl Into<String>) -> Problem {
    Problem::new(ErrorCode::InvalidRequest, detail)
}

impl RawForm {
    fn from_json(bytes: &[u8]) -> Result<Self, Problem> {
        // A struct also deserializes from a JSON array; only an object is a form.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(invalid_request("The body must be a JSON object."));
        }
        serde_json::from_slice(bytes).map_err(|e| {
            let detail = if e.to_string().starts_with("duplicate field") {
                "A field appears more than once."
            } else {
                "The body is not well-formed JSON."
            };
            invalid_request(detail)
        })
    }

    fn from_urlencoded(bytes: &[u8]) -> Result<Self, Problem> {
        let mut seen = HashSet::new();
        let mut form = RawForm::default();
        for (name, value) in decode_form(bytes)? {
            let Some(&known) = FIELDS.iter().find(|&&f| f == name) else {
                continue; // submit buttons and the like
            };
            if !seen.insert(known) {
                return Err(Problem::field(
                    ErrorCode::InvalidRequest,
                    known,
                    "A field appears more than once.",
                ));
            }
            let slot = match known {
                "email" => &mut form.email,
                "displayName" => &mut form.display_name,
                "access" => &mut form.access,
                "company" => &mut form.company,
                "justification" => &mut form.justification,
                "website" => &mut form.website,
                "acceptTerms" => &mut form.accept_terms,
                "lang" => &mut form.lang,
                "captchaToken" => &mut form.captcha_token,
                "cf-turnstile-response" => &mut form.turnstile,
                "h-captcha-response" => &mut form.hcaptcha,
                _ => &mut form.recaptcha,
            };
            *slot = Some(Field::Text(value));
        }
        Ok(form)
    }

    fn honeypot_filled(&self) -> bool {
        match &self.website {
            Some(Field::Text(text)) => !text.trim().is_empty(),
            Some(Field::Other(_)) => true,
            None => false,
        }
    }

    /// The captcha token: the provider's own form field, else `captchaToken` (JSON callers).
    fn captcha_token(&self, provider_field: &str) -> Option<String> {
        let own = match provider_field {
            "cf-turnstile-response" => &self.turnstile,
            "h-captcha-response" => &self.hcaptcha,
            _ => &self.recaptcha,
        };
        [own, &self.captcha_token]
            .into_iter()
            .find_map(|field| match field {
                Some(Field::Text(text)) if !text.trim().is_empty() => Some(text.clone()),
                _ => None,
            })
    }

    fn into_submission(self, terms: Option<&Terms>) -> Result<Submission, Problem> {
        for (name, field) in [
            ("captchaToken", &self.captcha_token),
            ("cf-turnstile-response", &self.turnstile),
            ("h-captcha-response", &self.hcaptcha),
            ("g-recaptcha-response", &self.recaptcha),
        ] {
            text(name, field.as_ref())?;
        }
        let email = text("email", self.email.as_ref())?.unwrap_or_default();
        let email = EmailAddress::parse(email).map_err(|e| {
            Problem::field(ErrorCode::InvalidEmail, "email", capitalise(&e.to_string()))
        })?;
        let display_name = text("displayName", self.display_name.as_ref())?.unwrap_or_default();
        let display_name = DisplayName::parse(display_name).map_err(|e| {
            Problem::field(
                ErrorCode::InvalidDisplayName,
                "displayName",
                text_detail("The name", e),
            )
        })?;
        let company =
            FreeText::parse_line(text("company", self.company.as_ref())?, MAX_COMPANY_CHARS)
                .map_err(|e| {
                    Problem::field(
                        ErrorCode::InvalidField,
                        "company",
                        text_detail("The company", e),
                    )
                })?;
        let justification = FreeText::parse_paragraph(
            text("justification", self.justification.as_ref())?,
            MAX_JUSTIFICATION_CHARS,
        )
        .map_err(|e| {
            Problem::field(
                ErrorCode::InvalidField,
                "justification",
                text_detail("The justification", e),
            )
        })?;
        let access = match text("access", self.access.as_ref())?
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            None => None,
            // Not a key any access option can have, so no rule allows it: the same answer
            // as a key the rule does not list.
            Some(key) => Some(AccessKey::parse(key).ok_or_else(access_not_allowed)?),
        };
        let accepted = text("acceptTerms", self.accept_terms.as_ref())?.map(str::trim);
        let terms_version = match terms {
            None => None,
            Some(terms) if accepted == Some(terms.version.as_str()) => Some(terms.version.clone()),
            Some(_) => {
                return Err(Problem::field(
                    ErrorCode::InvalidField,
                    "acceptTerms",
                    "Please accept the current terms of use.",
                ));
            }
        };
        let language = text("lang", self.lang.as_ref())?.map_or(Lang::En, Lang::from_tag);
        Ok(Submission {
            email,
            display_name,
            access,
            company,
            justification,
            terms_version,
            language,
        })
    }
}

/// The whole body-to-submission path (no captcha, terms or policy), for the fuzz tests and
/// the criterion benchmarks (benches/parsing.rs); not an API.
#[doc(hidden)]
pub fn fuzz_parse(json: bool, body: &[u8]) -> Result<Submission, Problem> {
    let form = if json {
        RawForm::from_json(body)?
    } else {
        RawForm::from_urlencoded(body)?
    };
    form.into_submission(None)
}

/// Splits an `application/x-www-form-urlencoded` body into name/value pairs. Unlike the
/// WHATWG parser, bytes that are not UTF-8 are an error rather than U+FFFD, so a name is
/// never stored with replacement characters.
fn decode_form(bytes: &[u8]) -> Result<Vec<(String, String)>, Problem> {
    let malformed = || invalid_request("The body is not a well-formed form submission.");
    let text = std::str::from_utf8(bytes).map_err(|_| malformed())?;
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| malformed())
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// The text of a field; a field of another JSON type is `invalid_request` naming it.
fn text<'a>(name: &'static str, field: Option<&'a Field>) -> Result<Option<&'a str>, Problem> {
    match field {
        None => Ok(None),
        Some(Field::Text(text)) => Ok(Some(text)),
        Some(Field::Other(_)) => Err(Problem::field(
            ErrorCode::InvalidRequest,
            name,
            format!("{name} must be a string."),
        )),
    }
}

fn text_detail(what: &str, error: TextError) -> String {
    format!("{what} {error}.")
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode_strictly() {
        let pairs =
            decode_form(b"email=ada%40contoso.com&displayName=Ada+L%C3%B6velace&empty=&flag")
                .unwrap();
        assert_eq!(
            pairs,
            [
                ("email".into(), "ada@contoso.com".into()),
                ("displayName".into(), "Ada Lövelace".into()),
                ("empty".into(), String::new()),
                ("flag".into(), String::new()),
            ]
        );
        assert!(
            decode_form(b"displayName=%FF%FE").is_err(),
            "not UTF-8 after decoding"
        );
        assert!(
            decode_form(b"displayName=\xff").is_err(),
            "not UTF-8 before decoding"
        );
    }
}
