//! Durable state: the request table and the invitation queue, behind small traits.
//!
//! The Azure crates (community 0.21 family) no longer receive fixes, so they stay inside
//! `azure.rs`; everything else talks to [`RequestStore`] and [`SignupQueue`].
//!
//! Every status change is a compare-and-swap on the row's ETag: a concurrent or repeated
//! delivery gets [`StoreError::Conflict`] instead of overwriting a newer state.

pub mod azure;
mod entity;
pub mod housekeeping;
mod transport;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{EmailAddress, EmailDomain, RequestId, RequestStatus, SignupRequest};

pub use azure::AzureStorage;
pub use housekeeping::{Deleted, EntityRef, Housekeeping, StoredClaim, StoredDeadLetter};
pub use webjobs_storage::{ConnectionError, StorageAccount, StorageAuth};

/// Table of sign-up requests (PartitionKey = domain, RowKey = request id) and, in the same
/// partitions, of address claims (RowKey = [`CLAIM_ROW_PREFIX`] and the lower-cased, escaped
/// local part): which request each address currently has. Claim and row share a partition
/// so a new request and its claim are written in one entity-group transaction.
pub const REQUESTS_TABLE: &str = "SignupRequests";
/// RowKeys of address claims start with this. Request ids (ULIDs: digits and upper-case
/// letters) all sort before it, so `RowKey lt 'address:'` reads requests only.
pub const CLAIM_ROW_PREFIX: &str = "address:";
/// Rate-limit counters (PartitionKey = scope, RowKey = key digest and window start).
pub const RATE_LIMITS_TABLE: &str = "SignupRateLimits";
/// Queue messages that could not be handled at all (not our format, pointing at no row,
/// or at a row that cannot be read), kept for an administrator instead of being dropped.
/// PartitionKey = queue name.
pub const DEAD_LETTERS_TABLE: &str = "SignupDeadLetters";
/// Queue the invitation worker (`InviteQueue`) is triggered by.
pub const INVITE_QUEUE: &str = "signup-requests";
/// Where the host moves a message after `maxDequeueCount` failed deliveries (`InvitePoison`).
pub const INVITE_POISON_QUEUE: &str = "signup-requests-poison";

/// An entity's version tag, for If-Match.
#[derive(Clone, PartialEq, Eq)]
pub struct ETag(pub(crate) String);

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({})", self.0)
    }
}

/// A value read from storage with the version it had.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub etag: ETag,
}

/// Which request an address has; see [`REQUESTS_TABLE`].
#[derive(Debug, Clone, PartialEq)]
pub struct AddressClaim {
    pub request_id: RequestId,
    pub claimed_at: OffsetDateTime,
}

/// The invitation message: it only points at the row, which holds the data.
/// Versioned so a future worker can tell old messages from new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteMessage {
    pub v: u32,
    pub request_id: String,
    pub domain: String,
}

/// Why a queue message is not an invitation message this version understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not the JSON invitation message")]
    NotJson,
    #[error("message version {0} is not supported")]
    Version(u32),
    #[error("requestId is not a request id")]
    RequestId,
    #[error("domain is not a domain")]
    Domain,
}

impl InviteMessage {
    pub const VERSION: u32 = 1;

    /// Parses a message's text into the row it points at.
    pub fn parse(text: &str) -> Result<(EmailDomain, RequestId), MessageError> {
        let message: Self = serde_json::from_str(text).map_err(|_| MessageError::NotJson)?;
        if message.v != Self::VERSION {
            return Err(MessageError::Version(message.v));
        }
        let id = RequestId::parse(&message.request_id).ok_or(MessageError::RequestId)?;
        let domain = EmailDomain::parse(&message.domain).map_err(|_| MessageError::Domain)?;
        if domain.as_str() != message.domain {
            return Err(MessageError::Domain); // not in normalised form: not written by us
        }
        Ok((domain, id))
    }

    pub fn new(request: &SignupRequest) -> Self {
        Self {
            v: Self::VERSION,
            request_id: request.id.to_string(),
            domain: request.email.domain().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The entity changed (412) or already exists (409): someone else got there first.
    #[error("the entity was changed or created concurrently")]
    Conflict,
    /// A stored row that does not parse (edited by hand, or written by a newer version).
    /// Permanent: reading it again gives the same answer, so callers report it (a dead
    /// letter, a 500) instead of retrying.
    #[error("stored entity is not valid: {0}")]
    Corrupt(String),
    /// Storage could not be reached or answered with an error; worth retrying later.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Which requests to read; every field narrows the result. Built into an OData filter
/// from typed values only, so no caller text reaches the query. Address claims, which
/// share the table, are never part of the result.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub status: Option<RequestStatus>,
    pub domain: Option<EmailDomain>,
    pub created_since: Option<OffsetDateTime>,
    pub updated_before: Option<OffsetDateTime>,
    pub decide_by_before: Option<OffsetDateTime>,
    /// `AccessEndsAt` before this (rows without it never match): access that has ended.
    pub access_ends_before: Option<OffsetDateTime>,
    /// `RenewalOpensAt` before this: access in its renewal window (or past it).
    pub renewal_opens_before: Option<OffsetDateTime>,
    /// Only requests older than this one: ids are ULIDs, whose text sorts by creation
    /// time, so this is the admin API's page boundary.
    pub older_than: Option<RequestId>,
    /// Only this request and newer ones (with [`RequestId::first_at`]: those created at or
    /// after a time); the list reads time windows with it.
    pub not_older_than: Option<RequestId>,
    /// Only rows owing a mail since before this time (`MailOwedSince`, [`crate::outbox`]).
    pub mail_owed_before: Option<OffsetDateTime>,
}

impl RequestQuery {
    /// The OData `$filter`: the RowKey range of requests, narrowed by each field set.
    pub fn filter(&self) -> String {
        let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
        let date = |time: OffsetDateTime| format!("datetime'{}'", entity::format_time(time));
        let clauses: Vec<String> = [
            Some(format!("RowKey lt {}", quote(CLAIM_ROW_PREFIX))),
            self.status
                .map(|s| format!("Status eq {}", quote(s.as_str()))),
            self.domain
                .as_ref()
                .map(|d| format!("PartitionKey eq {}", quote(d.as_str()))),
            self.created_since
                .map(|t| format!("CreatedAt ge {}", date(t))),
            self.updated_before
                .map(|t| format!("UpdatedAt lt {}", date(t))),
            self.decide_by_before
                .map(|t| format!("DecideBy lt {}", date(t))),
            self.access_ends_before
                .map(|t| format!("AccessEndsAt lt {}", date(t))),
            self.renewal_opens_before
                .map(|t| format!("RenewalOpensAt lt {}", date(t))),
            self.older_than
                .map(|id| format!("RowKey lt {}", quote(&id.to_string()))),
            self.not_older_than
                .map(|id| format!("RowKey ge {}", quote(&id.to_string()))),
            self.mail_owed_before
                .map(|t| format!("MailOwedSince lt {}", date(t))),
        ]
        .into_iter()
        .flatten()
        .collect();
        clauses.join(" and ")
    }
}

/// Where a request's row is: its partition (the domain) and row key (the id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub domain: EmailDomain,
    pub id: RequestId,
}

impl RequestQuery {
    /// Whether `request` matches, as the query's filter would have it: a row read again
    /// after a [`RequestStore::keys`] listing may have changed in between.
    pub fn matches(&self, request: &SignupRequest) -> bool {
        let before = |limit: Option<OffsetDateTime>, value: Option<OffsetDateTime>| {
            limit.is_none_or(|limit| value.is_some_and(|value| value < limit))
        };
        self.status.is_none_or(|s| s == request.status)
            && self
                .domain
                .as_ref()
                .is_none_or(|d| d == request.email.domain())
            && self.created_since.is_none_or(|t| request.created_at >= t)
            && before(self.updated_before, Some(request.updated_at))
            && before(self.decide_by_before, request.decide_by)
            && before(
                self.mail_owed_before,
                request.mail_owed.as_ref().map(|owed| owed.since),
            )
            && self.older_than.is_none_or(|id| request.id < id)
            && self.not_older_than.is_none_or(|id| request.id >= id)
    }
}

/// Rows and address claims of table `SignupRequests`.
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Stores a new request and points its address at it, both or neither (one
    /// entity-group transaction in the domain's partition, one round trip). The claim is
    /// inserted when `expected` is `None`, else replaces the claim that has that ETag.
    /// `Conflict` (nothing written) when another sign-up got there first. Returns the
    /// row's ETag.
    async fn create(
        &self,
        request: &SignupRequest,
        claim: &AddressClaim,
        expected: Option<&ETag>,
    ) -> Result<ETag, StoreError>;

    async fn get(
        &self,
        domain: &EmailDomain,
        id: &RequestId,
    ) -> Result<Option<Versioned<SignupRequest>>, StoreError>;

    /// Replaces the row if it still has `etag`; `Conflict` otherwise.
    async fn replace(&self, request: &SignupRequest, etag: &ETag) -> Result<ETag, StoreError>;

    /// The request with this id, whatever its domain. A scan across partitions: right for an
    /// administrator's single lookup, not for a hot path.
    async fn find(&self, id: &RequestId) -> Result<Option<Versioned<SignupRequest>>, StoreError>;

    /// Up to `limit` requests matching `query`, in table order (domain, then time). Rows that
    /// do not parse are skipped with a warning.
    async fn query(
        &self,
        query: &RequestQuery,
        limit: usize,
    ) -> Result<Vec<Versioned<SignupRequest>>, StoreError>;

    /// Where up to `limit` requests matching `query` are, in table order, without their
    /// data (`$select` of the keys: a tenth of the bytes of a full row, and nothing to
    /// parse). For the admin API's list, which sorts across domains and then reads one
    /// page of rows.
    async fn keys(&self, query: &RequestQuery, limit: usize)
    -> Result<Vec<RequestKey>, StoreError>;

    /// The request `email` currently has, if any (see [`CLAIM_ROW_PREFIX`]).
    async fn claim_of(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Versioned<AddressClaim>>, StoreError>;

    /// Writes `email`'s claim unless the address has one; `false` when it had one. Only for
    /// restoring claims of existing rows (`requests restore-claims`); intake writes a claim
    /// with its row.
    async fn insert_claim(
        &self,
        email: &EmailAddress,
        claim: &AddressClaim,
    ) -> Result<bool, StoreError>;
}

/// A queue message kept because it could not be handled; see [`DEAD_LETTERS_TABLE`].
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub queue: &'static str,
    pub message_id: Option<String>,
    pub dequeue_count: u32,
    pub error: String,
    /// The message text (truncated to what a table property holds).
    pub text: String,
    pub received_at: OffsetDateTime,
}

#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn record(&self, letter: &DeadLetter) -> Result<(), StoreError>;
}

/// Counters shared by every instance of the app.
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// One ETag-guarded attempt to add one to the counter `partition`/`row` unless it has
    /// reached `max`: concurrent increments never lose a count, and a lost race is reported,
    /// not retried (whether and when to try again is the caller's policy,
    /// [`crate::abuse::RateLimiter`]). `create_first` is a hint only: the store may try
    /// creating the counter before reading it, which saves a round trip when the counter
    /// does not exist yet.
    async fn try_increment(
        &self,
        partition: &str,
        row: &str,
        max: u32,
        create_first: bool,
    ) -> Result<Increment, StoreError>;
}

/// What one [`CounterStore::try_increment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Increment {
    /// Counted: the counter was below `max` and is now one higher.
    Counted,
    /// The counter had reached `max`; nothing written.
    Full,
    /// Another writer changed the counter between our read and our write; nothing written.
    Raced,
}

/// The `signup-requests` queue.
#[async_trait]
pub trait SignupQueue: Send + Sync {
    /// Sends the message, base64-encoded as host.json's `messageEncoding` says.
    async fn send(&self, message: &InviteMessage) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_odata_filters_from_typed_values() {
        assert_eq!(RequestQuery::default().filter(), "RowKey lt 'address:'");
        let query = RequestQuery {
            status: Some(RequestStatus::PendingApproval),
            domain: Some(EmailDomain::parse("contoso.com").unwrap()),
            decide_by_before: Some(time::macros::datetime!(2026-11-24 10:00 UTC)),
            ..Default::default()
        };
        assert_eq!(
            query.filter(),
            "RowKey lt 'address:' and Status eq 'PendingApproval' and PartitionKey eq 'contoso.com' and DecideBy lt datetime'2026-11-24T10:00:00Z'"
        );
    }

    #[test]
    fn a_row_read_again_matches_the_query_as_its_filter_would() {
        let entity: entity::RequestEntity = serde_json::from_value(serde_json::json!({
            "PartitionKey": "fabrikam.com", "RowKey": "01KB0000000000000000000000",
            "Email": "ana@fabrikam.com", "DisplayName": "Ana", "Access": "partner-portal",
            "Status": "PendingApproval", "CreatedAt": "2026-11-20T10:00:00Z",
            "UpdatedAt": "2026-11-21T10:00:00Z", "DecideBy": "2026-12-04T10:00:00Z",
        }))
        .unwrap();
        let request = entity.into_request().unwrap();
        let at = |text: &str| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let id = |text: &str| RequestId::parse(text).unwrap();
        let matching = [
            RequestQuery::default(),
            RequestQuery {
                status: Some(RequestStatus::PendingApproval),
                domain: Some(EmailDomain::parse("fabrikam.com").unwrap()),
                created_since: Some(at("2026-11-20T10:00:00Z")),
                updated_before: Some(at("2026-11-21T10:00:01Z")),
                decide_by_before: Some(at("2026-12-05T00:00:00Z")),
                older_than: Some(id("01KB0000000000000000000001")),
                not_older_than: Some(id("01KB0000000000000000000000")),
                ..Default::default()
            },
        ];
        for query in matching {
            assert!(query.matches(&request), "{query:?}");
        }
        let not_matching = [
            RequestQuery {
                status: Some(RequestStatus::Denied),
                ..Default::default()
            },
            RequestQuery {
                domain: Some(EmailDomain::parse("contoso.com").unwrap()),
                ..Default::default()
            },
            RequestQuery {
                created_since: Some(at("2026-11-20T10:00:01Z")),
                ..Default::default()
            },
            RequestQuery {
                updated_before: Some(at("2026-11-21T10:00:00Z")),
                ..Default::default()
            },
            RequestQuery {
                decide_by_before: Some(at("2026-12-04T10:00:00Z")),
                ..Default::default()
            },
            RequestQuery {
                older_than: Some(request.id),
                ..Default::default()
            },
        ];
        for query in not_matching {
            assert!(!query.matches(&request), "{query:?}");
        }
    }
}
