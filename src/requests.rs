//! Changes to existing requests that several entry points share (intake, the `Approval`
//! function, `Reconcile`, the admin command line): sending a request to the invitation
//! queue, an administrator's decision, retrying a failed request, the decision deadline,
//! the approval notification.
//!
//! Each is an ETag-guarded compare-and-swap on the row, retried a few times when another
//! writer got there first, so concurrent callers never overwrite each other.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use time::{Duration, OffsetDateTime};

use crate::{
    clock::Clock,
    domain::{
        Actor, Decider, HistoryAction, MailKind, OwedMail, RequestId, RequestStatus, SignupRequest,
    },
    notify::ApprovalNotifier,
    outbox::Outbox,
    storage::{
        AddressClaim, InviteMessage, RequestQuery, RequestStore, SignupQueue, StoreError, Versioned,
    },
};

/// Lost ETag races tolerated before giving up (the caller may try again).
const MAX_RACES: usize = 4;

/// Most keys one page of the list reads before sorting: the table is ordered by domain,
/// then id, so newest-first across domains means listing the matching rows' keys and
/// sorting them. Past this many in one time window (narrow with a status, a domain or
/// `since`), a page holds the newest of the keys read.
pub const MAX_SCAN: usize = 10_000;

/// The list reads keys in time windows going back from the page's start, the first this
/// long and each next one reaching [`WINDOW_GROWTH`] times as far back, until a page is
/// full; past [`LAST_BOUNDED_WINDOW`] the window reaches the beginning. Ten reads at most
/// (1 s, 8 s, 64 s, … 2 years, then the rest); what a read costs is mostly the keys it
/// returns, so a burst of sign-ups in the last seconds costs no more than a quiet month.
const FIRST_WINDOW: Duration = Duration::seconds(1);
const WINDOW_GROWTH: i32 = 8;
const LAST_BOUNDED_WINDOW: Duration = Duration::days(4 * 365);

/// Rows of one page read at once (point reads, each a round trip).
const PAGE_READS_AT_ONCE: usize = 16;

/// One page of requests, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub requests: Vec<SignupRequest>,
    /// Where the next page starts (its requests are older than this one), when there is one.
    pub next: Option<RequestId>,
}

/// An administrator's decision on a pending request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

/// The request after a decision.
#[derive(Debug, Clone)]
pub struct Decided {
    pub request: SignupRequest,
    /// `false` when the same decision had already been made (deciding twice is harmless).
    pub changed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no request has this id")]
    NotFound,
    /// The opposite decision was made first (two administrators at once, or later).
    #[error("the request was already decided: {}", .0.status)]
    AlreadyDecided(Box<SignupRequest>),
    /// The request never needed a decision (its domain's rule invites at once).
    #[error("the request is not waiting for approval: {}", .0.status)]
    NotPending(Box<SignupRequest>),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// A `Failed` request sent back to the worker.
#[derive(Debug, Clone)]
pub struct Retried {
    pub request: SignupRequest,
    /// `false` when the message could not be sent: the row is left `Accepted`, which
    /// Reconcile sends again once it is older than the worker's lease.
    pub enqueued: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The row was deleted while the retry was under way.
    #[error("no request has this id")]
    NotFound,
    /// Only a `Failed` request is retried: any other is finished (`Invited`, `Denied`),
    /// waiting for a decision, or on its way already (another administrator retried it).
    #[error("the request is not Failed: it is {}", .0.status)]
    NotFailed(Box<SignupRequest>),
    /// The partner signed up again after this request failed; the address's newer request
    /// is the one to follow (retrying this one would give the address two live requests).
    #[error("the address has a newer request, {0}")]
    Superseded(RequestId),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

pub struct Requests {
    pub store: Arc<dyn RequestStore>,
    pub queue: Arc<dyn SignupQueue>,
    pub clock: Clock,
    /// `APPROVAL_WEBHOOK_URL`, when set.
    pub notifier: Option<ApprovalNotifier>,
    /// Mail to partners and approvers (`SIGNUP_MAIL_ENDPOINT`), when set.
    pub outbox: Option<Arc<Outbox>>,
}

impl Requests {
    /// Records on `request` that the partner is owed the `kind` mail, when mail is on; the
    /// caller's write of the row stores it with the change that makes it owed.
    pub fn owe(&self, request: &mut SignupRequest, kind: MailKind, now: time::OffsetDateTime) {
        if self.outbox.is_some() {
            request.mail_owed = Some(OwedMail { kind, since: now });
        }
    }

    /// After a stored change: sends what the row owes in the background.
    pub fn mail_owed(&self, row: Versioned<SignupRequest>) {
        if let (Some(outbox), Some(_)) = (&self.outbox, row.value.mail_owed) {
            outbox.spawn_deliver(row, None);
        }
    }

    /// After a request started waiting for approval (intake, verification): the partner's
    /// mail and the administrators' notice, in the background; Reconcile retries either.
    pub fn after_pending(self: &Arc<Self>, row: Versioned<SignupRequest>) {
        let requests = self.clone();
        tokio::spawn(async move {
            let id = row.value.id;
            if let Err(e) = requests.notify_pending(row.clone()).await {
                tracing::warn!(request_id = %id, error = %e, "approval notification not sent; Reconcile will retry");
            }
            // The notice wrote `NotifiedAt`: read the row again for its ETag.
            if let (Some(outbox), Ok(Some(fresh))) = (
                &requests.outbox,
                requests.store.get(row.value.email.domain(), &id).await,
            ) && let Err(e) = outbox.deliver(fresh, None).await
            {
                tracing::warn!(request_id = %id, error = %e, "mail not sent yet; Reconcile will retry");
            }
        });
    }

    /// Up to `limit` requests matching `query`, newest first (ids are ULIDs: their order is
    /// creation order). The next page is the same query with `older_than` = [`Page::next`]:
    /// a keyset, so requests created meanwhile never shift a page.
    ///
    /// Two steps: the matching rows' keys (projected queries, no row data) in time windows
    /// going back from the page's start until there is more than a page ([`FIRST_WINDOW`]);
    /// then the page's rows, read by key. Every key newer than the last window's start has
    /// been read, so the newest `limit` of them are the page. A row that changed in between
    /// so that it no longer matches (decided, deleted) is left out; the page is then
    /// shorter, and `next` still follows the keys, so no request is skipped or shown twice.
    pub async fn page(&self, query: &RequestQuery, limit: usize) -> Result<Page, StoreError> {
        // Ids carry the system time of the instance that made them, not the app's clock.
        let start = query
            .older_than
            .map_or_else(OffsetDateTime::now_utc, |id| id.made_at());
        let mut keys = Vec::new();
        let (mut upper, mut reach) = (query.older_than, FIRST_WINDOW);
        loop {
            let lower = (reach <= LAST_BOUNDED_WINDOW)
                .then(|| RequestId::first_at(start - reach))
                .max(query.not_older_than);
            let window = RequestQuery {
                older_than: upper,
                not_older_than: lower,
                ..query.clone()
            };
            keys.extend(self.store.keys(&window, MAX_SCAN - keys.len()).await?);
            if keys.len() > limit || keys.len() >= MAX_SCAN || lower == query.not_older_than {
                break;
            }
            (upper, reach) = (lower, reach * WINDOW_GROWTH);
        }
        keys.sort_unstable_by_key(|key| std::cmp::Reverse(key.id));
        let more = keys.len() > limit;
        keys.truncate(limit);
        let next = more.then(|| keys.last().map(|key| key.id)).flatten();
        let rows: Vec<Option<Versioned<SignupRequest>>> = futures::stream::iter(keys)
            .map(|key| {
                let store = self.store.clone();
                async move { store.get(&key.domain, &key.id).await }
            })
            .buffered(PAGE_READS_AT_ONCE)
            .try_collect()
            .await?;
        let requests = rows
            .into_iter()
            .flatten()
            .map(|row| row.value)
            .filter(|request| query.matches(request))
            .collect();
        Ok(Page { requests, next })
    }

    /// Sends the invitation message, then marks the row `Queued` if nobody moved it on:
    /// the mark records that the message is known to have left, so recovery does not send
    /// it again for [`crate::reconcile::LOST_QUEUED`]. For approval and recovery; intake's
    /// first send leaves the row `Accepted` to save a round trip (see [`crate::intake`]).
    /// A row left `Accepted` (the mark failed) is harmless: the worker takes `Accepted` rows.
    /// The mark's history entry names `actor` and `action` ([`HistoryAction::Queued`] after
    /// a decision or retry, [`HistoryAction::Resent`] when recovering a lost message); it is
    /// stored with the mark, so a lost race records nothing. Returns the request as marked
    /// (what callers report), whether or not the mark was stored.
    pub async fn enqueue(
        &self,
        row: Versioned<SignupRequest>,
        actor: Actor,
        action: HistoryAction,
    ) -> Result<SignupRequest, StoreError> {
        let Versioned {
            value: mut request,
            etag,
        } = row;
        self.queue.send(&InviteMessage::new(&request)).await?;
        request.transition(RequestStatus::Queued, actor, action, None, self.clock.now());
        match self.store.replace(&request, &etag).await {
            // Conflict: the worker was faster and the row is further along; keep its state.
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => {
                tracing::warn!(request_id = %request.id, error = %e, "could not mark row Queued")
            }
        }
        Ok(request)
    }

    /// Approves or denies a pending request, recording who, when and why (`DecisionReason`,
    /// and the history entry; `Reason` is left to the outcome). Approval sends the request
    /// to the invitation queue.
    pub async fn decide(
        &self,
        id: &RequestId,
        verdict: Verdict,
        by: &Decider,
        reason: Option<String>,
    ) -> Result<Decided, DecideError> {
        self.decide_sharing(id, verdict, by, reason, false).await
    }

    /// As [`Requests::decide`]; `share_reason` says whether a denial's reason is told to
    /// the partner in the denial mail (the admin API's `shareReason`).
    pub async fn decide_sharing(
        &self,
        id: &RequestId,
        verdict: Verdict,
        by: &Decider,
        reason: Option<String>,
        share_reason: bool,
    ) -> Result<Decided, DecideError> {
        for _ in 0..MAX_RACES {
            let row = self.store.find(id).await?.ok_or(DecideError::NotFound)?;
            let status = row.value.status;
            let decided_earlier = row.value.decided_by.is_some();
            let (next, action, same) = match verdict {
                Verdict::Approve => (
                    RequestStatus::Accepted,
                    HistoryAction::Approved,
                    status != RequestStatus::Denied,
                ),
                Verdict::Deny => (
                    RequestStatus::Denied,
                    HistoryAction::Denied,
                    status == RequestStatus::Denied,
                ),
            };
            if status != RequestStatus::PendingApproval {
                return match (decided_earlier, same) {
                    (true, true) => Ok(Decided {
                        request: row.value,
                        changed: false,
                    }),
                    (true, false) => Err(DecideError::AlreadyDecided(Box::new(row.value))),
                    (false, _) => Err(DecideError::NotPending(Box::new(row.value))),
                };
            }
            let now = self.clock.now();
            let mut request = row.value.clone();
            let administrator = Actor::Administrator(by.clone());
            request.transition(next, administrator.clone(), action, reason.clone(), now);
            request.decided_by = Some(by.clone());
            request.decided_at = Some(now);
            request.decision_reason = reason.clone();
            if verdict == Verdict::Deny {
                request.share_reason = share_reason && reason.is_some();
                self.owe(&mut request, MailKind::Denied, now);
            }
            match self.store.replace(&request, &row.etag).await {
                Ok(etag) => {
                    tracing::info!(request_id = %id, domain = %request.email.domain(), verdict = ?verdict, "request decided");
                    if verdict == Verdict::Deny {
                        self.mail_owed(Versioned {
                            value: request.clone(),
                            etag: etag.clone(),
                        });
                    }
                    if verdict == Verdict::Approve {
                        let approved = Versioned {
                            value: request.clone(),
                            etag,
                        };
                        match self
                            .enqueue(approved, administrator, HistoryAction::Queued)
                            .await
                        {
                            Ok(queued) => request = queued,
                            // The decision stands; Reconcile sends rows left Accepted.
                            Err(e) => {
                                tracing::warn!(request_id = %id, error = %e, "approved, not yet enqueued")
                            }
                        }
                    }
                    return Ok(Decided {
                        request,
                        changed: true,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Sends a `Failed` request through the worker again, recording who and when
    /// (`RetriedBy`, `RetriedAt`). An ETag-guarded change `Failed → Accepted` (what intake
    /// writes before its first send: the worker takes it, and Reconcile re-sends it if the
    /// message below is lost), then the message, marking the row `Queued` as approval does.
    ///
    /// What the worker needs from the failed attempt stays: the guest's id (a group add that
    /// failed after the invitation went out is finished without a second invitation) and
    /// `InvitationAttemptedAt` (the guest is looked for before inviting again). `Attempts`
    /// starts again from 0, so the retry has the same budget of leased deliveries as a new
    /// request (see `InvitePoison` in [`crate::worker`]); the earlier count and failure stay
    /// in `Reason` until the worker records the new outcome.
    ///
    /// `row` is the request as last read; a lost race reads it again, and a row no longer
    /// `Failed` (another administrator retried it first) is refused.
    pub async fn retry(
        &self,
        row: Versioned<SignupRequest>,
        by: &Decider,
    ) -> Result<Retried, RetryError> {
        let mut row = row;
        for _ in 0..MAX_RACES {
            if row.value.status != RequestStatus::Failed {
                return Err(RetryError::NotFailed(Box::new(row.value)));
            }
            self.keep_claim(&row.value).await?;
            let now = self.clock.now();
            let mut request = row.value.clone();
            request.reason = Some(format!(
                "retried after {} attempts; failed: {}",
                request.attempts,
                request.reason.as_deref().unwrap_or("no reason recorded")
            ));
            let administrator = Actor::Administrator(by.clone());
            request.transition(
                RequestStatus::Accepted,
                administrator.clone(),
                HistoryAction::Retried,
                None,
                now,
            );
            request.attempts = 0;
            request.retried_by = Some(by.clone());
            request.retried_at = Some(now);
            match self.store.replace(&request, &row.etag).await {
                Ok(etag) => {
                    tracing::info!(request_id = %request.id, domain = %request.email.domain(), "failed request retried");
                    let accepted = Versioned {
                        value: request.clone(),
                        etag,
                    };
                    let enqueued = match self
                        .enqueue(accepted, administrator, HistoryAction::Queued)
                        .await
                    {
                        Ok(queued) => {
                            request = queued;
                            true
                        }
                        Err(e) => {
                            tracing::warn!(request_id = %request.id, error = %e, "retried, not yet enqueued");
                            false
                        }
                    };
                    return Ok(Retried { request, enqueued });
                }
                Err(StoreError::Conflict) => {
                    row = self
                        .store
                        .get(row.value.email.domain(), &row.value.id)
                        .await?
                        .ok_or(RetryError::NotFound)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Makes sure `request` is the one its address's claim names before it becomes live
    /// again, so a repeat sign-up is answered with it; refuses when a newer request holds
    /// the claim. A missing claim (rows from before claims moved into this table) is
    /// written. A sign-up that reads the `Failed` row just before the retry changes it can
    /// still start a second request: the window is one round trip, and the worker then
    /// handles two requests for one address (one extra invitation e-mail at most).
    async fn keep_claim(&self, request: &SignupRequest) -> Result<(), RetryError> {
        for _ in 0..MAX_RACES {
            match self.store.claim_of(&request.email).await? {
                Some(claim) if claim.value.request_id == request.id => return Ok(()),
                Some(claim) => return Err(RetryError::Superseded(claim.value.request_id)),
                None => {
                    let claim = AddressClaim {
                        request_id: request.id,
                        claimed_at: self.clock.now(),
                    };
                    if self.store.insert_claim(&request.email, &claim).await? {
                        return Ok(());
                    }
                    // Another writer claimed the address meanwhile: look at whose it is.
                }
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Denies a pending request whose decision deadline has passed. `false` when it is no
    /// longer pending (decided meanwhile) or another writer won.
    pub async fn expire(&self, row: Versioned<SignupRequest>) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let due = row.value.decide_by.is_some_and(|deadline| deadline <= now);
        if row.value.status != RequestStatus::PendingApproval || !due {
            return Ok(false);
        }
        let mut request = row.value;
        let reason = "expired: no decision before the deadline".to_owned();
        request.transition(
            RequestStatus::Denied,
            Actor::System,
            HistoryAction::Expired,
            Some(reason.clone()),
            now,
        );
        request.decided_by = Some(Decider::System);
        request.decided_at = Some(now);
        request.decision_reason = Some(reason);
        self.owe(&mut request, MailKind::Denied, now);
        match self.store.replace(&request, &row.etag).await {
            Ok(etag) => {
                tracing::info!(request_id = %request.id, domain = %request.email.domain(), "pending request expired");
                self.mail_owed(Versioned {
                    value: request,
                    etag,
                });
                Ok(true)
            }
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Tells administrators about a pending request, once. A failure leaves `NotifiedAt`
    /// empty so Reconcile tries again; the request itself is never affected.
    pub async fn notify_pending(&self, row: Versioned<SignupRequest>) -> Result<(), NotifyFailure> {
        if !self.notifies() {
            return Ok(());
        }
        if row.value.status != RequestStatus::PendingApproval || row.value.notified_at.is_some() {
            return Ok(());
        }
        if let Some(notifier) = &self.notifier {
            notifier
                .notify(&row.value)
                .await
                .map_err(NotifyFailure::Webhook)?;
        }
        if let Some(outbox) = &self.outbox {
            outbox.notify_approvers(&row.value).await?;
        }
        let mut row = row;
        for _ in 0..MAX_RACES {
            row.value.notified_at = Some(self.clock.now());
            match self.store.replace(&row.value, &row.etag).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => {
                    // Changed meanwhile (decided, or notified by a concurrent run): re-read.
                    match self
                        .store
                        .get(row.value.email.domain(), &row.value.id)
                        .await?
                    {
                        Some(fresh)
                            if fresh.value.status == RequestStatus::PendingApproval
                                && fresh.value.notified_at.is_none() =>
                        {
                            row = fresh
                        }
                        _ => return Ok(()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl Requests {
    /// Whether administrators are told about pending requests at all (a webhook, or
    /// approvers to mail).
    pub fn notifies(&self) -> bool {
        self.notifier.is_some()
            || self
                .outbox
                .as_ref()
                .is_some_and(|outbox| !outbox.approvers.is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyFailure {
    #[error("approval webhook failed: {0}")]
    Webhook(#[from] crate::notify::NotifyError),
    #[error("approvers' mail failed: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error(transparent)]
    Storage(#[from] StoreError),
}
