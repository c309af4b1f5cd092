//! `Subjects`: `POST /api/subjects/export` and `POST /api/subjects/erase` with
//! `{"email": "..."}` (JSON): a data-subject access or erasure request
//! ([`crate::subjects`]). Needs `Signup.Approve`. The address travels in the body only:
//! URLs reach logs.
//!
//! Answers `200` with everything stored about the address (export) or the counts deleted
//! (erase, `{"domain","requests","claims","deadLetters","erasedAt"}`); an address with
//! nothing stored exports empty lists and erases nothing, which is not an error.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use warp::{
    Filter,
    http::{HeaderMap, StatusCode},
    reply::Reply,
};

use super::{admin_api::AdminApi, body};
use crate::{
    auth::Role,
    domain::EmailAddress,
    problem::{ErrorCode, Problem},
    subjects::Subjects,
};

const MAX_BODY_BYTES: usize = 4 * 1024;

pub fn route(
    api: Arc<AdminApi>,
    subjects: Arc<Subjects>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "subjects" / String)
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(body::limited(MAX_BODY_BYTES))
        .then(
            move |action: String, headers: HeaderMap, body: Result<Bytes, Problem>| {
                let api = api.clone();
                let subjects = subjects.clone();
                async move {
                    handle(&api, &subjects, &action, &headers, body)
                        .await
                        .unwrap_or_else(Problem::into_response)
                }
            },
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectBody {
    email: String,
}

async fn handle(
    api: &AdminApi,
    subjects: &Subjects,
    action: &str,
    headers: &HeaderMap,
    body: Result<Bytes, Problem>,
) -> Result<warp::reply::Response, Problem> {
    let principal = api.principal(headers, Role::Approve).await?;
    if !matches!(action, "export" | "erase") {
        return Err(Problem::new(
            ErrorCode::NotFound,
            "Use …/subjects/export or …/subjects/erase.",
        ));
    }
    if body::media_type(headers).as_deref() != Some("application/json") {
        return Err(Problem::new(
            ErrorCode::UnsupportedMediaType,
            "Send {\"email\": \"...\"} as application/json.",
        ));
    }
    let parsed: SubjectBody = serde_json::from_slice(&body?).map_err(|_| {
        Problem::field(
            ErrorCode::InvalidRequest,
            "email",
            "Send {\"email\": \"...\"}.",
        )
    })?;
    let email = EmailAddress::parse(&parsed.email).map_err(|_| {
        Problem::field(
            ErrorCode::InvalidEmail,
            "email",
            "This is not a valid e-mail address.",
        )
    })?;
    let storage = |e| {
        tracing::error!(domain = %email.domain(), error = %e, "data-subject request failed");
        Problem::storage(&e)
    };
    let reply = if action == "export" {
        let export = subjects.export(&email).await.map_err(storage)?;
        tracing::info!(domain = %email.domain(), by = %principal.decider(), requests = export.requests.len(), "data subject exported");
        warp::reply::json(&export)
    } else {
        let erased = subjects
            .erase(&email, &principal.decider())
            .await
            .map_err(storage)?;
        warp::reply::json(&erased)
    };
    Ok(warp::reply::with_status(reply, StatusCode::OK).into_response())
}
