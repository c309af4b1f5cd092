//! The shared edge of timer-triggered functions (`Reconcile`, `Lifecycle`): `POST
//! /<FunctionName>` with the host's timer payload in, the invocation answer out. A pass that
//! fails fails the invocation (logged); the next firing tries again, every pass being safe
//! to repeat.

use std::future::Future;

use bytes::Bytes;
use warp::{Filter, reply::Reply};

use crate::{
    invocation::{InvocationResult, TimerFiring},
    storage::StoreError,
};

/// The binding name of the timer trigger in every function.json here.
const BINDING: &str = "timer";

/// A route for the timer function folder `name` that runs `pass` on each firing and logs
/// its report as `"{what} pass done"`.
pub(super) fn route<P, F, R>(
    name: &'static str,
    what: &'static str,
    pass: P,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone
where
    P: Fn() -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<R, StoreError>> + Send,
    R: std::fmt::Debug,
{
    warp::path(name)
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .then(move |body: Bytes| {
            let pass = pass.clone();
            async move {
                let result = match TimerFiring::parse(&body, BINDING) {
                    Err(e) => InvocationResult::Retry(e.to_string()),
                    Ok(firing) => match pass().await {
                        Ok(report) => {
                            tracing::info!(
                                past_due = firing.is_past_due,
                                ?report,
                                "{what} pass done"
                            );
                            InvocationResult::Completed
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "{what} pass failed");
                            InvocationResult::Retry(format!("storage: {e}"))
                        }
                    },
                };
                result.into_response()
            }
        })
}
