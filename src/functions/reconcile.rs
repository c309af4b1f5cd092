//! `Reconcile`: timer trigger, every five minutes (`useMonitor`), running
//! [`Reconciler::run`]. A failed pass fails the invocation; the next firing tries again.

use std::sync::Arc;

use bytes::Bytes;
use warp::{Filter, reply::Reply};

use crate::{
    invocation::{InvocationResult, TimerFiring},
    reconcile::Reconciler,
};

pub fn route(
    reconciler: Arc<Reconciler>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("Reconcile")
        .and(warp::post())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .then(move |body: Bytes| {
            let reconciler = reconciler.clone();
            async move {
                let result = match TimerFiring::parse(&body, "timer") {
                    Err(e) => InvocationResult::Retry(e.to_string()),
                    Ok(firing) => match reconciler.run().await {
                        Ok(report) => {
                            tracing::info!(
                                past_due = firing.is_past_due,
                                ?report,
                                "reconcile pass done"
                            );
                            InvocationResult::Completed
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "reconcile pass failed");
                            InvocationResult::Retry(format!("storage: {e}"))
                        }
                    },
                };
                result.into_response()
            }
        })
}
