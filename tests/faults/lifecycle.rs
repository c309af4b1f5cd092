//! The `Lifecycle` timer killed while it removes expired guests from their groups (issue
//! 19): every expired guest ends removed from every group exactly once, and every request
//! `Expired` with one `removed_from_groups` entry, however often the handler dies mid-pass.
//!
//! The real binary is run directly (its `POST /Lifecycle` is what the host sends on a timer
//! firing), against an in-memory Azurite (only the handler is killed) and a Graph mock that
//! answers removals slowly, so SIGKILLs land between removals of one guest and between
//! guests. A repeated removal is answered 404 ("not a member"), as Graph does; the mock
//! counts successful removals per membership.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use b2b_signup::{
    domain::{
        AccessKey, Actor, DisplayName, EmailAddress, History, HistoryAction, RequestId,
        RequestStatus, SignupRequest, UserId,
    },
    storage::{
        AddressClaim, AzureStorage, RequestQuery, RequestStore, StorageAccount,
        azure::StorageTimeouts,
    },
};
use serde_json::json;
use test_support::Azurite;
use warp::{Filter, http::Response};

use crate::cluster::{free_port, signal};

const GROUPS: [&str; 2] = [
    "11111111-1111-1111-1111-111111111111",
    "22222222-2222-2222-2222-222222222222",
];
const GUESTS: usize = 40;
const POLICY: &str = r#"{
    "verifyEmail": false,
    "accessOptions": {
        "partner-portal": { "displayName": "Partner portal", "accessDays": 30,
            "groups": ["11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"] }
    },
    "rules": [ { "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal"] } ]
}"#;

/// Memberships and how many times each was removed with a 204.
#[derive(Default)]
struct Directory {
    members: BTreeMap<(String, String), bool>,
    removed: BTreeMap<(String, String), u32>,
    not_member: u32,
}

async fn start_graph(directory: Arc<Mutex<Directory>>) -> String {
    let token =
        warp::post()
            .and(warp::path::tail())
            .and_then(|tail: warp::path::Tail| async move {
                if tail.as_str().ends_with("oauth2/v2.0/token") {
                    Ok(warp::reply::json(
                        &json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "t"}),
                    ))
                } else {
                    Err(warp::reject::not_found())
                }
            });
    let remove = warp::delete()
        .and(warp::path!("v1.0" / "groups" / String / "members" / String / "$ref"))
        .then(move |group: String, user: String| {
            let directory = directory.clone();
            async move {
                // Slow enough that a kill lands between two removals.
                tokio::time::sleep(Duration::from_millis(25)).await;
                let mut d = directory.lock().unwrap();
                let key = (group, user);
                if d.members.get(&key) == Some(&true) {
                    d.members.insert(key.clone(), false);
                    *d.removed.entry(key).or_default() += 1;
                    Response::builder().status(204).body(String::new()).unwrap()
                } else {
                    d.not_member += 1;
                    Response::builder()
                        .status(404)
                        .header("content-type", "application/json")
                        .body(json!({"error": {"code": "Request_ResourceNotFound", "message": "gone"}}).to_string())
                        .unwrap()
                }
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(token.or(remove)).incoming(listener).run());
    url
}

fn guest(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

/// An `Invited` request whose access ended yesterday.
fn expired_guest(i: usize) -> SignupRequest {
    let now = time::OffsetDateTime::now_utc();
    let invited = now - time::Duration::days(31);
    SignupRequest {
        id: RequestId::new(),
        email: EmailAddress::parse(&format!("guest{i}@contoso.com")).unwrap(),
        display_name: DisplayName::parse("Guest").unwrap(),
        access: AccessKey::parse("partner-portal").unwrap(),
        company: None,
        justification: None,
        status: RequestStatus::Invited,
        reason: None,
        decision_reason: None,
        attempts: 1,
        invited_user_id: UserId::parse(&guest(i)),
        invitation_attempted_at: None,
        graph_request_id: None,
        created_at: invited,
        updated_at: invited,
        decided_by: None,
        decided_at: None,
        decide_by: None,
        notified_at: None,
        retried_by: None,
        retried_at: None,
        terms_version: None,
        dry_run: false,
        access_ends_at: Some(now - time::Duration::days(1)),
        renewal_opens_at: Some(now - time::Duration::days(15)),
        renewal_notice_at: Some(now - time::Duration::days(14)),
        invitation_resent_at: None,
        history: History::of_new(RequestStatus::Invited, Actor::Worker, invited),
        language: Default::default(),
        verification: None,
        mail_owed: None,
        share_reason: false,
    }
}

struct Handler {
    child: Child,
    url: String,
}

fn start_handler(env: &[(&str, String)]) -> Handler {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_b2b-signup"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the handler starts");
    Handler {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn fire(http: &reqwest::Client, url: &str) -> Option<u16> {
    let timer = json!({"Schedule": {"AdjustForDST": true}, "IsPastDue": false}).to_string();
    let body =
        json!({"Data": {"timer": timer}, "Metadata": {"sys": {"MethodName": "\"Lifecycle\""}}});
    http.post(format!("{url}/Lifecycle"))
        .json(&body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while http.get(url).send().await.is_err() {
        assert!(Instant::now() < deadline, "the handler did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_lifecycle_pass_killed_mid_removal_removes_every_expired_guest_exactly_once() {
    // Arrange: GUESTS expired guests, each a member of both groups.
    let azurite = Azurite::start();
    let account = StorageAccount::from_connection_string(&azurite.connection_string()).unwrap();
    let store = AzureStorage::new(&account, StorageTimeouts::default()).unwrap();
    let directory = Arc::new(Mutex::new(Directory::default()));
    let mut ids = Vec::new();
    for i in 0..GUESTS {
        let request = expired_guest(i);
        let claim = AddressClaim {
            request_id: request.id,
            claimed_at: request.created_at,
        };
        store.create(&request, &claim, None).await.unwrap();
        ids.push(request.id);
        for group in GROUPS {
            directory
                .lock()
                .unwrap()
                .members
                .insert((group.to_owned(), guest(i)), true);
        }
    }
    let graph = start_graph(directory.clone()).await;
    let work = tempfile::tempdir().unwrap();
    let policy = work.path().join("policy.json");
    std::fs::write(&policy, POLICY).unwrap();
    let env = [
        ("AzureWebJobsStorage", azurite.connection_string()),
        ("SIGNUP_POLICY_PATH", policy.display().to_string()),
        ("SIGNUP_DRY_RUN", "false".into()),
        ("SIGNUP_RATE_LIMITS", "off".into()),
        ("GRAPH_BASE_URL", format!("{graph}/v1.0")),
        ("AZURE_AUTHORITY_HOST", graph.clone()),
        (
            "AZURE_TENANT_ID",
            "0f0e0d0c-0000-4000-8000-000000000019".into(),
        ),
        ("AZURE_CLIENT_ID", "faults-client".into()),
        ("AZURE_CLIENT_SECRET", "faults-secret".into()),
    ];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    // Act: passes killed after a growing delay, then passes left to finish.
    let total = GUESTS * GROUPS.len();
    let mut kills_mid_pass = 0;
    for delay_ms in [300_u64, 700, 1100] {
        let mut handler = start_handler(&env);
        wait_ready(&http, &handler.url).await;
        let pass = tokio::spawn({
            let (http, url) = (http.clone(), handler.url.clone());
            async move { fire(&http, &url).await }
        });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let removed: usize = directory
            .lock()
            .unwrap()
            .removed
            .values()
            .map(|n| *n as usize)
            .sum();
        if removed > 0 && removed < total {
            kills_mid_pass += 1;
        }
        signal(handler.child.id(), "KILL");
        handler.child.wait().unwrap();
        let _ = pass.await;
    }
    let mut handler = start_handler(&env);
    wait_ready(&http, &handler.url).await;
    for _ in 0..3 {
        assert_eq!(fire(&http, &handler.url).await, Some(200));
    }
    signal(handler.child.id(), "TERM");
    handler.child.wait().unwrap();

    // Assert
    assert!(
        kills_mid_pass >= 1,
        "no kill landed mid-pass: the test proves nothing"
    );
    let not_member = {
        let d = directory.lock().unwrap();
        assert!(
            d.members.values().all(|member| !member),
            "a guest is still a member"
        );
        assert_eq!(d.removed.len(), total);
        assert!(
            d.removed.values().all(|n| *n == 1),
            "a membership removed twice: {:?}",
            d.removed
        );
        d.not_member
    };
    let rows = store
        .query(&RequestQuery::default(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(rows.len(), GUESTS);
    for row in rows {
        let request = row.value;
        assert_eq!(request.status, RequestStatus::Expired, "{}", request.id);
        let count = |action| {
            request
                .history
                .entries()
                .iter()
                .filter(|e| e.action == action)
                .count()
        };
        assert_eq!(count(HistoryAction::RemovedFromGroups), 1, "{}", request.id);
        assert_eq!(count(HistoryAction::AccessExpired), 1, "{}", request.id);
    }
    eprintln!(
        "lifecycle faults: {GUESTS} guests, {total} memberships, 3 kills ({kills_mid_pass} mid-pass), {not_member} repeated removals answered 404"
    );
}
