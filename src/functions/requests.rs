//! `Requests`: `GET /api/requests?status=&domain=&since=&limit=&continuation=`, the admin
//! API's list. Needs `Signup.Read` (or `Signup.Approve`). Answers
//! `200 {"items": [...], "continuation": "<opaque>" | null}`, newest first.
//!
//! The continuation is the last id of the page, versioned and base64url-encoded: opaque to
//! callers (they pass it back unchanged), and a keyset, so a page never repeats or skips a
//! request when others are created meanwhile. Anything else in its place is
//! `400 invalid_field`.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};
use warp::{
    Filter,
    http::{HeaderMap, StatusCode},
    reply::Reply,
};

use super::admin_api::AdminApi;
use crate::{
    admin::view::View,
    auth::Role,
    clock::parse_period,
    domain::{EmailDomain, RequestId, RequestStatus},
    problem::{ErrorCode, Problem},
    storage::RequestQuery,
};

/// Requests per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The most requests one page holds.
pub const MAX_LIMIT: usize = 200;
/// What a continuation starts with: its format's version, so a later format can tell an
/// older continuation apart.
const CONTINUATION_PREFIX: &str = "v1:";

pub fn route(
    api: Arc<AdminApi>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "requests")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(move |headers: HeaderMap, query: String| {
            let api = api.clone();
            async move {
                handle(&api, &headers, &query)
                    .await
                    .unwrap_or_else(Problem::into_response)
            }
        })
}

async fn handle(
    api: &AdminApi,
    headers: &HeaderMap,
    query: &str,
) -> Result<warp::reply::Response, Problem> {
    api.principal(headers, Role::Read).await?;
    let now = api.requests.clock.now();
    let params = ListParams::parse(query, now)?;
    let page = api
        .requests
        .page(&params.query, params.limit)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "requests could not be listed");
            Problem::storage(&e)
        })?;
    let body = ListAnswer {
        items: page.requests.iter().map(View::of).collect(),
        continuation: page.next.map(continuation),
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::OK).into_response())
}

#[derive(Serialize)]
struct ListAnswer {
    items: Vec<View>,
    continuation: Option<String>,
}

/// The list's query string, parsed.
#[derive(Debug)]
struct ListParams {
    query: RequestQuery,
    limit: usize,
}

impl ListParams {
    fn parse(query: &str, now: OffsetDateTime) -> Result<Self, Problem> {
        let mut params = Self {
            query: RequestQuery::default(),
            limit: DEFAULT_LIMIT,
        };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name.as_ref() {
                "status" => {
                    let status = value.parse::<RequestStatus>().map_err(|()| {
                        invalid("status", "The status is not one a request can have.")
                    })?;
                    params.query = RequestQuery {
                        status: Some(status),
                        ..params.query
                    };
                }
                "domain" => {
                    params.query.domain = Some(
                        EmailDomain::parse(value)
                            .map_err(|_| invalid("domain", "The domain is not a domain name."))?,
                    );
                }
                "since" => params.query.created_since = Some(since(value, now)?),
                "limit" => {
                    params.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                        .ok_or_else(|| {
                            invalid(
                                "limit",
                                &format!("The limit is a number from 1 to {MAX_LIMIT}."),
                            )
                        })?;
                }
                "continuation" => {
                    params.query.older_than = Some(older_than(value).ok_or_else(|| {
                        invalid(
                            "continuation",
                            "The continuation is not one this list gave: pass it back unchanged.",
                        )
                    })?);
                }
                // Other parameters (a cache buster, a tool's own) change nothing.
                _ => {}
            }
        }
        Ok(params)
    }
}

fn invalid(field: &'static str, detail: &str) -> Problem {
    Problem::field(ErrorCode::InvalidField, field, detail.to_owned())
}

/// `since`: an RFC 3339 date-time, or a period counted back from now (`12h`, `7d`).
fn since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, Problem> {
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(time);
    }
    parse_period(text)
        .ok()
        .and_then(|period| Duration::try_from(period).ok())
        .and_then(|period| now.checked_sub(period))
        .ok_or_else(|| {
            invalid(
                "since",
                "Since is an RFC 3339 date-time or a period such as 12h or 7d.",
            )
        })
}

fn continuation(last: RequestId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CONTINUATION_PREFIX}{last}"))
}

fn older_than(continuation: &str) -> Option<RequestId> {
    let bytes = URL_SAFE_NO_PAD.decode(continuation).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    RequestId::parse(text.strip_prefix(CONTINUATION_PREFIX)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continuation_reads_back_as_the_id_it_was_made_of_and_nothing_else_does() {
        let id = RequestId::new();
        assert_eq!(older_than(&continuation(id)), Some(id));
        let tampered = [
            "",
            "x",
            "djE6",
            "not base64!",
            &URL_SAFE_NO_PAD.encode(id.to_string()),
        ];
        for text in tampered {
            assert_eq!(older_than(text), None, "{text:?}");
        }
    }

    #[test]
    fn list_parameters_are_typed_or_refused_with_the_field_named() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(10_000);
        let params = ListParams::parse(
            "status=PendingApproval&domain=Fabrikam.com&since=7d&limit=10",
            now,
        )
        .expect("valid parameters");
        assert_eq!(params.query.status, Some(RequestStatus::PendingApproval));
        assert_eq!(
            params.query.domain.map(|d| d.to_string()).as_deref(),
            Some("fabrikam.com")
        );
        assert_eq!(params.query.created_since, Some(now - Duration::days(7)));
        assert_eq!(params.limit, 10);
        assert_eq!(
            ListParams::parse("", now).expect("no parameters").limit,
            DEFAULT_LIMIT
        );
        for (query, field) in [
            ("status=Sleeping", "status"),
            ("domain=not%20a%20domain", "domain"),
            ("since=yesterday", "since"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=ten", "limit"),
            ("continuation=abc", "continuation"),
        ] {
            let problem = ListParams::parse(query, now).expect_err(query);
            assert_eq!(problem.field_name(), Some(field), "{query}");
        }
    }
}
