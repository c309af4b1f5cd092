//! RFC 9457 problem details: the only error shape the public API answers with.
//!
//! Each [`ErrorCode`] is part of the public contract (docs/openapi.yaml): the sign-up page
//! maps them to messages, so they never change meaning. `detail` is written for a person
//! and never carries internal text (storage, Graph or stack traces).

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode, header};

use crate::storage::StoreError;

/// Stable, snake_case error codes of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidEmail,
    InvalidDisplayName,
    InvalidField,
    InvalidRequest,
    DomainNotAllowed,
    AccessNotAllowed,
    CaptchaFailed,
    RateLimited,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    AlreadyDecided,
    NotPending,
    /// The admin API's retry: only a `Failed` request goes back to the queue.
    NotFailed,
    /// The admin API: no access token, or one that is not accepted (which check failed is
    /// never said). Answered with `WWW-Authenticate: Bearer`.
    Unauthenticated,
    /// The admin API: a valid token without the role the action needs.
    Forbidden,
    ServiceUnavailable,
    InternalError,
    /// `POST /api/verify`: a token that is not one, was replaced by a newer link, or
    /// belongs to no request.
    InvalidToken,
    /// `POST /api/verify`: the link's time ran out (`SIGNUP_VERIFY_HOURS`).
    VerificationExpired,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidEmail => "invalid_email",
            Self::InvalidDisplayName => "invalid_display_name",
            Self::InvalidField => "invalid_field",
            Self::InvalidRequest => "invalid_request",
            Self::DomainNotAllowed => "domain_not_allowed",
            Self::AccessNotAllowed => "access_not_allowed",
            Self::CaptchaFailed => "captcha_failed",
            Self::RateLimited => "rate_limited",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::AlreadyDecided => "already_decided",
            Self::NotPending => "not_pending",
            Self::NotFailed => "not_failed",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::ServiceUnavailable => "service_unavailable",
            Self::InternalError => "internal_error",
            Self::InvalidToken => "invalid_token",
            Self::VerificationExpired => "verification_expired",
        }
    }

    /// The HTTP status each code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidEmail
            | Self::InvalidDisplayName
            | Self::InvalidField
            | Self::InvalidRequest
            | Self::CaptchaFailed
            | Self::InvalidToken => StatusCode::BAD_REQUEST,
            Self::VerificationExpired => StatusCode::GONE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::DomainNotAllowed | Self::AccessNotAllowed | Self::Forbidden => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::AlreadyDecided | Self::NotPending | Self::NotFailed => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::InvalidEmail => "Invalid e-mail address",
            Self::InvalidDisplayName => "Invalid display name",
            Self::InvalidField => "Invalid field",
            Self::InvalidRequest => "Invalid request",
            Self::DomainNotAllowed => "Sign-up is not open to this domain",
            Self::AccessNotAllowed => "This access is not available",
            Self::CaptchaFailed => "Captcha check failed",
            Self::RateLimited => "Too many requests",
            Self::PayloadTooLarge => "Request too large",
            Self::UnsupportedMediaType => "Unsupported content type",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::AlreadyDecided => "Already decided",
            Self::NotPending => "Not waiting for approval",
            Self::NotFailed => "Not failed",
            Self::Unauthenticated => "Not signed in",
            Self::Forbidden => "Not allowed",
            Self::ServiceUnavailable => "Service temporarily unavailable",
            Self::InternalError => "Internal error",
            Self::InvalidToken => "Invalid or used link",
            Self::VerificationExpired => "Link expired",
        }
    }
}

/// A problem+json answer.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: String,
    code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    /// Seconds, sent as the `Retry-After` header (429 and 503).
    #[serde(skip)]
    retry_after: Option<u32>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:b2b-signup:problem:{}", code.as_str()),
            title: code.title(),
            status: code.status().as_u16(),
            detail: detail.into(),
            code,
            field: None,
            retry_after: None,
        }
    }

    /// A problem with one input field, named as the form names it.
    pub fn field(code: ErrorCode, field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(code, detail)
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Storage or another dependency is down: the caller should try again shortly.
    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            "The service cannot take sign-ups right now. Please try again in a minute.",
        )
        .retry_after(30)
    }

    /// Something that retrying will not mend (a stored row that cannot be read). The
    /// detail says nothing of what: that is in the log.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::InternalError,
            "Something went wrong on our side. Please contact the organisation that invited you to sign up.",
        )
    }

    /// The answer to a storage fault: 500 for a row that cannot be read (retrying gives
    /// the same answer), 503 with `Retry-After` otherwise.
    pub fn storage(error: &StoreError) -> Self {
        match error {
            StoreError::Corrupt(_) => Self::internal(),
            StoreError::Conflict | StoreError::Unavailable(_) => Self::unavailable(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The input field the problem is about, as the form names it.
    pub fn field_name(&self) -> Option<&'static str> {
        self.field
    }

    /// The `Retry-After` seconds, for 429 and 503.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        self.retry_after
    }
}

impl warp::Reply for Problem {
    fn into_response(self) -> warp::reply::Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = warp::reply::Response::new(body.into());
        *response.status_mut() = self.code.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ErrorCode::Unauthenticated {
            // RFC 6750 §3: a 401 names the scheme the caller should use. No `error`
            // parameter: it would say more about why the token failed than the detail does.
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
