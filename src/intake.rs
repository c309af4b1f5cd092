//! Where a sign-up goes: policy, the one-request-per-address claim, the row, the queue.
//!
//! The order of writes is what makes intake safe to crash and to repeat:
//! 1. the address claim (`SignupAddresses`, ETag-guarded) decides which request an address
//!    has, so two concurrent sign-ups for one address start one request;
//! 2. the row is written as `Accepted` (or `PendingApproval`) before anything is sent;
//! 3. the queue message `{"v":1,"requestId","domain"}` is sent;
//! 4. the row becomes `Queued`, guarded by the ETag from step 2 so a worker that already
//!    moved it on is never overwritten.
//!
//! A crash between 2 and 3 leaves an `Accepted` row: a repeat sign-up resumes it, and so does
//! the `Reconcile` timer ([`crate::reconcile`]). No 202 is ever answered without a stored row.
//! Captcha, rate limits and the honeypot run before intake, at the HTTP edge
//! ([`crate::functions::signup_http`]).

use std::sync::Arc;

use time::Duration;

use crate::{
    domain::{DisplayName, EmailAddress, FreeText, RequestId, RequestStatus, SignupRequest},
    policy::{Action, Policy, Refusal},
    requests::Requests,
    storage::{AddressClaim, ETag, StoreError, Versioned},
};

/// A claim whose request row does not exist yet is another sign-up in flight for this
/// long; after that it is a leftover of a failed write and may be taken over.
const CLAIM_IN_FLIGHT: Duration = Duration::seconds(30);
/// An `Accepted` row older than this was never enqueued (crash or storage fault).
const STUCK_ACCEPTED: Duration = Duration::seconds(30);
/// Claim races lost in a row before answering "busy".
const MAX_CLAIM_ATTEMPTS: usize = 4;

/// A sign-up whose fields are valid; the policy has not looked at it yet.
#[derive(Debug, Clone)]
pub struct Submission {
    pub email: EmailAddress,
    pub display_name: DisplayName,
    /// The access option asked for; `None` means the rule's default.
    pub access: Option<String>,
    pub company: Option<FreeText>,
    pub justification: Option<FreeText>,
    /// The terms version the partner accepted, when the policy has terms.
    pub terms_version: Option<String>,
}

/// What the caller is told (DESIGN: `202 {requestId, status}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub request_id: RequestId,
    pub status: ReceiptStatus,
    /// Whether this answers a repeat sign-up with an earlier request.
    pub repeat: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Queued,
    PendingApproval,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::PendingApproval => "pending_approval",
        }
    }

    fn of(status: RequestStatus) -> Self {
        match status {
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
}

/// Everything intake needs; shared by all HTTP requests.
pub struct Intake {
    pub policy: Arc<Policy>,
    pub requests: Arc<Requests>,
    /// Recorded on each row so administrators see which requests were never really sent.
    pub dry_run: bool,
}

impl Intake {
    pub async fn submit(&self, submission: Submission) -> Result<Receipt, IntakeError> {
        let decision = self.policy.decide(submission.email.domain());
        let option = decision.access(submission.access.as_deref())?;
        let approval_timeout = decision.approval_timeout();
        let initial = match decision.action() {
            Action::Invite => RequestStatus::Accepted,
            Action::Approve => RequestStatus::PendingApproval,
            Action::Deny => return Err(Refusal::DomainNotAllowed.into()),
        };

        // Most sign-ups are for a new address: claim it straight away (the insert fails with
        // a conflict when a claim exists) instead of reading first, which saves a storage
        // round trip per new address. A conflict costs one extra round trip and continues
        // with the read-then-write loop below, which does not count it as an attempt.
        for attempt in 0..=MAX_CLAIM_ATTEMPTS {
            let expected = match attempt {
                0 => None,
                _ => match self.requests.store.claim_of(&submission.email).await? {
                    None => None,
                    Some(claim) => match self.existing(&submission, claim).await? {
                        Existing::Live(request) => return self.repeat(*request).await,
                        Existing::Replaceable(etag) => Some(etag),
                    },
                },
            };
            let now = self.requests.clock.now();
            let request = SignupRequest {
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
                terms_version: submission.terms_version.clone(),
                dry_run: self.dry_run,
            };
            let claim = AddressClaim {
                request_id: request.id,
                claimed_at: now,
            };
            match self
                .requests
                .store
                .put_claim(&request.email, &claim, expected.as_ref())
                .await
            {
                Ok(_) => return self.create(request).await,
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
            Some(request) if request.value.status.blocks_new_request() => {
                Ok(Existing::Live(Box::new(request)))
            }
            Some(_) => Ok(Existing::Replaceable(claim.etag)),
            None if self.requests.clock.now() - claim.value.claimed_at < CLAIM_IN_FLIGHT => {
                Err(IntakeError::Busy)
            }
            None => Ok(Existing::Replaceable(claim.etag)),
        }
    }

    async fn create(&self, request: SignupRequest) -> Result<Receipt, IntakeError> {
        let etag = self.requests.store.insert(&request).await?;
        tracing::info!(
            request_id = %request.id,
            domain = %request.email.domain(),
            status = %request.status,
            access = %request.access,
            "sign-up stored"
        );
        let row = Versioned {
            value: request.clone(),
            etag,
        };
        match request.status {
            RequestStatus::Accepted => self.requests.enqueue(row).await?,
            RequestStatus::PendingApproval => {
                // The partner's answer does not wait for the webhook; Reconcile retries it.
                let requests = self.requests.clone();
                tokio::spawn(async move {
                    if let Err(e) = requests.notify_pending(row).await {
                        tracing::warn!(error = %e, "approval notification not sent; Reconcile will retry");
                    }
                });
            }
            _ => {}
        }
        Ok(Receipt {
            request_id: request.id,
            status: ReceiptStatus::of(request.status),
            repeat: false,
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
            && self.requests.clock.now() - request.updated_at >= STUCK_ACCEPTED;
        let receipt = Receipt {
            request_id: request.id,
            status: ReceiptStatus::of(request.status),
            repeat: true,
        };
        if stuck {
            self.requests.enqueue(existing).await?;
        }
        Ok(receipt)
    }
}

enum Existing {
    Live(Box<Versioned<SignupRequest>>),
    Replaceable(ETag),
}
