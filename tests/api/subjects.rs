//! Data-subject requests: everything stored about an address, and its erasure, through the
//! admin API (`POST /api/subjects/export|erase`) and the command line.

use b2b_signup::{
    domain::{EmailAddress, RequestStatus},
    storage::{DeadLetter, DeadLetters, RequestStore},
};
use serde_json::{Value, json};

use crate::{
    admin::stdout,
    helpers::{ADMIN, READ, TestApp, spawn_app},
};

impl TestApp {
    async fn subjects(&self, action: &str, body: Value) -> reqwest::Response {
        self.admin(reqwest::Method::POST, &format!("subjects/{action}"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A dead letter whose message points at request `id`.
    async fn dead_letter_for(&self, id: &str, domain: &str) {
        let letter = DeadLetter {
            queue: "signup-requests",
            message_id: Some("m-1".into()),
            dequeue_count: 1,
            error: "no such request".into(),
            text: json!({"v": 1, "requestId": id, "domain": domain}).to_string(),
            received_at: self.time.now(),
        };
        self.store.record(&letter).await.unwrap();
    }

    async fn claim(&self, email: &str) -> Option<String> {
        self.store
            .claim_of(&EmailAddress::parse(email).unwrap())
            .await
            .unwrap()
            .map(|c| c.value.request_id.to_string())
    }
}

/// ada@contoso.com with two requests (the first failed) and a dead letter naming the first;
/// grace@contoso.com with one request and a dead letter of her own.
async fn two_partners(app: &TestApp) -> (String, String, String) {
    let (first, _) = app.sign_up("Ada@contoso.com").await;
    app.set_status("contoso.com", &first, RequestStatus::Failed)
        .await;
    let (second, _) = app.sign_up("ada@contoso.com").await;
    assert_ne!(first, second);
    let (grace, _) = app.sign_up("grace@contoso.com").await;
    app.dead_letter_for(&first, "contoso.com").await;
    app.dead_letter_for(&grace, "contoso.com").await;
    (first, second, grace)
}

#[tokio::test]
async fn an_export_holds_every_request_with_its_history_the_claim_and_dead_letters() {
    let app = spawn_app().await;
    let (first, second, grace) = two_partners(&app).await;

    let response = app
        .subjects("export", json!({"email": "ADA@contoso.com"}))
        .await;

    assert_eq!(response.status(), 200);
    let export: Value = response.json().await.unwrap();
    let ids: Vec<&str> = export["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requestId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "oldest first");
    assert_eq!(export["requests"][0]["history"][0]["action"], "created");
    assert_eq!(export["requests"][0]["email"], "Ada@contoso.com");
    assert_eq!(export["addressClaim"]["requestId"], second.as_str());
    assert_eq!(export["addressClaim"]["rowKey"], "address:ada");
    let letters = export["deadLetters"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0]["text"].as_str().unwrap().contains(&first));
    assert!(export["rateLimits"].as_str().unwrap().contains("SHA-256"));
    assert!(
        !export.to_string().contains(&grace),
        "another partner's data"
    );
}

#[tokio::test]
async fn subject_requests_need_the_approve_role_and_a_valid_address_in_the_body() {
    let app = spawn_app().await;
    let url = format!("{}/api/subjects/export", app.address);
    let body = json!({"email": "ada@contoso.com"});

    let anonymous = app.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let reader = app
        .http
        .post(&url)
        .header("authorization", app.bearer(&ADMIN, READ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(reader.status(), 403);

    for (what, body, code) in [
        ("not an address", json!({"email": "ada"}), "invalid_email"),
        ("no address", json!({}), "invalid_request"),
        (
            "another field",
            json!({"email": "ada@contoso.com", "x": 1}),
            "invalid_request",
        ),
    ] {
        let response = app.subjects("erase", body).await;
        assert_eq!(response.status(), 400, "{what}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], code, "{what}");
    }
    let unknown = app
        .subjects("forget", json!({"email": "ada@contoso.com"}))
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn erasure_deletes_the_address_s_requests_claim_and_dead_letters_and_nothing_else() {
    let app = spawn_app().await;
    let (first, second, grace) = two_partners(&app).await;

    let response = app
        .subjects("erase", json!({"email": "ada@contoso.com"}))
        .await;

    assert_eq!(response.status(), 200);
    let erased: Value = response.json().await.unwrap();
    assert_eq!(erased["domain"], "contoso.com");
    assert_eq!(erased["requests"], 2);
    assert_eq!(erased["claims"], 1);
    assert_eq!(erased["deadLetters"], 1);
    assert!(
        !erased.to_string().contains("ada"),
        "the answer names nobody"
    );
    for id in [&first, &second] {
        assert!(app.row("contoso.com", id).await.is_none());
    }
    assert_eq!(app.claim("ada@contoso.com").await, None);
    // Grace's request, claim and dead letter stay.
    assert!(app.row("contoso.com", &grace).await.is_some());
    assert_eq!(app.claim("grace@contoso.com").await, Some(grace.clone()));
    assert_eq!(app.dead_letters().await, 1);

    // Nothing is left to export; erasing again deletes nothing.
    let export: Value = app
        .subjects("export", json!({"email": "ada@contoso.com"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["requests"], json!([]));
    assert_eq!(export["addressClaim"], Value::Null);
    assert_eq!(export["deadLetters"], json!([]));
    let again: Value = app
        .subjects("erase", json!({"email": "ada@contoso.com"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["requests"], 0);
}

#[tokio::test]
async fn the_command_line_exports_and_erases_through_storage() {
    let app = spawn_app().await;
    let (first, second, grace) = two_partners(&app).await;

    let out = stdout(&app.cli(&["requests", "export", "--email", "ada@contoso.com"]));
    let export: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(export["requests"].as_array().unwrap().len(), 2);
    assert_eq!(export["addressClaim"]["requestId"], second.as_str());
    assert!(out.contains(&first) && !out.contains(&grace));

    let filtered = app.cli(&[
        "requests",
        "export",
        "--email",
        "ada@contoso.com",
        "--status",
        "Failed",
    ]);
    assert_eq!(filtered.status.code(), Some(2), "--email takes no filter");

    let out = stdout(&app.cli(&["requests", "erase", "--email", "ada@contoso.com"]));
    assert_eq!(
        out.trim(),
        "erased: 2 requests (with their history), 1 address claims, 1 dead letters"
    );
    assert!(app.row("contoso.com", &first).await.is_none());
    assert!(app.row("contoso.com", &grace).await.is_some());

    let bad = app.cli(&["requests", "erase", "--email", "not-an-address"]);
    assert_eq!(bad.status.code(), Some(1));
}
