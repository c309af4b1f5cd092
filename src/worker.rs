//! The invitation worker behind `InviteQueue` and `InvitePoison`: a row-driven, idempotent
//! state machine, `Queued → Inviting → Invited | Failed`.
//!
//! Delivery is at least once, so the row, not the message, is the truth:
//! - a finished row (`Invited`, `Failed`, `Denied`) is left alone and nothing is called;
//! - `Inviting` is a lease: the delivery whose ETag-guarded update moved the row there owns
//!   it while `UpdatedAt` is recent ([`Worker::lease`]); another delivery meanwhile asks the
//!   host to retry later; once the lease is stale a delivery takes it over and resumes;
//! - progress is saved as it is made (the guest's object id after the invitation), so a
//!   resumed request does not invite twice; "already a member" counts as success;
//! - a transient failure (Graph 5xx, 429 with a long `Retry-After`, timeouts) hands the row
//!   back as `Queued` and fails the invocation so the host retries; a permanent one (Graph
//!   4xx) ends the row as `Failed` with Graph's code and `request-id`, and succeeds.
//!
//! See DESIGN.md, "Microsoft Graph".

use std::sync::Arc;

use async_trait::async_trait;
use time::Duration;

use crate::{
    clock::Clock,
    domain::{EmailDomain, RequestId, RequestStatus, SignupRequest},
    graph::{GraphClient, GraphError, Invitation, Invited},
    policy::Policy,
    storage::{
        DeadLetter, DeadLetters, INVITE_POISON_QUEUE, INVITE_QUEUE, InviteMessage, RequestStore,
        StoreError, Versioned,
    },
};

/// What the worker needs from Microsoft Graph; [`GraphClient`] in production, a scripted
/// fake in tests.
#[async_trait]
pub trait Directory: Send + Sync {
    /// `POST /invitations`.
    async fn invite(&self, invitation: &Invitation) -> Result<Invited, DirectoryError>;
    /// `POST /groups/{id}/members/$ref`; an existing membership is `Ok`.
    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), DirectoryError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Worth retrying later (5xx, throttling, timeouts, token trouble).
    #[error("{reason}")]
    Transient { reason: String },
    /// Graph refused for good (4xx other than 429).
    #[error("Graph refused: {code}")]
    Permanent {
        code: String,
        request_id: Option<String>,
    },
}

impl From<GraphError> for DirectoryError {
    fn from(error: GraphError) -> Self {
        match error {
            GraphError::Permanent {
                code, request_id, ..
            } => Self::Permanent { code, request_id },
            other => Self::Transient {
                reason: other.to_string(),
            },
        }
    }
}

#[async_trait]
impl Directory for GraphClient {
    async fn invite(&self, invitation: &Invitation) -> Result<Invited, DirectoryError> {
        Ok(GraphClient::invite(self, invitation).await?)
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), DirectoryError> {
        GraphClient::add_member(self, group_id, user_id).await?;
        Ok(())
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
}

/// Lease length: longer than one invitation plus a few group adds with their timeouts and
/// short throttling waits.
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
        let span = tracing::info_span!("invite", request_id = %id, domain = %domain, delivery = delivery.dequeue_count);
        let _enter = span.enter();
        match self.try_deliver(&domain, &id, delivery).await {
            Ok(step) => step,
            Err(e) => Step::Retry(format!("storage: {e}")),
        }
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
                Err(e) => return Step::Retry(format!("storage: {e}")),
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
            match self.finish(row, RequestStatus::Failed, Some(reason)).await {
                Ok(()) => {
                    tracing::error!(request_id = %id, domain = %domain, "request failed: message poisoned");
                    return Step::Done("marked Failed (poisoned)".into());
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Step::Retry(format!("storage: {e}")),
            }
        }
        Step::Retry("the row kept changing".into())
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
        for _ in 0..MAX_RACES {
            let Some(row) = self.store.get(domain, id).await? else {
                return Ok(self
                    .dead_letter(delivery, INVITE_QUEUE, "no such request")
                    .await);
            };
            let status = row.value.status;
            let lease_fresh = self.clock.now() - row.value.updated_at < self.lease;
            match status {
                RequestStatus::Invited | RequestStatus::Failed | RequestStatus::Denied => {
                    return Ok(Step::Done(format!("already {status}: nothing to do")));
                }
                RequestStatus::PendingApproval => {
                    return Ok(Step::Done("waiting for approval: nothing to do".into()));
                }
                RequestStatus::Inviting if lease_fresh => {
                    return Ok(Step::Retry("another delivery holds the lease".into()));
                }
                RequestStatus::Accepted | RequestStatus::Queued | RequestStatus::Inviting => {
                    let mut leased = row.value.clone();
                    leased.status = RequestStatus::Inviting;
                    leased.attempts += 1;
                    leased.updated_at = self.clock.now();
                    match self.store.replace(&leased, &row.etag).await {
                        Ok(etag) => {
                            if status == RequestStatus::Inviting {
                                tracing::warn!("stale lease taken over");
                            }
                            return self
                                .invite(Versioned {
                                    value: leased,
                                    etag,
                                })
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

    /// Holds the lease: invites (unless an earlier attempt did), adds group memberships,
    /// records the end.
    async fn invite(&self, mut row: Versioned<SignupRequest>) -> Result<Step, StoreError> {
        let decision = self.policy.decide(row.value.email.domain());
        let option = match decision.access(Some(row.value.access.as_str())) {
            Ok(option) => option.clone(),
            Err(refusal) => {
                let reason = format!("the policy no longer allows this request: {refusal}");
                return self.end(row, RequestStatus::Failed, Some(reason)).await;
            }
        };
        let settings = decision.invitation();
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
                    option.groups.join(", ")
                );
                row.value.dry_run = true;
                return self.end(row, RequestStatus::Invited, Some(reason)).await;
            }
        };

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
                    row.value.updated_at = self.clock.now();
                    row.etag = match self.store.replace(&row.value, &row.etag).await {
                        Ok(etag) => etag,
                        Err(StoreError::Conflict) => return Ok(lease_lost()),
                        Err(e) => return Err(e),
                    };
                    tracing::info!("invitation sent");
                }
                Err(error) => return self.graph_failed(row, "invitation", error).await,
            }
        }

        let Some(user_id) = row.value.invited_user_id.clone() else {
            return Ok(Step::Retry("no guest id after the invitation".into()));
        };
        for group in &option.groups {
            if let Err(error) = directory.add_member(group, &user_id).await {
                return self
                    .graph_failed(row, &format!("adding to group {group}"), error)
                    .await;
            }
        }
        tracing::info!(groups = option.groups.len(), "request invited");
        self.end(row, RequestStatus::Invited, None).await
    }

    async fn graph_failed(
        &self,
        mut row: Versioned<SignupRequest>,
        what: &str,
        error: DirectoryError,
    ) -> Result<Step, StoreError> {
        match error {
            DirectoryError::Permanent { code, request_id } => {
                if request_id.is_some() {
                    row.value.graph_request_id = request_id;
                }
                tracing::warn!(code = %code, "Graph refused the {what}");
                self.end(
                    row,
                    RequestStatus::Failed,
                    Some(format!("{what}: Graph refused ({code})")),
                )
                .await
            }
            DirectoryError::Transient { reason } => {
                // Hand the row back so the next delivery need not wait for the lease.
                let reason = format!("{what}: {reason}; will retry");
                tracing::warn!(reason = %reason, "transient Graph failure");
                row.value.status = RequestStatus::Queued;
                row.value.reason = Some(reason.clone());
                row.value.updated_at = self.clock.now();
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
        reason: Option<String>,
    ) -> Result<Step, StoreError> {
        match self.finish(row, status, reason).await {
            Ok(()) => Ok(Step::Done(format!("request {status}"))),
            Err(StoreError::Conflict) => Ok(lease_lost()),
            Err(e) => Err(e),
        }
    }

    async fn finish(
        &self,
        row: Versioned<SignupRequest>,
        status: RequestStatus,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        let Versioned {
            value: mut request,
            etag,
        } = row;
        request.status = status;
        request.reason = reason;
        request.updated_at = self.clock.now();
        self.store.replace(&request, &etag).await.map(drop)
    }
}

/// Another delivery took the row over (our lease was judged stale): let the host retry;
/// the retry will find the row's newer state.
fn lease_lost() -> Step {
    Step::Retry("the lease was taken over by another delivery".into())
}
