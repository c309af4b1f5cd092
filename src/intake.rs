//! Where a sign-up goes: policy, the one-request-per-address claim, the row, the queue.
//!
//! A new sign-up is two storage round trips, in an order that is safe to crash and to repeat:
//! 1. one entity-group transaction in the domain's partition of `SignupRequests` writes the
//!    row, as `Accepted` (or `PendingApproval`), and the address claim (inserted, or an
//!    ETag-guarded replacement of a finished request's claim) together or not at all, so two
//!    concurrent sign-ups for one address start one request and a claim always has its row;
//! 2. for `Accepted`, the queue message `{"v":1,"requestId","domain"}` is sent; the row
//!    stays `Accepted` ("stored, its message sent once, no worker has taken it yet") until
//!    a worker moves it on with an ETag-guarded update. Recovery (a repeat sign-up, the
//!    `Reconcile` timer) sends an old `Accepted` row again and marks it `Queued`, so it
//!    sends one extra message at most before the 30-minute "lost `Queued`" rule.
//!
//! What a crash (or a storage fault) at each point leads to; no 202 is ever answered
//! without a stored row:
//! - before or during step 1: nothing is stored (the transaction is atomic); the caller
//!   gets no 202 and a new sign-up starts afresh;
//! - after step 1 commits, before step 2 is done: an `Accepted` row without a message, and
//!   no 202 (the caller sees an error or a dropped connection). When only the
//!   transaction's answer was lost and the SDK retried it, the retry conflicts with what
//!   the first try wrote: this call then reads the claim, finds the request it tried to
//!   create and sends the message itself. Otherwise a repeat sign-up resends the row once
//!   it is older than [`RESEND_ON_REPEAT_AFTER`] (30 s), and `Reconcile` once it is older
//!   than [`crate::reconcile::Reconciler::resend_accepted_after`] (the worker's lease,
//!   [`crate::worker::DEFAULT_LEASE`], 2 minutes; the timer runs every 5), both marking
//!   it `Queued`;
//! - a queue put whose answer was lost may be retried by the SDK: two messages, harmless;
//! - after step 2, before the answer: the row is `Accepted` with its message; the worker
//!   takes it; a repeat sign-up answers with its id;
//! - a `PendingApproval` row sends nothing; its approval notification (and the partner's
//!   "waiting for approval" mail) is spawned after the write and retried by `Reconcile`;
//! - a `PendingVerification` row (policy `verifyEmail`, [`crate::verify`]) sends nothing
//!   either: the row holds the link's digest and owes its mail, which is spawned after the
//!   write; `Reconcile` mails a new link when that fails.
//!
//! A message that is sent twice (recovery racing a slow worker) is harmless: the worker is
//! driven by the row and every step is ETag-guarded. Captcha, rate limits and the honeypot
//! run before intake, at the HTTP edge ([`crate::functions::signup_http`]).

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::{
    domain::{
        AccessKey, Actor, DisplayName, EmailAddress, FreeText, History, HistoryAction, Lang,
        MailKind, RequestId, RequestStatus, SignupRequest,
    },
    graph::{GuestState, Invitation},
    policy::{Action, Policy, Refusal},
    requests::Requests,
    storage::{AddressClaim, ETag, InviteMessage, StoreError, Versioned},
    verify,
    worker::Directory,
};

/// When the address signs up again, an `Accepted` row at least this old has probably lost
/// its message (a crash or storage fault between the write and the send; a worker normally
/// takes a row within seconds): the repeat sends it again. Shorter than Reconcile's
/// [`crate::reconcile::Reconciler::resend_accepted_after`]: a partner asking again is a
/// sign that nothing happened.
pub const RESEND_ON_REPEAT_AFTER: Duration = Duration::seconds(30);
/// A guest who has not redeemed gets Microsoft's invitation again at most this often,
/// however often the address signs up.
pub const INVITATION_RESEND_EVERY: Duration = Duration::hours(24);
/// How long a repeat sign-up of an invited guest waits for Graph (reading
/// `externalUserState`, then `POST /invitations`) before answering without a resend.
pub const INVITATION_RESEND_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
/// Claim races lost in a row before answering "busy".
const MAX_CLAIM_ATTEMPTS: usize = 4;

/// A sign-up whose fields are valid; the policy has not looked at it yet.
#[derive(Debug, Clone)]
pub struct Submission {
    pub email: EmailAddress,
    pub display_name: DisplayName,
    /// The access option asked for; `None` means the rule's default.
    pub access: Option<AccessKey>,
    pub company: Option<FreeText>,
    pub justification: Option<FreeText>,
    /// The terms version the partner accepted, when the policy has terms.
    pub terms_version: Option<String>,
    /// The page's language (its `lang` field): the mails and links follow it.
    pub language: Lang,
}

/// What the caller is told (`202 {requestId, status}`; docs/ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub request_id: RequestId,
    pub status: ReceiptStatus,
    /// Whether this answers a repeat sign-up with an earlier request.
    pub repeat: bool,
    /// For a repeat sign-up answered with an `Invited` request only: whether Microsoft's
    /// invitation was sent again just now (a guest who had not redeemed; at most once a
    /// day). `None` for every other answer.
    pub resent: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Waiting for the partner to open the mailed link ([`crate::verify`]).
    PendingVerification,
    Queued,
    PendingApproval,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingVerification => "pending_verification",
            Self::Queued => "queued",
            Self::PendingApproval => "pending_approval",
        }
    }

    pub fn of(status: RequestStatus) -> Self {
        match status {
            RequestStatus::PendingVerification => Self::PendingVerification,
            RequestStatus::PendingApproval => Self::PendingApproval,
            _ => Self::Queued,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Another sign-up for the same address is being stored right now.
    #[error("another sign-up for this address is in progress")]
    Busy,
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The operating system gave no randomness for a verification token.
    #[error("no randomness for a verification token: {0}")]
    Random(String),
}

/// Everything intake needs; shared by all HTTP requests.
pub struct Intake {
    pub policy: Arc<Policy>,
    pub requests: Arc<Requests>,
    /// Recorded on each row so administrators see which requests were never really sent.
    pub dry_run: bool,
    /// How long a verification link works (`SIGNUP_VERIFY_HOURS`), when the policy asks
    /// for proof of address.
    pub verify_for: Duration,
    /// Graph, to send an unredeemed guest's invitation again on a repeat sign-up; `None`
    /// in a dry run (which records what it would have done).
    pub directory: Option<Arc<dyn Directory>>,
    /// How long that may make the partner wait ([`INVITATION_RESEND_BUDGET`]).
    pub resend_budget: std::time::Duration,
}

impl Intake {
    /// The time by intake's clock (the rows' clock): the edge counts rate limits by it, so
    /// a test's manual clock moves both together.
    pub fn now(&self) -> OffsetDateTime {
        self.requests.clock.now()
    }

    pub async fn submit(&self, submission: Submission) -> Result<Receipt, IntakeError> {
        let decision = self.policy.decide(submission.email.domain());
        let option = decision.access(submission.access.as_ref())?;
        let approval_timeout = decision.approval_timeout();
        let initial = match decision.action() {
            Action::Deny => return Err(Refusal::DomainNotAllowed.into()),
            _ if self.policy.verify_email() => RequestStatus::PendingVerification,
            Action::Invite => RequestStatus::Accepted,
            Action::Approve => RequestStatus::PendingApproval,
        };

        // Most sign-ups are for a new address: write the claim and the row straight away
        // (the transaction fails with a conflict when a claim exists) instead of reading
        // first. A conflict costs one extra round trip and continues with the
        // read-then-write loop below, which does not count it as an attempt.
        let mut tried = None;
        for attempt in 0..=MAX_CLAIM_ATTEMPTS {
            let expected = match attempt {
                0 => None,
                _ => match self.requests.store.claim_of(&submission.email).await? {
                    None => None,
                    Some(claim) => match self.existing(&submission, claim).await? {
                        // Our own earlier attempt committed although it reported a failure.
                        Existing::Live(request) if Some(request.value.id) == tried => {
                            // The token of that attempt is lost with it: the mail goes
                            // with a new one (Outbox::deliver issues it).
                            return self.created(*request, None).await;
                        }
                        Existing::Live(request) => return self.repeat(*request).await,
                        Existing::Replaceable(etag) => Some(etag),
                    },
                },
            };
            let now = self.now();
            let mut request = SignupRequest {
                id: RequestId::new(),
                email: submission.email.clone(),
                display_name: submission.display_name.clone(),
                access: option.key.clone(),
                company: submission.company.clone(),
                justification: submission.justification.clone(),
                status: initial,
                reason: None,
                attempts: 0,
                invited_user_id: None,
                invitation_attempted_at: None,
                graph_request_id: None,
                created_at: now,
                updated_at: now,
                decided_by: None,
                decided_at: None,
                decide_by: (initial == RequestStatus::PendingApproval)
                    .then(|| now + approval_timeout),
                notified_at: None,
                retried_by: None,
                retried_at: None,
                terms_version: submission.terms_version.clone(),
                access_ends_at: None,
                renewal_opens_at: None,
                renewal_notice_at: None,
                invitation_resent_at: None,
                dry_run: self.dry_run,
                decision_reason: None,
                // Written in the row itself, by the transaction below: no extra round trip.
                history: History::of_new(initial, Actor::Partner, now),
                language: submission.language,
                verification: None,
                mail_owed: None,
                share_reason: false,
            };
            let token = match initial {
                RequestStatus::PendingVerification => Some(
                    verify::issue(&mut request, now, self.verify_for)
                        .map_err(|e| IntakeError::Random(e.to_string()))?,
                ),
                RequestStatus::PendingApproval => {
                    self.requests.owe(&mut request, MailKind::Pending, now);
                    None
                }
                _ => None,
            };
            let claim = AddressClaim {
                request_id: request.id,
                claimed_at: now,
            };
            tried = Some(request.id);
            match self
                .requests
                .store
                .create(&request, &claim, expected.as_ref())
                .await
            {
                Ok(etag) => {
                    tracing::info!(
                        request_id = %request.id,
                        domain = %request.email.domain(),
                        status = %request.status,
                        access = %request.access,
                        "sign-up stored"
                    );
                    return self
                        .created(
                            Versioned {
                                value: request,
                                etag,
                            },
                            token,
                        )
                        .await;
                }
                Err(StoreError::Conflict) => continue, // another sign-up won; look again
                Err(e) => return Err(e.into()),
            }
        }
        Err(IntakeError::Busy)
    }

    /// What the address's current claim points at.
    async fn existing(
        &self,
        submission: &Submission,
        claim: Versioned<AddressClaim>,
    ) -> Result<Existing, IntakeError> {
        let domain = submission.email.domain();
        match self
            .requests
            .store
            .get(domain, &claim.value.request_id)
            .await?
        {
            Some(request) if request.value.blocks_new_request(self.now()) => {
                Ok(Existing::Live(Box::new(request)))
            }
            Some(_) => Ok(Existing::Replaceable(claim.etag)),
            // Claim and row are written together, so a claim without its row is a leftover
            // (a row deleted by hand, or a claim from before they were written together).
            None => Ok(Existing::Replaceable(claim.etag)),
        }
    }

    /// After the row and claim are stored: send the message, or notify administrators, or
    /// mail the verification link.
    async fn created(
        &self,
        row: Versioned<SignupRequest>,
        token: Option<verify::Token>,
    ) -> Result<Receipt, IntakeError> {
        let request = row.value.clone();
        match request.status {
            RequestStatus::PendingVerification => {
                if let Some(outbox) = &self.requests.outbox {
                    outbox.spawn_deliver(row, token);
                }
            }
            // The row stays `Accepted`: marking it `Queued` would be a third round trip, and
            // recovery does not need it (see the module comment).
            RequestStatus::Accepted => {
                self.requests
                    .queue
                    .send(&InviteMessage::new(&request))
                    .await?
            }
            // The partner's answer does not wait for the webhook or the mail; Reconcile
            // retries them.
            RequestStatus::PendingApproval => self.requests.after_pending(row),
            _ => {}
        }
        Ok(Receipt {
            request_id: request.id,
            status: ReceiptStatus::of(request.status),
            repeat: false,
            resent: None,
        })
    }

    async fn repeat(&self, existing: Versioned<SignupRequest>) -> Result<Receipt, IntakeError> {
        let request = &existing.value;
        tracing::info!(
            request_id = %request.id,
            domain = %request.email.domain(),
            status = %request.status,
            "repeat sign-up answered with the existing request"
        );
        let stuck = request.status == RequestStatus::Accepted
            && self.now() - request.updated_at >= RESEND_ON_REPEAT_AFTER;
        let mut receipt = Receipt {
            request_id: request.id,
            status: ReceiptStatus::of(request.status),
            repeat: true,
            resent: None,
        };
        if stuck {
            self.requests
                .enqueue(existing, Actor::Partner, HistoryAction::Resent)
                .await?;
        } else if request.status == RequestStatus::PendingVerification {
            self.mail_again(existing).await?;
        } else if request.status == RequestStatus::Invited {
            receipt.resent = Some(self.invite_again(existing).await);
        }
        Ok(receipt)
    }

    /// A repeat sign-up of an `Invited` guest: when the guest has not redeemed
    /// (`externalUserState` is `PendingAcceptance`) and nothing was resent for the request in
    /// the last [`INVITATION_RESEND_EVERY`], Microsoft's invitation is sent again
    /// (`POST /invitations` for the same address, which re-sends to the existing guest), then
    /// recorded on the row (`InvitationResentAt` and an `invitation_resent` history entry, one
    /// ETag-guarded write). Inline, within [`Intake::resend_budget`], so the answer can say
    /// truthfully whether it was sent (docs/ARCHITECTURE.md, "Repeat sign-ups of invited
    /// guests"). Never fails the sign-up: a Graph fault, a timeout or a lost write race
    /// answers `false` and records nothing, so the next repeat tries again. A dry run
    /// records what would have been done and calls nothing.
    async fn invite_again(&self, existing: Versioned<SignupRequest>) -> bool {
        let now = self.now();
        let request = &existing.value;
        if request
            .invitation_resent_at
            .is_some_and(|at| now - at < INVITATION_RESEND_EVERY)
        {
            return false;
        }
        let settings = self.policy.decide(request.email.domain()).invitation();
        let (resent, reason) = match &self.directory {
            None => (
                false,
                "dry run: a guest who had not redeemed would have been sent Microsoft's invitation again; nothing was called".to_owned(),
            ),
            Some(directory) => {
                // A guest invited without Microsoft's mail (policy `sendInvitationMessage:
                // false`), or a dry-run row without a guest, has nothing to resend.
                let Some(user_id) = request.invited_user_id.as_ref() else {
                    return false;
                };
                if !settings.send_invitation_message {
                    return false;
                }
                let invitation = Invitation::new(
                    request.email.clone(),
                    request.display_name.clone(),
                    settings,
                );
                let call = async {
                    match directory.guest_state(user_id).await? {
                        GuestState::PendingAcceptance => {
                            directory.invite(&invitation).await.map(Some)
                        }
                        GuestState::Accepted | GuestState::Other => Ok(None),
                    }
                };
                match tokio::time::timeout(self.resend_budget, call).await {
                    Ok(Ok(Some(_))) => (
                        true,
                        "the guest had not redeemed: Microsoft's invitation was sent again"
                            .to_owned(),
                    ),
                    Ok(Ok(None)) => {
                        tracing::info!(request_id = %request.id, domain = %request.email.domain(), "repeat sign-up of a guest who has redeemed: nothing sent");
                        return false;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(request_id = %request.id, domain = %request.email.domain(), error = %error, "invitation not sent again: Graph failed");
                        return false;
                    }
                    Err(_) => {
                        tracing::warn!(request_id = %request.id, domain = %request.email.domain(), budget_ms = self.resend_budget.as_millis(), "invitation not sent again: Graph took too long");
                        return false;
                    }
                }
            }
        };
        let Versioned {
            value: mut request,
            etag,
        } = existing;
        request.invitation_resent_at = Some(now);
        request.transition(
            RequestStatus::Invited,
            Actor::Partner,
            HistoryAction::InvitationResent,
            Some(reason),
            now,
        );
        match self.requests.store.replace(&request, &etag).await {
            Ok(_) => {
                tracing::info!(request_id = %request.id, domain = %request.email.domain(), resent, "repeat sign-up of a guest who had not redeemed recorded");
            }
            // Sent, but another change won the row: the next repeat may send once more.
            Err(e) => {
                tracing::warn!(request_id = %request.id, error = %e, resent, "invitation resend not recorded");
            }
        }
        resent
    }

    /// A repeat sign-up while the address is unproven: a new link, at most once per
    /// [`verify::RESEND_AFTER`] (or at once when the last one expired). The sign-up itself
    /// counted against the rate limits at the edge, so the mails do too.
    async fn mail_again(&self, existing: Versioned<SignupRequest>) -> Result<(), IntakeError> {
        let Some(outbox) = &self.requests.outbox else {
            return Ok(());
        };
        let now = self.now();
        let due = existing.value.verification.as_ref().is_none_or(|v| {
            now >= v.expires_at
                || v.mailed_at
                    .is_none_or(|at| now - at >= verify::RESEND_AFTER)
        });
        if !due {
            return Ok(());
        }
        let mut request = existing.value;
        let token = verify::issue(&mut request, now, self.verify_for)
            .map_err(|e| IntakeError::Random(e.to_string()))?;
        match self.requests.store.replace(&request, &existing.etag).await {
            Ok(etag) => {
                tracing::info!(request_id = %request.id, domain = %request.email.domain(), "verification link mailed again");
                outbox.spawn_deliver(
                    Versioned {
                        value: request,
                        etag,
                    },
                    Some(token),
                );
                Ok(())
            }
            // Another sign-up or the partner's click got there first: nothing to add.
            Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

enum Existing {
    Live(Box<Versioned<SignupRequest>>),
    Replaceable(ETag),
}
