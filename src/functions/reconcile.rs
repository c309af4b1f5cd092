//! `Reconcile`: timer trigger, every five minutes (`useMonitor`), running
//! [`Reconciler::run`]. A failed pass fails the invocation; the next firing tries again.

use std::sync::Arc;

use warp::Filter;

use crate::reconcile::Reconciler;

pub fn route(
    reconciler: Arc<Reconciler>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    super::timer_trigger::route("Reconcile", "reconcile", move || {
        let reconciler = reconciler.clone();
        async move { reconciler.run().await }
    })
}
