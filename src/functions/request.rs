//! `Request`: `GET /api/requests/{id}`, one request with its history (and the
//! administrator's `decisionReason`), as the list shows each. Needs `Signup.Read` (or
//! `Signup.Approve`). An id that is not a ULID is `404 not_found` without a storage query.

use std::sync::Arc;

use warp::{
    Filter,
    http::{HeaderMap, StatusCode},
    reply::Reply,
};

use super::admin_api::{AdminApi, not_found, request_id};
use crate::{admin::view::View, auth::Role, problem::Problem};

pub fn route(
    api: Arc<AdminApi>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "requests" / String)
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .then(move |id: String, headers: HeaderMap| {
            let api = api.clone();
            async move {
                handle(&api, &id, &headers)
                    .await
                    .unwrap_or_else(Problem::into_response)
            }
        })
}

async fn handle(
    api: &AdminApi,
    id: &str,
    headers: &HeaderMap,
) -> Result<warp::reply::Response, Problem> {
    api.principal(headers, Role::Read).await?;
    let id = request_id(id)?;
    let row = api.requests.store.find(&id).await.map_err(|e| {
        tracing::error!(request_id = %id, error = %e, "request could not be read");
        Problem::storage(&e)
    })?;
    let request = row.ok_or_else(not_found)?.value;
    let body = View::of(&request);
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::OK).into_response())
}
