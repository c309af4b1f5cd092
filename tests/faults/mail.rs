//! Mail under faults (issue 18): the real binary under the local host runner, proof of
//! address on, and a misbehaving stand-in for Azure Communication Services Email while
//! sign-ups flow and partners click their links. At the end every 202 is reconciled against
//! the rows and the mails the stand-in delivered: no sign-up lost, no mail missing, none
//! delivered twice.
//!
//! The stand-in behaves like the service where it matters: a repeated
//! `Repeatability-Request-Id` (within the service's 5 minutes) is one mail. Its faults,
//! drawn per call: 5xx; 429 with a short `Retry-After` (waited out inside the send) or a
//! long one (the mail stays owed for `Reconcile`); timeouts (nothing delivered); lost
//! answers (the mail IS delivered, then the answer hangs past the handler's timeout).
//!
//! A verification link cannot be sent twice as the same mail: only its digest is stored,
//! so a send whose answer was lost is followed by a new link (the old one stops working).
//! Those are counted apart ("links re-sent"); every other mail must arrive exactly once.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use b2b_signup::{
    domain::{EmailDomain, RequestStatus},
    storage::{AzureStorage, RequestQuery, RequestStore, StorageAccount, azure::StorageTimeouts},
};
use serde_json::{Value, json};
use warp::{Filter, http::Response};

use crate::{
    Rng,
    cluster::{DiskAzurite, Runner},
    work_dir,
};

const SIGNUPS: usize = 60;
const POLICY: &str = r#"{
    "defaultAction": "deny",
    "accessOptions": {
        "partner-portal": { "displayName": "Partner portal", "groups": ["11111111-1111-1111-1111-111111111111"] }
    },
    "rules": [ { "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal"] } ]
}"#;

#[derive(Default)]
struct AcsState {
    /// Delivered mails by repeatability id: (to, subject, text).
    delivered: BTreeMap<String, (String, String, String)>,
    calls: u64,
    answered_5xx: u64,
    answered_429: u64,
    timeouts: u64,
    lost_answers: u64,
    repeats_absorbed: u64,
}

#[derive(Clone)]
struct MockAcs {
    url: String,
    state: Arc<Mutex<AcsState>>,
}

enum Fault {
    None,
    Status(u16),
    TooMany(&'static str),
    Hang,
    LoseAnswer,
}

impl MockAcs {
    async fn start(rng: Rng) -> Self {
        let state = Arc::new(Mutex::new(AcsState::default()));
        let st = state.clone();
        let route = warp::post()
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(move |headers: warp::http::HeaderMap, body: bytes::Bytes| {
                let (state, rng) = (st.clone(), rng.clone());
                async move { answer(&state, &rng, &headers, &body).await }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Self { url, state }
    }

    fn delivered(&self) -> Vec<(String, String, String)> {
        self.state
            .lock()
            .unwrap()
            .delivered
            .values()
            .cloned()
            .collect()
    }
}

async fn answer(
    state: &Mutex<AcsState>,
    rng: &Rng,
    headers: &warp::http::HeaderMap,
    body: &[u8],
) -> Response<Vec<u8>> {
    let roll = rng.next();
    let fault = match roll {
        r if r < 0.15 => Fault::Status([500, 502, 503][(r * 100.0) as usize % 3]),
        r if r < 0.22 => Fault::TooMany(if r < 0.19 { "0.5" } else { "20" }),
        r if r < 0.26 => Fault::Hang,
        r if r < 0.30 => Fault::LoseAnswer,
        _ => Fault::None,
    };
    let id = headers
        .get("repeatability-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let deliver = |state: &mut AcsState| {
        if state.delivered.contains_key(&id) {
            state.repeats_absorbed += 1;
            return;
        }
        let json: Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |p: &str| {
            json.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        state.delivered.insert(
            id.clone(),
            (
                text("/recipients/to/0/address"),
                text("/content/subject"),
                text("/content/plainText"),
            ),
        );
    };
    let status = {
        let mut state = state.lock().unwrap();
        state.calls += 1;
        match fault {
            Fault::Status(code) => {
                state.answered_5xx += 1;
                code
            }
            Fault::TooMany(_) => {
                state.answered_429 += 1;
                429
            }
            Fault::Hang => {
                state.timeouts += 1;
                0
            }
            Fault::LoseAnswer => {
                state.lost_answers += 1;
                deliver(&mut state);
                0
            }
            Fault::None => {
                deliver(&mut state);
                202
            }
        }
    };
    if status == 0 {
        // Past SIGNUP_MAIL_TIMEOUT_SECONDS (1): the handler gives up on this answer.
        tokio::time::sleep(Duration::from_secs(3)).await;
        return Response::builder().status(503).body(Vec::new()).unwrap();
    }
    let mut response = Response::builder().status(status);
    if let Fault::TooMany(after) = fault {
        response = response.header("retry-after", after);
    }
    response.body(b"{}".to_vec()).unwrap()
}

fn app_root(work: &Path, azurite: &DiskAzurite, acs: &MockAcs) -> std::path::PathBuf {
    crate::write_app(
        work,
        POLICY,
        &["SignupHttp", "InviteQueue", "InvitePoison", "Verify"],
        json!({
            "SIGNUP_DRY_RUN": "true",
            "SIGNUP_STALE_AFTER_SECONDS": "5",
            "SIGNUP_MAIL_ENDPOINT": acs.url,
            "SIGNUP_MAIL_SENDER": "DoNotReply@contoso.example",
            "SIGNUP_MAIL_ACCESS_KEY": "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1hLXNlY3JldA==",
            "SIGNUP_MAIL_TIMEOUT_SECONDS": "1",
            "SIGNUP_ORG_NAME": "Contoso",
            "SIGNUP_SITE_URL": "http://127.0.0.1:9/",
        }),
        azurite,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mail_faults_lose_no_sign_up_and_no_mail_and_send_none_twice() {
    let started = Instant::now();
    let work = work_dir("mail");
    let rng = Rng::new(0x5eed_0018);
    let acs = MockAcs::start(rng.clone()).await;
    let mut azurite = DiskAzurite::new(&work);
    azurite.start();
    let root = app_root(&work, &azurite, &acs);
    let mut runner = Runner::new(0, &root, &work);
    runner.start();
    assert!(
        runner.wait_ready(Duration::from_secs(60)),
        "see {}",
        work.display()
    );
    let url = runner.url();
    let storage = AzureStorage::new(
        &StorageAccount::from_connection_string(&azurite.connection_string()).unwrap(),
        StorageTimeouts::default(),
    )
    .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();

    // Partners sign up (each retried until 202).
    let mut accepted: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..SIGNUPS {
        let email = format!("partner.{i:03}@contoso.com");
        for _ in 0..20 {
            let response = client
                .post(format!("{url}/api/signup"))
                .json(&json!({"email": email, "displayName": "Mail Fault"}))
                .send()
                .await;
            if let Ok(response) = response
                && response.status() == 202
            {
                let body: Value = response.json().await.unwrap();
                accepted.insert(
                    email.clone(),
                    body["requestId"].as_str().unwrap().to_owned(),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let signed_up = Instant::now();

    // Partners click the newest link they received, until every request is Invited and
    // every partner has the "approved" mail (bounded).
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut clicked: BTreeMap<String, String> = BTreeMap::new();
    let drained = loop {
        for (to, subject, text) in acs.delivered() {
            if !subject.starts_with("Confirm your e-mail address") {
                continue;
            }
            let Some(start) = text.find("#t=") else {
                continue;
            };
            let token = text[start + 3..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            if clicked.get(&to) == Some(&token) {
                continue;
            }
            if let Ok(response) = client
                .post(format!("{url}/api/verify"))
                .json(&json!({ "token": token }))
                .send()
                .await
                && response.status() == 200
            {
                clicked.insert(to, token);
            }
        }
        let rows = storage
            .query(
                &RequestQuery {
                    domain: Some(EmailDomain::parse("contoso.com").unwrap()),
                    ..Default::default()
                },
                10_000,
            )
            .await
            .unwrap_or_default();
        let invited = rows
            .iter()
            .filter(|r| r.value.status == RequestStatus::Invited && r.value.mail_owed.is_none())
            .count();
        if invited == accepted.len() {
            break Some(signed_up.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await; // stragglers would show now

    let rows: BTreeMap<String, _> = storage
        .query(&RequestQuery::default(), 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.value.id.to_string(), r.value))
        .collect();
    let mut by_kind: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for (to, subject, _) in acs.delivered() {
        let kind = if subject.starts_with("Confirm") {
            "verify"
        } else if subject.contains("is approved") {
            "approved"
        } else {
            "other"
        };
        *by_kind.entry((to, kind)).or_default() += 1;
    }
    let lost: Vec<_> = accepted
        .iter()
        .filter(|(_, id)| !rows.contains_key(*id))
        .collect();
    let not_invited: Vec<_> = accepted
        .iter()
        .filter(|(_, id)| {
            rows.get(*id)
                .is_some_and(|r| r.status != RequestStatus::Invited)
        })
        .collect();
    let count = |email: &String, kind| by_kind.get(&(email.clone(), kind)).copied().unwrap_or(0);
    let approved_missing: BTreeSet<_> = accepted
        .keys()
        .filter(|e| count(e, "approved") == 0)
        .collect();
    let approved_twice: BTreeSet<_> = accepted
        .keys()
        .filter(|e| count(e, "approved") > 1)
        .collect();
    let verify_missing: BTreeSet<_> = accepted
        .keys()
        .filter(|e| count(e, "verify") == 0)
        .collect();
    let links_resent: usize = accepted
        .keys()
        .map(|e| count(e, "verify").saturating_sub(1))
        .sum();
    let other = by_kind.iter().filter(|((_, k), _)| *k == "other").count();
    let s = acs.state.lock().unwrap();
    let report = format!(
        "### mail run ({SIGNUPS} sign-ups, seed 0x5eed0018)\n\n\
         | figure | value |\n| --- | --- |\n\
         | sign-ups answered 202 | {accepted} |\n\
         | calls to the mail service | {calls} |\n\
         | faults: 5xx / 429 / timeouts / lost answers | {f5} / {f4} / {ft} / {fl} |\n\
         | repeated sends absorbed by the idempotency key | {absorbed} |\n\
         | **lost** (202, no row) | **{lost}** |\n\
         | **not Invited** after the clicks | **{not_invited}** |\n\
         | **verification mails missing** | **{verify_missing}** |\n\
         | **approved mails missing / delivered twice** | **{a_missing} / {a_twice}** |\n\
         | verification links re-sent after an unanswered send (new link, old one void) | {links_resent} |\n\
         | other mails | {other} |\n\
         | time from the last sign-up until every partner was invited and told | {drained} |\n\
         | whole run | {total:.1?} |\n",
        accepted = accepted.len(),
        calls = s.calls,
        f5 = s.answered_5xx,
        f4 = s.answered_429,
        ft = s.timeouts,
        fl = s.lost_answers,
        absorbed = s.repeats_absorbed,
        lost = lost.len(),
        not_invited = not_invited.len(),
        verify_missing = verify_missing.len(),
        a_missing = approved_missing.len(),
        a_twice = approved_twice.len(),
        drained = drained.map_or_else(|| "did not drain".into(), |d| format!("{d:.1?}")),
        total = started.elapsed(),
    );
    drop(s);
    println!("{report}");
    std::fs::write(work.join("report.md"), &report).unwrap();
    drop(runner);

    assert_eq!(accepted.len(), SIGNUPS, "{report}");
    assert!(lost.is_empty(), "{report}");
    assert!(not_invited.is_empty(), "{not_invited:?}\n{report}");
    assert!(verify_missing.is_empty(), "{report}");
    assert!(
        approved_missing.is_empty(),
        "{approved_missing:?}\n{report}"
    );
    assert!(approved_twice.is_empty(), "{approved_twice:?}\n{report}");
    assert_eq!(other, 0, "{report}");
    assert!(drained.is_some(), "{report}");
}
