//! `Approval`: `POST /api/requests/{id}/approve` and `…/deny` (with `{"reason": "..."}`,
//! JSON or urlencoded: optional to approve, required to deny) and `…/retry` (a `Failed`
//! request back to the invitation queue). Needs `Signup.Approve`.
//!
//! Who decided is the verified token's administrator ([`crate::auth::Principal::decider`]:
//! `DecidedBy` its name, `DecidedById` its object id), and nothing a caller can type: the
//! host lets the call through anonymously, and no header but `Authorization` is read.
//! A denial may add `"shareReason": true`: the partner's denial mail then gives the reason.
//! Answers `200 {"requestId","status","changed","decidedBy","decidedAt","reason"}`;
//! deciding twice the same way is `changed: false`; the other way, `409 already_decided`.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warp::{
    Filter,
    http::{HeaderMap, StatusCode},
    reply::Reply,
};

use super::{
    admin_api::{AdminApi, not_found, request_id},
    body,
};
use crate::{
    auth::Role,
    clock::rfc3339,
    domain::{Decider, FreeText, RequestId, SignupRequest},
    problem::{ErrorCode, Problem},
    requests::{DecideError, RetryError, Verdict},
};

const MAX_BODY_BYTES: usize = 4 * 1024;
const MAX_REASON_CHARS: usize = 500;

/// The last segment of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Decide(Verdict),
    Retry,
}

impl Action {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "approve" => Some(Self::Decide(Verdict::Approve)),
            "deny" => Some(Self::Decide(Verdict::Deny)),
            "retry" => Some(Self::Retry),
            _ => None,
        }
    }
}

pub fn route(
    api: Arc<AdminApi>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "requests" / String / String)
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::limited(MAX_BODY_BYTES))
        .then(
            move |id: String, action: String, headers: HeaderMap, body: Result<Bytes, Problem>| {
                let api = api.clone();
                async move {
                    handle(&api, &id, &action, &headers, body)
                        .await
                        .unwrap_or_else(Problem::into_response)
                }
            },
        )
}

async fn handle(
    api: &AdminApi,
    id: &str,
    action: &str,
    headers: &HeaderMap,
    body: Result<Bytes, Problem>,
) -> Result<warp::reply::Response, Problem> {
    let principal = api.principal(headers, Role::Approve).await?;
    let action = Action::parse(action)
        .ok_or_else(|| Problem::new(ErrorCode::NotFound, "Use …/approve, …/deny or …/retry."))?;
    let id = request_id(id)?;
    let by = principal.decider();
    match action {
        Action::Decide(verdict) => {
            let body = body?;
            let reason = reason(headers, &body)?;
            let share = share_reason(headers, &body);
            if verdict == Verdict::Deny && reason.is_none() {
                return Err(Problem::field(
                    ErrorCode::InvalidField,
                    "reason",
                    "A denial needs a reason: send {\"reason\": \"...\"}.",
                ));
            }
            decide(api, &id, verdict, &by, reason, share).await
        }
        // A retry takes no reason: the worker's next outcome is what gets recorded.
        Action::Retry => retry(api, &id, &by).await,
    }
}

async fn decide(
    api: &AdminApi,
    id: &RequestId,
    verdict: Verdict,
    by: &Decider,
    reason: Option<String>,
    share: bool,
) -> Result<warp::reply::Response, Problem> {
    match api
        .requests
        .decide_sharing(id, verdict, by, reason, share)
        .await
    {
        Ok(decided) => Ok(answer(
            &decided.request,
            decided.changed,
            decided.request.decided_by.as_ref(),
            decided.request.decided_at,
        )),
        Err(DecideError::NotFound) => Err(not_found()),
        Err(DecideError::AlreadyDecided(request)) => Err(Problem::new(
            ErrorCode::AlreadyDecided,
            format!("The request was already decided: {}.", decided(&request)),
        )),
        Err(DecideError::NotPending(request)) => Err(Problem::new(
            ErrorCode::NotPending,
            format!(
                "The request is not waiting for approval: it is {}.",
                request.status
            ),
        )),
        Err(DecideError::Storage(e)) => {
            tracing::error!(request_id = %id, error = %e, "decision could not be stored");
            Err(Problem::storage(&e))
        }
    }
}

/// What was decided, by whom and when: what a second administrator is told.
fn decided(request: &SignupRequest) -> String {
    let mut text = format!("it is {}", request.status);
    if let Some(by) = &request.decided_by {
        text.push_str(&format!(", decided by {by}"));
    }
    if let Some(at) = request.decided_at {
        text.push_str(&format!(" at {}", rfc3339(at)));
    }
    text
}

async fn retry(
    api: &AdminApi,
    id: &RequestId,
    by: &Decider,
) -> Result<warp::reply::Response, Problem> {
    let storage = |e| {
        tracing::error!(request_id = %id, error = %e, "retry could not be stored");
        Problem::storage(&e)
    };
    let row = api
        .requests
        .store
        .find(id)
        .await
        .map_err(storage)?
        .ok_or_else(not_found)?;
    match api.requests.retry(row, by).await {
        Ok(retried) => Ok(answer(
            &retried.request,
            true,
            retried.request.retried_by.as_ref(),
            retried.request.retried_at,
        )),
        Err(RetryError::NotFound) => Err(not_found()),
        Err(RetryError::NotFailed(request)) => Err(Problem::new(
            ErrorCode::NotFailed,
            format!(
                "Only a Failed request is retried: this one is {}.",
                request.status
            ),
        )),
        Err(RetryError::Superseded(newer)) => Err(Problem::new(
            ErrorCode::NotFailed,
            format!("The address signed up again since: follow its newer request, {newer}."),
        )),
        Err(RetryError::Storage(e)) => Err(storage(e)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
    /// A denial's reason is told to the partner in the denial mail only when `true`.
    #[serde(rename = "shareReason")]
    share_reason: Option<bool>,
}

/// `shareReason` (`true`, or `on`/`true` from a form): whether the partner's denial mail
/// carries the reason. Anything else, or nothing, keeps the reason among administrators.
fn share_reason(headers: &HeaderMap, body: &[u8]) -> bool {
    match body::media_type(headers).as_deref() {
        Some("application/json") => serde_json::from_slice::<DecisionBody>(body)
            .ok()
            .and_then(|b| b.share_reason)
            .unwrap_or(false),
        Some("application/x-www-form-urlencoded") => url::form_urlencoded::parse(body)
            .any(|(k, v)| k == "shareReason" && matches!(v.as_ref(), "on" | "true")),
        _ => false,
    }
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
                share_reason: None,
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
    /// `false` when the same decision had been made before.
    changed: bool,
    /// Who made the decision (or the retry) the request now stands on.
    decided_by: Option<String>,
    decided_at: Option<String>,
    /// The administrator's reason (`DecisionReason`).
    reason: Option<&'a str>,
}

fn answer(
    request: &SignupRequest,
    changed: bool,
    by: Option<&Decider>,
    at: Option<time::OffsetDateTime>,
) -> warp::reply::Response {
    let body = Answer {
        request_id: request.id.to_string(),
        status: request.status.as_str(),
        changed,
        decided_by: by.map(Decider::to_string),
        decided_at: at.map(rfc3339),
        reason: request.decision_reason.as_deref(),
    };
    warp::reply::with_status(warp::reply::json(&body), StatusCode::OK).into_response()
}
