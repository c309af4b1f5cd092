//! The `Lifecycle` timer: renewal notices, the end of access (group removals against a
//! wiremock Graph, through the operator's settings), renewing by signing up again, and
//! retention, with the manual clock.

use b2b_signup::{
    domain::{EmailAddress, HistoryAction, RequestStatus, SignupRequest},
    storage::RequestStore,
};
use serde_json::json;
use time::Duration;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use test_support::entra::{invitation_created, mount_token_endpoint};

use crate::{
    helpers::{
        GROUP_A, GROUP_B, TENANT, TestApp, spawn_app_with_policy, spawn_live_app_with,
        spawn_live_app_with_policy,
    },
    worker::host_payload,
};

pub(crate) const GUEST: &str = "9a0b1c2d-0000-4000-8000-00000000000a";

/// contoso.com is invited for 90 days (renewal 14 days before the end); partner-portal
/// grants group A, sales-extranet groups A and B.
fn expiring_policy() -> String {
    format!(
        r#"{{
        "defaultAction": "deny", "verifyEmail": false,
        "accessOptions": {{
            "partner-portal": {{ "displayName": "Partner portal", "groups": ["{GROUP_A}"] }},
            "sales-extranet": {{ "displayName": "Sales extranet", "groups": ["{GROUP_A}", "{GROUP_B}"] }}
        }},
        "rules": [
            {{ "domains": ["contoso.com"], "action": "invite", "access": ["sales-extranet", "partner-portal"], "accessDays": 90 }},
            {{ "domains": ["fabrikam.com"], "action": "approve", "access": ["partner-portal"] }}
        ]
    }}"#
    )
}

/// A Graph that invites [`GUEST`] and adds members.
pub(crate) async fn graph() -> MockServer {
    let server = MockServer::start().await;
    mount_token_endpoint(&server, TENANT, "test-access-token").await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(invitation_created(GUEST, "graph-request-1"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1.0/groups/{GROUP_A}/members/$ref")))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1.0/groups/{GROUP_B}/members/$ref")))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    server
}

fn removing(group: &str) -> wiremock::MockBuilder {
    Mock::given(method("DELETE")).and(path(format!("/v1.0/groups/{group}/members/{GUEST}/$ref")))
}

/// Graph answers removals of [`GUEST`] from `group` with `answer`, expecting `times` calls.
async fn answer_removal(graph: &MockServer, group: &str, answer: ResponseTemplate, times: u64) {
    removing(group)
        .respond_with(answer)
        .expect(times)
        .mount(graph)
        .await;
}

/// Graph's error answer: `status` with `code`.
fn graph_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"code": code, "message": "from the mock"}}))
}

impl TestApp {
    /// Fires the Lifecycle timer the way the host does; the answer's status.
    pub async fn lifecycle(&self) -> u16 {
        let timer = json!({"Schedule": {"AdjustForDST": true}, "IsPastDue": false}).to_string();
        let body =
            json!({"Data": {"timer": timer}, "Metadata": {"sys": {"MethodName": "\"Lifecycle\""}}});
        self.http
            .post(format!("{}/Lifecycle", self.address))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn sign_up_for(&self, email: &str, access: &str) -> reqwest::Response {
        self.post_json(
            &json!({"email": email, "displayName": "Ada Lovelace", "access": access}).to_string(),
        )
        .await
    }

    /// Signs up and delivers the invitation message: the request ends `Invited`.
    pub(crate) async fn invited(&self, email: &str, access: &str) -> SignupRequest {
        let response = self.sign_up_for(email, access).await;
        assert_eq!(response.status(), 202);
        let id = response.json::<serde_json::Value>().await.unwrap()["requestId"]
            .as_str()
            .unwrap()
            .to_owned();
        let message = json!({"v": 1, "requestId": id, "domain": "contoso.com"}).to_string();
        let status = self
            .http
            .post(format!("{}/InviteQueue", self.address))
            .body(host_payload(&message, 1))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        let row = self.row("contoso.com", &id).await.unwrap();
        assert_eq!(row.status, RequestStatus::Invited, "{:?}", row.reason);
        row
    }
}

/// A live app with the expiring policy, and the id of ada@contoso.com's request for
/// `access`, `Invited`.
async fn live_invited(graph: &MockServer, access: &str) -> (TestApp, String) {
    let app = spawn_live_app_with_policy(graph, &expiring_policy()).await;
    let id = app.invited("ada@contoso.com", access).await.id.to_string();
    (app, id)
}

fn actions(request: &SignupRequest) -> Vec<HistoryAction> {
    request.history.entries().iter().map(|e| e.action).collect()
}

fn count(request: &SignupRequest, action: HistoryAction) -> usize {
    actions(request).iter().filter(|a| **a == action).count()
}

#[tokio::test]
async fn an_invited_request_records_when_its_access_ends() {
    let graph = graph().await;
    let app = spawn_live_app_with_policy(&graph, &expiring_policy()).await;

    let row = app.invited("ada@contoso.com", "sales-extranet").await;

    let invited_at = row.updated_at;
    assert_eq!(row.access_ends_at, Some(invited_at + Duration::days(90)));
    assert_eq!(row.renewal_opens_at, Some(invited_at + Duration::days(76)));
    assert_eq!(row.renewal_notice_at, None);
}

#[tokio::test]
async fn the_renewal_notice_is_handled_once_and_says_no_mail_is_configured() {
    let graph = graph().await;
    let app = spawn_live_app_with_policy(&graph, &expiring_policy()).await;
    let row = app.invited("ada@contoso.com", "sales-extranet").await;
    let id = row.id.to_string();

    app.time.advance(Duration::days(75));
    assert_eq!(app.lifecycle().await, 200);
    let before = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(
        before.renewal_notice_at, None,
        "not yet in the renewal window"
    );

    app.time.advance(Duration::days(2));
    assert_eq!(app.lifecycle().await, 200);
    assert_eq!(app.lifecycle().await, 200);

    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert!(row.renewal_notice_at.is_some());
    assert_eq!(count(&row, HistoryAction::RenewalNoticeNotSent), 1);
    let entry = row.history.entries().last().unwrap();
    assert_eq!(entry.actor.to_string(), "system");
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap()
            .contains("no mail is configured")
    );
}

/// With mail configured, the notice goes to the guest once, in the sign-up's language,
/// naming the organisation, the end and the page to sign up again on.
#[tokio::test]
async fn with_mail_the_renewal_notice_is_mailed_once() {
    let graph = graph().await;
    let acs = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/emails:send"))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({"id": "x", "status": "Running"})),
        )
        .mount(&acs)
        .await;
    let uri = acs.uri();
    let mail = b2b_signup::mail::MailOptions::from_lookup(&|name: &str| match name {
        "SIGNUP_MAIL_ENDPOINT" => Some(uri.clone()),
        "SIGNUP_MAIL_SENDER" => Some("DoNotReply@contoso.example".into()),
        "SIGNUP_MAIL_ACCESS_KEY" => Some("bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1hLXNlY3JldA==".into()),
        "SIGNUP_ORG_NAME" => Some("Contoso Ltd".into()),
        _ => None,
    })
    .unwrap();
    let app = spawn_live_app_with(&graph, &expiring_policy(), move |settings| {
        settings.mail = mail;
        settings.site_url =
            b2b_signup::site_base::SiteBase::parse("http://127.0.0.1:9/site/").unwrap();
    })
    .await;
    let row = app.invited("ada@contoso.com", "sales-extranet").await;

    app.time.advance(Duration::days(77));
    assert_eq!(app.lifecycle().await, 200);
    assert_eq!(app.lifecycle().await, 200);

    let row = app.row("contoso.com", &row.id.to_string()).await.unwrap();
    assert_eq!(count(&row, HistoryAction::RenewalNoticeSent), 1);
    // Besides the "approved" mail sent when the request was invited.
    let notices: Vec<serde_json::Value> = acs
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
        .filter(|mail| {
            mail["content"]["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Your access to Contoso Ltd ends on "))
        })
        .collect();
    assert_eq!(notices.len(), 1, "one notice, however many passes");
    let mail = &notices[0];
    assert_eq!(mail["recipients"]["to"][0]["address"], "ada@contoso.com");
    let text = mail["content"]["plainText"].as_str().unwrap();
    assert!(
        text.contains(&row.id.to_string()) && text.contains("http://127.0.0.1:9/site/"),
        "{text}"
    );
}

#[tokio::test]
async fn at_the_end_the_guest_is_removed_from_its_groups_once_and_the_request_expires() {
    let graph = graph().await;
    answer_removal(&graph, GROUP_A, ResponseTemplate::new(204), 1).await;
    // Already gone from B (removed by hand): Graph's 404 is success.
    answer_removal(
        &graph,
        GROUP_B,
        graph_error(404, "Request_ResourceNotFound"),
        1,
    )
    .await;
    let (app, id) = live_invited(&graph, "sales-extranet").await;

    app.time.advance(Duration::days(89));
    assert_eq!(app.lifecycle().await, 200);
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Invited
    );

    app.time.advance(Duration::days(2));
    assert_eq!(app.lifecycle().await, 200);
    assert_eq!(
        app.lifecycle().await,
        200,
        "a second pass removes nothing again"
    );

    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Expired);
    assert_eq!(count(&row, HistoryAction::RemovedFromGroups), 1);
    assert_eq!(count(&row, HistoryAction::AccessExpired), 1);
    let removed = row
        .history
        .entries()
        .iter()
        .find(|e| e.action == HistoryAction::RemovedFromGroups)
        .unwrap();
    assert_eq!(
        removed.reason.as_deref(),
        Some(format!("removed from groups {GROUP_A}, {GROUP_B}").as_str())
    );
    // The notice was owed too, once, before the end.
    assert_eq!(count(&row, HistoryAction::RenewalNoticeNotSent), 1);
}

#[tokio::test]
async fn a_pass_that_stops_half_way_is_finished_by_the_next_without_a_second_removal() {
    let graph = graph().await;
    // A removed at the first pass; B fails (Graph 500) so the pass stops before the mark.
    removing(GROUP_A)
        .respond_with(ResponseTemplate::new(204))
        .up_to_n_times(1)
        .expect(1)
        .mount(&graph)
        .await;
    removing(GROUP_B)
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&graph)
        .await;
    let (app, id) = live_invited(&graph, "sales-extranet").await;
    app.time.advance(Duration::days(91));

    assert_eq!(app.lifecycle().await, 200);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited, "left for the next pass");
    assert_eq!(count(&row, HistoryAction::RemovedFromGroups), 0);

    // The next pass: A answers "not a member" (it was removed), B is removed now.
    answer_removal(&graph, GROUP_A, ResponseTemplate::new(404), 1).await;
    answer_removal(&graph, GROUP_B, ResponseTemplate::new(204), 1).await;
    assert_eq!(app.lifecycle().await, 200);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Expired);
    assert_eq!(count(&row, HistoryAction::RemovedFromGroups), 1);
}

#[tokio::test]
async fn a_refused_removal_is_recorded_once_and_the_request_stays_invited() {
    let graph = graph().await;
    answer_removal(
        &graph,
        GROUP_A,
        graph_error(403, "Authorization_RequestDenied"),
        2,
    )
    .await;
    let (app, id) = live_invited(&graph, "partner-portal").await;
    app.time.advance(Duration::days(91));

    assert_eq!(app.lifecycle().await, 200);
    assert_eq!(app.lifecycle().await, 200);

    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(count(&row, HistoryAction::RemovalFailed), 1);
    assert!(row.reason.unwrap().contains("Authorization_RequestDenied"));
}

#[tokio::test]
async fn renewing_is_signing_up_again_and_keeps_the_groups_the_new_request_grants() {
    let graph = graph().await;
    // The first request granted A and B; the renewal grants A only: only B is removed.
    answer_removal(&graph, GROUP_B, ResponseTemplate::new(204), 1).await;
    answer_removal(&graph, GROUP_A, ResponseTemplate::new(204), 0).await;
    let app = spawn_live_app_with_policy(&graph, &expiring_policy()).await;
    let old = app.invited("ada@contoso.com", "sales-extranet").await;

    // Before the renewal window, signing up again answers with the request that exists.
    let repeat = app.sign_up_for("ada@contoso.com", "partner-portal").await;
    let repeat: serde_json::Value = repeat.json().await.unwrap();
    assert_eq!(repeat["requestId"], old.id.to_string());

    // Inside it, a new request starts, goes through the rule and carries the new end.
    app.time.advance(Duration::days(80));
    let renewed = app.invited("ada@contoso.com", "partner-portal").await;
    assert_ne!(renewed.id, old.id);
    assert_eq!(
        renewed.access_ends_at,
        Some(renewed.updated_at + Duration::days(90))
    );

    app.time.advance(Duration::days(11));
    assert_eq!(app.lifecycle().await, 200);

    let old = app.row("contoso.com", &old.id.to_string()).await.unwrap();
    assert_eq!(old.status, RequestStatus::Expired);
    let removed = old
        .history
        .entries()
        .iter()
        .find(|e| e.action == HistoryAction::RemovedFromGroups)
        .unwrap();
    let reason = removed.reason.as_deref().unwrap();
    assert!(
        reason.starts_with(&format!(
            "removed from groups {GROUP_B}; kept {GROUP_A} for the newer request {}",
            renewed.id
        )),
        "{reason}"
    );
    let renewed = app
        .row("contoso.com", &renewed.id.to_string())
        .await
        .unwrap();
    assert_eq!(renewed.status, RequestStatus::Invited);
}

#[tokio::test]
async fn an_old_request_waits_while_its_renewal_is_on_its_way_to_the_worker() {
    let graph = graph().await;
    answer_removal(&graph, GROUP_A, ResponseTemplate::new(204), 0).await;
    let app = spawn_live_app_with_policy(&graph, &expiring_policy()).await;
    let old = app.invited("ada@contoso.com", "partner-portal").await;
    app.time.advance(Duration::days(85));
    // Signed up again; the message is not delivered yet (the row stays Accepted).
    assert_eq!(
        app.sign_up_for("ada@contoso.com", "partner-portal")
            .await
            .status(),
        202
    );
    app.time.advance(Duration::days(6));

    assert_eq!(app.lifecycle().await, 200);

    let old = app.row("contoso.com", &old.id.to_string()).await.unwrap();
    assert_eq!(
        old.status,
        RequestStatus::Invited,
        "postponed to the next pass"
    );
}

#[tokio::test]
async fn retention_deletes_old_finished_requests_with_their_claims_and_never_a_live_one() {
    let app = spawn_app_with_policy(&expiring_policy()).await;
    // Dry run: sign-ups stay Accepted (no worker runs) or PendingApproval.
    let mut ids = Vec::new();
    for (email, status) in [
        ("denied@contoso.com", Some(RequestStatus::Denied)),
        ("failed@contoso.com", Some(RequestStatus::Failed)),
        ("expired@contoso.com", Some(RequestStatus::Expired)),
        ("invited@contoso.com", Some(RequestStatus::Invited)),
        ("accepted@contoso.com", None),
        ("pending@fabrikam.com", None),
    ] {
        let (id, _) = app.sign_up(email).await;
        let domain = email.split('@').nth(1).unwrap();
        if let Some(status) = status {
            app.set_status(domain, &id, status).await;
        }
        ids.push((email, domain, id, status));
    }
    // Within the retention period nothing goes.
    app.time.advance(Duration::days(364));
    assert_eq!(app.lifecycle().await, 200);
    for (_, domain, id, _) in &ids {
        assert!(app.row(domain, id).await.is_some());
    }

    app.time.advance(Duration::days(2));
    assert_eq!(app.lifecycle().await, 200);
    assert_eq!(
        app.lifecycle().await,
        200,
        "a second pass finds nothing more"
    );

    for (email, domain, id, status) in &ids {
        let row = app.row(domain, id).await;
        let finished = status.is_some_and(RequestStatus::is_finished);
        assert_eq!(row.is_none(), finished, "{email}");
    }
    // The claims went with the rows; a live request keeps its claim (a repeat sign-up is
    // answered with it).
    for (email, _, _, status) in &ids {
        let claim = app
            .store
            .claim_of(&EmailAddress::parse(email).unwrap())
            .await
            .unwrap();
        let finished = status.is_some_and(RequestStatus::is_finished);
        assert_eq!(claim.is_none(), finished, "{email}");
    }
    let (repeat, _) = app.sign_up("accepted@contoso.com").await;
    assert_eq!(repeat, ids[4].2);
}

#[tokio::test]
async fn retention_deletes_a_large_partition_in_transactions_of_at_most_100() {
    use std::sync::Arc;

    use b2b_signup::{
        clock::Clock,
        lifecycle::{Lifecycle, NoMail},
        policy::Policy,
        storage::{AzureStorage, RequestQuery, StorageAccount, azure::StorageTimeouts},
        worker::Mode,
    };

    // 130 failed requests in one partition, a year and a day old.
    let app = spawn_app_with_policy(&expiring_policy()).await;
    let mut ids = Vec::new();
    for i in 0..130 {
        let (id, _) = app.sign_up(&format!("person{i}@contoso.com")).await;
        app.set_status("contoso.com", &id, RequestStatus::Failed)
            .await;
        ids.push(id);
    }
    app.time.advance(Duration::days(366));
    let account = StorageAccount::from_connection_string(&app.azurite.connection_string()).unwrap();
    let storage = AzureStorage::new(&account, StorageTimeouts::default()).unwrap();
    let time = app.time.clone();
    let lifecycle = Lifecycle {
        policy: Arc::new(Policy::from_json(&expiring_policy()).unwrap()),
        store: Arc::new(storage.clone()),
        housekeeping: Arc::new(storage.clone()),
        mode: Mode::DryRun,
        notices: Arc::new(NoMail),
        clock: Clock::from_fn(move || time.now()),
        retention: Duration::days(365),
        batch: 1_000,
        retention_batch: 50_000,
    };

    let report = lifecycle.run().await.unwrap();

    assert_eq!((report.deleted_requests, report.deleted_claims), (130, 130));
    assert_eq!(report.skipped, 0);
    // 2 transactions for the rows and 2 for the claims (100 + 30 each), the queries and
    // table creation: not one call per entity.
    assert!(storage.calls() < 30, "{} storage calls", storage.calls());
    let left = storage
        .query(&RequestQuery::default(), usize::MAX)
        .await
        .unwrap();
    assert!(left.is_empty());
}
