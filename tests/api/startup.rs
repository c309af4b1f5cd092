//! The real binary, started the way the Functions host starts it.

use std::{
    io::Read,
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::helpers::{default_policy, write_policy};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A storage endpoint that accepts connections and never answers: any network call made
/// before binding would stall start-up.
fn black_hole() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;\
         TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    );
    (listener, connection)
}

fn handler() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_b2b-signup"));
    command
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("SIGNUP_DRY_RUN", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn the_probe_is_answered_at_once_even_when_storage_hangs() {
    let policy = write_policy(&default_policy());
    let (_black_hole, connection) = black_hole();
    let port = free_port();
    let started = Instant::now();
    let mut child = handler()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("AzureWebJobsStorage", connection)
        .env("SIGNUP_POLICY_PATH", policy.path())
        .spawn()
        .unwrap();
    let status = wait_ready(port);
    let ready = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    // Generous bound: this proves nothing slow happens before bind; docs hold the measured figure.
    assert!(ready < Duration::from_secs(2), "ready after {ready:?}");
}

/// Polls `GET /` until the handler answers (10 s at most); its status.
fn wait_ready(port: u16) -> reqwest::StatusCode {
    let started = Instant::now();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    loop {
        if let Ok(response) = client.get(format!("http://127.0.0.1:{port}/")).send() {
            return response.status();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no answer to GET / within 10 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Threads of process `pid` whose name starts with `prefix` (Linux `/proc`).
fn threads_named(pid: u32, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter(|task| {
            let comm = task.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|name| name.starts_with(prefix))
        })
        .count()
}

#[test]
fn the_runtime_has_one_thread_unless_signup_worker_threads_asks_for_more() {
    let policy = write_policy(&default_policy());
    let (_black_hole, connection) = black_hole();
    // tokio names each thread of its work-stealing pool `tokio-rt-worker`; the
    // current-thread runtime starts none.
    for (setting, pool_threads) in [(None, 0), (Some("3"), 3)] {
        let port = free_port();
        let mut command = handler();
        command
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("AzureWebJobsStorage", &connection)
            .env("SIGNUP_POLICY_PATH", policy.path());
        if let Some(threads) = setting {
            command.env("SIGNUP_WORKER_THREADS", threads);
        }
        let mut child = command.spawn().unwrap();
        assert_eq!(wait_ready(port), 200);
        let counted = threads_named(child.id(), "tokio-rt-worker");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(counted, pool_threads, "SIGNUP_WORKER_THREADS={setting:?}");
    }

    let (code, stderr) = run_to_exit(
        handler()
            .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
            .env("SIGNUP_WORKER_THREADS", "0"),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("SIGNUP_WORKER_THREADS must be a number of threads from 1 to 64"),
        "{stderr}"
    );
}

fn run_to_exit(command: &mut Command) -> (i32, String) {
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code().unwrap_or(-1), stderr);
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the handler kept running with a bad configuration");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_bad_policy_stops_start_up_naming_the_place() {
    let policy = write_policy(
        r#"{ "defaultAction": "invite",
             "accessOptions": { "p": { "displayName": "P", "groups": ["11111111-1111-1111-1111-111111111111"] } },
             "rules": [] }"#,
    );
    let (code, stderr) = run_to_exit(
        handler()
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string())
            .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
            .env("SIGNUP_POLICY_PATH", policy.path()),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("defaultAction") && stderr.contains("every domain"),
        "{stderr}"
    );
}

#[test]
fn a_missing_policy_file_and_missing_storage_are_clear_errors() {
    let (code, stderr) = run_to_exit(
        handler()
            .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
            .env("SIGNUP_POLICY_PATH", "/nonexistent/policy.json"),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/policy.json"), "{stderr}");

    let (code, stderr) = run_to_exit(&mut handler());
    assert_eq!(code, 2);
    assert!(stderr.contains("AzureWebJobsStorage"), "{stderr}");
}

#[test]
fn policy_check_validates_the_shipped_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/policy.example.json");
    let output = Command::new(env!("CARGO_BIN_EXE_b2b-signup"))
        .args(["policy", "check", example])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("valid (3 rules, 2 access options)"));
}

#[test]
fn live_mode_without_graph_settings_is_a_start_up_error() {
    let policy = write_policy(&default_policy());
    let (code, stderr) = run_to_exit(
        handler()
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string())
            .env("AzureWebJobsStorage", "UseDevelopmentStorage=true")
            .env("SIGNUP_POLICY_PATH", policy.path())
            .env("SIGNUP_DRY_RUN", "false"),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("live mode") && stderr.contains("AZURE_CLIENT_SECRET"),
        "{stderr}"
    );
}
