//! The shared edge of queue-triggered functions: `POST /<FunctionName>` with the host's
//! invocation payload in, the invocation answer out.

use std::{future::Future, sync::Arc};

use bytes::Bytes;
use warp::{Filter, reply::Reply};

use crate::{
    invocation::{InvocationResult, QueueDelivery},
    worker::{Delivery, Step, Worker},
};

/// Largest invocation body read: a queue message is at most 64 KiB, and its metadata a
/// little more (base64 and double encoding grow it).
const MAX_INVOCATION_BYTES: u64 = 1024 * 1024;

/// The binding name of the queue trigger in every function.json here.
const BINDING: &str = "msg";

/// A route for the function folder `name` that hands each delivery to `handle`.
pub(super) fn route<H, F>(
    name: &'static str,
    worker: Arc<Worker>,
    handle: H,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone
where
    H: Fn(Arc<Worker>, QueueDelivery) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Step> + Send,
{
    warp::path(name)
        .and(warp::path::end())
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_INVOCATION_BYTES))
        .and(warp::body::bytes())
        .then(move |body: Bytes| {
            let (worker, handle) = (worker.clone(), handle.clone());
            async move {
                let result = match QueueDelivery::parse(&body, BINDING) {
                    Ok(delivery) => match handle(worker, delivery).await {
                        Step::Done(why) => {
                            tracing::info!(function = name, outcome = %why, "invocation completed");
                            InvocationResult::Completed
                        }
                        Step::Retry(why) => {
                            tracing::warn!(function = name, reason = %why, "invocation failed; the host will retry");
                            InvocationResult::Retry(why)
                        }
                    },
                    // Not the host's payload: fail, so the message is kept (retried, then poisoned).
                    Err(e) => {
                        tracing::error!(function = name, error = %e, "invocation payload not understood");
                        InvocationResult::Retry(e.to_string())
                    }
                };
                result.into_response()
            }
        })
}

pub(super) fn delivery(delivery: &QueueDelivery) -> Delivery<'_> {
    Delivery {
        text: &delivery.text,
        dequeue_count: delivery.dequeue_count,
        message_id: delivery.message_id.as_deref(),
    }
}
