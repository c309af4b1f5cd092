//! `Lifecycle`: timer trigger, once a day at 03:30 UTC (`useMonitor`), running
//! [`Lifecycle::run`]: renewal notices, the end of access, retention. Every step is safe
//! to repeat, so a failed pass fails the invocation and the next firing does the rest.

use std::sync::Arc;

use warp::Filter;

use crate::lifecycle::Lifecycle;

pub fn route(
    lifecycle: Arc<Lifecycle>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    super::timer_trigger::route("Lifecycle", "lifecycle", move || {
        let lifecycle = lifecycle.clone();
        async move { lifecycle.run().await }
    })
}
