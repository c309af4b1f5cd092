//! A sign-up request: its id, its status and the record kept in table `SignupRequests`.

use std::{fmt, str::FromStr};

use time::OffsetDateTime;

use super::{
    Actor, Decider, DisplayName, EmailAddress, FreeText, History, HistoryAction, HistoryEntry,
    Lang, UserId,
};

/// A request id: a ULID, so ids are unique without coordination and rows sort by time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(ulid::Ulid);

impl RequestId {
    pub fn new() -> Self {
        Self(ulid::Ulid::new())
    }

    pub fn parse(input: &str) -> Option<Self> {
        ulid::Ulid::from_string(input).ok().map(Self)
    }

    /// The smallest id made at `time` (a ULID's first 48 bits are its milliseconds since
    /// 1970): every request created at or after `time` has an id at least this one.
    pub fn first_at(time: OffsetDateTime) -> Self {
        let ms = u64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        Self(ulid::Ulid::from_parts(ms, 0))
    }

    /// When the id was made (by the system clock of the instance that made it).
    pub fn made_at(&self) -> OffsetDateTime {
        let ms = i128::from(self.0.timestamp_ms());
        OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

/// The key of an access option in the policy (`partner-portal`): lower-case letters,
/// digits, `-` and `_`, 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessKey(String);

impl AccessKey {
    pub fn parse(input: &str) -> Option<Self> {
        let valid = (1..=64).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && input.as_bytes()[0].is_ascii_alphanumeric();
        valid.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a request stands. Stored by name in the `Status` column; the names are part of
/// the contract with administrators' tools (docs/ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    /// Waiting for the partner to prove the address (policy `verifyEmail`): nothing is
    /// queued, nobody is notified, Graph is not called until the mailed link is used.
    PendingVerification,
    /// Row written and its message sent right after, unconfirmed (a crash in between
    /// leaves it unsent: recovery re-sends an old `Accepted` row); no worker has taken it.
    Accepted,
    /// Message sent again by recovery or approval, or handed back by the worker after a
    /// transient failure; waiting for the invitation worker.
    Queued,
    /// Waiting for an administrator's decision.
    PendingApproval,
    /// A worker holds the lease and is talking to Graph.
    Inviting,
    /// Invitation sent and group memberships added.
    Invited,
    /// Refused by an administrator (or the decision deadline passed).
    Denied,
    /// Ended without an invitation; `Reason` says why.
    Failed,
    /// Was `Invited`; its access (policy `accessDays`) ended and the guest was removed from
    /// the access option's groups ([`crate::lifecycle`]). The guest user itself remains.
    Expired,
}

impl RequestStatus {
    pub const ALL: [Self; 9] = [
        Self::PendingVerification,
        Self::Accepted,
        Self::Queued,
        Self::PendingApproval,
        Self::Inviting,
        Self::Invited,
        Self::Denied,
        Self::Failed,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingVerification => "PendingVerification",
            Self::Accepted => "Accepted",
            Self::Queued => "Queued",
            Self::PendingApproval => "PendingApproval",
            Self::Inviting => "Inviting",
            Self::Invited => "Invited",
            Self::Denied => "Denied",
            Self::Failed => "Failed",
            Self::Expired => "Expired",
        }
    }

    /// Live or successful: a repeat sign-up for the same address is answered with this
    /// request instead of starting another. After `Failed`, `Denied` or `Expired` a new one
    /// may start (and an `Invited` request inside its renewal window:
    /// [`SignupRequest::blocks_new_request`]).
    pub fn blocks_new_request(self) -> bool {
        !matches!(self, Self::Failed | Self::Denied | Self::Expired)
    }

    /// Finished for good: nothing will change the request again, so retention may delete
    /// it once it is old enough ([`crate::lifecycle`]).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Denied | Self::Failed | Self::Expired)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(())
    }
}

/// One sign-up request as recorded in table `SignupRequests` (PartitionKey = the e-mail
/// domain, RowKey = the id).
#[derive(Debug, Clone, PartialEq)]
pub struct SignupRequest {
    pub id: RequestId,
    pub email: EmailAddress,
    pub display_name: DisplayName,
    pub access: AccessKey,
    pub company: Option<FreeText>,
    pub justification: Option<FreeText>,
    /// Where the request stands. Changed only through [`SignupRequest::transition`], which
    /// records the change in [`SignupRequest::history`]; public to read, and for tests that
    /// set up a state a crash leaves.
    pub status: RequestStatus,
    /// The latest outcome: why the request is `Failed`, what a dry run skipped, what a
    /// retry started from; never a secret. An administrator's reason is in `decision_reason`.
    pub reason: Option<String>,
    /// Why an administrator approved or denied it (or that its deadline passed); written
    /// once, by the decision, and never overwritten.
    pub decision_reason: Option<String>,
    /// How many times a worker has started on it.
    pub attempts: u32,
    /// The guest's object id in Entra, once invited.
    pub invited_user_id: Option<UserId>,
    /// When a delivery first called `POST /invitations` for this request while no guest id
    /// was recorded: an invitation may have gone out (an answer lost, a handler killed).
    /// The next delivery looks for the guest before inviting again; see [`crate::worker`].
    pub invitation_attempted_at: Option<OffsetDateTime>,
    /// Graph's `request-id` of the last call, for Microsoft support cases.
    pub graph_request_id: Option<String>,
    pub created_at: OffsetDateTime,
    /// Also the freshness of the `Inviting` lease.
    pub updated_at: OffsetDateTime,
    /// Who approved or denied it.
    pub decided_by: Option<Decider>,
    /// When it was approved or denied.
    pub decided_at: Option<OffsetDateTime>,
    /// For `PendingApproval`: when it is denied if nobody decides (policy
    /// `approvalTimeoutDays`).
    pub decide_by: Option<OffsetDateTime>,
    /// When administrators were notified of a pending request (`APPROVAL_WEBHOOK_URL`);
    /// `None` while the notification is still owed.
    pub notified_at: Option<OffsetDateTime>,
    /// Who last sent the request back to the worker after it had `Failed`
    /// ([`crate::requests::Requests::retry`]); `None` if nobody did.
    pub retried_by: Option<Decider>,
    /// When it was last retried.
    pub retried_at: Option<OffsetDateTime>,
    /// The terms-of-use version accepted at sign-up (policy `terms.version`).
    pub terms_version: Option<String>,
    /// Whether the request was handled with `SIGNUP_DRY_RUN=true`.
    pub dry_run: bool,
    /// When the guest's access ends (policy `accessDays`), set by the worker with
    /// `Invited`; `None` when access does not expire.
    pub access_ends_at: Option<OffsetDateTime>,
    /// From when the renewal notice is owed and a new sign-up for the address may start
    /// (`AccessEndsAt` − `renewBeforeDays`); set with [`SignupRequest::access_ends_at`].
    pub renewal_opens_at: Option<OffsetDateTime>,
    /// When the renewal notice was handled (sent, or recorded as not sent because no mail
    /// is configured): it is handled once.
    pub renewal_notice_at: Option<OffsetDateTime>,
    /// When a repeat sign-up last had Microsoft's invitation sent again to a guest who had
    /// not redeemed (`InvitationResentAt`; in a dry run, when it would have been): at most
    /// once a day ([`crate::intake`]).
    pub invitation_resent_at: Option<OffsetDateTime>,
    /// Every change of the request, stored in its row and written with the change.
    pub history: History,
    /// The language of the sign-up (`Language`): its mails and links follow it.
    pub language: Lang,
    /// The proof of address, when the policy asked for one (src/verify.rs).
    pub verification: Option<Verification>,
    /// The partner's mail that the last change made owed and that is not sent yet
    /// (`MailOwed`, `MailOwedSince`); `Reconcile` sends it after an outage.
    pub mail_owed: Option<OwedMail>,
    /// Whether the administrator who denied it chose to tell the partner why
    /// (`ShareReason`): only then does the denial mail carry `decision_reason`.
    pub share_reason: bool,
}

/// A request's proof of address: only a digest of the single-use token is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// SHA-256 of the token's secret part, lower-case hex (`VerifyTokenHash`). Replaced
    /// when a new link is mailed: only the newest link works.
    pub token_hash: String,
    /// When the newest link stops working (`VerifyExpiresAt`).
    pub expires_at: OffsetDateTime,
    /// When the partner proved the address (`VerifiedAt`); `None` while pending.
    pub verified_at: Option<OffsetDateTime>,
    /// When the last link was mailed (`VerifyMailedAt`): a repeat sign-up mails a new one
    /// at most once per [`crate::verify::RESEND_AFTER`].
    pub mailed_at: Option<OffsetDateTime>,
}

/// Which mail a partner is owed (the `MailOwed` column, by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// "Confirm your address": the link to the verify page.
    Verify,
    /// "Your request waits for approval", with the deadline.
    Pending,
    /// "You are approved": the invitation comes from Microsoft.
    Approved,
    /// "Your request was not approved", with the reason when it was shared.
    Denied,
}

impl MailKind {
    pub const ALL: [Self; 4] = [Self::Verify, Self::Pending, Self::Approved, Self::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A mail owed since a change of the request; `since` also makes its idempotency key, so
/// retries of one owed mail are one mail at Azure Communication Services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwedMail {
    pub kind: MailKind,
    pub since: OffsetDateTime,
}

impl SignupRequest {
    /// Whether a new sign-up for the address must be answered with this request: its
    /// status is live or successful, unless it is an `Invited` request whose renewal window
    /// is open at `now` (renewing is signing up again).
    pub fn blocks_new_request(&self, now: OffsetDateTime) -> bool {
        let renewable = self.status == RequestStatus::Invited
            && self.renewal_opens_at.is_some_and(|opens| opens <= now);
        self.status.blocks_new_request() && !renewable
    }

    /// Moves the request to `to` and records the change in its history: the one way a
    /// status changes, so no change goes unrecorded. `to` may equal the current status for
    /// a step inside it ([`HistoryAction::InvitationSent`]). Also the row's `UpdatedAt`
    /// (the freshness of a worker's lease). The entry is stored by the caller's write of
    /// the row, so it exists exactly when that write succeeds.
    pub fn transition(
        &mut self,
        to: RequestStatus,
        actor: Actor,
        action: HistoryAction,
        reason: Option<String>,
        at: OffsetDateTime,
    ) {
        self.history.append(HistoryEntry {
            at,
            actor,
            action,
            from: Some(self.status),
            to,
            reason,
        });
        self.status = to;
        self.updated_at = at;
    }
}

/// A fresh `Accepted` request for `address`, for unit tests.
#[cfg(test)]
pub(crate) fn sample(address: &str) -> SignupRequest {
    let now = OffsetDateTime::now_utc();
    SignupRequest {
        id: RequestId::new(),
        email: EmailAddress::parse(address).expect("a valid address"),
        display_name: DisplayName::parse("Ada").expect("a valid name"),
        access: AccessKey::parse("partner-portal").expect("a valid key"),
        company: None,
        justification: None,
        status: RequestStatus::Accepted,
        reason: None,
        decision_reason: None,
        attempts: 0,
        invited_user_id: None,
        invitation_attempted_at: None,
        graph_request_id: None,
        created_at: now,
        updated_at: now,
        decided_by: None,
        decided_at: None,
        decide_by: None,
        notified_at: None,
        retried_by: None,
        retried_at: None,
        terms_version: None,
        dry_run: true,
        history: History::of_new(RequestStatus::Accepted, Actor::Partner, now),
        language: Lang::En,
        verification: None,
        mail_owed: None,
        share_reason: false,
        access_ends_at: None,
        renewal_opens_at: None,
        renewal_notice_at: None,
        invitation_resent_at: None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// `status` stays public (every reader, and tests that set up what a crash leaves), so
    /// this guards the rule instead of the compiler: outside [`super::SignupRequest::transition`],
    /// no product code assigns a status, which would change a request without history.
    #[test]
    fn no_product_code_changes_a_status_except_through_transition() {
        fn visit(dir: &Path, offenders: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
                let path = entry.path();
                if path.is_dir() {
                    visit(&path, offenders);
                } else if path.extension().is_some_and(|ext| ext == "rs")
                    && !path.ends_with("domain/request.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (number, line) in text.lines().enumerate() {
                        let code = line.split("//").next().unwrap_or_default();
                        if code.contains(".status = ") || code.contains(".updated_at = ") {
                            offenders.push(format!("{}:{}", path.display(), number + 1));
                        }
                    }
                }
            }
        }
        let mut offenders = Vec::new();
        visit(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut offenders,
        );
        assert!(
            offenders.is_empty(),
            "use SignupRequest::transition: {offenders:?}"
        );
    }
}
