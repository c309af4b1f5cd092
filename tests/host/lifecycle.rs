//! The handler's life under the runner: started from the app root with the app's settings,
//! stopped with the runner, and a handler that exits takes the runner down with it.

use std::time::Duration;

use crate::helpers::{AppRoot, Azurite, HostProcess, Queues, handler_binary, script};

const POLICY: &str = r#"{
    "defaultAction": "deny",
    "accessOptions": {
        "partner-portal": { "displayName": "Partner portal", "groups": ["11111111-1111-1111-1111-111111111111"] }
    },
    "rules": [ { "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal"] } ]
}"#;

/// Storage that refuses connections at once: for handlers that never need it.
const NO_STORAGE: &str = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;\
     TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;";

fn project_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test]
async fn the_real_handler_serves_signups_through_the_runner_and_stops_with_it() {
    let azurite = Azurite::start();
    // The project's own host.json and function folder; settings from local.settings.json.
    let local_settings = serde_json::json!({
        "IsEncrypted": false,
        "Values": {
            "FUNCTIONS_WORKER_RUNTIME": "custom",
            "AzureWebJobsStorage": azurite.connection_string(),
            "SIGNUP_POLICY_PATH": "policy.json",
            "SIGNUP_DRY_RUN": "true"
        }
    });
    let root = AppRoot::new(&project_file("host.json"))
        .function("SignupHttp", &project_file("SignupHttp/function.json"))
        .file("policy.json", POLICY)
        .file("local.settings.json", &local_settings.to_string());
    let handler = handler_binary();
    let mut host = HostProcess::start(&root, &["--handler", handler.to_str().unwrap()], &[]).await;
    assert!(
        host.output()
            .contains("SignupHttp: [POST] http://127.0.0.1:"),
        "{}",
        host.output()
    );

    let response = reqwest::Client::new()
        .post(host.url("/api/signup"))
        .header("content-type", "application/json")
        .body(r#"{"email":"someone@contoso.com","displayName":"Some One"}"#)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    // The handler got local.settings.json's storage: its message is on the queue.
    Queues::new(&azurite)
        .wait_for_count("signup-requests", 1, Duration::from_secs(10))
        .await;

    let status = host.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", host.output());
}

#[test]
fn a_handler_that_exits_before_answering_stops_the_runner_with_an_error() {
    let root = AppRoot::new(&project_file("host.json"));
    let handler = script(&root, "handler.sh", "exit 3");

    let (status, output) =
        HostProcess::run_to_exit(&root, &["--handler", handler.to_str().unwrap()], &[]);

    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("the handler exited (exit code 3) before answering GET /"),
        "{output}"
    );
}

#[tokio::test]
async fn a_handler_that_exits_later_stops_the_runner_with_an_error() {
    let root = AppRoot::new(&project_file("host.json")).file("policy.json", POLICY);
    let stop_file = root.path().join("stop");
    // Runs the real handler until told to stop, then exits 7.
    let handler = script(
        &root,
        "handler.sh",
        r#""$REAL_HANDLER" &
child=$!
while [ ! -f "$STOP_FILE" ]; do sleep 0.05; done
kill "$child"
wait "$child"
exit 7"#,
    );
    let real = handler_binary();
    let mut host = HostProcess::start(
        &root,
        &["--handler", handler.to_str().unwrap()],
        &[
            ("REAL_HANDLER", real.to_str().unwrap()),
            ("STOP_FILE", stop_file.to_str().unwrap()),
            ("AzureWebJobsStorage", NO_STORAGE),
            ("SIGNUP_POLICY_PATH", "policy.json"),
            ("SIGNUP_DRY_RUN", "true"),
        ],
    )
    .await;

    std::fs::write(&stop_file, "").unwrap();
    let status = host.wait(Duration::from_secs(15)).await;

    assert_eq!(status.code(), Some(1), "{}", host.output());
    assert!(
        host.output().contains("the handler exited (exit code 7)"),
        "{}",
        host.output()
    );
}
