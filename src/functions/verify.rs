//! `Verify`: `POST /api/verify` with `{"token": "..."}` (JSON), the one click of the page
//! the verification mail links to (`verify.html#t=<token>`). Anonymous like `SignupHttp`,
//! and limited per client IP like sign-ups (the same numbers, its own bucket). What it does is
//! [`crate::verify`]; this module is the HTTP edge.
//!
//! Answers (docs/openapi.yaml): `200 {"requestId","status","changed"}` with the request's
//! status after verification (`queued`, `pending_approval`) and `changed: false` when the
//! link had already been used for this request (opened twice: already done);
//! `400 invalid_token`; `410 verification_expired`; `429 rate_limited`.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warp::{
    Filter,
    http::{HeaderMap, StatusCode},
    reply::Reply,
};

use super::{
    body,
    signup_http::{Gatekeeper, rate_limit_answer},
};
use crate::{
    abuse::client_ip,
    intake::ReceiptStatus,
    problem::{ErrorCode, Problem},
    verify::{Verifier, VerifyError},
};

/// A token is ~100 characters; anything much longer is not one.
const MAX_BODY_BYTES: usize = 1024;

pub fn route(
    verifier: Arc<Verifier>,
    gate: Arc<Gatekeeper>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "verify")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::limited(MAX_BODY_BYTES))
        .then(move |headers: HeaderMap, body: Result<Bytes, Problem>| {
            let (verifier, gate) = (verifier.clone(), gate.clone());
            async move {
                handle(&verifier, &gate, &headers, body)
                    .await
                    .unwrap_or_else(Problem::into_response)
            }
        })
}

#[derive(Deserialize)]
struct VerifyBody {
    token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    request_id: String,
    status: &'static str,
    /// `false`: this link had verified the request before.
    changed: bool,
}

fn invalid_token() -> Problem {
    Problem::field(
        ErrorCode::InvalidToken,
        "token",
        "This link is not valid or was replaced by a newer one. Use the link in the most recent mail, or sign up again.",
    )
}

async fn handle(
    verifier: &Verifier,
    gate: &Gatekeeper,
    headers: &HeaderMap,
    body: Result<Bytes, Problem>,
) -> Result<warp::reply::Response, Problem> {
    if body::media_type(headers).as_deref() != Some("application/json") {
        return Err(Problem::new(
            ErrorCode::UnsupportedMediaType,
            "Send {\"token\": \"...\"} as application/json.",
        ));
    }
    let bytes = body?;
    let parsed: VerifyBody = serde_json::from_slice(&bytes).map_err(|_| invalid_token())?;
    if let Some(limiter) = &gate.rate_limiter {
        let ip = client_ip(headers, gate.trusted_proxy_hops);
        rate_limit_answer(
            limiter.check_ip(ip, verifier.requests.clock.now()).await,
            "Too many attempts came from here. Please try again later.",
        )?;
    }
    match verifier.verify(&parsed.token).await {
        Ok(verified) => {
            let answer = Answer {
                request_id: verified.request.id.to_string(),
                status: ReceiptStatus::of(verified.request.status).as_str(),
                changed: verified.changed,
            };
            Ok(
                warp::reply::with_status(warp::reply::json(&answer), StatusCode::OK)
                    .into_response(),
            )
        }
        Err(VerifyError::InvalidToken) => Err(invalid_token()),
        Err(VerifyError::Expired) => Err(Problem::field(
            ErrorCode::VerificationExpired,
            "token",
            "This link has expired. Sign up again to get a new one.",
        )),
        Err(VerifyError::Storage(e)) => {
            tracing::error!(error = %e, "verification could not be stored");
            Err(Problem::storage(&e))
        }
    }
}
