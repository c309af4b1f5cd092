//! `SignupHttp`: `POST /api/signup`, the public sign-up endpoint (DESIGN.md, public HTTP
//! contract). This module is the HTTP edge: content type, size, field rules and the answer.
//! What happens to a valid sign-up is [`crate::intake`].

use std::{collections::HashSet, sync::Arc};

use bytes::Bytes;
use serde::{Deserialize, de::IgnoredAny};
use warp::{
    Filter,
    http::{HeaderMap, StatusCode, header},
    reply::Reply,
};

use super::{
    body,
    html_redirect::{FormPost, SiteBase},
};
use crate::{
    domain::{DisplayName, EmailAddress, FreeText, RequestId, TextError},
    intake::{Intake, IntakeError, Receipt, ReceiptStatus, Submission},
    policy::Refusal,
    problem::{ErrorCode, Problem},
};

/// Largest body accepted (DESIGN: 16 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const MAX_COMPANY_CHARS: usize = 200;
const MAX_JUSTIFICATION_CHARS: usize = 1000;

/// `POST /api/signup`. `site` is where plain HTML form posts are sent on (see
/// [`super::html_redirect`]).
pub fn route(
    intake: Arc<Intake>,
    site: Arc<SiteBase>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "signup")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::limited(MAX_BODY_BYTES))
        .then(move |headers: HeaderMap, body: Result<Bytes, Problem>| {
            let intake = intake.clone();
            let site = site.clone();
            async move {
                // A browser's plain form post gets a 303 to the site's pages (html_redirect.rs).
                let form_post = FormPost::detect(&headers, body.as_ref().ok());
                let outcome = handle(&intake, &headers, body).await;
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
    headers: &HeaderMap,
    body: Result<Bytes, Problem>,
) -> Result<Receipt, Problem> {
    let kind = body_kind(headers)?;
    let bytes = body?;
    let form = match kind {
        BodyKind::Json => RawForm::from_json(&bytes)?,
        BodyKind::Form => RawForm::from_urlencoded(&bytes)?,
    };

    if form.honeypot_filled() {
        // Bots fill every field. Answer like a success so they learn nothing; store nothing.
        tracing::info!(honeypot = true, "sign-up dropped: honeypot field filled");
        return Ok(Receipt {
            request_id: RequestId::new(),
            status: ReceiptStatus::Queued,
            repeat: false,
        });
    }

    let submission = form.into_submission()?;
    intake.submit(submission).await.map_err(|error| match error {
        IntakeError::Refused(Refusal::DomainNotAllowed) => Problem::field(
            ErrorCode::DomainNotAllowed,
            "email",
            "Sign-up is not open to addresses of this domain. Ask your contact at the organisation to invite you.",
        ),
        IntakeError::Refused(Refusal::AccessNotAllowed) => Problem::field(
            ErrorCode::AccessNotAllowed,
            "access",
            "The access you asked for is not available to addresses of this domain.",
        ),
        IntakeError::Busy => Problem::unavailable().retry_after(5),
        IntakeError::Storage(e) => {
            tracing::error!(error = %e, "sign-up could not be stored");
            Problem::unavailable()
        }
    })
}

fn accepted(receipt: Receipt) -> warp::reply::Response {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        request_id: String,
        status: &'static str,
    }
    let body = Body {
        request_id: receipt.request_id.to_string(),
        status: receipt.status.as_str(),
    };
    warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED).into_response()
}

enum BodyKind {
    Json,
    Form,
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, Problem> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
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
const FIELDS: [&str; 10] = [
    "email",
    "displayName",
    "access",
    "company",
    "justification",
    "website",
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

    fn into_submission(self) -> Result<Submission, Problem> {
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
            FreeText::parse_optional(text("company", self.company.as_ref())?, MAX_COMPANY_CHARS)
                .map_err(|e| {
                    Problem::field(
                        ErrorCode::InvalidField,
                        "company",
                        text_detail("The company", e),
                    )
                })?;
        let justification = FreeText::parse_optional(
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
        let access = text("access", self.access.as_ref())?
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned);
        Ok(Submission {
            email,
            display_name,
            access,
            company,
            justification,
        })
    }
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
