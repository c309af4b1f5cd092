//! A request as administrators read it: the JSON of `list --json` and `show --json`, and the
//! named columns of `show` and the CSV export.

use serde::{Deserialize, Serialize};

use crate::{
    clock::rfc3339,
    domain::{Decider, SignupRequest},
};

/// Every recorded field, as text; the admin API answers with it, so the command line reads
/// it back from there too.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct View {
    pub(super) request_id: String,
    status: String,
    email: String,
    display_name: String,
    domain: String,
    access: String,
    company: Option<String>,
    justification: Option<String>,
    reason: Option<String>,
    attempts: u32,
    invited_user_id: Option<String>,
    graph_request_id: Option<String>,
    created_at: String,
    updated_at: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    decide_by: Option<String>,
    notified_at: Option<String>,
    dry_run: bool,
    retried_by: Option<String>,
    retried_at: Option<String>,
    decision_reason: Option<String>,
    /// Every recorded change, oldest first (the row's `History`).
    history: Vec<EntryView>,
    /// Entries dropped between the first and the rest to keep the row within its size limit.
    history_dropped: u32,
    /// When the guest's access ends (policy `accessDays`; `null`: it does not), and when
    /// the renewal notice was handled. `default`: answers of versions before expiry.
    #[serde(default)]
    access_ends_at: Option<String>,
    #[serde(default)]
    renewal_notice_at: Option<String>,
    /// `true` for a row written before history existed: changes before its first entry
    /// (all of them, if it has none) were not recorded.
    #[serde(skip)]
    pub(super) predates_history: bool,
}

/// One history entry, as the row stores it: `{at, actor, action, from, to, reason}`.
pub(super) type EntryView = crate::domain::StoredEntry;

/// Columns that `show` prints as a section of their own ([`super::table::write_fields`])
/// rather than as a `Name value` line.
pub(super) const SHOWN_APART: [&str; 2] = ["History", "HistoryDropped"];

/// A column of `show` and the CSV export: its name and its text for one request.
type Column = (&'static str, fn(&View) -> String);

/// Every column, in `show` and CSV order: each name written once, here (the CSV header of an
/// export with no rows comes from this list too). New columns go at the end, so a
/// spreadsheet or script reading the export by position keeps working.
const COLUMNS: [Column; 26] = [
    ("RequestId", |v| v.request_id.clone()),
    ("Status", |v| v.status.clone()),
    ("Email", |v| v.email.clone()),
    ("DisplayName", |v| v.display_name.clone()),
    ("Domain", |v| v.domain.clone()),
    ("Access", |v| v.access.clone()),
    ("Company", |v| text(&v.company)),
    ("Justification", |v| text(&v.justification)),
    ("Reason", |v| text(&v.reason)),
    ("Attempts", |v| v.attempts.to_string()),
    ("InvitedUserId", |v| text(&v.invited_user_id)),
    ("GraphRequestId", |v| text(&v.graph_request_id)),
    ("CreatedAt", |v| v.created_at.clone()),
    ("UpdatedAt", |v| v.updated_at.clone()),
    ("DecidedBy", |v| text(&v.decided_by)),
    ("DecidedAt", |v| text(&v.decided_at)),
    ("DecideBy", |v| text(&v.decide_by)),
    ("NotifiedAt", |v| text(&v.notified_at)),
    ("DryRun", |v| v.dry_run.to_string()),
    ("RetriedBy", |v| text(&v.retried_by)),
    ("RetriedAt", |v| text(&v.retried_at)),
    ("DecisionReason", |v| text(&v.decision_reason)),
    // The entries as the JSON array the row stores (under 32,768 characters, so a
    // spreadsheet cell holds it whole).
    ("History", |v| {
        serde_json::to_string(&v.history).unwrap_or_default()
    }),
    ("HistoryDropped", |v| v.history_dropped.to_string()),
    ("AccessEndsAt", |v| text(&v.access_ends_at)),
    ("RenewalNoticeAt", |v| text(&v.renewal_notice_at)),
];

/// An empty cell for a field never set.
fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

impl View {
    pub(crate) fn of(r: &SignupRequest) -> Self {
        Self {
            request_id: r.id.to_string(),
            status: r.status.as_str().to_owned(),
            email: r.email.as_str().to_owned(),
            display_name: r.display_name.as_str().to_owned(),
            domain: r.email.domain().to_string(),
            access: r.access.to_string(),
            company: r.company.as_ref().map(|t| t.as_str().to_owned()),
            justification: r.justification.as_ref().map(|t| t.as_str().to_owned()),
            reason: r.reason.clone(),
            attempts: r.attempts,
            invited_user_id: r.invited_user_id.as_ref().map(ToString::to_string),
            graph_request_id: r.graph_request_id.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            decided_by: r.decided_by.as_ref().map(Decider::to_string),
            decided_at: r.decided_at.map(rfc3339),
            decide_by: r.decide_by.map(rfc3339),
            notified_at: r.notified_at.map(rfc3339),
            dry_run: r.dry_run,
            retried_by: r.retried_by.as_ref().map(Decider::to_string),
            retried_at: r.retried_at.map(rfc3339),
            decision_reason: r.decision_reason.clone(),
            access_ends_at: r.access_ends_at.map(rfc3339),
            renewal_notice_at: r.renewal_notice_at.map(rfc3339),
            history: r.history.entries().iter().map(EntryView::of).collect(),
            history_dropped: r.history.dropped(),
            predates_history: r.history.predates_history(),
        }
    }

    /// The columns of `list`: id, created, status, domain, access, e-mail.
    pub(super) fn summary(&self) -> [&str; 6] {
        [
            &self.request_id,
            &self.created_at,
            &self.status,
            &self.domain,
            &self.access,
            &self.email,
        ]
    }

    pub(super) fn history(&self) -> &[EntryView] {
        &self.history
    }

    pub(super) fn history_dropped(&self) -> u32 {
        self.history_dropped
    }

    /// The column names, in order.
    pub(super) fn names() -> impl Iterator<Item = &'static str> {
        COLUMNS.iter().map(|(name, _)| *name)
    }

    /// Column name and text, in order.
    pub(super) fn fields(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        COLUMNS
            .iter()
            .map(move |(name, value)| (*name, value(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_of_the_json_is_a_column_in_the_same_order() {
        let view = View {
            request_id: "01JDQ3Z6W1T2V3X4Y5Z6A7B8C9".into(),
            status: "Invited".into(),
            email: "grace@fabrikam.com".into(),
            display_name: "Grace".into(),
            domain: "fabrikam.com".into(),
            access: "partner-portal".into(),
            company: None,
            justification: None,
            reason: None,
            attempts: 1,
            invited_user_id: None,
            graph_request_id: None,
            created_at: String::new(),
            updated_at: String::new(),
            decided_by: Some("cli:alice".into()),
            decided_at: None,
            decide_by: None,
            notified_at: None,
            dry_run: false,
            retried_by: None,
            retried_at: None,
            decision_reason: Some("known partner".into()),
            history: Vec::new(),
            history_dropped: 0,
            access_ends_at: None,
            renewal_notice_at: None,
            predates_history: true,
        };
        let json = serde_json::to_value(&view).unwrap();
        let keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        let columns: Vec<String> = View::names()
            .map(|name| {
                let mut chars = name.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        let mut sorted_keys = keys.clone();
        let mut sorted_columns = columns.clone();
        sorted_keys.sort();
        sorted_columns.sort();
        assert_eq!(sorted_columns, sorted_keys, "one column per JSON field");
        assert_eq!(
            view.fields().find(|(name, _)| *name == "DecidedBy"),
            Some(("DecidedBy", "cli:alice".to_owned()))
        );
    }
}
