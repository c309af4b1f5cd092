//! Data-subject requests (GDPR Art. 15 and 17): everything stored about one e-mail address,
//! and its erasure. The command line (`requests export --email`, `requests erase --email`)
//! and the admin API (`POST /api/subjects/export|erase`, `Signup.Approve`) share this.
//!
//! What is about an address: its requests (rows of its domain's partition whose address
//! is the same mailbox, compared as claims compare them: the local part case-insensitively),
//! each with its history (in the row); its address claim; and dead letters whose text names
//! one of those requests or the address. Rate-limit counters are keyed by SHA-256 digests
//! and hold no address: they cannot be listed for an address, and expire with their window.
//!
//! Erasure deletes those entities, each ETag-guarded (a row changed while it is erased is
//! read again and erased, a few times). What remains is a log line without personal data
//! (the domain and the counts, and who erased): a tombstone row would need a key, and a
//! digest of the address would still be personal data. The guest user in Entra ID is not
//! touched: PRIVACY.md says how to remove it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    admin::view::View,
    clock::{Clock, rfc3339},
    domain::{Decider, EmailAddress, SignupRequest},
    storage::{
        EntityRef, Housekeeping, RequestQuery, RequestStore, StoreError, StoredDeadLetter,
        Versioned, housekeeping::request_ref,
    },
};

/// Passes of erasure before giving up on rows that keep changing (a worker mid-invitation).
const MAX_ERASE_PASSES: usize = 4;

/// Most dead letters read to look for an address (the table holds only messages that could
/// not be handled; it is expected to stay small).
const MAX_DEAD_LETTERS: usize = 100_000;

/// What the rate-limit counters hold, said in every export.
pub const RATE_LIMITS_NOTE: &str = "Rate-limit counters (table SignupRateLimits) are keyed by SHA-256 digests of the address, the domain and the client IP with the window start; they hold no address, cannot be listed for one, and expire with their window.";
/// What the export does not cover.
pub const GUEST_NOTE: &str = "The guest user Microsoft Entra ID created at invitation (InvitedUserId) and its group memberships are in the tenant, not in this export: look them up in Entra ID.";

/// Everything stored about one address, as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectExport {
    pub email: String,
    pub exported_at: String,
    /// Its requests, oldest first, every field and the history.
    pub(crate) requests: Vec<View>,
    pub address_claim: Option<ClaimView>,
    pub dead_letters: Vec<DeadLetterView>,
    pub rate_limits: String,
    pub guest_user: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimView {
    pub table: String,
    pub partition_key: String,
    pub row_key: String,
    pub request_id: String,
    pub claimed_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    pub queue: String,
    pub row_key: String,
    pub message_id: Option<String>,
    pub dequeue_count: u32,
    pub error: String,
    pub text: String,
    pub received_at: String,
}

/// What an erasure deleted (counts only: the answer and the log line).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Erased {
    pub domain: String,
    pub requests: usize,
    pub claims: usize,
    pub dead_letters: usize,
    pub erased_at: String,
}

pub struct Subjects {
    pub store: Arc<dyn RequestStore>,
    pub housekeeping: Arc<dyn Housekeeping>,
    pub clock: Clock,
}

/// What is stored about an address, with the versions read.
struct Found {
    requests: Vec<Versioned<SignupRequest>>,
    claim: Option<crate::storage::StoredClaim>,
    dead_letters: Vec<StoredDeadLetter>,
}

impl Subjects {
    pub async fn export(&self, email: &EmailAddress) -> Result<SubjectExport, StoreError> {
        let found = self.find(email).await?;
        Ok(SubjectExport {
            email: email.as_str().to_owned(),
            exported_at: rfc3339(self.clock.now()),
            requests: found.requests.iter().map(|r| View::of(&r.value)).collect(),
            address_claim: found.claim.map(|c| ClaimView {
                table: crate::storage::REQUESTS_TABLE.to_owned(),
                partition_key: c.entity.partition,
                row_key: c.entity.row_key,
                request_id: c.request_id.to_string(),
                claimed_at: c.claimed_at,
            }),
            dead_letters: found
                .dead_letters
                .into_iter()
                .map(|l| DeadLetterView {
                    queue: l.entity.partition,
                    row_key: l.entity.row_key,
                    message_id: l.message_id,
                    dequeue_count: l.dequeue_count,
                    error: l.error,
                    text: l.text,
                    received_at: l.received_at,
                })
                .collect(),
            rate_limits: RATE_LIMITS_NOTE.to_owned(),
            guest_user: GUEST_NOTE.to_owned(),
        })
    }

    /// Deletes everything stored about `email`; `by` is recorded in the log line, which
    /// holds no personal data of the subject.
    pub async fn erase(&self, email: &EmailAddress, by: &Decider) -> Result<Erased, StoreError> {
        let mut erased = Erased {
            domain: email.domain().to_string(),
            ..Default::default()
        };
        for _ in 0..MAX_ERASE_PASSES {
            let found = self.find(email).await?;
            if found.requests.is_empty() && found.claim.is_none() && found.dead_letters.is_empty() {
                break;
            }
            let rows: Vec<EntityRef> = found
                .requests
                .iter()
                .map(|r| request_ref(r.value.email.domain(), &r.value.id, &r.etag))
                .collect();
            erased.requests += self
                .housekeeping
                .delete_requests(&rows)
                .await?
                .deleted
                .len();
            let claims: Vec<EntityRef> = found.claim.into_iter().map(|c| c.entity).collect();
            erased.claims += self
                .housekeeping
                .delete_requests(&claims)
                .await?
                .deleted
                .len();
            let letters: Vec<EntityRef> =
                found.dead_letters.into_iter().map(|l| l.entity).collect();
            erased.dead_letters += self
                .housekeeping
                .delete_dead_letters(&letters)
                .await?
                .deleted
                .len();
        }
        let left = self.find(email).await?;
        if !left.requests.is_empty() || left.claim.is_some() || !left.dead_letters.is_empty() {
            return Err(StoreError::Conflict);
        }
        erased.erased_at = rfc3339(self.clock.now());
        tracing::warn!(
            domain = %erased.domain,
            requests = erased.requests,
            claims = erased.claims,
            dead_letters = erased.dead_letters,
            by = %by,
            "data subject erased"
        );
        Ok(erased)
    }

    async fn find(&self, email: &EmailAddress) -> Result<Found, StoreError> {
        let query = RequestQuery {
            domain: Some(email.domain().clone()),
            ..Default::default()
        };
        let mut requests: Vec<Versioned<SignupRequest>> = self
            .store
            .query(&query, usize::MAX)
            .await?
            .into_iter()
            .filter(|row| same_mailbox(&row.value.email, email))
            .collect();
        requests.sort_by_key(|row| row.value.id);
        let claim = self.housekeeping.claim_entity(email).await?;
        let ids: Vec<String> = requests.iter().map(|r| r.value.id.to_string()).collect();
        let address = email.as_str().to_lowercase();
        let dead_letters = self
            .housekeeping
            .dead_letters(None, MAX_DEAD_LETTERS)
            .await?
            .into_iter()
            .filter(|letter| {
                let text = letter.text.to_lowercase();
                ids.iter().any(|id| letter.text.contains(id.as_str())) || text.contains(&address)
            })
            .collect();
        Ok(Found {
            requests,
            claim,
            dead_letters,
        })
    }
}

/// Two spellings of one mailbox, as address claims compare them.
fn same_mailbox(a: &EmailAddress, b: &EmailAddress) -> bool {
    a.domain() == b.domain() && a.canonical_local() == b.canonical_local()
}
