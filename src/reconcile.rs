//! `Reconcile`'s pass: nothing waits or stalls forever.
//!
//! - `Accepted` rows older than [`Reconciler::resend_accepted_after`] (by default the
//!   worker's lease, [`crate::worker::DEFAULT_LEASE`]) have probably lost their message: intake
//!   writes the row, then sends the message and leaves the row `Accepted` until a worker
//!   takes it (seconds), so a crash or storage fault between the two leaves exactly such a
//!   row. Send the message again and mark the row `Queued` (a worker merely running behind
//!   gets one duplicate, which is harmless);
//! - `Inviting` rows whose lease is stale (a worker died mid-invitation) and `Queued` rows
//!   that have waited past [`LOST_QUEUED`] (their message is gone): enqueue them again. A
//!   duplicate message is harmless: the worker is driven by the row. (`InvitePoison` leaves
//!   `Inviting` rows to this pass, up to a few lease takeovers);
//! - `PendingApproval` rows past their `DecideBy` deadline become `Denied` (expired);
//! - `PendingApproval` rows whose approval notification failed are notified again;
//! - rows that still owe the partner a mail (`MailOwed`, [`crate::outbox`]) send it.
//!
//! Each category is bounded per run ([`Reconciler::batch`]); the next run takes the rest.

use std::sync::Arc;

use time::Duration;

use crate::{
    domain::{Actor, HistoryAction, RequestStatus},
    requests::Requests,
    storage::{RequestQuery, StoreError},
};

/// A `Queued` row untouched this long has lost its message (normal delivery takes seconds;
/// the host's retries of one message take a few minutes).
pub const LOST_QUEUED: Duration = Duration::minutes(30);
/// A notification owed for this long is retried (intake sends it right away).
const NOTIFY_RETRY_AFTER: Duration = Duration::minutes(1);

pub struct Reconciler {
    pub requests: Arc<Requests>,
    /// The worker's lease length: an older `Inviting` row is stale.
    pub lease: Duration,
    /// An `Accepted` row older than this has probably lost its message and is sent again
    /// (`SIGNUP_STALE_AFTER_SECONDS`, the lease's length: [`crate::worker::DEFAULT_LEASE`]
    /// by default). Longer than intake's [`crate::intake::RESEND_ON_REPEAT_AFTER`]: a
    /// timer, unlike a partner signing up again, has no sign that the message is missing.
    pub resend_accepted_after: Duration,
    /// Rows handled per category per run.
    pub batch: usize,
}

/// What one pass did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub enqueued: usize,
    pub expired: usize,
    pub notified: usize,
    /// Partners' mails sent that an earlier attempt could not send.
    pub mailed: usize,
    /// Rows that could not be handled this time (storage or webhook faults).
    pub failed: usize,
}

impl Reconciler {
    pub async fn run(&self) -> Result<Report, StoreError> {
        let now = self.requests.clock.now();
        let mut report = Report::default();

        for (status, age) in [
            (RequestStatus::Accepted, self.resend_accepted_after),
            (RequestStatus::Inviting, self.lease),
            (RequestStatus::Queued, LOST_QUEUED),
        ] {
            let query = RequestQuery {
                status: Some(status),
                updated_before: Some(now - age),
                ..Default::default()
            };
            for row in self.requests.store.query(&query, self.batch).await? {
                let id = row.value.id;
                match self
                    .requests
                    .enqueue(row, Actor::Reconcile, HistoryAction::Resent)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(request_id = %id, from = %status, "reconcile: enqueued again");
                        report.enqueued += 1;
                    }
                    Err(e) => {
                        tracing::warn!(request_id = %id, error = %e, "reconcile: could not enqueue");
                        report.failed += 1;
                    }
                }
            }
        }

        let overdue = RequestQuery {
            status: Some(RequestStatus::PendingApproval),
            decide_by_before: Some(now),
            ..Default::default()
        };
        for row in self.requests.store.query(&overdue, self.batch).await? {
            match self.requests.expire(row).await {
                Ok(true) => report.expired += 1,
                Ok(false) => {}
                Err(_) => report.failed += 1,
            }
        }

        if self.requests.notifies() {
            let pending = RequestQuery {
                status: Some(RequestStatus::PendingApproval),
                updated_before: Some(now - NOTIFY_RETRY_AFTER),
                ..Default::default()
            };
            let rows = self.requests.store.query(&pending, self.batch).await?;
            for row in rows
                .into_iter()
                .filter(|row| row.value.notified_at.is_none())
            {
                match self.requests.notify_pending(row).await {
                    Ok(()) => report.notified += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, "reconcile: approval notification failed again");
                        report.failed += 1;
                    }
                }
            }
        }
        if let Some(outbox) = &self.requests.outbox {
            let owing = RequestQuery {
                // The change that made it owed sent it at once (retrying briefly); one
                // owed for the stale age (2 minutes by default) was not sent.
                mail_owed_before: Some(now - self.resend_accepted_after),
                ..Default::default()
            };
            for row in self.requests.store.query(&owing, self.batch).await? {
                let id = row.value.id;
                match outbox.deliver(row, None).await {
                    Ok(_) => report.mailed += 1,
                    Err(e) => {
                        tracing::warn!(request_id = %id, error = %e, "reconcile: mail still not sent");
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}
