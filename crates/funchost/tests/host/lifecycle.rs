//! The handler's life under the runner: a handler that exits takes the runner down with
//! it. (The real handler started from the app root with the app's settings, and stopped
//! with the runner, is tested with the product: tests/portal/lifecycle.rs.)

use std::time::Duration;

use crate::helpers::{AppRoot, HostProcess, TEST_HOST_JSON, script};

#[test]
fn a_handler_that_exits_before_answering_stops_the_runner_with_an_error() {
    let root = AppRoot::new(TEST_HOST_JSON);
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
    let root = AppRoot::new(TEST_HOST_JSON);
    let stop_file = root.path().join("stop");
    // Serves HTTP on the port the runner gives (any answer to GET / is "ready") until told
    // to stop, then exits 7.
    let handler = script(
        &root,
        "handler.sh",
        r#"python3 -m http.server "$FUNCTIONS_CUSTOMHANDLER_PORT" --bind 127.0.0.1 >/dev/null 2>&1 &
child=$!
while [ ! -f "$STOP_FILE" ]; do sleep 0.05; done
kill "$child"
wait "$child"
exit 7"#,
    );
    let mut host = HostProcess::start(
        &root,
        &["--handler", handler.to_str().unwrap()],
        &[("STOP_FILE", stop_file.to_str().unwrap())],
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
