//! `b2b-signup requests …` through the admin API, run as the real binary: funchost with its
//! development identity provider in front of the real handler and Azurite. The command line
//! gets its token from the provider with a client secret (the automation path; the provider
//! accepts any client credentials), and the decision is recorded as the token's
//! administrator, by the API.

use std::{
    process::{Command, Output},
    time::Duration,
};

use b2b_signup::{
    domain::{Actor, Decider, EmailDomain, HistoryAction, RequestId, RequestStatus},
    storage::RequestStore,
};
use serde_json::json;
use test_support::{Azurite, funchost::TEST_HOST_JSON};

use crate::{
    dev_identity::{DEV_ADMIN_OID, DEV_APP, DEV_TENANT},
    end_to_end::{Portal, portal_with},
};

/// funchost's local administrator (crates/funchost/src/identity.rs).
const DEV_ADMIN: &str = "local-admin@b2b-signup.invalid";

/// The command line with the settings an administrator sets for the API, and no storage.
fn cli(api_url: &str, authority: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_b2b-signup"))
        .args(args)
        .env_clear()
        .env("SIGNUP_ADMIN_API_URL", api_url)
        .env("SIGNUP_ADMIN_APP_ID", DEV_APP)
        .env("AZURE_AUTHORITY_HOST", authority)
        .env("AZURE_TENANT_ID", DEV_TENANT)
        .env("AZURE_CLIENT_ID", "any-client")
        .env("AZURE_CLIENT_SECRET", "any-secret")
        .env("USER", "carol")
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn dev_portal(azurite: &Azurite) -> Portal {
    portal_with(
        azurite,
        TEST_HOST_JSON,
        json!({"SIGNUP_DRY_RUN": "true"}),
        &["--dev-identity"],
    )
    .await
}

#[tokio::test]
async fn the_command_line_decides_through_the_api_as_the_signed_in_administrator() {
    let azurite = Azurite::start();
    let portal = dev_portal(&azurite).await;
    let api = portal.host.url("");
    let authority = portal.host.url("/.dev-identity");
    let id = portal.sign_up("grace@fabrikam.com").await;
    let run = |args: &[&str]| cli(&api, &authority, args);

    let listed = run(&["requests", "list"]);
    let (out, err) = text(&listed);
    assert!(listed.status.success(), "{err}\n{}", portal.host.output());
    assert!(
        out.contains(&id) && out.contains("PendingApproval"),
        "{out}"
    );
    assert!(err.contains("as application any-client"), "{err}");
    assert!(!err.contains("eyJ"), "no token printed: {err}");

    let by = run(&[
        "requests",
        "approve",
        &id,
        "--reason",
        "Known partner",
        "--by",
        "ceo",
    ]);
    assert_eq!(by.status.code(), Some(2), "{:?}", text(&by));
    assert!(text(&by).1.contains("the API records who you are"));

    let approved = run(&["requests", "approve", &id, "--reason", "Known partner"]);
    let (out, err) = text(&approved);
    assert!(approved.status.success(), "{err}");
    assert!(out.contains(&format!("by {DEV_ADMIN}")), "{out}");

    let row = portal
        .wait_for(
            "fabrikam.com",
            &id,
            RequestStatus::Invited,
            Duration::from_secs(20),
        )
        .await;
    let decider = row.decided_by.expect("decided");
    assert_eq!(decider.to_string(), DEV_ADMIN);
    assert!(matches!(decider, Decider::Administrator(_)));
    assert_eq!(
        decider.object_id().map(|oid| oid.as_str()),
        Some(DEV_ADMIN_OID),
        "DecidedById"
    );
    assert_eq!(row.decision_reason.as_deref(), Some("Known partner"));

    let shown = run(&["requests", "show", &id]);
    let (out, err) = text(&shown);
    assert!(shown.status.success(), "{err}");
    assert!(
        out.contains(&format!("DecidedBy       {DEV_ADMIN}")),
        "{out}"
    );

    // Well-formed, but no such request: refused, exit 1.
    let unknown = run(&["requests", "approve", "01JDQ3Z6W1T2V3X4Y5Z6A7B8C9"]);
    assert_eq!(unknown.status.code(), Some(1), "{:?}", text(&unknown));
    assert!(
        text(&unknown).1.contains("not_found"),
        "{:?}",
        text(&unknown)
    );
}

/// `requests retry --status Failed` through the API: the Failed requests are listed
/// through it and retried one by one, as the signed-in administrator.
#[tokio::test]
async fn a_batch_retry_goes_through_the_api() {
    let azurite = Azurite::start();
    let portal = dev_portal(&azurite).await;
    let api = portal.host.url("");
    let authority = portal.host.url("/.dev-identity");
    let run = |args: &[&str]| cli(&api, &authority, args);
    let domain = EmailDomain::parse("contoso.com").unwrap();
    let mut ids = Vec::new();
    for email in ["ada@contoso.com", "alan@contoso.com"] {
        let id = portal.sign_up(email).await;
        portal
            .wait_for(
                "contoso.com",
                &id,
                RequestStatus::Invited,
                Duration::from_secs(20),
            )
            .await;
        // What a refusal from Graph leaves (the worker's own path is tested elsewhere).
        let row = portal
            .store
            .get(&domain, &RequestId::parse(&id).unwrap())
            .await
            .unwrap()
            .unwrap();
        let mut failed = row.value;
        failed.transition(
            RequestStatus::Failed,
            Actor::Worker,
            HistoryAction::Failed,
            Some("Graph refused (test)".into()),
            time::OffsetDateTime::now_utc(),
        );
        portal.store.replace(&failed, &row.etag).await.unwrap();
        ids.push(id);
    }

    let wrong = run(&["requests", "retry", "--status", "Invited"]);
    assert_eq!(wrong.status.code(), Some(2), "{:?}", text(&wrong));

    let retried = run(&["requests", "retry", "--status", "Failed", "--since", "1d"]);
    let (out, err) = text(&retried);
    assert!(retried.status.success(), "{err}\n{}", portal.host.output());
    for id in &ids {
        assert!(out.contains(&format!("{id}: retried")), "{out}");
        assert!(out.contains(&format!("by {DEV_ADMIN}")), "{out}");
        portal
            .wait_for(
                "contoso.com",
                id,
                RequestStatus::Invited,
                Duration::from_secs(20),
            )
            .await;
    }

    let again = run(&["requests", "retry", "--status", "Failed"]);
    let (out, err) = text(&again);
    assert!(again.status.success(), "{err}");
    assert!(out.contains("no Failed requests match"), "{out}");
}

#[tokio::test]
async fn an_unreachable_api_is_unavailable() {
    let azurite = Azurite::start();
    let portal = dev_portal(&azurite).await;
    let authority = portal.host.url("/.dev-identity");
    // A loopback port nobody listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);

    // A token, but no API.
    let listed = cli(&address, &authority, &["requests", "list"]);
    assert_eq!(listed.status.code(), Some(3), "{:?}", text(&listed));
    // No token endpoint either: still unavailable, not a setting to fix.
    let listed = cli(
        &address,
        &format!("{address}/.dev-identity"),
        &["requests", "list"],
    );
    assert_eq!(listed.status.code(), Some(3), "{:?}", text(&listed));
}

#[test]
fn the_api_must_be_https_off_loopback() {
    let listed = cli(
        "http://app.example.net",
        "https://login.microsoftonline.com",
        &["requests", "list"],
    );
    assert_eq!(listed.status.code(), Some(2), "{:?}", text(&listed));
}

#[tokio::test]
async fn the_command_line_exports_and_erases_an_address_through_the_api() {
    let azurite = Azurite::start();
    let portal = dev_portal(&azurite).await;
    let api = portal.host.url("");
    let authority = portal.host.url("/.dev-identity");
    let id = portal.sign_up("grace@fabrikam.com").await;
    let other = portal.sign_up("ada@fabrikam.com").await;
    let run = |args: &[&str]| cli(&api, &authority, args);

    let exported = run(&["requests", "export", "--email", "Grace@fabrikam.com"]);
    let (out, err) = text(&exported);
    assert!(exported.status.success(), "{err}\n{}", portal.host.output());
    let export: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(export["requests"][0]["requestId"], id.as_str());
    assert_eq!(export["addressClaim"]["requestId"], id.as_str());
    assert!(!out.contains(&other));

    let by = run(&[
        "requests",
        "erase",
        "--email",
        "grace@fabrikam.com",
        "--by",
        "ceo",
    ]);
    assert_eq!(by.status.code(), Some(2), "{:?}", text(&by));

    let erased = run(&["requests", "erase", "--email", "grace@fabrikam.com"]);
    let (out, err) = text(&erased);
    assert!(erased.status.success(), "{err}");
    assert!(out.starts_with("erased: 1 requests"), "{out}");
    let row = |id: &str| {
        let (domain, id) = (
            EmailDomain::parse("fabrikam.com").unwrap(),
            RequestId::parse(id).unwrap(),
        );
        let store = portal.store.clone();
        async move { store.get(&domain, &id).await.unwrap() }
    };
    assert!(row(&id).await.is_none());
    assert!(row(&other).await.is_some());
    // The address went in the body: no log line of the host or the handler names it.
    let logs = portal.host.output();
    assert!(!logs.contains("grace@"), "{logs}");
    assert!(logs.contains("data subject erased"), "{logs}");
}
