//! A valid sign-up: stored, enqueued, answered; repeats answered with the first request.

use b2b_signup::{domain::RequestStatus, storage::InviteMessage};
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn an_invite_domain_sign_up_is_stored_enqueued_and_queued() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({
        "email": " Ada.Lovelace@CONTOSO.com ",
        "displayName": " Ada Lovelace ",
        "access": "sales-extranet",
        "company": "Contoso, \"Ltd\" ü",
        "justification": "Line one\nline two"
    });

    // Act
    let response = app.post_json(&body.to_string()).await;

    // Assert
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let answer: serde_json::Value = response.json().await.unwrap();
    let id = answer["requestId"].as_str().unwrap();
    assert_eq!(id.len(), 26, "a ULID");
    assert_eq!(answer["status"], "queued");

    let row = app.row("contoso.com", id).await.expect("row stored");
    assert_eq!(row.email.as_str(), "Ada.Lovelace@contoso.com");
    assert_eq!(row.display_name.as_str(), "Ada Lovelace");
    assert_eq!(row.access.as_str(), "sales-extranet");
    assert_eq!(row.company.unwrap().as_str(), "Contoso, \"Ltd\" ü");
    assert_eq!(row.justification.unwrap().as_str(), "Line one\nline two");
    // Stored and sent in two round trips: the row stays Accepted until a worker takes it.
    assert_eq!(row.status, RequestStatus::Accepted);
    assert!(
        row.dry_run,
        "the test app runs in dry-run mode and says so on the row"
    );

    assert_eq!(
        app.queued_messages().await,
        [InviteMessage {
            v: 1,
            request_id: id.to_owned(),
            domain: "contoso.com".into()
        }]
    );
}

#[tokio::test]
async fn the_rule_s_first_access_option_is_the_default() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@contoso.com").await;
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().access.as_str(),
        "partner-portal"
    );
}

#[tokio::test]
async fn an_approve_domain_sign_up_waits_and_enqueues_nothing() {
    let app = spawn_app().await;
    let response = app
        .post(
            "application/x-www-form-urlencoded",
            "email=grace%40eu.fabrikam.com&displayName=Grace+Hopper&website=&submit=Send",
        )
        .await;
    assert_eq!(response.status(), 202);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "pending_approval");
    let row = app
        .row("eu.fabrikam.com", answer["requestId"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(row.status, RequestStatus::PendingApproval);
    assert_eq!(row.display_name.as_str(), "Grace Hopper");
    assert!(app.queued_messages().await.is_empty());
}

#[tokio::test]
async fn refused_domains_and_access_get_403_and_store_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            "a deny rule",
            json!({"email": "x@gmail.com", "displayName": "X"}),
            "domain_not_allowed",
            "email",
        ),
        (
            "no rule: default deny",
            json!({"email": "x@example.org", "displayName": "X"}),
            "domain_not_allowed",
            "email",
        ),
        (
            "suffix trick",
            json!({"email": "x@evilcontoso.com", "displayName": "X"}),
            "domain_not_allowed",
            "email",
        ),
        (
            "domain appended",
            json!({"email": "x@contoso.com.evil.example", "displayName": "X"}),
            "domain_not_allowed",
            "email",
        ),
        (
            "exact rule, subdomain",
            json!({"email": "x@eu.contoso.com", "displayName": "X"}),
            "domain_not_allowed",
            "email",
        ),
        (
            "unknown access key",
            json!({"email": "x@contoso.com", "displayName": "X", "access": "admin"}),
            "access_not_allowed",
            "access",
        ),
        (
            "access the rule does not allow",
            json!({"email": "x@fabrikam.com", "displayName": "X", "access": "sales-extranet"}),
            "access_not_allowed",
            "access",
        ),
    ];
    for (description, body, code, field) in cases {
        let problem = assert_problem(app.post_json(&body.to_string()).await, 403, code).await;
        assert_eq!(problem["field"], field, "{description}");
    }
    assert!(app.queued_messages().await.is_empty());
}

#[tokio::test]
async fn a_repeat_sign_up_gets_the_same_request_and_no_second_message() {
    let app = spawn_app().await;
    let (first, _) = app.sign_up("Ada@contoso.com").await;
    let (again, status) = app.sign_up("ada@CONTOSO.COM.").await;
    assert_eq!(again, first);
    assert_eq!(status, "queued");
    assert_eq!(app.queued_messages().await.len(), 1);

    let (pending, _) = app.sign_up("grace@fabrikam.com").await;
    let (pending_again, status) = app.sign_up("Grace@Fabrikam.com").await;
    assert_eq!(
        (pending_again.as_str(), status.as_str()),
        (pending.as_str(), "pending_approval")
    );
}

#[tokio::test]
async fn after_a_failed_denied_or_deleted_request_a_new_sign_up_starts_a_new_request() {
    let app = spawn_app().await;
    let cases = [
        (
            "an invitation worker gave up",
            "ada@contoso.com",
            Some(RequestStatus::Failed),
            "queued",
        ),
        (
            "an administrator denied it",
            "grace@fabrikam.com",
            Some(RequestStatus::Denied),
            "pending_approval",
        ),
        (
            "its row was deleted by hand, leaving the claim behind",
            "mary@contoso.com",
            None,
            "queued",
        ),
    ];
    for (description, address, end, status) in cases {
        let domain = address.split_once('@').unwrap().1;
        let (first, _) = app.sign_up(address).await;
        match end {
            Some(end) => app.set_status(domain, &first, end).await,
            None => app.delete_entity(domain, &first).await,
        }

        let (second, answered) = app.sign_up(&address.to_uppercase()).await;
        assert_ne!(second, first, "{description}");
        assert_eq!(answered, status, "{description}");
        assert!(app.row(domain, &second).await.is_some(), "{description}");
        let (again, _) = app.sign_up(address).await;
        assert_eq!(
            again, second,
            "{description}: the new request answers repeats"
        );
    }
    assert_eq!(
        app.queued_messages().await.len(),
        4,
        "one message per invite-domain request"
    );
}

#[tokio::test]
async fn an_address_with_an_apostrophe_is_claimed_like_any_other() {
    let app = spawn_app().await;
    let (first, _) = app.sign_up("Miles.O'Brien@contoso.com").await;
    let (again, _) = app.sign_up("miles.o'brien@contoso.com").await;
    assert_eq!(again, first);
    assert_eq!(app.queued_messages().await.len(), 1);
}

#[tokio::test]
async fn concurrent_sign_ups_for_one_address_make_one_request() {
    let app = spawn_app().await;
    let spellings = [
        "ada@contoso.com",
        "Ada@contoso.com",
        "ADA@Contoso.com",
        "ada@CONTOSO.COM",
    ];
    let answers =
        futures::future::join_all((0..16).map(|i| app.sign_up(spellings[i % spellings.len()])))
            .await;
    let first = &answers[0].0;
    assert!(
        answers.iter().all(|(id, _)| id == first),
        "every answer names one request: {answers:?}"
    );
    assert_eq!(
        app.queued_messages().await.len(),
        1,
        "one invitation message"
    );
}

#[tokio::test]
async fn a_repeat_sign_up_whose_request_cannot_be_read_gets_500_internal_error() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    app.write_status_text("contoso.com", &id, "Frozen").await;

    let response = app
        .post_json(r#"{"email":"ada@contoso.com","displayName":"Ada"}"#)
        .await;

    assert!(
        response.headers().get("retry-after").is_none(),
        "retrying will not help"
    );
    let problem = assert_problem(response, 500, "internal_error").await;
    let detail = problem["detail"].as_str().unwrap();
    for internal in ["Status", "row", "Frozen", "stored", &id] {
        assert!(!detail.contains(internal), "{detail}");
    }
    assert_eq!(
        app.queued_messages().await.len(),
        1,
        "nothing sent for the unreadable row"
    );
}

#[tokio::test]
async fn a_request_left_accepted_by_a_crash_is_resumed_by_a_repeat_sign_up() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    // Intake leaves the row Accepted; pretend its message never left (a crash between the
    // write and the send).
    app.set_status("contoso.com", &id, RequestStatus::Accepted)
        .await;

    // Soon after, a repeat does not send again (the first attempt may still be in flight)...
    let (again, _) = app.sign_up("ada@contoso.com").await;
    assert_eq!(again, id);
    assert_eq!(app.queued_messages().await.len(), 1);

    // ...but once the row has been stuck for a while, a repeat sends the message again.
    app.time.advance(time::Duration::minutes(2));
    let (again, _) = app.sign_up("ada@contoso.com").await;
    assert_eq!(again, id);
    assert_eq!(app.queued_messages().await.len(), 2);
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Queued
    );
}

#[tokio::test]
async fn a_filled_honeypot_looks_accepted_but_stores_and_sends_nothing() {
    let app = spawn_app().await;
    let response = app
        .post_json(&json!({"email": "bot@contoso.com", "displayName": "Bot", "website": "http://spam.example"}).to_string())
        .await;
    assert_eq!(response.status(), 202);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(
        app.row("contoso.com", answer["requestId"].as_str().unwrap())
            .await
            .is_none()
    );
    assert!(app.queued_messages().await.is_empty());
}
