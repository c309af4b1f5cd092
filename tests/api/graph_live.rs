//! Live mode: the handler's InviteQueue against a wiremock Microsoft Graph and Entra token
//! endpoint, configured through the settings an operator uses (GRAPH_BASE_URL,
//! AZURE_AUTHORITY_HOST, AZURE_TENANT_ID/CLIENT_ID/CLIENT_SECRET).

use std::time::{Duration, Instant};

use b2b_signup::domain::{RequestStatus, UserId};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path},
};

use test_support::entra::{invitation_created, mount_token_endpoint, token_response};

use crate::{
    helpers::{GROUP_A, GROUP_B, TENANT, TestApp, spawn_live_app},
    worker::host_payload,
};

async fn graph() -> MockServer {
    let server = MockServer::start().await;
    mount_token_endpoint(&server, TENANT, "test-access-token").await;
    server
}

/// The guest's object id Graph answers with (a GUID, as Graph's always are).
const GUEST: &str = "9a0b1c2d-0000-4000-8000-00000000000a";

fn invited(user_id: &str) -> ResponseTemplate {
    invitation_created(user_id, "graph-request-1")
}

fn member_added(group: &str) -> Mock {
    adding_member(group).respond_with(ResponseTemplate::new(204))
}

fn adding_member(group: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(path(format!("/v1.0/groups/{group}/members/$ref")))
}

impl TestApp {
    async fn sign_up_sales(&self, email: &str) -> String {
        let response = self
            .post_json(
                &json!({"email": email, "displayName": "Ada Lovelace", "access": "sales-extranet"})
                    .to_string(),
            )
            .await;
        assert_eq!(response.status(), 202);
        response.json::<serde_json::Value>().await.unwrap()["requestId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn deliver(&self, id: &str, domain: &str, dequeue_count: u32) -> u16 {
        let message = json!({"v": 1, "requestId": id, "domain": domain}).to_string();
        self.http
            .post(format!("{}/InviteQueue", self.address))
            .body(host_payload(&message, dequeue_count))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

#[tokio::test]
async fn a_sign_up_becomes_an_invitation_and_group_memberships() {
    // Arrange
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .and(header("authorization", "Bearer test-access-token"))
        .and(body_json(json!({
            "invitedUserEmailAddress": "Ada@contoso.com",
            "invitedUserDisplayName": "Ada Lovelace",
            "inviteRedirectUrl": "https://myapps.microsoft.com",
            "sendInvitationMessage": true
        })))
        .respond_with(invited(GUEST))
        .expect(1)
        .mount(&graph)
        .await;
    for group in [GROUP_A, GROUP_B] {
        adding_member(group)
            .and(body_json(
                json!({"@odata.id": format!("{}/v1.0/directoryObjects/{GUEST}", graph.uri())}),
            ))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&graph)
            .await;
    }
    let app = spawn_live_app(&graph).await;
    let id = app.sign_up_sales("Ada@contoso.com").await;

    // Act
    assert_eq!(app.deliver(&id, "contoso.com", 1).await, 200);

    // Assert
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(
        row.invited_user_id.as_ref().map(UserId::as_str),
        Some(GUEST)
    );
    assert_eq!(row.graph_request_id.as_deref(), Some("graph-request-1"));
    assert!(!row.dry_run);

    // Redelivery changes nothing and calls nothing (the .expect(1)s are checked on drop).
    assert_eq!(app.deliver(&id, "contoso.com", 2).await, 200);
}

#[tokio::test]
async fn graph_5xx_fails_the_invocation_then_the_retry_succeeds() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(invited(GUEST))
        .mount(&graph)
        .await;
    member_added(GROUP_A).mount(&graph).await;
    member_added(GROUP_B).mount(&graph).await;
    let app = spawn_live_app(&graph).await;
    let id = app.sign_up_sales("ada@contoso.com").await;

    assert_eq!(
        app.deliver(&id, "contoso.com", 1).await,
        500,
        "transient: the host retries"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Queued);
    assert!(row.reason.unwrap().contains("will retry"));
    assert!(
        row.invitation_attempted_at.is_some(),
        "a 500 may have invited"
    );

    // The host's retry comes after its visibility timeout; the worker looks for the guest
    // before inviting again, and finds none.
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .expect(1)
        .mount(&graph)
        .await;
    app.time.advance(time::Duration::seconds(31));
    assert_eq!(app.deliver(&id, "contoso.com", 2).await, 200);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!((row.status, row.attempts), (RequestStatus::Invited, 2));
}

#[tokio::test]
async fn graph_4xx_fails_the_request_without_retry() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(
            ResponseTemplate::new(400).insert_header("request-id", "graph-req-400").set_body_json(json!({
                "error": {"code": "BadRequest", "message": "The invited user is blocked by policy ada@contoso.com"}
            })),
        )
        .expect(1)
        .mount(&graph)
        .await;
    let app = spawn_live_app(&graph).await;
    let id = app.sign_up_sales("ada@contoso.com").await;

    assert_eq!(
        app.deliver(&id, "contoso.com", 1).await,
        200,
        "permanent: recorded, no retry"
    );

    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Failed);
    assert_eq!(
        row.reason.as_deref(),
        Some("invitation: Graph refused (BadRequest)")
    );
    assert_eq!(row.graph_request_id.as_deref(), Some("graph-req-400"));
}

#[tokio::test]
async fn throttling_with_a_short_retry_after_is_waited_out_and_existing_membership_is_success() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0.3"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(invited(GUEST))
        .expect(1)
        .mount(&graph)
        .await;
    member_added(GROUP_A).mount(&graph).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1.0/groups/{GROUP_B}/members/$ref")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "Request_BadRequest",
            "message": "One or more added object references already exist for the following modified properties: 'members'."
        }})))
        .expect(1)
        .mount(&graph)
        .await;
    let app = spawn_live_app(&graph).await;
    let id = app.sign_up_sales("ada@contoso.com").await;

    assert_eq!(app.deliver(&id, "contoso.com", 1).await, 200);
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Invited
    );
}

#[tokio::test]
async fn throttling_with_a_long_retry_after_fails_the_invocation_at_once() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "120"))
        .mount(&graph)
        .await;
    let app = spawn_live_app(&graph).await;
    let id = app.sign_up_sales("ada@contoso.com").await;

    let started = Instant::now();
    assert_eq!(app.deliver(&id, "contoso.com", 1).await, 500);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait 120 s inside the invocation"
    );
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Queued
    );
}

#[tokio::test]
async fn concurrent_invocations_overlap_and_share_one_token() {
    // Arrange: a slow Graph and 24 requests.
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
        .respond_with(token_response("shared-token"))
        .expect(1)
        .mount(&graph)
        .await;
    let delay = Duration::from_millis(300);
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(invited(GUEST).set_delay(delay))
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204).set_delay(delay))
        .mount(&graph)
        .await;
    let app = spawn_live_app(&graph).await;
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(app.sign_up_sales(&format!("user{i}@contoso.com")).await);
    }

    // Act
    let started = Instant::now();
    let statuses =
        futures::future::join_all(ids.iter().map(|id| app.deliver(id, "contoso.com", 1))).await;
    let elapsed = started.elapsed();

    // Assert: each does 3 sequential 300 ms calls; one after another would take 24 × 0.9 s.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        elapsed < Duration::from_secs(8),
        "invocations overlapped: {elapsed:?}"
    );
    for id in &ids {
        assert_eq!(
            app.row("contoso.com", id).await.unwrap().status,
            RequestStatus::Invited
        );
    }
}
