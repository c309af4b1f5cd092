//! A request's history: every change of the request, who made it and why, appended with the
//! change it records and never edited.
//!
//! It lives in the request's own row (column `History`, a JSON array, and `HistoryDropped`),
//! so a change and its entry are one entity write: the change's ETag-guarded replace, or at
//! intake the transaction that writes the row and its claim. The entry is therefore
//! atomic with its change by construction and costs no storage round trip. Rows written
//! before history existed have no `History` column and read as an empty history.
//!
//! Bounded, because a table string property holds at most 64 KiB of UTF-16
//! ([Understanding the Table service data model](https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model),
//! "Property types": `Edm.String`): a reason is cut to [`MAX_REASON_CHARS`], an actor to
//! [`MAX_ACTOR_CHARS`], and past [`MAX_ENTRIES`] entries or [`MAX_STORED_UNITS`] of stored
//! JSON the oldest entries after the first are dropped and counted ([`History::dropped`]).
//! A write can therefore never fail for the history's size, however long a request lives.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{Decider, RequestStatus};
use crate::clock::rfc3339;

/// Most entries kept: the first (how the request began) and the latest.
pub const MAX_ENTRIES: usize = 100;
/// Longest reason kept in an entry, in characters; a longer one is cut with `…`. The full
/// text stays where the change put it (`Reason`, `DecisionReason`).
pub const MAX_REASON_CHARS: usize = 300;
/// Longest actor kept in an entry, in characters (an approval's principal is at most 256).
pub const MAX_ACTOR_CHARS: usize = 256;
/// Table Storage's limit on a string property: 64 KiB of UTF-16, in 16-bit units.
const TABLE_STRING_UNITS: usize = 32 * 1024;
/// Most UTF-16 units the stored JSON may take: three quarters of [`TABLE_STRING_UNITS`].
/// The first and the latest entry always fit: an entry is at most about 3,500 units (a
/// reason and an actor of control characters, each written `\uXXXX`).
pub const MAX_STORED_UNITS: usize = TABLE_STRING_UNITS / 4 * 3;
const _: () = assert!(MAX_STORED_UNITS < TABLE_STRING_UNITS);

/// Who made a change. Stored as text: `partner`, `worker`, `reconcile`, `system`, or the
/// administrator's `DecidedBy` text ([`Decider`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The partner signing up: a new request, or a repeat sign-up that sent a stuck one again.
    Partner,
    /// The invitation worker (`InviteQueue`, `InvitePoison`).
    Worker,
    /// The `Reconcile` timer, sending a request whose message was lost again.
    Reconcile,
    /// The product deciding by itself: a decision deadline that passed, access that ended
    /// (the `Lifecycle` timer).
    System,
    /// An administrator approving, denying or retrying, as `DecidedBy` and `RetriedBy` name them.
    Administrator(Decider),
}

const PARTNER: &str = "partner";
const WORKER: &str = "worker";
const RECONCILE: &str = "reconcile";
const SYSTEM: &str = "system";

impl Actor {
    /// Reads an entry's actor back; any other text is an administrator, as it was written.
    pub fn from_text(text: &str) -> Self {
        match text {
            PARTNER => Self::Partner,
            WORKER => Self::Worker,
            RECONCILE => Self::Reconcile,
            SYSTEM => Self::System,
            _ => Self::Administrator(Decider::from_text(text)),
        }
    }

    /// The actor with its text cut to [`MAX_ACTOR_CHARS`].
    fn capped(self) -> Self {
        match self {
            Self::Administrator(decider) => {
                let text = decider.to_string();
                match cut(&text, MAX_ACTOR_CHARS) {
                    Some(short) => Self::Administrator(Decider::from_text(&short)),
                    None => Self::Administrator(decider),
                }
            }
            other => other,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partner => f.write_str(PARTNER),
            Self::Worker => f.write_str(WORKER),
            Self::Reconcile => f.write_str(RECONCILE),
            Self::System => f.write_str(SYSTEM),
            Self::Administrator(decider) => fmt::Display::fmt(decider, f),
        }
    }
}

/// What happened. A closed list, stored as snake_case text; a row holding another text
/// (written by a newer version) does not parse, as an unknown `Status` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryAction {
    /// Intake stored the request (`Accepted` or `PendingApproval`).
    Created,
    /// An administrator approved it (`Accepted`); the reason is the decision's.
    Approved,
    /// An administrator denied it (`Denied`).
    Denied,
    /// Nobody decided before the deadline: denied by the system.
    Expired,
    /// Its message was sent after an approval or a retry (`Queued`).
    Queued,
    /// Its message was sent again because the earlier one was probably lost: by Reconcile,
    /// or by a repeat sign-up (`Queued`).
    Resent,
    /// A worker took the lease (`Inviting`); the reason says which attempt.
    Started,
    /// Graph accepted the invitation (the guest's id is recorded with this entry).
    InvitationSent,
    /// The guest was added to the access option's groups; the reason lists them.
    AddedToGroups,
    /// The request ended `Invited` (in a dry run: what would have been sent).
    Invited,
    /// A transient failure handed the request back to the queue (`Queued`).
    HandedBack,
    /// The request ended `Failed`: Graph refused, or the policy no longer allows it.
    Failed,
    /// The host gave up on its message (`InvitePoison`): `Failed`.
    Poisoned,
    /// An administrator sent a `Failed` request through the worker again (`Accepted`).
    Retried,
    /// The partner proved the address with the mailed link (`PendingVerification` →
    /// `Accepted` or `PendingApproval`, as the rule says).
    Verified,
    /// The renewal notice went to the guest (`Invited`; [`crate::lifecycle`]).
    RenewalNoticeSent,
    /// A repeat sign-up had Microsoft's invitation sent again to a guest who had not
    /// redeemed (`Invited`; in a dry run, the reason says it was not sent).
    InvitationResent,
    /// The renewal notice was owed but not sent; the reason says why (no mail configured).
    RenewalNoticeNotSent,
    /// The guest was removed from the access option's groups at the end of its access;
    /// the reason lists them (and those kept for a newer request).
    RemovedFromGroups,
    /// A removal from a group was refused by Graph; the reason has its code. Tried again
    /// on the next pass.
    RemovalFailed,
    /// The access ended (`Expired`). Not [`HistoryAction::Expired`], which is a decision
    /// deadline that passed.
    AccessExpired,
}

impl HistoryAction {
    pub const ALL: [Self; 21] = [
        Self::Created,
        Self::Approved,
        Self::Denied,
        Self::Expired,
        Self::Queued,
        Self::Resent,
        Self::Started,
        Self::InvitationSent,
        Self::AddedToGroups,
        Self::Invited,
        Self::HandedBack,
        Self::Failed,
        Self::Poisoned,
        Self::Retried,
        Self::Verified,
        Self::RenewalNoticeSent,
        Self::InvitationResent,
        Self::RenewalNoticeNotSent,
        Self::RemovedFromGroups,
        Self::RemovalFailed,
        Self::AccessExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Queued => "queued",
            Self::Resent => "resent",
            Self::Started => "started",
            Self::InvitationSent => "invitation_sent",
            Self::AddedToGroups => "added_to_groups",
            Self::Invited => "invited",
            Self::HandedBack => "handed_back",
            Self::Failed => "failed",
            Self::Poisoned => "poisoned",
            Self::Retried => "retried",
            Self::Verified => "verified",
            Self::RenewalNoticeSent => "renewal_notice_sent",
            Self::InvitationResent => "invitation_resent",
            Self::RenewalNoticeNotSent => "renewal_notice_not_sent",
            Self::RemovedFromGroups => "removed_from_groups",
            Self::RemovalFailed => "removal_failed",
            Self::AccessExpired => "access_expired",
        }
    }
}

impl fmt::Display for HistoryAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HistoryAction {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or(())
    }
}

/// One change of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub action: HistoryAction,
    /// The status before; `None` for the entry that created the request.
    pub from: Option<RequestStatus>,
    /// The status after (the same as `from` for a step inside one status, such as
    /// [`HistoryAction::InvitationSent`]).
    pub to: RequestStatus,
    /// Why, when there is more to say than the action: the administrator's reason, Graph's
    /// error, what a dry run skipped. At most [`MAX_REASON_CHARS`].
    pub reason: Option<String>,
}

/// The entries of one request, oldest first. Only appended to ([`History::append`], through
/// [`super::SignupRequest::transition`]); nothing edits or removes an entry except the bound,
/// which drops the oldest after the first and counts them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    entries: Vec<HistoryEntry>,
    /// Entries dropped to keep the row within Table Storage's limits (column `HistoryDropped`).
    dropped: u32,
}

/// Why a stored history cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("not a JSON array of history entries")]
    NotJson,
    #[error("entry {index}: {field} is not valid")]
    Entry { index: usize, field: &'static str },
}

/// An entry as stored: the JSON object `{"at","actor","action","from","to","reason"}`, every
/// value text (or `null`), so any table reader can show it; the admin API and the command
/// line show it so too.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: Option<String>,
}

impl StoredEntry {
    pub fn of(entry: &HistoryEntry) -> Self {
        Self {
            at: rfc3339(entry.at),
            actor: entry.actor.to_string(),
            action: entry.action.as_str().to_owned(),
            from: entry.from.map(|status| status.as_str().to_owned()),
            to: entry.to.as_str().to_owned(),
            reason: entry.reason.clone(),
        }
    }

    fn into_entry(self, index: usize) -> Result<HistoryEntry, HistoryError> {
        let invalid = |field| HistoryError::Entry { index, field };
        Ok(HistoryEntry {
            at: OffsetDateTime::parse(&self.at, &Rfc3339).map_err(|_| invalid("at"))?,
            actor: Actor::from_text(&self.actor),
            action: self.action.parse().map_err(|()| invalid("action"))?,
            from: self
                .from
                .map(|from| from.parse().map_err(|()| invalid("from")))
                .transpose()?,
            to: self.to.parse().map_err(|()| invalid("to"))?,
            reason: self.reason,
        })
    }
}

impl History {
    /// The history of a new request: its `created` entry.
    pub fn of_new(to: RequestStatus, actor: Actor, at: OffsetDateTime) -> Self {
        let mut history = Self::default();
        history.append(HistoryEntry {
            at,
            actor,
            action: HistoryAction::Created,
            from: None,
            to,
            reason: None,
        });
        history
    }

    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// How many entries after the first were dropped by the bound.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Whether changes before the first entry went unrecorded: the row was written before
    /// history existed (no entries at all, or none that created it).
    pub fn predates_history(&self) -> bool {
        self.entries
            .first()
            .is_none_or(|first| first.action != HistoryAction::Created)
    }

    /// Adds `entry` at the end, its reason and actor cut to the bound, then drops the oldest
    /// entries after the first while there are more than [`MAX_ENTRIES`] or their JSON is
    /// over [`MAX_STORED_UNITS`].
    pub(super) fn append(&mut self, mut entry: HistoryEntry) {
        entry.reason = entry
            .reason
            .map(|reason| cut(&reason, MAX_REASON_CHARS).unwrap_or(reason));
        entry.actor = entry.actor.capped();
        self.entries.push(entry);

        // One JSON size per entry; the array adds its brackets and a comma between entries.
        let sizes: Vec<usize> = self.entries.iter().map(stored_units).collect();
        let mut total = sizes
            .iter()
            .fold(1, |total: usize, size| total.saturating_add(size + 1));
        let mut drop = 0;
        while self.entries.len() - drop > 2
            && (self.entries.len() - drop > MAX_ENTRIES || total > MAX_STORED_UNITS)
        {
            drop += 1;
            total = total.saturating_sub(sizes[drop] + 1);
        }
        if drop > 0 {
            self.entries.drain(1..=drop);
            self.dropped = self
                .dropped
                .saturating_add(u32::try_from(drop).unwrap_or(u32::MAX));
        }
    }

    /// The stored form: a JSON array of [`StoredEntry`] objects. `None` for no entries (a
    /// row from before history existed keeps having no `History` column).
    pub fn to_json(&self) -> Result<Option<String>, serde_json::Error> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let stored: Vec<StoredEntry> = self.entries.iter().map(StoredEntry::of).collect();
        serde_json::to_string(&stored).map(Some)
    }

    /// Reads the stored form back; no `History` column is an empty history.
    pub fn from_json(json: Option<&str>, dropped: u32) -> Result<Self, HistoryError> {
        let Some(json) = json else {
            return Ok(Self {
                entries: Vec::new(),
                dropped,
            });
        };
        let stored: Vec<StoredEntry> =
            serde_json::from_str(json).map_err(|_| HistoryError::NotJson)?;
        let entries = stored
            .into_iter()
            .enumerate()
            .map(|(index, entry)| entry.into_entry(index))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries, dropped })
    }
}

/// The UTF-16 units `entry` takes in the stored JSON; an entry that cannot be written counts
/// as too big, so the bound drops it rather than let the row outgrow the limit.
fn stored_units(entry: &HistoryEntry) -> usize {
    serde_json::to_string(&StoredEntry::of(entry))
        .map_or(usize::MAX / 2, |json| json.encode_utf16().count())
}

/// `text` cut to `max` characters, the last one `…`; `None` when it is short enough.
fn cut(text: &str, max: usize) -> Option<String> {
    text.chars().nth(max)?;
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    Some(kept + "…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-11-24 10:00:00.25 UTC);

    fn entry(action: HistoryAction, reason: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            at: AT,
            actor: Actor::Worker,
            action,
            from: Some(RequestStatus::Inviting),
            to: RequestStatus::Invited,
            reason: reason.map(str::to_owned),
        }
    }

    fn stored_size(history: &History) -> usize {
        history
            .to_json()
            .unwrap()
            .unwrap_or_default()
            .encode_utf16()
            .count()
    }

    #[test]
    fn actions_are_stored_as_snake_case_and_read_back() {
        for action in HistoryAction::ALL {
            assert_eq!(action.as_str().parse(), Ok(action));
            assert!(
                action
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{action}"
            );
        }
        assert_eq!("Created".parse::<HistoryAction>(), Err(()));
    }

    #[test]
    fn actors_are_written_as_the_contract_says_and_read_back() {
        let cases = [
            (Actor::Partner, "partner"),
            (Actor::Worker, "worker"),
            (Actor::Reconcile, "reconcile"),
            (Actor::System, "system"),
            (
                Actor::Administrator(Decider::Cli("alice".into())),
                "cli:alice",
            ),
            (
                Actor::Administrator(Decider::Named("admin@contoso.com".into())),
                "admin@contoso.com",
            ),
        ];
        for (actor, text) in cases {
            assert_eq!(actor.to_string(), text);
            assert_eq!(Actor::from_text(text), actor, "{text}");
        }
    }

    #[test]
    fn the_stored_form_is_the_documented_json_and_reads_back() {
        let mut history = History::of_new(RequestStatus::Accepted, Actor::Partner, AT);
        history.append(entry(HistoryAction::Invited, Some("dry run: \"x\"")));
        let json = history.to_json().unwrap().unwrap();
        assert_eq!(
            json,
            r#"[{"at":"2026-11-24T10:00:00.25Z","actor":"partner","action":"created","from":null,"to":"Accepted","reason":null},{"at":"2026-11-24T10:00:00.25Z","actor":"worker","action":"invited","from":"Inviting","to":"Invited","reason":"dry run: \"x\""}]"#
        );
        assert_eq!(History::from_json(Some(&json), 0), Ok(history));
        assert!(History::from_json(None, 0).unwrap().predates_history());
        assert_eq!(History::default().to_json().unwrap(), None);
    }

    #[test]
    fn stored_entries_that_are_not_this_version_s_do_not_read() {
        let cases = [
            ("not JSON", "history", HistoryError::NotJson),
            ("an object", "{}", HistoryError::NotJson),
            (
                "unknown action",
                r#"[{"at":"2026-11-24T10:00:00Z","actor":"worker","action":"unheard_of","from":null,"to":"Accepted","reason":null}]"#,
                HistoryError::Entry {
                    index: 0,
                    field: "action",
                },
            ),
            (
                "bad time",
                r#"[{"at":"yesterday","actor":"worker","action":"created","from":null,"to":"Accepted","reason":null}]"#,
                HistoryError::Entry {
                    index: 0,
                    field: "at",
                },
            ),
            (
                "unknown status",
                r#"[{"at":"2026-11-24T10:00:00Z","actor":"worker","action":"created","from":"Nope","to":"Accepted","reason":null}]"#,
                HistoryError::Entry {
                    index: 0,
                    field: "from",
                },
            ),
        ];
        for (description, json, error) in cases {
            assert_eq!(
                History::from_json(Some(json), 0),
                Err(error),
                "{description}"
            );
        }
    }

    #[test]
    fn long_reasons_and_actors_are_cut_with_an_ellipsis() {
        let mut history = History::default();
        let long = "é".repeat(MAX_REASON_CHARS + 50);
        history.append(entry(HistoryAction::Failed, Some(&long)));
        history.append(HistoryEntry {
            actor: Actor::Administrator(Decider::Named("a".repeat(1_000))),
            ..entry(HistoryAction::Approved, Some(&"b".repeat(MAX_REASON_CHARS)))
        });
        let [failed, approved] = history.entries() else {
            panic!("two entries")
        };
        let reason = failed.reason.as_deref().unwrap();
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
        assert!(reason.ends_with("é…"), "{reason}");
        assert_eq!(
            approved.reason.as_deref(),
            Some("b".repeat(MAX_REASON_CHARS).as_str()),
            "a reason of exactly the bound is kept whole"
        );
        let actor = approved.actor.to_string();
        assert_eq!(actor.chars().count(), MAX_ACTOR_CHARS);
        assert!(actor.ends_with('…'));
    }

    #[test]
    fn past_the_bound_the_first_and_latest_entries_stay_and_the_rest_are_counted() {
        let mut history = History::of_new(RequestStatus::Accepted, Actor::Partner, AT);
        for n in 0..250 {
            history.append(entry(HistoryAction::HandedBack, Some(&format!("try {n}"))));
        }
        let entries = history.entries();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries[0].action, HistoryAction::Created);
        assert_eq!(entries[1].reason.as_deref(), Some("try 151"));
        assert_eq!(entries[MAX_ENTRIES - 1].reason.as_deref(), Some("try 249"));
        assert_eq!(history.dropped(), 151);
        assert!(!history.predates_history());
    }

    #[test]
    fn the_stored_json_stays_under_the_table_limit_whatever_the_entries_hold() {
        // The worst case for size: every reason and actor made of characters JSON writes
        // as `\uXXXX` (six units each), and characters outside the BMP (two units each).
        for filler in ["\u{1}", "😀", "\""] {
            let mut history = History::of_new(RequestStatus::Accepted, Actor::Partner, AT);
            for _ in 0..MAX_ENTRIES * 2 {
                history.append(HistoryEntry {
                    actor: Actor::Administrator(Decider::Named(filler.repeat(5_000))),
                    ..entry(HistoryAction::Denied, Some(&filler.repeat(5_000)))
                });
                let size = stored_size(&history);
                assert!(size <= MAX_STORED_UNITS, "{filler:?}: {size}");
            }
            assert!(
                history.entries().len() >= 2,
                "the first and the latest stay"
            );
            assert_eq!(history.entries()[0].action, HistoryAction::Created);
            assert!(history.dropped() > 0);
            // Dropped entries are counted exactly: kept + dropped = appended.
            assert_eq!(
                history.entries().len() + history.dropped() as usize,
                MAX_ENTRIES * 2 + 1
            );
        }
    }
}
