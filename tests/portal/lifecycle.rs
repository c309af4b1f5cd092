//! The real handler's life under the local Functions host: started from the app root with
//! the app's settings (local.settings.json), serving sign-ups, stopped with the host.

use std::time::Duration;

use crate::CONTOSO_INVITE_POLICY as POLICY;
use test_support::{
    Azurite,
    funchost::{AppRoot, HostProcess, Queues},
};

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
    let handler = std::path::PathBuf::from(env!("CARGO_BIN_EXE_b2b-signup"));
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
