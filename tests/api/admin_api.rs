//! The admin API through real HTTP: who may call it (Entra ID tokens from a mock tenant on
//! loopback), the list, one request with its history, and retry.

use b2b_signup::{
    domain::{EmailAddress, EmailDomain, RequestId, RequestStatus},
    storage::{AddressClaim, RequestStore},
};
use reqwest::Method;
use serde_json::{Value, json};
use test_support::{
    identity::{KEY_1, KEY_2, changed, hs256_token, issuer, unsigned_token},
    logs::LogBuffer,
};

use crate::helpers::{
    ADMIN, ADMIN_TENANT, APPROVE, READ, TestApp, assert_problem, default_policy, spawn_app,
    spawn_app_with,
};

async fn approve_with(app: &TestApp, id: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .post(format!("{}/api/requests/{id}/approve", app.address))
        // What the old function-key path trusted: authorises and records nothing now.
        .header("x-functions-key", "any-key")
        .header("x-ms-client-principal-name", "ceo@contoso.com");
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn bad_tokens_are_refused_alike_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    let approve = app.tenant.claims(&ADMIN, APPROVE);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("missing", None, 401, "unauthenticated"),
        (
            "not bearer",
            Some("Basic YWRtaW46YWRtaW4=".into()),
            401,
            "unauthenticated",
        ),
        (
            "malformed",
            bearer("not.a.token".into()),
            401,
            "unauthenticated",
        ),
        (
            "alg: none",
            bearer(unsigned_token(
                &json!({"alg": "none", "kid": KEY_1.kid()}),
                &approve,
            )),
            401,
            "unauthenticated",
        ),
        (
            "HS256 with the public key",
            bearer(hs256_token(
                KEY_1.public_pem().as_bytes(),
                KEY_1.kid(),
                &approve,
            )),
            401,
            "unauthenticated",
        ),
        (
            "unknown kid",
            bearer(KEY_2.sign(&approve)),
            401,
            "unauthenticated",
        ),
        (
            "wrong issuer",
            bearer(KEY_1.sign(&changed(
                &approve,
                json!({"iss": issuer("https://login.microsoftonline.com", ADMIN_TENANT)}),
            ))),
            401,
            "unauthenticated",
        ),
        (
            "wrong audience",
            bearer(KEY_1.sign(&changed(
                &approve,
                json!({"aud": "00000003-0000-0000-c000-000000000000"}),
            ))),
            401,
            "unauthenticated",
        ),
        (
            "another tenant",
            bearer(KEY_1.sign(&changed(
                &approve,
                json!({"tid": "f8cdef31-a31e-4b4a-93e4-5f571e91255a"}),
            ))),
            401,
            "unauthenticated",
        ),
        (
            "expired",
            bearer(KEY_1.sign(&changed(&approve, json!({"exp": now - 3600})))),
            401,
            "unauthenticated",
        ),
        (
            "not yet valid",
            bearer(KEY_1.sign(&changed(&approve, json!({"nbf": now + 3600})))),
            401,
            "unauthenticated",
        ),
        (
            "no role",
            bearer(app.tenant.token(&ADMIN, &[])),
            403,
            "forbidden",
        ),
        (
            "Signup.Read approving",
            bearer(app.tenant.token(&ADMIN, READ)),
            403,
            "forbidden",
        ),
    ];
    let mut details = std::collections::BTreeSet::new();
    for (description, authorization, status, code) in cases {
        let response = approve_with(&app, &id, authorization.as_deref()).await;
        if status == 401 {
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap()),
                Some("Bearer"),
                "{description}"
            );
        }
        let problem = assert_problem(response, status, code).await;
        if status == 401 {
            details.insert(problem["detail"].as_str().unwrap().to_owned());
        }
        let row = app.row("fabrikam.com", &id).await.unwrap();
        assert_eq!(row.status, RequestStatus::PendingApproval, "{description}");
        assert_eq!(row.decided_by, None, "{description}");
        assert_eq!(
            row.history.entries().len(),
            1,
            "{description}: only Created"
        );
    }
    assert_eq!(details.len(), 1, "one detail for every 401: {details:?}");
    assert!(app.queued_messages().await.is_empty());
}

#[tokio::test]
async fn signup_read_lists_and_shows_but_nothing_without_a_role() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    for path in ["requests".to_owned(), format!("requests/{id}")] {
        let url = format!("{}/api/{path}", app.address);
        let read = app
            .http
            .get(&url)
            .header("authorization", app.bearer(&ADMIN, READ))
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200, "{path}");
        let none = app.http.get(&url).send().await.unwrap();
        assert_problem(none, 401, "unauthenticated").await;
        let no_role = app
            .http
            .get(&url)
            .header("authorization", app.bearer(&ADMIN, &[]))
            .send()
            .await
            .unwrap();
        assert_problem(no_role, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn with_the_admin_api_off_every_call_is_401_and_start_up_says_so_once() {
    let (logs, _guard) = LogBuffer::capture();
    let app = spawn_app_with(&default_policy(), |settings| settings.admin_auth = None).await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    for (method, path) in [
        (Method::GET, "requests".to_owned()),
        (Method::GET, format!("requests/{id}")),
        (Method::POST, format!("requests/{id}/approve")),
        (Method::POST, format!("requests/{id}/retry")),
    ] {
        assert_problem(
            app.admin(method, &path).send().await.unwrap(),
            401,
            "unauthenticated",
        )
        .await;
    }
    assert_eq!(
        logs.text().matches("admin API is off:").count(),
        1,
        "{}",
        logs.text()
    );
    assert_eq!(
        app.row("fabrikam.com", &id).await.unwrap().status,
        RequestStatus::PendingApproval
    );
}

async fn list(app: &TestApp, query: &str) -> reqwest::Response {
    app.admin(Method::GET, &format!("requests?{query}"))
        .send()
        .await
        .unwrap()
}

/// Every page of the list for `query` (which must set a limit), following continuations;
/// the request ids in the order shown.
async fn all_pages(app: &TestApp, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let query = match &continuation {
            Some(c) => format!("{query}&continuation={c}"),
            None => query.to_owned(),
        };
        let response = list(app, &query).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["requestId"].as_str().unwrap().to_owned()),
        );
        match page["continuation"].as_str() {
            Some(next) => continuation = Some(next.to_owned()),
            None => return seen,
        }
    }
}

/// The list reads time windows going back from now, each reaching eight times as far: a
/// request made minutes, days or years ago is found, in order, on the right page.
#[tokio::test]
async fn the_list_reaches_back_through_its_time_windows_to_the_oldest_request() {
    let app = spawn_app().await;
    let (newest, _) = app.sign_up("new@fabrikam.com").await;
    let domain = EmailDomain::parse("fabrikam.com").unwrap();
    let row = app
        .store
        .get(&domain, &RequestId::parse(&newest).unwrap())
        .await
        .unwrap()
        .unwrap()
        .value;
    let now = time::OffsetDateTime::now_utc();
    let mut ids = vec![newest];
    for (i, age) in [
        time::Duration::seconds(30),
        time::Duration::hours(2),
        time::Duration::days(3),
        time::Duration::days(400),
        time::Duration::days(10 * 365),
    ]
    .into_iter()
    .enumerate()
    {
        let mut old = row.clone();
        old.id = RequestId::first_at(now - age);
        old.email = EmailAddress::parse(&format!("old{i}@fabrikam.com")).unwrap();
        let claim = AddressClaim {
            request_id: old.id,
            claimed_at: now,
        };
        app.store.create(&old, &claim, None).await.unwrap();
        ids.push(old.id.to_string());
    }
    assert_eq!(
        all_pages(&app, "limit=2").await,
        ids,
        "every request once, newest first"
    );
    let one_page: Value = list(&app, "limit=50").await.json().await.unwrap();
    assert_eq!(one_page["items"].as_array().unwrap().len(), 6);
    assert_eq!(one_page["continuation"], Value::Null);
}

#[tokio::test]
async fn the_list_is_newest_first_in_pages_with_filters() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        ids.push(app.sign_up(&format!("{name}@fabrikam.com")).await.0);
        app.time.advance(time::Duration::seconds(1));
    }
    ids.push(app.sign_up("ada@contoso.com").await.0);
    ids.reverse(); // newest first

    let seen = all_pages(&app, "limit=2").await;
    assert_eq!(seen, ids, "every request once, newest first");

    let pending: Value = list(&app, "status=PendingApproval&domain=fabrikam.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["items"].as_array().unwrap().len(), 5);
    assert_eq!(pending["continuation"], Value::Null);
    let item = &pending["items"][0];
    assert_eq!(
        (item["status"].as_str(), item["domain"].as_str()),
        (Some("PendingApproval"), Some("fabrikam.com"))
    );
    assert!(item["history"].is_array());

    for (query, field) in [
        ("limit=201", "limit"),
        ("status=Sleeping", "status"),
        ("continuation=djE6bm90LWFuLWlk", "continuation"),
        ("continuation=%%%", "continuation"),
    ] {
        let problem = assert_problem(list(&app, query).await, 400, "invalid_field").await;
        assert_eq!(problem["field"], field, "{query}");
    }
}

#[tokio::test]
async fn one_request_shows_its_history_and_decision_reason() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    app.decide(&id, "approve", Some(json!({"reason": "known partner"})))
        .await;

    let response = app
        .admin(Method::GET, &format!("requests/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request: Value = response.json().await.unwrap();
    assert_eq!(request["requestId"], id.as_str());
    assert_eq!(request["decisionReason"], "known partner");
    assert_eq!(request["decidedBy"], ADMIN.username);
    let actions: Vec<&str> = request["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "approved", "queued"]);
    assert_eq!(request["history"][1]["actor"], ADMIN.username);

    for unknown in [
        "01JDQ3Z6W1T2V3X4Y5Z6A7B8C9",
        "not-a-ulid",
        "'%20or%20'1'%20eq%20'1",
    ] {
        let response = app
            .admin(Method::GET, &format!("requests/{unknown}"))
            .send()
            .await
            .unwrap();
        assert_problem(response, 404, "not_found").await;
    }
}

#[tokio::test]
async fn a_failed_request_is_retried_once_by_its_administrator() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    app.set_status("fabrikam.com", &id, RequestStatus::Failed)
        .await;

    let response = app
        .admin(Method::POST, &format!("requests/{id}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (
            answer["status"].as_str(),
            answer["changed"].as_bool(),
            answer["decidedBy"].as_str()
        ),
        (Some("Queued"), Some(true), Some(ADMIN.username))
    );
    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(
        row.retried_by
            .as_ref()
            .and_then(|by| by.object_id())
            .map(|oid| oid.to_string())
            .as_deref(),
        Some(ADMIN.object_id)
    );
    assert_eq!(app.queued_messages().await.len(), 1);

    let again = app
        .admin(Method::POST, &format!("requests/{id}/retry"))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(again, 409, "not_failed").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("Queued"),
        "{problem}"
    );
    assert_eq!(app.queued_messages().await.len(), 1);
}
