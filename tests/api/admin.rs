//! The administrators' command line, run as the real binary against the test's Azurite.

use std::{
    process::{Command, Output},
    sync::Arc,
};

use b2b_signup::{
    clock::Clock,
    domain::{Decider, RequestId, RequestStatus},
    requests::{Requests, RetryError},
    storage::RequestStore,
};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

impl TestApp {
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_b2b-signup"))
            .args(args)
            .env_clear()
            .env("AzureWebJobsStorage", self.azurite.connection_string())
            .env("USER", "carol")
            .output()
            .expect("the binary runs")
    }
}

pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test]
async fn list_shows_requests_newest_first_and_filters() {
    let app = spawn_app().await;
    let (first, _) = app.sign_up("ada@contoso.com").await;
    let (second, _) = app.sign_up("grace@fabrikam.com").await;

    let table = stdout(&app.cli(&["requests", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&second) && lines[2].starts_with(&first),
        "newest first:\n{table}"
    );

    let pending = stdout(&app.cli(&["requests", "list", "--status", "pendingapproval", "--json"]));
    let rows: serde_json::Value = serde_json::from_str(&pending).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["requestId"], second.as_str());
    assert_eq!(rows[0]["email"], "grace@fabrikam.com");

    let by_domain = stdout(&app.cli(&[
        "requests",
        "list",
        "--domain",
        "CONTOSO.com",
        "--since",
        "1d",
    ]));
    assert!(
        by_domain.contains(&first) && !by_domain.contains(&second),
        "{by_domain}"
    );
}

#[tokio::test]
async fn approve_deny_and_show_record_the_decision() {
    let app = spawn_app().await;
    let (approved, _) = app.sign_up("grace@fabrikam.com").await;
    let (denied, _) = app.sign_up("linus@fabrikam.com").await;

    let out = stdout(&app.cli(&["requests", "approve", &approved, "--reason", "vetted"]));
    assert!(
        out.contains("decided, now Queued (by local:carol)"),
        "{out}"
    );
    let out = stdout(&app.cli(&[
        "requests",
        "deny",
        &denied,
        "--reason",
        "unknown company",
        "--by",
        "dave",
    ]));
    assert!(out.contains("now Denied (by dave)"), "{out}");
    assert_eq!(
        app.queued_messages().await.len(),
        1,
        "only the approval enqueued"
    );

    let shown = stdout(&app.cli(&["requests", "show", &denied]));
    assert!(
        shown.contains("Status          Denied")
            && shown.contains("DecisionReason  unknown company"),
        "{shown}"
    );

    // Deciding against an earlier decision is refused with exit code 1.
    let again = app.cli(&["requests", "deny", &approved, "--reason", "changed my mind"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already decided"));
    assert_eq!(
        app.row("fabrikam.com", &approved).await.unwrap().status,
        RequestStatus::Queued
    );
}

#[tokio::test]
async fn export_writes_csv_that_survives_awkward_values() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            &json!({
                "email": "o'brien@contoso.com",
                "displayName": "Zoë \"Z\" Ångström, PhD",
                "company": "=HYPERLINK(\"http://evil.example\")",
                "justification": "line one\nline two, with comma"
            })
            .to_string(),
        )
        .await;
    assert_eq!(response.status(), 202);

    let csv = stdout(&app.cli(&["requests", "export", "--format", "csv"]));

    let mut lines = csv.split("\r\n");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("RequestId,Status,Email,DisplayName,Domain,Access,Company,Justification")
    );
    let record = lines.next().unwrap();
    assert!(
        record.contains(",o'brien@contoso.com,\"Zoë \"\"Z\"\" Ångström, PhD\",contoso.com,"),
        "{record}"
    );
    assert!(
        record.contains("\"'=HYPERLINK(\"\"http://evil.example\"\")\""),
        "formula neutralised: {record}"
    );
    assert!(
        record.contains("\"line one\nline two, with comma\""),
        "{record}"
    );
}

#[tokio::test]
async fn restore_claims_rebuilds_the_claims_of_live_requests_after_an_upgrade() {
    // Arrange: rows whose claims are missing, as after an upgrade from the version that
    // kept them in table SignupAddresses.
    let app = spawn_app().await;
    let (live, _) = app.sign_up("ada@contoso.com").await;
    let (failed, _) = app.sign_up("bob@contoso.com").await;
    app.set_status("contoso.com", &failed, RequestStatus::Failed)
        .await;
    for local in ["ada", "bob"] {
        app.delete_entity("contoso.com", &format!("address:{local}"))
            .await;
    }

    // Act
    let out = stdout(&app.cli(&["requests", "restore-claims"]));
    let again = stdout(&app.cli(&["requests", "restore-claims"]));

    // Assert: the live request answers repeats again; the failed one does not block.
    assert_eq!(
        out.trim(),
        "2 requests read; 1 claims written, 0 already present"
    );
    assert_eq!(
        again.trim(),
        "2 requests read; 0 claims written, 1 already present"
    );
    assert_eq!(app.sign_up("Ada@contoso.com").await.0, live);
    assert_ne!(app.sign_up("bob@contoso.com").await.0, failed);
}

#[tokio::test]
async fn errors_have_meaningful_exit_codes() {
    let app = spawn_app().await;
    let unknown = app.cli(&["requests", "show", "01JDQ3Z6W1T2V3X4Y5Z6A7B8C9"]);
    assert_eq!(unknown.status.code(), Some(1));
    let bad_status = app.cli(&["requests", "list", "--status", "Bogus"]);
    assert_eq!(bad_status.status.code(), Some(2));
    let missing_reason = app.cli(&["requests", "deny", "01JDQ3Z6W1T2V3X4Y5Z6A7B8C9"]);
    assert_eq!(
        missing_reason.status.code(),
        Some(2),
        "clap: --reason is required"
    );

    let down = Command::new(env!("CARGO_BIN_EXE_b2b-signup"))
        .args(["requests", "list"])
        .env_clear()
        .env(
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:9/a;QueueEndpoint=http://127.0.0.1:9/a;",
        )
        .output()
        .unwrap();
    assert_eq!(
        down.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}

#[test]
fn policy_explain_names_the_rule() {
    let output = Command::new(env!("CARGO_BIN_EXE_b2b-signup"))
        .args([
            "policy",
            "explain",
            "Ada@Sales.Fabrikam.com",
            "--policy",
            concat!(env!("CARGO_MANIFEST_DIR"), "/policy.example.json"),
        ])
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(
        text.contains("domain sales.fabrikam.com") && text.contains("pattern *.fabrikam.com"),
        "{text}"
    );
}

/// The policy commands run where an administrator stands, with the default file or none.
fn policy_cli(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_b2b-signup"))
        .args(args)
        .env_clear()
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

#[test]
fn policy_commands_name_their_file_and_exit_as_the_readme_says() {
    // Arrange: a fresh clone has policy.example.json, not policy.json.
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/policy.example.json");

    // Act / Assert: a missing file is configuration (2), and the error names the file read.
    for args in [
        &["policy", "check"][..],
        &["policy", "explain", "ada@contoso.com"][..],
    ] {
        let missing = policy_cli(dir.path(), args);
        let stderr = String::from_utf8_lossy(&missing.stderr);
        assert_eq!(missing.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("policy.json") && stderr.contains("SIGNUP_POLICY_PATH"),
            "{args:?}: {stderr}"
        );
    }

    // An invalid policy is refused (1), naming the file.
    std::fs::write(dir.path().join("policy.json"), r#"{"rules": 5}"#).unwrap();
    let invalid = policy_cli(dir.path(), &["policy", "check"]);
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert_eq!(invalid.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("policy.json"), "{stderr}");

    // The file read is in the output.
    let checked = stdout(&policy_cli(dir.path(), &["policy", "check", example]));
    assert!(checked.starts_with(example), "{checked}");
    let explained = stdout(&policy_cli(
        dir.path(),
        &["policy", "explain", "ada@contoso.com", "--policy", example],
    ));
    assert!(
        explained.starts_with(&format!("policy:   {example}\n")),
        "{explained}"
    );
}

#[tokio::test]
async fn show_and_list_write_stored_control_characters_visibly() {
    // Arrange: a row written before intake refused control characters.
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    let steering = "none\rAPPROVED BY SECURITY - ticket SEC-1\u{1b}[2J\u{202e}";
    app.write_column("contoso.com", &id, "Justification", steering)
        .await;
    app.write_column("contoso.com", &id, "Company", "Contoso\u{9b}31m")
        .await;

    // Act
    let shown = stdout(&app.cli(&["requests", "show", &id]));
    let json = stdout(&app.cli(&["requests", "show", &id, "--json"]));
    let listed = stdout(&app.cli(&["requests", "list"]));

    // Assert: the characters are there to see, and none reaches the terminal raw.
    assert!(
        shown.contains(
            "Justification   none\\rAPPROVED BY SECURITY - ticket SEC-1\\u{1b}[2J\\u{202e}\n"
        ),
        "{shown:?}"
    );
    assert!(
        shown.contains("Company         Contoso\\u{9b}31m\n"),
        "{shown:?}"
    );
    for output in [&shown, &json, &listed] {
        assert!(
            !output
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{output:?}"
        );
    }
    let view: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(view["justification"], steering, "the JSON keeps the value");
    assert!(listed.contains(&id), "{listed}");
}

impl TestApp {
    /// Marks a request `Failed` as a poisoned delivery leaves it, `created_at` moved back
    /// by `age` (rows are created with the test's clock).
    async fn fail(&self, id: &str, age: time::Duration) {
        let mut row = self
            .store
            .find(&RequestId::parse(id).unwrap())
            .await
            .unwrap()
            .expect("row exists");
        row.value.status = RequestStatus::Failed;
        row.value.attempts = 5;
        row.value.reason = Some("poisoned after 5 attempts; last: adding to group".into());
        row.value.created_at -= age;
        self.store.replace(&row.value, &row.etag).await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_request_retried_is_queued_then_invited_by_the_worker() {
    // Arrange: a request that failed after its invitation went out.
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    app.fail(&id, time::Duration::ZERO).await;
    let messages_before = app.queued_messages().await.len();

    // Act
    let out = stdout(&app.cli(&["requests", "retry", &id]));

    // Assert: recorded, queued, and a message on its way.
    assert_eq!(
        out.trim(),
        format!("{id}: retried, now Queued (by local:carol)")
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Queued);
    assert_eq!(row.retried_by, Some(Decider::Local("carol".into())));
    assert!(row.retried_at.is_some());
    assert_eq!(row.attempts, 0, "a retry has a fresh budget of deliveries");
    assert_eq!(
        row.reason.as_deref(),
        Some("retried after 5 attempts; failed: poisoned after 5 attempts; last: adding to group")
    );
    let messages = app.queued_messages().await;
    assert_eq!(messages.len(), messages_before + 1);
    let message = messages.last().unwrap();
    assert_eq!(message.request_id, id);

    // The worker takes it (dry run) to the end.
    let (status, _) = app
        .invoke("InviteQueue", &serde_json::to_string(message).unwrap(), 1)
        .await;
    assert_eq!(status, 200);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.retried_by, Some(Decider::Local("carol".into())), "kept");
    let shown = stdout(&app.cli(&["requests", "show", &id]));
    assert!(shown.contains("RetriedBy       local:carol"), "{shown}");
}

#[tokio::test]
async fn a_request_that_is_not_failed_or_has_a_newer_one_is_not_retried() {
    let app = spawn_app().await;
    let (live, _) = app.sign_up("ada@contoso.com").await;
    let (old, _) = app.sign_up("bob@contoso.com").await;
    app.fail(&old, time::Duration::ZERO).await;
    let (newer, _) = app.sign_up("bob@contoso.com").await;
    let messages_before = app.queued_messages().await.len();

    let refused = app.cli(&["requests", "retry", &live]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{live} is not Failed: it is Accepted")),
        "{stderr}"
    );

    let superseded = app.cli(&["requests", "retry", &old]);
    let stderr = String::from_utf8_lossy(&superseded.stderr);
    assert_eq!(superseded.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("newer request, {newer}")),
        "{stderr}"
    );

    let unknown = app.cli(&["requests", "retry", "01JDQ3Z6W1T2V3X4Y5Z6A7B8C9"]);
    assert_eq!(unknown.status.code(), Some(1));
    for usage in [
        &["requests", "retry"][..],
        &["requests", "retry", "--status", "Invited"][..],
        &["requests", "retry", &old, "--status", "Failed"][..],
    ] {
        assert_eq!(app.cli(usage).status.code(), Some(2), "{usage:?}");
    }

    assert_eq!(
        app.row("contoso.com", &old).await.unwrap().status,
        RequestStatus::Failed
    );
    assert_eq!(
        app.queued_messages().await.len(),
        messages_before,
        "nothing sent"
    );
}

#[tokio::test]
async fn failed_requests_are_retried_in_a_batch_by_status_and_age() {
    // Arrange: two recent failures, an old one, and a live request.
    let app = spawn_app().await;
    let (recent_a, _) = app.sign_up("ada@contoso.com").await;
    let (recent_b, _) = app.sign_up("bob@contoso.com").await;
    let (old, _) = app.sign_up("cy@contoso.com").await;
    let (live, _) = app.sign_up("di@contoso.com").await;
    app.fail(&recent_a, time::Duration::ZERO).await;
    app.fail(&recent_b, time::Duration::hours(2)).await;
    app.fail(&old, time::Duration::days(3)).await;

    // Act
    let out = stdout(&app.cli(&[
        "requests", "retry", "--status", "failed", "--since", "1d", "--by", "ops",
    ]));

    // Assert
    assert_eq!(out.lines().count(), 2, "{out}");
    for id in [&recent_a, &recent_b] {
        assert!(
            out.contains(&format!("{id}: retried, now Queued (by ops)")),
            "{out}"
        );
        let row = app.row("contoso.com", id).await.unwrap();
        assert_eq!(row.status, RequestStatus::Queued);
        assert_eq!(row.retried_by, Some(Decider::Named("ops".into())));
    }
    assert_eq!(
        app.row("contoso.com", &old).await.unwrap().status,
        RequestStatus::Failed
    );
    assert_eq!(
        app.row("contoso.com", &live).await.unwrap().status,
        RequestStatus::Accepted
    );
    let none = stdout(&app.cli(&["requests", "retry", "--status", "Failed", "--since", "1d"]));
    assert_eq!(none.trim(), "no Failed requests match");
}

#[tokio::test]
async fn a_concurrent_change_wins_over_a_retry() {
    // Arrange: a failed request read by one administrator, retried first by another.
    let app = spawn_app().await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    app.fail(&id, time::Duration::ZERO).await;
    let stale = app
        .store
        .find(&RequestId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    stdout(&app.cli(&["requests", "retry", &id, "--by", "first"]));
    let requests = Requests {
        store: Arc::new(app.store.clone()),
        queue: Arc::new(app.store.clone()),
        clock: Clock::system(),
        notifier: None,
        outbox: None,
    };

    // Act
    let second = requests
        .retry(stale, &Decider::Named("second".into()))
        .await;

    // Assert: refused, and the first retry's record stands.
    assert!(
        matches!(&second, Err(RetryError::NotFailed(request)) if request.status == RequestStatus::Queued),
        "{second:?}"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.retried_by, Some(Decider::Named("first".into())));
}
