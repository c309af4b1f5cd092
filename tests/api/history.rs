//! Request history: every change of a request leaves one entry, stored with the change in the
//! request's own row, and the administrator's reason survives the worker.

use b2b_signup::{
    domain::{
        Actor, EmailDomain, HistoryAction, MAX_ENTRIES, MAX_REASON_CHARS, RequestId, RequestStatus,
    },
    storage::{RequestStore, StoreError},
};
use serde_json::json;

use crate::{
    admin::stdout,
    helpers::{TestApp, changes, spawn_app},
};

impl TestApp {
    /// The message intake sent for request `id`, as the worker receives it.
    async fn message_for(&self, id: &str) -> String {
        let message = self
            .queued_messages()
            .await
            .into_iter()
            .rfind(|m| m.request_id == id)
            .expect("a message for the request");
        serde_json::to_string(&message).unwrap()
    }

    /// Approves or denies over the admin API as the administrator signed in as `by`.
    async fn decide_named(&self, id: &str, decision: &str, by: &str, reason: &str) {
        let who = test_support::identity::Signer {
            username: by,
            object_id: crate::helpers::ADMIN.object_id,
        };
        let response = self
            .http
            .post(format!("{}/api/requests/{id}/{decision}", self.address))
            .header("authorization", self.bearer(&who, crate::helpers::APPROVE))
            .json(&json!({ "reason": reason }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{decision} {id}");
    }
}

#[tokio::test]
async fn a_dry_run_sign_up_records_created_started_and_invited_in_order() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(changes(&row), ["partner created (new)→Accepted"]);
    assert_eq!(row.history.entries()[0].at, row.created_at);

    let (status, _) = app
        .invoke("InviteQueue", &app.message_for(&id).await, 1)
        .await;

    assert_eq!(status, 200);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→Accepted",
            "worker started Accepted→Inviting",
            "worker invited Inviting→Invited",
        ]
    );
    let entries = row.history.entries();
    assert_eq!(entries[1].reason.as_deref(), Some("attempt 1"));
    assert_eq!(entries[2].reason, row.reason, "the outcome, as in Reason");
    assert!(
        entries[2]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("dry run: nothing sent")
    );
    assert!(entries.windows(2).all(|pair| pair[0].at <= pair[1].at));
    assert_eq!(entries[2].at, row.updated_at);
    assert_eq!(row.history.dropped(), 0);
}

#[tokio::test]
async fn an_approver_s_reason_survives_the_worker_in_decision_reason_and_history() {
    // The reported bug: approve with a reason, and a second later `show` said only
    // "dry run: nothing sent…", the worker having reused `Reason`.
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    let approved = stdout(&app.cli(&["requests", "approve", &id, "--reason", "Known partner"]));
    assert!(approved.contains("now Queued"), "{approved}");

    let (status, _) = app
        .invoke("InviteQueue", &app.message_for(&id).await, 1)
        .await;

    assert_eq!(status, 200);
    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(row.decision_reason.as_deref(), Some("Known partner"));
    assert!(row.reason.as_deref().unwrap().starts_with("dry run"));
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→PendingApproval",
            "local:carol approved PendingApproval→Accepted",
            "local:carol queued Accepted→Queued",
            "worker started Queued→Inviting",
            "worker invited Inviting→Invited",
        ]
    );
    assert_eq!(
        row.history.entries()[1].reason.as_deref(),
        Some("Known partner")
    );

    let shown = stdout(&app.cli(&["requests", "show", &id]));
    assert!(shown.contains("DecisionReason  Known partner\n"), "{shown}");
    assert!(
        shown.contains("Reason          dry run: nothing sent"),
        "{shown}"
    );
    let approval_line = shown
        .lines()
        .find(|line| line.contains(" approved "))
        .unwrap_or_else(|| panic!("no approval in the history:\n{shown}"));
    assert!(
        approval_line.starts_with("  20")
            && approval_line.contains("local:carol")
            && approval_line.contains("PendingApproval → Accepted")
            && approval_line.ends_with("Known partner"),
        "{approval_line}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&app.cli(&["requests", "show", &id, "--json"]))).unwrap();
    assert_eq!(json["decisionReason"], "Known partner");
    assert_eq!(json["history"].as_array().unwrap().len(), 5);
    assert_eq!(
        json["history"][1],
        json!({
            "at": json["decidedAt"],
            "actor": "local:carol",
            "action": "approved",
            "from": "PendingApproval",
            "to": "Accepted",
            "reason": "Known partner"
        })
    );
    let csv = stdout(&app.cli(&["requests", "export", "--format", "csv"]));
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",RetriedBy,RetriedAt,DecisionReason,History,HistoryDropped,AccessEndsAt,RenewalNoticeAt"),
        "appended after the earlier columns: {header}"
    );
    assert!(csv.contains(",Known partner,\"[{"), "{csv}");
}

#[tokio::test]
async fn a_denial_records_the_administrator_and_the_reason_once() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;

    app.decide_named(&id, "deny", "admin@contoso.com", "not a partner")
        .await;
    // Deciding the same way again changes nothing, so records nothing.
    app.decide_named(&id, "deny", "other@contoso.com", "still not")
        .await;

    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→PendingApproval",
            "admin@contoso.com denied PendingApproval→Denied",
        ]
    );
    assert_eq!(
        row.history.entries()[1].reason.as_deref(),
        Some("not a partner")
    );
    assert_eq!(row.decision_reason.as_deref(), Some("not a partner"));
    assert_eq!(row.reason, None);
}

#[tokio::test]
async fn an_expired_decision_is_recorded_as_the_system_s() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;

    app.time.advance(time::Duration::days(15));
    app.reconcile().await;

    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→PendingApproval",
            "system expired PendingApproval→Denied",
        ]
    );
    assert_eq!(row.history.entries()[1].reason, row.decision_reason);
}

#[tokio::test]
async fn a_poisoned_request_retried_by_an_administrator_is_recorded_to_the_end() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    let message = app.message_for(&id).await;

    app.invoke("InvitePoison", &message, 5).await;
    let out = stdout(&app.cli(&["requests", "retry", &id]));
    assert!(out.contains("retried, now Queued"), "{out}");
    app.invoke("InviteQueue", &app.message_for(&id).await, 1)
        .await;

    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→Accepted",
            "worker poisoned Accepted→Failed",
            "local:carol retried Failed→Accepted",
            "local:carol queued Accepted→Queued",
            "worker started Queued→Inviting",
            "worker invited Inviting→Invited",
        ]
    );
    let entries = row.history.entries();
    assert!(
        entries[1]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("poisoned after 0 attempts"),
        "{:?}",
        entries[1]
    );
    assert_eq!(entries[4].reason.as_deref(), Some("attempt 1"));
}

#[tokio::test]
async fn messages_sent_again_are_recorded_with_who_sent_them() {
    let app = spawn_app().await;
    // Both rows stay Accepted, as when their messages were lost.
    let (by_reconcile, _) = app.sign_up("ada@contoso.com").await;
    let (by_partner, _) = app.sign_up("grace@contoso.com").await;

    // A repeat sign-up after 30 s sends its request again.
    app.time.advance(time::Duration::seconds(31));
    app.sign_up("grace@contoso.com").await;
    // Reconcile sends the other once it is older than the lease.
    app.time.advance(time::Duration::minutes(3));
    app.reconcile().await;

    let row = app.row("contoso.com", &by_reconcile).await.unwrap();
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→Accepted",
            "reconcile resent Accepted→Queued",
        ]
    );
    let row = app.row("contoso.com", &by_partner).await.unwrap();
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→Accepted",
            "partner resent Accepted→Queued",
        ]
    );
}

#[tokio::test]
async fn a_change_that_loses_its_etag_race_leaves_no_entry() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    let (domain, id) = (
        EmailDomain::parse("contoso.com").unwrap(),
        RequestId::parse(&id).unwrap(),
    );
    let first = app.store.get(&domain, &id).await.unwrap().unwrap();
    let second = app.store.get(&domain, &id).await.unwrap().unwrap();
    let now = app.time.now();

    let mut winner = first.value.clone();
    winner.transition(
        RequestStatus::Inviting,
        Actor::Worker,
        HistoryAction::Started,
        Some("the winner".into()),
        now,
    );
    app.store.replace(&winner, &first.etag).await.unwrap();
    let mut loser = second.value.clone();
    loser.transition(
        RequestStatus::Queued,
        Actor::Reconcile,
        HistoryAction::Resent,
        Some("the loser".into()),
        now,
    );
    let lost = app.store.replace(&loser, &second.etag).await;

    assert!(matches!(lost, Err(StoreError::Conflict)), "{lost:?}");
    let row = app.store.get(&domain, &id).await.unwrap().unwrap().value;
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→Accepted",
            "worker started Accepted→Inviting",
        ]
    );
    assert_eq!(
        row.history.entries()[1].reason.as_deref(),
        Some("the winner")
    );
}

#[tokio::test]
async fn a_row_written_before_history_existed_reads_and_shows_so() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    app.remove_columns("fabrikam.com", &id, &["History", "DecisionReason"])
        .await;

    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert!(row.history.entries().is_empty());
    assert!(row.history.predates_history());
    let shown = stdout(&app.cli(&["requests", "show", &id]));
    assert!(
        shown.contains("History\n  no history recorded (row written before history existed)\n"),
        "{shown}"
    );

    // Its next change starts its history, and `show` says what came before is missing.
    app.decide_named(&id, "approve", "admin@contoso.com", "vetted")
        .await;
    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(
        changes(&row),
        [
            "admin@contoso.com approved PendingApproval→Accepted",
            "admin@contoso.com queued Accepted→Queued",
        ]
    );
    let shown = stdout(&app.cli(&["requests", "show", &id]));
    assert!(
        shown
            .contains("(earlier changes not recorded: the row was written before history existed)"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_long_history_is_bounded_and_still_stored_and_read() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    let (domain, id) = (
        EmailDomain::parse("contoso.com").unwrap(),
        RequestId::parse(&id).unwrap(),
    );
    // Far more hand-backs than a request ever sees, each with a long reason of characters
    // JSON escapes (six UTF-16 units each): unbounded, the column would be ~1.3 MB.
    let long = "\u{1}".repeat(2 * MAX_REASON_CHARS);
    let mut row = app.store.get(&domain, &id).await.unwrap().unwrap();
    for attempt in 0..3 {
        for _ in 0..MAX_ENTRIES {
            row.value.transition(
                RequestStatus::Queued,
                Actor::Worker,
                HistoryAction::HandedBack,
                Some(format!("{attempt}{long}")),
                app.time.now(),
            );
        }
        app.store.replace(&row.value, &row.etag).await.unwrap();
        row = app.store.get(&domain, &id).await.unwrap().unwrap();
    }

    let history = &row.value.history;
    let entries = history.entries();
    assert_eq!(entries[0].action, HistoryAction::Created, "the first stays");
    assert!(entries.len() <= MAX_ENTRIES);
    assert_eq!(
        entries.len() + history.dropped() as usize,
        1 + 3 * MAX_ENTRIES
    );
    let last = entries.last().unwrap().reason.as_deref().unwrap();
    assert!(last.starts_with('2') && last.ends_with('…'), "{last:?}");
    assert_eq!(last.chars().count(), MAX_REASON_CHARS);
    let shown = stdout(&app.cli(&["requests", "show", &id.to_string()]));
    assert!(
        shown.contains(&format!(
            "  … {} older entries dropped to keep the row within Table Storage's size limit",
            history.dropped()
        )),
        "{shown}"
    );
}
