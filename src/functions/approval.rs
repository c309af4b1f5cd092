//! `Approval`: `POST /api/requests/{id}/approve` and `POST /api/requests/{id}/deny`, with an
//! optional `{"reason": "..."}` (JSON or urlencoded). `authLevel: function`: the Functions
//! host (or the local host runner) checks the function key before the request gets here.
//!
//! The approver recorded in `DecidedBy` is App Service Authentication's
//! `X-MS-CLIENT-PRINCIPAL-NAME` when present, else the name of the function key the local
//! host runner passes as `X-Functions-Key-Name`, else `function key` (the Azure host does
//! not tell a custom handler which key was used).

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warp::{
    Filter,
    http::{HeaderMap, StatusCode},
    reply::Reply,
};

use super::body;
use crate::{
    clock::rfc3339,
    domain::{Decider, FreeText, RequestId, SignupRequest},
    problem::{ErrorCode, Problem},
    requests::{DecideError, Requests, Verdict},
};

const MAX_BODY_BYTES: usize = 4 * 1024;
const MAX_REASON_CHARS: usize = 500;

pub fn route(
    requests: Arc<Requests>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "requests" / String / String)
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::limited(MAX_BODY_BYTES))
        .then(
            move |id: String,
                  decision: String,
                  headers: HeaderMap,
                  body: Result<Bytes, Problem>| {
                let requests = requests.clone();
                async move {
                    let answer = match body {
                        Ok(body) => handle(&requests, &id, &decision, &headers, &body).await,
                        Err(problem) => Err(problem),
                    };
                    answer.unwrap_or_else(Problem::into_response)
                }
            },
        )
}

async fn handle(
    requests: &Requests,
    id: &str,
    decision: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<warp::reply::Response, Problem> {
    let verdict = match decision {
        "approve" => Verdict::Approve,
        "deny" => Verdict::Deny,
        _ => {
            return Err(Problem::new(
                ErrorCode::NotFound,
                "Use …/approve or …/deny.",
            ));
        }
    };
    let id = RequestId::parse(id).ok_or_else(not_found)?;
    let reason = reason(headers, body)?;
    let by = approver(headers);
    match requests.decide(&id, verdict, &by, reason).await {
        Ok(decided) => Ok(answer(&decided.request, decided.changed)),
        Err(DecideError::NotFound) => Err(not_found()),
        Err(DecideError::AlreadyDecided(request)) => Err(Problem::new(
            ErrorCode::AlreadyDecided,
            format!("The request was already decided: it is {}.", request.status),
        )),
        Err(DecideError::NotPending(request)) => Err(Problem::new(
            ErrorCode::NotPending,
            format!(
                "The request is not waiting for approval: it is {}.",
                request.status
            ),
        )),
        Err(DecideError::Storage(e)) => {
            tracing::error!(error = %e, "decision could not be stored");
            Err(Problem::storage(&e))
        }
    }
}

fn not_found() -> Problem {
    Problem::new(ErrorCode::NotFound, "No request has this id.")
}

/// Who decided, for the audit row.
fn approver(headers: &HeaderMap) -> Decider {
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 256 && !v.chars().any(char::is_control))
    };
    if let Some(principal) = header_text("x-ms-client-principal-name") {
        Decider::Named(principal.to_owned())
    } else if let Some(key) = header_text("x-functions-key-name") {
        Decider::FunctionKey(key.to_owned())
    } else {
        Decider::UnnamedKey
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
}

fn reason(headers: &HeaderMap, body: &[u8]) -> Result<Option<String>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let bad = |detail: &str| Problem::field(ErrorCode::InvalidRequest, "reason", detail.to_owned());
    let content_type = body::media_type(headers);
    let parsed: DecisionBody = match content_type.as_deref() {
        Some("application/json") => serde_json::from_slice(body)
            .map_err(|_| bad("Send {\"reason\": \"...\"} or nothing."))?,
        Some("application/x-www-form-urlencoded") => {
            let pairs: Vec<(String, String)> =
                url::form_urlencoded::parse(body).into_owned().collect();
            DecisionBody {
                reason: pairs
                    .into_iter()
                    .find(|(k, _)| k == "reason")
                    .map(|(_, v)| v),
            }
        }
        _ => {
            return Err(Problem::new(
                ErrorCode::UnsupportedMediaType,
                "Send the reason as application/json or application/x-www-form-urlencoded.",
            ));
        }
    };
    FreeText::parse_paragraph(parsed.reason.as_deref(), MAX_REASON_CHARS)
        .map(|text| text.map(|t| t.as_str().to_owned()))
        .map_err(|e| {
            Problem::field(
                ErrorCode::InvalidField,
                "reason",
                format!("The reason {e}."),
            )
        })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    request_id: String,
    status: &'a str,
    decided_by: Option<String>,
    decided_at: Option<String>,
    reason: Option<&'a str>,
    /// `false` when the same decision had been made before.
    changed: bool,
}

fn answer(request: &SignupRequest, changed: bool) -> warp::reply::Response {
    let body = Answer {
        request_id: request.id.to_string(),
        status: request.status.as_str(),
        decided_by: request.decided_by.as_ref().map(Decider::to_string),
        decided_at: request.decided_at.map(rfc3339),
        reason: request.decision_reason.as_deref(),
        changed,
    };
    warp::reply::with_status(warp::reply::json(&body), StatusCode::OK).into_response()
}
