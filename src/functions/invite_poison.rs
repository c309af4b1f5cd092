//! `InvitePoison`: queue trigger on `signup-requests-poison`, where the host moves a message
//! after `maxDequeueCount` failed deliveries. The request becomes `Failed` (poisoned), so
//! no request ends silently.

use std::sync::Arc;

use warp::Filter;

use super::queue_trigger;
use crate::worker::Worker;

pub fn route(
    worker: Arc<Worker>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    queue_trigger::route("InvitePoison", worker, |worker, delivery| async move {
        worker.poisoned(&queue_trigger::delivery(&delivery)).await
    })
}
