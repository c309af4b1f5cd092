//! `InviteQueue`: queue trigger on `signup-requests`. Each message points at a request row;
//! [`Worker::deliver`] sends the invitation and adds the group memberships.

use std::sync::Arc;

use warp::Filter;

use super::queue_trigger;
use crate::worker::Worker;

pub fn route(
    worker: Arc<Worker>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    queue_trigger::route("InviteQueue", worker, |worker, delivery| async move {
        worker.deliver(&queue_trigger::delivery(&delivery)).await
    })
}
