//! Approvals, the decision deadline, the approval webhook and Reconcile.

use b2b_signup::domain::RequestStatus;
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use test_support::identity::Signer;

use crate::helpers::{
    ADMIN, APPROVE, OTHER_ADMIN, TestApp, assert_problem, default_policy, spawn_app, spawn_app_with,
};

impl TestApp {
    /// A decision by [`ADMIN`], who holds `Signup.Approve`.
    pub async fn decide(
        &self,
        id: &str,
        decision: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        self.decide_as(&ADMIN, id, decision, body).await
    }

    pub async fn decide_as(
        &self,
        who: &Signer<'_>,
        id: &str,
        decision: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/api/requests/{id}/{decision}", self.address))
            .header("authorization", self.bearer(who, APPROVE));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Fires the Reconcile timer the way the host does.
    pub async fn reconcile(&self) {
        let timer = json!({"Schedule": {"AdjustForDST": true}, "IsPastDue": false}).to_string();
        let body =
            json!({"Data": {"timer": timer}, "Metadata": {"sys": {"MethodName": "\"Reconcile\""}}});
        let response = self
            .http
            .post(format!("{}/Reconcile", self.address))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
}

#[tokio::test]
async fn approving_a_pending_request_records_who_and_enqueues_it() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;

    let response = app
        .decide(&id, "approve", Some(json!({"reason": "known partner"})))
        .await;

    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (answer["status"].as_str(), answer["changed"].as_bool()),
        (Some("Queued"), Some(true))
    );
    assert_eq!(answer["decidedBy"], ADMIN.username);
    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Queued);
    assert_eq!(
        (
            row.decided_by.as_ref().map(|by| by.to_string()).as_deref(),
            row.decision_reason.as_deref()
        ),
        (Some(ADMIN.username), Some("known partner"))
    );
    assert_eq!(
        row.decided_by
            .as_ref()
            .and_then(|by| by.object_id())
            .map(|oid| oid.to_string())
            .as_deref(),
        Some(ADMIN.object_id),
        "DecidedById is the token's oid"
    );
    assert_eq!(row.reason, None, "Reason is left to the outcome");
    assert_eq!(answer["reason"], "known partner");
    assert!(row.decided_at.is_some());
    assert_eq!(app.queued_messages().await.len(), 1);

    // Deciding the same way again answers with the state reached and sends nothing.
    let again: serde_json::Value = app.decide(&id, "approve", None).await.json().await.unwrap();
    assert_eq!(again["changed"], false);
    assert_eq!(app.queued_messages().await.len(), 1);
    // The opposite decision is refused, saying what was decided.
    let problem = assert_problem(
        app.decide(&id, "deny", Some(json!({"reason": "changed my mind"})))
            .await,
        409,
        "already_decided",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains(ADMIN.username),
        "{problem}"
    );
}

#[tokio::test]
async fn denying_records_the_reason_and_sends_nothing() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    let response = app
        .http
        .post(format!("{}/api/requests/{id}/deny", app.address))
        .header("authorization", app.bearer(&ADMIN, APPROVE))
        // Names a caller could type are never recorded: only the token's.
        .header("x-ms-client-principal-name", "ceo@contoso.com")
        .header("x-functions-key-name", "ceo")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("reason=not+a+partner")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Denied);
    assert_eq!(
        row.decided_by.map(|by| by.to_string()).as_deref(),
        Some(ADMIN.username)
    );
    assert_eq!(row.decision_reason.as_deref(), Some("not a partner"));
    assert!(app.queued_messages().await.is_empty());
}

#[tokio::test]
async fn unknown_requests_and_decisions_are_404_and_invited_ones_are_not_pending() {
    let app = spawn_app().await;
    assert_problem(
        app.decide("01JDQ3Z6W1T2V3X4Y5Z6A7B8C9", "approve", None)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.decide("not-an-id", "approve", None).await,
        404,
        "not_found",
    )
    .await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    assert_problem(app.decide(&id, "maybe", None).await, 404, "not_found").await;
    let (invited, _) = app.sign_up("ada@contoso.com").await;
    assert_problem(
        app.decide(&invited, "approve", None).await,
        409,
        "not_pending",
    )
    .await;
    let long = "x".repeat(501);
    let problem = assert_problem(
        app.decide(&id, "deny", Some(json!({"reason": long}))).await,
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(problem["field"], "reason");
    // A denial without a reason is refused before anything is read or written.
    let problem = assert_problem(app.decide(&id, "deny", None).await, 400, "invalid_field").await;
    assert_eq!(problem["field"], "reason");
    assert_eq!(
        app.row("fabrikam.com", &id).await.unwrap().status,
        RequestStatus::PendingApproval
    );
}

#[tokio::test]
async fn two_administrators_deciding_at_once_make_one_decision() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;

    // Alice approves five times while Bob denies five times, all at once.
    let deny = json!({"reason": "not a partner"});
    let answers = futures::future::join_all((0..10).map(|i| {
        if i % 2 == 0 {
            app.decide_as(&ADMIN, &id, "approve", None)
        } else {
            app.decide_as(&OTHER_ADMIN, &id, "deny", Some(deny.clone()))
        }
    }))
    .await;

    let mut changed = 0;
    let mut conflicts = 0;
    for answer in answers {
        match answer.status().as_u16() {
            200 => {
                changed += usize::from(
                    answer.json::<serde_json::Value>().await.unwrap()["changed"] == true,
                )
            }
            409 => {
                let problem: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(problem["code"], "already_decided");
                let detail = problem["detail"].as_str().unwrap();
                assert!(
                    detail.contains(ADMIN.username) || detail.contains(OTHER_ADMIN.username),
                    "the loser is told who decided: {detail}"
                );
                conflicts += 1
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(changed, 1, "one decision was made");
    assert_eq!(conflicts, 5, "the five opposite decisions were refused");
    let row = app.row("fabrikam.com", &id).await.unwrap();
    let messages = app.queued_messages().await.len();
    match row.status {
        RequestStatus::Queued => assert_eq!(messages, 1),
        RequestStatus::Denied => assert_eq!(messages, 0),
        other => panic!("unexpected end state {other}"),
    }
}

#[tokio::test]
async fn a_pending_request_past_its_deadline_is_denied_by_reconcile() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(
        (row.decide_by.unwrap() - row.created_at).whole_days(),
        14,
        "the default deadline"
    );

    app.time.advance(time::Duration::days(13));
    app.reconcile().await;
    assert_eq!(
        app.row("fabrikam.com", &id).await.unwrap().status,
        RequestStatus::PendingApproval
    );

    app.time.advance(time::Duration::days(2));
    app.reconcile().await;
    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Denied);
    assert_eq!(
        row.decided_by.map(|by| by.to_string()).as_deref(),
        Some("system")
    );
    assert!(row.decision_reason.unwrap().starts_with("expired"));
}

#[tokio::test]
async fn reconcile_enqueues_a_row_left_accepted_by_a_crash_and_a_stale_invitation() {
    let app = spawn_app().await;
    let (accepted, _) = app.sign_up("ada@contoso.com").await;
    let (inviting, _) = app.sign_up("grace@contoso.com").await;
    app.set_status("contoso.com", &accepted, RequestStatus::Accepted)
        .await;
    app.set_status("contoso.com", &inviting, RequestStatus::Inviting)
        .await;
    let before = app.queued_messages().await.len();

    app.reconcile().await; // too early: nothing to do
    assert_eq!(app.queued_messages().await.len(), before);

    app.time.advance(time::Duration::minutes(3));
    app.reconcile().await;
    assert_eq!(app.queued_messages().await.len(), before + 2);
    for id in [&accepted, &inviting] {
        assert_eq!(
            app.row("contoso.com", id).await.unwrap().status,
            RequestStatus::Queued
        );
    }

    // Marked Queued, they are re-sent once at most until the 30-minute lost-Queued rule.
    app.time.advance(time::Duration::minutes(10));
    app.reconcile().await;
    assert_eq!(app.queued_messages().await.len(), before + 2);
}

#[tokio::test]
async fn the_approval_webhook_is_told_and_retried_after_a_failure() {
    let webhook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&webhook)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&webhook)
        .await;
    let url = reqwest::Url::parse(&format!("{}/hook", webhook.uri())).unwrap();
    let app = spawn_app_with(&default_policy(), move |s| {
        s.approval_webhook = Some(url);
        s.public_base_url = Some("https://signup.example".into());
    })
    .await;

    let (id, _) = app.sign_up("grace.hopper@fabrikam.com").await;
    // The first attempt runs in the background after the 202 and fails.
    for _ in 0..100 {
        if !webhook.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // So does Reconcile's, which the test awaits: the row is read after a failed attempt
    // has finished, not after a guessed pause.
    app.time.advance(time::Duration::minutes(2));
    app.reconcile().await;
    assert_eq!(webhook.received_requests().await.unwrap().len(), 2);
    assert!(
        app.row("fabrikam.com", &id)
            .await
            .unwrap()
            .notified_at
            .is_none(),
        "a failed call is not recorded as sent"
    );

    app.time.advance(time::Duration::minutes(2));
    app.reconcile().await;

    assert!(
        app.row("fabrikam.com", &id)
            .await
            .unwrap()
            .notified_at
            .is_some()
    );
    let received = webhook.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    let text = received[2].body_json::<serde_json::Value>().unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains(&id) && text.contains("fabrikam.com"),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://signup.example/console/#/requests/{id}")),
        "a link to the request in the console: {text}"
    );
    assert!(
        !text.contains("grace.hopper"),
        "no address in the channel: {text}"
    );

    app.reconcile().await;
    assert_eq!(
        webhook.received_requests().await.unwrap().len(),
        3,
        "notified once"
    );
}
