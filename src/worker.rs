//! The invitation worker behind `InviteQueue` and `InvitePoison`: a row-driven, idempotent
//! state machine, `Accepted | Queued → Inviting → Invited | Failed`.
//!
//! Delivery is at least once, so the row, not the message, is the truth:
//! - a finished row (`Invited`, `Failed`, `Denied`) is left alone and nothing is called;
//! - `Inviting` is a lease: the delivery whose ETag-guarded update moved the row there owns
//!   it while `UpdatedAt` is recent ([`Worker::lease`]); another delivery meanwhile asks the
//!   host to retry later; once the lease is stale a delivery takes it over and resumes;
//! - progress is kept: a failed group add hands the row back with the guest's object id,
//!   so the retry adds the groups without inviting again; "already a member" counts as
//!   success;
//! - a transient failure (Graph 5xx, 429 with a long `Retry-After`, timeouts) hands the row
//!   back as `Queued` and fails the invocation so the host retries; a permanent one (Graph
//!   4xx) ends the row as `Failed` with Graph's code and `request-id`, and succeeds;
//! - a row that does not parse ([`StoreError::Corrupt`]: edited by hand, or written by a
//!   newer version) is a permanent fault: the message is kept in `SignupDeadLetters` with
//!   the reason, the row is left untouched for an administrator, and the invocation
//!   succeeds, so nothing is retried or poisoned.
//!
//! One invitation e-mail per request, even when an answer is lost. Graph's
//! `POST /invitations` has no idempotency key, and inviting an existing guest again sends
//! the e-mail again. So the lease write also records `InvitationAttemptedAt` while no guest
//! id is known: a later delivery that finds it set cannot tell "the call never reached
//! Graph" (a timeout, a 5xx, a handler killed before sending) from "Graph invited and the
//! answer was lost" (a dropped connection, a handler killed before saving the guest id). It
//! first looks the address up (`GET /users`, as Microsoft documents for "was this user
//! already invited", [`Directory::find_guest`]): a guest found is that earlier invitation
//! (the id is recorded, nothing is sent); none found means nothing went out, and the
//! invitation is sent. The lookup happens at least [`Worker::settle`] after the earlier
//! attempt (waiting in the invocation if need be), so directory replication has caught
//! up. Without `User.Read.All` the lookup is refused; the worker then invites again and
//! says so in the log (a lost answer may then mean a second e-mail). A 429 and a missing
//! token are known not to have reached Graph, so they do not leave the mark.
//!
//! See docs/ARCHITECTURE.md, "Microsoft Graph".

use std::sync::Arc;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};
use tracing::Instrument;

use crate::{
    clock::Clock,
    domain::{
        Actor, EmailAddress, EmailDomain, GroupId, HistoryAction, RequestId, RequestStatus,
        SignupRequest, UserId,
    },
    graph::{FailureKind, GraphClient, GraphError, GuestState, Invitation, Invited},
    policy::Policy,
    storage::{
        DeadLetter, DeadLetters, INVITE_POISON_QUEUE, INVITE_QUEUE, InviteMessage, RequestStore,
        StoreError, Versioned,
    },
};

/// What the worker needs from Microsoft Graph; [`GraphClient`] in production, a scripted
/// fake in tests. Failures are Graph's own [`GraphError`]: `graph/` owns their
/// classification ([`GraphError::kind`]) and the worker only maps it onto its outcomes.
#[async_trait]
pub trait Directory: Send + Sync {
    /// `POST /invitations`.
    async fn invite(&self, invitation: &Invitation) -> Result<Invited, GraphError>;
    /// `POST /groups/{id}/members/$ref`; an existing membership is `Ok`.
    async fn add_member(&self, group_id: &GroupId, user_id: &UserId) -> Result<(), GraphError>;
    /// The object id of an existing user with this address (`GET /users?$filter=…`), to
    /// tell whether an earlier, unanswered invitation went through.
    async fn find_guest(&self, email: &EmailAddress) -> Result<Option<UserId>, GraphError>;
    /// `DELETE /groups/{id}/members/{userId}/$ref`, when access ends
    /// ([`crate::lifecycle`]); a user who is not a member (404) is `Ok`.
    async fn remove_member(&self, group_id: &GroupId, user_id: &UserId) -> Result<(), GraphError>;
    /// The guest's `externalUserState` (`GET /users/{id}?$select=externalUserState`), for a
    /// repeat sign-up of a guest who has not redeemed ([`crate::intake`]).
    async fn guest_state(&self, user_id: &UserId) -> Result<GuestState, GraphError>;
}

#[async_trait]
impl Directory for GraphClient {
    async fn invite(&self, invitation: &Invitation) -> Result<Invited, GraphError> {
        GraphClient::invite(self, invitation).await
    }

    async fn add_member(&self, group_id: &GroupId, user_id: &UserId) -> Result<(), GraphError> {
        GraphClient::add_member(self, group_id, user_id)
            .await
            .map(drop)
    }

    async fn find_guest(&self, email: &EmailAddress) -> Result<Option<UserId>, GraphError> {
        GraphClient::find_user(self, email).await
    }

    async fn remove_member(&self, group_id: &GroupId, user_id: &UserId) -> Result<(), GraphError> {
        GraphClient::remove_member(self, group_id, user_id)
            .await
            .map(drop)
    }

    async fn guest_state(&self, user_id: &UserId) -> Result<GuestState, GraphError> {
        GraphClient::guest_state(self, user_id).await
    }
}

/// How invitations are sent.
#[derive(Clone)]
pub enum Mode {
    /// `SIGNUP_DRY_RUN=true`: nothing is sent; the row records what would have been.
    DryRun,
    Live(Arc<dyn Directory>),
}

/// What to tell the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Done with this message (including "nothing to do"); `String` says why, for logs.
    Done(String),
    /// Fail the invocation so the host delivers the message again later.
    Retry(String),
}

pub struct Worker {
    pub policy: Arc<Policy>,
    pub store: Arc<dyn RequestStore>,
    pub dead_letters: Arc<dyn DeadLetters>,
    pub mode: Mode,
    pub clock: Clock,
    /// How long an `Inviting` row belongs to the delivery that set it.
    pub lease: Duration,
    /// Mail to partners (`SIGNUP_MAIL_ENDPOINT`): an `Invited` request owes the
    /// "approved" mail, sent after the write ([`crate::outbox`]).
    pub outbox: Option<Arc<crate::outbox::Outbox>>,
}

/// Lease length: longer than one invitation plus a few group adds with their timeouts and
/// short throttling waits. The one default of `SIGNUP_STALE_AFTER_SECONDS`
/// ([`crate::settings::Settings::stale_after`]), which is also the age at which Reconcile
/// re-sends an `Accepted` row or a stale lease.
pub const DEFAULT_LEASE: Duration = Duration::minutes(2);

/// How many lost ETag races to tolerate in one delivery before asking for a retry.
const MAX_RACES: usize = 3;

/// Deliveries that may take a request's lease before a poison message fails it (as many as
/// host.json's default `maxDequeueCount`).
const MAX_LEASED_ATTEMPTS: u32 = 5;

/// A queue message as the functions receive it (already decoded from the host payload).
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub text: &'a str,
    pub dequeue_count: u32,
    pub message_id: Option<&'a str>,
}

impl Worker {
    /// `InviteQueue`: one delivery of a `signup-requests` message.
    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Step {
        let (domain, id) = match self.row_key(delivery, INVITE_QUEUE).await {
            Ok(key) => key,
            Err(step) => return step,
        };
        // The span goes with the future (`instrument`), entered only while it runs: a guard
        // from `span.enter()` held across an await stays entered on the thread while other
        // invocations run there, and their lines land under this request.
        let span = tracing::info_span!("invite", request_id = %id, domain = %domain, delivery = delivery.dequeue_count);
        async {
            match self.try_deliver(&domain, &id, delivery).await {
                Ok(step) => step,
                Err(e) => self.storage_failed(delivery, INVITE_QUEUE, e).await,
            }
        }
        .instrument(span)
        .await
    }

    /// `InvitePoison`: the host gave up on a message after `maxDequeueCount` deliveries.
    /// An unfinished row becomes `Failed` (poisoned) with the last known reason.
    pub async fn poisoned(&self, delivery: &Delivery<'_>) -> Step {
        let (domain, id) = match self.row_key(delivery, INVITE_POISON_QUEUE).await {
            Ok(key) => key,
            Err(step) => return step,
        };
        for _ in 0..MAX_RACES {
            let row = match self.store.get(&domain, &id).await {
                Ok(Some(row)) => row,
                Ok(None) => {
                    return self
                        .dead_letter(delivery, INVITE_POISON_QUEUE, "no such request")
                        .await;
                }
                Err(e) => return self.storage_failed(delivery, INVITE_POISON_QUEUE, e).await,
            };
            if !matches!(
                row.value.status,
                RequestStatus::Accepted | RequestStatus::Queued | RequestStatus::Inviting
            ) {
                return Step::Done(format!(
                    "poison message for a {} request: nothing to do",
                    row.value.status
                ));
            }
            // Deliveries that failed because another one held the lease (or because the
            // handler was down) poison a message whose request is being worked on. The
            // holder finishes it; if the holder died (the lease goes stale), Reconcile
            // re-sends the request, until deliveries have taken the lease
            // MAX_LEASED_ATTEMPTS times (a handler that keeps dying on this request).
            if row.value.status == RequestStatus::Inviting {
                if self.clock.now() - row.value.updated_at < self.lease {
                    return Step::Done(
                        "poison message for a request whose lease is held: its delivery finishes it"
                            .into(),
                    );
                }
                if row.value.attempts < MAX_LEASED_ATTEMPTS {
                    return Step::Done(
                        "poison message for a stale lease: Reconcile sends the request again"
                            .into(),
                    );
                }
            }
            let last = row
                .value
                .reason
                .clone()
                .unwrap_or_else(|| "no reason recorded".into());
            let reason = format!(
                "poisoned after {} attempts; last: {last}",
                row.value.attempts
            );
            match self
                .finish(
                    row,
                    RequestStatus::Failed,
                    HistoryAction::Poisoned,
                    Some(reason),
                )
                .await
            {
                Ok(()) => {
                    tracing::error!(request_id = %id, domain = %domain, "request failed: message poisoned");
                    return Step::Done("marked Failed (poisoned)".into());
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return self.storage_failed(delivery, INVITE_POISON_QUEUE, e).await,
            }
        }
        Step::Retry("the row kept changing".into())
    }

    /// A storage fault while handling a message. Unavailable storage is worth a retry; a
    /// row that does not parse stays unreadable however often the message comes back, so
    /// the message is kept as a dead letter with the reason and the invocation succeeds
    /// (retrying would only poison it, and `InvitePoison` cannot read the row either).
    /// The row is left as it is: what it holds is not known, so nothing overwrites it.
    async fn storage_failed(
        &self,
        delivery: &Delivery<'_>,
        queue: &'static str,
        error: StoreError,
    ) -> Step {
        match error {
            StoreError::Corrupt(reason) => {
                let error = format!("the request's row cannot be read: {reason}");
                self.dead_letter(delivery, queue, &error).await
            }
            StoreError::Conflict | StoreError::Unavailable(_) => {
                Step::Retry(format!("storage: {error}"))
            }
        }
    }

    /// The row a message points at; a message that points nowhere is kept as a dead letter.
    async fn row_key(
        &self,
        delivery: &Delivery<'_>,
        queue: &'static str,
    ) -> Result<(EmailDomain, RequestId), Step> {
        match InviteMessage::parse(delivery.text) {
            Ok(key) => Ok(key),
            Err(e) => Err(self.dead_letter(delivery, queue, &e.to_string()).await),
        }
    }

    /// Keeps a message that cannot be handled, so nothing is lost silently. If even that
    /// fails, the host retries (and eventually keeps it in the poison queue).
    async fn dead_letter(&self, delivery: &Delivery<'_>, queue: &'static str, error: &str) -> Step {
        let letter = DeadLetter {
            queue,
            message_id: delivery.message_id.map(str::to_owned),
            dequeue_count: delivery.dequeue_count,
            error: error.to_owned(),
            text: delivery.text.to_owned(),
            received_at: self.clock.now(),
        };
        match self.dead_letters.record(&letter).await {
            Ok(()) => {
                tracing::error!(queue, message_id = ?delivery.message_id, error, "message kept in SignupDeadLetters");
                Step::Done(format!("dead letter: {error}"))
            }
            Err(e) => Step::Retry(format!("could not keep a dead letter: {e}")),
        }
    }

    async fn try_deliver(
        &self,
        domain: &EmailDomain,
        id: &RequestId,
        delivery: &Delivery<'_>,
    ) -> Result<Step, StoreError> {
        let mut settled = false;
        for _ in 0..MAX_RACES {
            let Some(row) = self.store.get(domain, id).await? else {
                return Ok(self
                    .dead_letter(delivery, INVITE_QUEUE, "no such request")
                    .await);
            };
            let status = row.value.status;
            let lease_fresh = self.clock.now() - row.value.updated_at < self.lease;
            match status {
                RequestStatus::Invited
                | RequestStatus::Failed
                | RequestStatus::Denied
                | RequestStatus::Expired => {
                    return Ok(Step::Done(format!("already {status}: nothing to do")));
                }
                RequestStatus::PendingApproval => {
                    return Ok(Step::Done("waiting for approval: nothing to do".into()));
                }
                RequestStatus::PendingVerification => {
                    return Ok(Step::Done("address not verified: nothing to do".into()));
                }
                RequestStatus::Inviting if lease_fresh => {
                    return Ok(Step::Retry("another delivery holds the lease".into()));
                }
                RequestStatus::Accepted | RequestStatus::Queued | RequestStatus::Inviting => {
                    let live = matches!(self.mode, Mode::Live(_));
                    let earlier = row
                        .value
                        .invitation_attempted_at
                        .filter(|_| live && row.value.invited_user_id.is_none());
                    if let Some(at) = earlier
                        && !settled
                    {
                        // Waiting here (at most `settle`, usually nothing: the host's retry
                        // comes after its visibility timeout) spends no delivery.
                        settled = true;
                        let wait = self.settle() - (self.clock.now() - at);
                        if let Ok(wait) = std::time::Duration::try_from(wait) {
                            tracing::info!(
                                wait_ms = wait.as_millis(),
                                "waiting for the directory before looking for the guest"
                            );
                            tokio::time::sleep(wait).await;
                            continue; // the row may have moved on meanwhile
                        }
                    }
                    let mut leased = row.value.clone();
                    leased.attempts += 1;
                    let takeover = if status == RequestStatus::Inviting {
                        "; stale lease taken over"
                    } else {
                        ""
                    };
                    leased.transition(
                        RequestStatus::Inviting,
                        Actor::Worker,
                        HistoryAction::Started,
                        Some(format!("attempt {}{takeover}", leased.attempts)),
                        self.clock.now(),
                    );
                    if live && leased.invited_user_id.is_none() {
                        leased.invitation_attempted_at = Some(leased.updated_at);
                    }
                    match self.store.replace(&leased, &row.etag).await {
                        Ok(etag) => {
                            if status == RequestStatus::Inviting {
                                tracing::warn!("stale lease taken over");
                            }
                            return self
                                .invite(
                                    Versioned {
                                        value: leased,
                                        etag,
                                    },
                                    earlier,
                                )
                                .await;
                        }
                        Err(StoreError::Conflict) => continue, // someone else moved it; look again
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(Step::Retry("the row kept changing".into()))
    }

    /// How long after an invitation attempt its guest can be looked up reliably (directory
    /// replication): a quarter of the lease, 30 s by default.
    pub fn settle(&self) -> Duration {
        self.lease / 4
    }

    /// Holds the lease: invites (unless an earlier attempt did), adds group memberships,
    /// records the end. `earlier`: when an earlier delivery called `POST /invitations` and
    /// no guest id was recorded.
    async fn invite(
        &self,
        mut row: Versioned<SignupRequest>,
        earlier: Option<OffsetDateTime>,
    ) -> Result<Step, StoreError> {
        let decision = self.policy.decide(row.value.email.domain());
        let option = match decision.access(Some(&row.value.access)) {
            Ok(option) => option.clone(),
            Err(refusal) => {
                let reason = format!("the policy no longer allows this request: {refusal}");
                return self
                    .end(
                        row,
                        RequestStatus::Failed,
                        HistoryAction::Failed,
                        Some(reason),
                    )
                    .await;
            }
        };
        let settings = decision.invitation();
        // Written with `Invited` (by `end` below, or lost with it): the access the
        // invitation grants ends this long after it, renewed or not (`crate::lifecycle`).
        if let Some(expiry) = decision.expiry(&option) {
            let (ends, opens) = expiry.schedule(self.clock.now());
            row.value.access_ends_at = Some(ends);
            row.value.renewal_opens_at = Some(opens);
            row.value.renewal_notice_at = None;
        }
        let directory = match &self.mode {
            Mode::Live(directory) => directory.clone(),
            Mode::DryRun => {
                let reason = format!(
                    "dry run: nothing sent to Graph; would invite with redirect {} (invitation e-mail: {}{}) and add to groups {}",
                    settings.redirect_url,
                    if settings.send_invitation_message {
                        "yes"
                    } else {
                        "no"
                    },
                    settings
                        .message_language
                        .as_deref()
                        .map(|l| format!(", language {l}"))
                        .unwrap_or_default(),
                    option.group_list()
                );
                row.value.dry_run = true;
                return self
                    .end(
                        row,
                        RequestStatus::Invited,
                        HistoryAction::Invited,
                        Some(reason),
                    )
                    .await;
            }
        };

        let mut note = None;
        if row.value.invited_user_id.is_none() && earlier.is_some() {
            match directory.find_guest(&row.value.email).await {
                Ok(Some(user_id)) => {
                    tracing::warn!(
                        "guest found after an unanswered invitation: not inviting again"
                    );
                    row.value.invited_user_id = Some(user_id);
                    note = Some(
                        "an earlier attempt's answer was lost; the guest was found in the directory and not invited again"
                            .to_owned(),
                    );
                }
                Ok(None) => {
                    tracing::info!("no guest after an earlier attempt: it did not go through");
                }
                Err(error) if error.kind() == FailureKind::Refused => {
                    tracing::warn!(code = ?error.code(), "cannot look for the guest (grant User.Read.All): inviting again, which may send a second e-mail");
                }
                Err(error) => return self.graph_failed(row, "looking for the guest", error).await,
            }
        }

        if row.value.invited_user_id.is_none() {
            let invitation = Invitation::new(
                row.value.email.clone(),
                row.value.display_name.clone(),
                settings,
            );
            match directory.invite(&invitation).await {
                Ok(invited) => {
                    row.value.invited_user_id = Some(invited.user_id);
                    row.value.graph_request_id = invited.request_id;
                    // Stored with the guest's id: by the end state, or by the hand-back.
                    row.value.transition(
                        RequestStatus::Inviting,
                        Actor::Worker,
                        HistoryAction::InvitationSent,
                        None,
                        self.clock.now(),
                    );
                    tracing::info!("invitation sent");
                }
                Err(error) => {
                    if error.kind() == FailureKind::NotApplied {
                        // Graph did not act on it: no more doubt than before this attempt.
                        row.value.invitation_attempted_at = earlier;
                    }
                    return self.graph_failed(row, "invitation", error).await;
                }
            }
        }
        row.value.invitation_attempted_at = None;

        let Some(user_id) = row.value.invited_user_id.clone() else {
            return Ok(Step::Retry("no guest id after the invitation".into()));
        };
        // The guest id is written with the end state, or with the hand-back if a group add
        // fails; a handler that dies in between leaves `InvitationAttemptedAt`, and the next
        // delivery finds the guest by lookup instead of inviting again.
        for group in &option.groups {
            if let Err(error) = directory.add_member(group, &user_id).await {
                return self
                    .graph_failed(row, &format!("adding to group {group}"), error)
                    .await;
            }
        }
        if !option.groups.is_empty() {
            row.value.transition(
                RequestStatus::Inviting,
                Actor::Worker,
                HistoryAction::AddedToGroups,
                Some(option.group_list()),
                self.clock.now(),
            );
        }
        tracing::info!(groups = option.groups.len(), "request invited");
        self.end(row, RequestStatus::Invited, HistoryAction::Invited, note)
            .await
    }

    async fn graph_failed(
        &self,
        mut row: Versioned<SignupRequest>,
        what: &str,
        error: GraphError,
    ) -> Result<Step, StoreError> {
        match error.kind() {
            FailureKind::Refused => {
                if let Some(request_id) = error.request_id() {
                    row.value.graph_request_id = Some(request_id.to_owned());
                }
                let code = error.code().unwrap_or("no code");
                tracing::warn!(code = %code, "Graph refused the {what}");
                let reason = format!("{what}: Graph refused ({code})");
                self.end(
                    row,
                    RequestStatus::Failed,
                    HistoryAction::Failed,
                    Some(reason),
                )
                .await
            }
            FailureKind::Uncertain | FailureKind::NotApplied => {
                // Hand the row back so the next delivery need not wait for the lease.
                let reason = format!("{what}: {error}; will retry");
                tracing::warn!(reason = %reason, "transient Graph failure");
                row.value.reason = Some(reason.clone());
                row.value.transition(
                    RequestStatus::Queued,
                    Actor::Worker,
                    HistoryAction::HandedBack,
                    Some(reason.clone()),
                    self.clock.now(),
                );
                match self.store.replace(&row.value, &row.etag).await {
                    Ok(_) | Err(StoreError::Conflict) => Ok(Step::Retry(reason)),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Records the end of a request; a lost race means another delivery owns it now.
    async fn end(
        &self,
        row: Versioned<SignupRequest>,
        status: RequestStatus,
        action: HistoryAction,
        reason: Option<String>,
    ) -> Result<Step, StoreError> {
        match self.finish(row, status, action, reason).await {
            Ok(()) => Ok(Step::Done(format!("request {status}"))),
            Err(StoreError::Conflict) => Ok(lease_lost()),
            Err(e) => Err(e),
        }
    }

    /// Writes the end state (`Invited`, `Failed`): `Reason` and the history entry say why.
    async fn finish(
        &self,
        row: Versioned<SignupRequest>,
        status: RequestStatus,
        action: HistoryAction,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        let Versioned {
            value: mut request,
            etag,
        } = row;
        let now = self.clock.now();
        request.transition(status, Actor::Worker, action, reason.clone(), now);
        request.reason = reason;
        let owes = status == RequestStatus::Invited && self.outbox.is_some();
        if owes {
            request.mail_owed = Some(crate::domain::OwedMail {
                kind: crate::domain::MailKind::Approved,
                since: now,
            });
        }
        let etag = self.store.replace(&request, &etag).await?;
        if let (Some(outbox), true) = (&self.outbox, owes) {
            outbox.spawn_deliver(
                Versioned {
                    value: request,
                    etag,
                },
                None,
            );
        }
        Ok(())
    }
}

/// Another delivery took the row over (our lease was judged stale): let the host retry;
/// the retry will find the row's newer state.
fn lease_lost() -> Step {
    Step::Retry("the lease was taken over by another delivery".into())
}
