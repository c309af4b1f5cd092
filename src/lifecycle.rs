//! `Lifecycle`'s daily pass: access that ends, and personal data kept no longer than needed.
//!
//! 1. **Renewal notices**: an `Invited` request whose renewal window is open
//!    (`RenewalOpensAt`, policy `renewBeforeDays` before `AccessEndsAt`) and whose notice
//!    was not handled gets it ([`RenewalNotices`]); `RenewalNoticeAt` and the history entry
//!    are written with one ETag-guarded replace. A crash between the mail and the write
//!    sends the notice once more on the next pass (at most one duplicate); a second pass
//!    after the write sends nothing.
//! 2. **End of access**: an `Invited` request past `AccessEndsAt` is removed from its access
//!    option's groups (`DELETE /groups/{id}/members/{userId}/$ref`; "not a member" is
//!    success), then marked `Expired`, both recorded in its history by one ETag-guarded
//!    replace. A crash between the removals and the write repeats the removals on the next
//!    pass, which Graph answers 404 (success): each guest ends removed, once marked. Groups
//!    that a newer `Invited` request of the same address (a renewal) grants are kept; while
//!    the newer request is on its way to the worker (`Accepted`, `Queued`, `Inviting`) the
//!    older one waits for the next pass, so a removal never undoes a renewal's group add.
//!    Graph 429/5xx (after the client's short inline waits) stop the removals of this pass
//!    (the next pass resumes them); a refusal (403: a missing permission) is recorded on
//!    the row (`removal_failed`) and tried again on the next pass.
//! 3. **Retention**: finished requests (`Denied`, `Failed`, `Expired`) not changed for
//!    `SIGNUP_RETENTION_DAYS` are deleted with their history (it is in the row) and their
//!    address's claim when it still points at them; dead letters received before the same
//!    cut-off are deleted. Deletes are ETag-guarded (a row changed since it was read is left
//!    for the next pass) and grouped in transactions of at most 100 per partition. Nothing
//!    live is ever read for deletion: the queries name finished statuses only. The log line
//!    says how many, never whose.
//!
//! The guest user itself is not deleted (that needs `User.ReadWrite.All`); docs/DEPLOY.md
//! says how an organisation can add it with an access review.

use std::{collections::HashSet, sync::Arc};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::{
    clock::Clock,
    domain::{Actor, GroupId, HistoryAction, RequestId, RequestStatus, SignupRequest},
    graph::{FailureKind, GraphError},
    mail::MailError,
    outbox::Outbox,
    policy::Policy,
    storage::{
        Deleted, EntityRef, Housekeeping, RequestQuery, RequestStore, StoreError, Versioned,
        housekeeping::request_ref,
    },
    worker::Mode,
};

/// How long finished requests are kept unless `SIGNUP_RETENTION_DAYS` says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;

/// Rows retention reads for deletion per finished status per pass (the timer's).
pub const RETENTION_BATCH: usize = 50_000;

/// Statuses retention deletes: nothing will change such a request again. Unverified
/// requests (`PendingVerification`) are deleted too once older than the cut-off and than
/// [`LONGEST_VERIFICATION`], so a link that still works is never cut.
pub const FINISHED: [RequestStatus; 3] = [
    RequestStatus::Denied,
    RequestStatus::Failed,
    RequestStatus::Expired,
];

/// The longest a verification link can work (`SIGNUP_VERIFY_HOURS` at most 168).
pub const LONGEST_VERIFICATION: time::Duration = time::Duration::hours(168);

/// What became of a renewal notice that was owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    Sent,
    /// Nothing was sent, for the reason given (no mail configured); recorded, not retried.
    NotSent(String),
}

/// A notice that could not be sent now; the next pass tries again.
#[derive(Debug, thiserror::Error)]
#[error("renewal notice not sent: {0}")]
pub struct NoticeError(pub String);

/// The renewal notice to the guest: "your access ends on …; sign up again to keep it".
#[async_trait]
pub trait RenewalNotices: Send + Sync {
    async fn send(
        &self,
        request: &SignupRequest,
        ends_at: OffsetDateTime,
    ) -> Result<NoticeOutcome, NoticeError>;
}

/// No mail is configured: every notice is recorded in the request's history as not sent,
/// so administrators see that guests were not told.
pub struct NoMail;

#[async_trait]
impl RenewalNotices for NoMail {
    async fn send(
        &self,
        _: &SignupRequest,
        _: OffsetDateTime,
    ) -> Result<NoticeOutcome, NoticeError> {
        Ok(NoticeOutcome::NotSent(
            "no mail is configured: the guest was not told that access ends".into(),
        ))
    }
}

/// Renewal notices by mail ([`Outbox::send_renewal`]: the partner's language, the
/// organisation, the sign-up page, the footer every partner mail carries).
pub struct MailedNotices {
    pub outbox: Arc<Outbox>,
}

#[async_trait]
impl RenewalNotices for MailedNotices {
    async fn send(
        &self,
        request: &SignupRequest,
        ends_at: OffsetDateTime,
    ) -> Result<NoticeOutcome, NoticeError> {
        match self.outbox.send_renewal(request, ends_at).await {
            Ok(()) => Ok(NoticeOutcome::Sent),
            Err(MailError::Refused(why)) => Ok(NoticeOutcome::NotSent(format!(
                "the mail service refused the notice: {why}"
            ))),
            Err(MailError::Transient(why)) => Err(NoticeError(why)),
        }
    }
}

pub struct Lifecycle {
    pub policy: Arc<Policy>,
    pub store: Arc<dyn RequestStore>,
    pub housekeeping: Arc<dyn Housekeeping>,
    /// Graph (live) or nothing (dry run), as the worker.
    pub mode: Mode,
    pub notices: Arc<dyn RenewalNotices>,
    pub clock: Clock,
    /// `SIGNUP_RETENTION_DAYS`.
    pub retention: Duration,
    /// Requests handled per step (notices, ends) per pass; the next pass takes the rest.
    pub batch: usize,
    /// Rows read for deletion per finished status per pass.
    pub retention_batch: usize,
}

/// What one pass did, for the log: counts only.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub notices: usize,
    pub expired: usize,
    /// Group removals Graph confirmed (or answered "not a member").
    pub removals: usize,
    /// Ends left for the next pass: a renewal on its way to the worker.
    pub postponed: usize,
    pub deleted_requests: usize,
    pub deleted_claims: usize,
    pub deleted_dead_letters: usize,
    /// Deletes left for the next pass (changed since read).
    pub skipped: usize,
    /// Requests that could not be handled this time (Graph, mail or storage faults).
    pub failed: usize,
}

/// Why a removal stopped.
enum Stop {
    /// Graph refused: recorded on the row.
    Refused(String),
    /// Graph throttled or failed: the pass stops removing.
    Transient(GraphError),
    /// Storage failed: the pass fails (the next firing resumes).
    Storage(StoreError),
}

impl Lifecycle {
    pub async fn run(&self) -> Result<Report, StoreError> {
        let mut report = Report::default();
        self.send_notices(&mut report).await?;
        self.end_access(&mut report).await?;
        self.apply_retention(&mut report).await?;
        Ok(report)
    }

    async fn send_notices(&self, report: &mut Report) -> Result<(), StoreError> {
        let now = self.clock.now();
        let query = RequestQuery {
            status: Some(RequestStatus::Invited),
            renewal_opens_before: Some(now),
            ..Default::default()
        };
        for row in self.store.query(&query, usize::MAX).await? {
            if report.notices + report.failed >= self.batch {
                break;
            }
            let Some(ends) = row.value.access_ends_at else {
                continue;
            };
            // Handled already, or ended already (the end is what matters then).
            if row.value.renewal_notice_at.is_some() || ends <= now {
                continue;
            }
            let (action, reason) = match self.notices.send(&row.value, ends).await {
                Ok(NoticeOutcome::Sent) => (HistoryAction::RenewalNoticeSent, None),
                Ok(NoticeOutcome::NotSent(why)) => (HistoryAction::RenewalNoticeNotSent, Some(why)),
                Err(e) => {
                    tracing::warn!(request_id = %row.value.id, error = %e, "lifecycle: renewal notice failed");
                    report.failed += 1;
                    continue;
                }
            };
            let Versioned {
                value: mut request,
                etag,
            } = row;
            request.renewal_notice_at = Some(now);
            request.transition(RequestStatus::Invited, Actor::System, action, reason, now);
            match self.store.replace(&request, &etag).await {
                Ok(_) => {
                    tracing::info!(request_id = %request.id, domain = %request.email.domain(), %action, "lifecycle: renewal notice handled");
                    report.notices += 1;
                }
                Err(StoreError::Conflict) => {} // changed meanwhile: the next pass looks again
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn end_access(&self, report: &mut Report) -> Result<(), StoreError> {
        let now = self.clock.now();
        let query = RequestQuery {
            status: Some(RequestStatus::Invited),
            access_ends_before: Some(now),
            ..Default::default()
        };
        for row in self.store.query(&query, self.batch).await? {
            let id = row.value.id;
            match self.end_one(row, report).await {
                Ok(()) => {}
                Err(Stop::Refused(code)) => {
                    tracing::warn!(request_id = %id, code, "lifecycle: Graph refused a removal");
                    report.failed += 1;
                }
                Err(Stop::Transient(e)) => {
                    tracing::warn!(request_id = %id, error = %e, "lifecycle: Graph unavailable; removals resume next pass");
                    report.failed += 1;
                    break;
                }
                Err(Stop::Storage(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// Removes one request's guest from its groups and marks it `Expired`.
    async fn end_one(
        &self,
        row: Versioned<SignupRequest>,
        report: &mut Report,
    ) -> Result<(), Stop> {
        let now = self.clock.now();
        let storage = Stop::Storage;
        let groups: Vec<GroupId> = self
            .policy
            .access_option(&row.value.access)
            .map(|option| option.groups.clone())
            .unwrap_or_default();
        let kept = match self.newer_grant(&row.value).await.map_err(storage)? {
            Newer::OnItsWay => {
                report.postponed += 1;
                return Ok(());
            }
            Newer::Grants(id, groups) => Some((id, groups)),
            Newer::Nothing => None,
        };
        let keep: &[GroupId] = kept.as_ref().map_or(&[], |(_, groups)| groups.as_slice());
        let remove: Vec<&GroupId> = groups.iter().filter(|g| !keep.contains(g)).collect();
        let list = |groups: &[&GroupId]| {
            groups
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };

        let mut reason = match (&self.mode, &row.value.invited_user_id) {
            (Mode::Live(directory), Some(user)) if !row.value.dry_run => {
                for group in &remove {
                    match directory.remove_member(group, user).await {
                        Ok(()) => report.removals += 1,
                        Err(e) if e.kind() == FailureKind::Refused => {
                            let code = e.code().unwrap_or("no code").to_owned();
                            self.record_refusal(row, group, &code).await;
                            return Err(Stop::Refused(code));
                        }
                        Err(e) => return Err(Stop::Transient(e)),
                    }
                }
                format!("removed from groups {}", list(&remove))
            }
            // A dry run, or a row of one (no guest was invited).
            _ => format!(
                "dry run: nothing sent to Graph; would remove from groups {}",
                list(&remove)
            ),
        };
        if let Some((id, groups)) = &kept {
            if !groups.is_empty() {
                let kept: Vec<&GroupId> = groups.iter().collect();
                reason.push_str(&format!(
                    "; kept {} for the newer request {id}",
                    list(&kept)
                ));
            }
        }
        if self.policy.access_option(&row.value.access).is_none() {
            reason = format!(
                "access option {} is no longer in the policy: no group known to remove",
                row.value.access
            );
        }
        let Versioned {
            value: mut request,
            etag,
        } = row;
        request.transition(
            RequestStatus::Invited,
            Actor::System,
            HistoryAction::RemovedFromGroups,
            Some(reason),
            now,
        );
        let ended = "access ended (accessDays)".to_owned();
        request.transition(
            RequestStatus::Expired,
            Actor::System,
            HistoryAction::AccessExpired,
            Some(ended.clone()),
            now,
        );
        request.reason = Some(ended);
        match self.store.replace(&request, &etag).await {
            Ok(_) => {
                tracing::info!(request_id = %request.id, domain = %request.email.domain(), groups = remove.len(), "lifecycle: access ended");
                report.expired += 1;
                Ok(())
            }
            // Changed meanwhile: the next pass repeats the removals (harmless) and the mark.
            Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(storage(e)),
        }
    }

    /// Records Graph's refusal on the row (once per code: a refusal repeated every day
    /// adds no entry). A lost race records nothing; the next pass tries again.
    async fn record_refusal(&self, row: Versioned<SignupRequest>, group: &GroupId, code: &str) {
        let reason =
            format!("removing from group {group}: Graph refused ({code}); tried again next pass");
        let last = row.value.history.entries().last();
        if last.is_some_and(|e| {
            e.action == HistoryAction::RemovalFailed && e.reason.as_deref() == Some(reason.as_str())
        }) {
            return;
        }
        let Versioned {
            value: mut request,
            etag,
        } = row;
        request.reason = Some(reason.clone());
        request.transition(
            RequestStatus::Invited,
            Actor::System,
            HistoryAction::RemovalFailed,
            Some(reason),
            self.clock.now(),
        );
        if let Err(e) = self.store.replace(&request, &etag).await {
            tracing::warn!(request_id = %request.id, error = %e, "lifecycle: refusal not recorded");
        }
    }

    /// What a newer request of the same address (its claim) means for this one's groups.
    async fn newer_grant(&self, request: &SignupRequest) -> Result<Newer, StoreError> {
        let Some(claim) = self.store.claim_of(&request.email).await? else {
            return Ok(Newer::Nothing);
        };
        if claim.value.request_id == request.id {
            return Ok(Newer::Nothing);
        }
        let Some(newer) = self
            .store
            .get(request.email.domain(), &claim.value.request_id)
            .await?
        else {
            return Ok(Newer::Nothing);
        };
        Ok(match newer.value.status {
            RequestStatus::Accepted | RequestStatus::Queued | RequestStatus::Inviting => {
                Newer::OnItsWay
            }
            RequestStatus::Invited => Newer::Grants(
                newer.value.id,
                self.policy
                    .access_option(&newer.value.access)
                    .map(|option| option.groups.clone())
                    .unwrap_or_default(),
            ),
            _ => Newer::Nothing,
        })
    }

    async fn apply_retention(&self, report: &mut Report) -> Result<(), StoreError> {
        let cutoff = self.clock.now() - self.retention;
        let mut doomed: Vec<Versioned<SignupRequest>> = Vec::new();
        for status in FINISHED {
            let query = RequestQuery {
                status: Some(status),
                updated_before: Some(cutoff),
                ..Default::default()
            };
            doomed.extend(self.store.query(&query, self.retention_batch).await?);
        }
        let unverified = RequestQuery {
            status: Some(RequestStatus::PendingVerification),
            updated_before: Some(cutoff.min(self.clock.now() - LONGEST_VERIFICATION)),
            ..Default::default()
        };
        doomed.extend(self.store.query(&unverified, self.retention_batch).await?);
        if !doomed.is_empty() {
            let rows: Vec<EntityRef> = doomed
                .iter()
                .map(|row| request_ref(row.value.email.domain(), &row.value.id, &row.etag))
                .collect();
            let gone = self.housekeeping.delete_requests(&rows).await?;
            report.deleted_requests += gone.deleted.len();
            report.skipped += gone.skipped;
            // The claims of the rows deleted (not of a row left because it changed: a
            // retried request is live again and keeps its claim). A finished request's
            // claim is no younger than the request, so claims made before the cut-off hold
            // every one that can point at a deleted row; each is deleted only if it still
            // points there (its ETag).
            let gone: HashSet<(String, String)> = gone
                .deleted
                .into_iter()
                .map(|e| (e.partition, e.row_key))
                .collect();
            let claims: Vec<EntityRef> = self
                .housekeeping
                .claims_before(cutoff, usize::MAX)
                .await?
                .into_iter()
                .filter(|c| gone.contains(&(c.entity.partition.clone(), c.request_id.to_string())))
                .map(|c| c.entity)
                .collect();
            let Deleted { deleted, skipped } = self.housekeeping.delete_requests(&claims).await?;
            report.deleted_claims += deleted.len();
            report.skipped += skipped;
        }
        let letters = self
            .housekeeping
            .dead_letters(Some(cutoff), self.retention_batch)
            .await?;
        let refs: Vec<EntityRef> = letters.into_iter().map(|l| l.entity).collect();
        let Deleted { deleted, skipped } = self.housekeeping.delete_dead_letters(&refs).await?;
        report.deleted_dead_letters += deleted.len();
        report.skipped += skipped;
        if report.deleted_requests + report.deleted_dead_letters + report.skipped > 0 {
            tracing::info!(
                requests = report.deleted_requests,
                claims = report.deleted_claims,
                dead_letters = report.deleted_dead_letters,
                left_for_next_pass = report.skipped,
                retention_days = self.retention.whole_days(),
                "lifecycle: retention deleted finished requests"
            );
        }
        Ok(())
    }
}

enum Newer {
    /// No newer request, or one that grants nothing now.
    Nothing,
    /// A newer request on its way to the worker: wait.
    OnItsWay,
    /// A newer `Invited` request and the groups it grants.
    Grants(RequestId, Vec<GroupId>),
}
