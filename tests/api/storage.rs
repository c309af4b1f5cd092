//! Storage faults and guarantees: 503 (never a 202 without a row), ETag guards.

use b2b_signup::{
    app::Application,
    domain::{EmailDomain, RequestId, RequestStatus},
    storage::{RequestStore, StoreError},
};
use serde_json::json;

use crate::helpers::{assert_problem, default_policy, settings_for, spawn_app, write_policy};

#[tokio::test]
async fn storage_down_answers_503_with_retry_after() {
    // A port nothing listens on: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;\
         TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    );
    let policy = write_policy(&default_policy());
    let app = Application::build(&settings_for(&connection, policy.path().to_owned()))
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}/api/signup", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let response = reqwest::Client::new()
        .post(address)
        .json(&json!({"email": "ada@contoso.com", "displayName": "Ada"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["retry-after"], "30");
    let problem = assert_problem(response, 503, "service_unavailable").await;
    assert!(
        !problem.to_string().to_lowercase().contains("127.0.0.1"),
        "no internal detail: {problem}"
    );
}

#[tokio::test]
async fn azurite_stopping_mid_way_turns_answers_into_503_not_202() {
    let mut app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    assert!(app.row("contoso.com", &id).await.is_some());

    app.azurite.stop();
    let response = app
        .post_json(&json!({"email": "grace@contoso.com", "displayName": "Grace"}).to_string())
        .await;
    assert_problem(response, 503, "service_unavailable").await;
}

#[tokio::test]
async fn status_changes_are_etag_guarded() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    let domain = EmailDomain::parse("contoso.com").unwrap();
    let id = RequestId::parse(&id).unwrap();

    let first = app.store.get(&domain, &id).await.unwrap().unwrap();
    let second = app.store.get(&domain, &id).await.unwrap().unwrap();
    let mut invited = first.value.clone();
    invited.status = RequestStatus::Invited;
    app.store
        .replace(&invited, &first.etag)
        .await
        .expect("first writer wins");

    let mut stale = second.value.clone();
    stale.status = RequestStatus::Failed;
    let result = app.store.replace(&stale, &second.etag).await;
    assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
    assert_eq!(
        app.store
            .get(&domain, &id)
            .await
            .unwrap()
            .unwrap()
            .value
            .status,
        RequestStatus::Invited
    );
}
