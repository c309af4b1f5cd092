//! The local Functions host under test: an app root in a temporary folder, the real
//! `funchost` process, and queues on a real Azurite read and written as the outside world
//! would. Shared by funchost's own tests (with a fake handler) and the product's (with the
//! real one).

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_queues::{QueueClient, QueueServiceClientBuilder};
use base64::Engine;

use crate::Azurite;

/// A test host.json: forwarding on, and queue settings that make retries quick.
pub const TEST_HOST_JSON: &str = r#"{
    "version": "2.0",
    "customHandler": {
        "description": { "defaultExecutablePath": "b2b-signup", "workingDirectory": "", "arguments": [] },
        "enableForwardingHttpRequest": true
    },
    "extensions": {
        "http": { "routePrefix": "api" },
        "queues": {
            "batchSize": 4,
            "newBatchThreshold": 2,
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:00",
            "maxPollingInterval": "00:00:00.500",
            "messageEncoding": "base64"
        }
    }
}"#;

/// The function key tests use for `authLevel: function` routes.
pub const FUNCTION_KEY: &str = "test-key-0123456789";

/// An app root: host.json, function folders, optional local.settings.json.
pub struct AppRoot {
    dir: tempfile::TempDir,
}

impl AppRoot {
    pub fn new(host_json: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("host.json"), host_json).expect("host.json written");
        Self { dir }
    }

    pub fn function(self, name: &str, function_json: &str) -> Self {
        let folder = self.dir.path().join(name);
        std::fs::create_dir_all(&folder).expect("function folder");
        std::fs::write(folder.join("function.json"), function_json).expect("function.json");
        self
    }

    pub fn file(self, name: &str, contents: &str) -> Self {
        std::fs::write(self.dir.path().join(name), contents).expect("file written");
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A `funchost` process, killed when dropped; its output is kept for failures.
pub struct HostProcess {
    child: Child,
    pub address: String,
    output: Arc<Mutex<String>>,
}

impl HostProcess {
    /// Starts the runner and waits (without blocking the test's runtime, which may be
    /// serving the fake handler) for its "listening" line.
    pub async fn start(root: &AppRoot, args: &[&str], env: &[(&str, &str)]) -> Self {
        let (child, output, lines) = Self::spawn(root, args, env);
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            match lines.try_recv() {
                Ok(line) => {
                    if let Some(address) = line.strip_prefix("funchost listening on ") {
                        break address.trim().to_owned();
                    }
                }
                Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => panic!(
                    "the runner did not report its address; output:\n{}",
                    output.lock().unwrap()
                ),
            }
        };
        Self {
            child,
            address,
            output,
        }
    }

    /// Starts the runner expecting it to stop by itself; returns its status and output.
    pub fn run_to_exit(
        root: &AppRoot,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (ExitStatus, String) {
        let (mut child, output, _lines) = Self::spawn(root, args, env);
        let status = wait_with_timeout(&mut child, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50)); // let the readers finish
        let text = output.lock().unwrap().clone();
        (status, text)
    }

    fn spawn(
        root: &AppRoot,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Child, Arc<Mutex<String>>, mpsc::Receiver<String>) {
        let mut command = Command::new(crate::funchost_bin());
        command
            .args(["--port", "0", "--app-root"])
            .arg(root.path())
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // The test process's own settings must not leak into the runner.
            .env_remove("AzureWebJobsStorage")
            .env_remove("B2B_HOST_FUNCTION_KEYS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the runner starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr = child.stderr.take().expect("stderr piped");
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            });
        }
        (child, output, rx)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The output once it holds `text`: a line is read from the process's pipe after the
    /// HTTP answer it follows may already have arrived, so a test waits for it (bounded).
    pub async fn output_with(&self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.output();
            if output.contains(text) || Instant::now() >= deadline {
                return output;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM (what App Service and Ctrl-C-like stops send) and waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM sent");
        self.wait(Duration::from_secs(30)).await
    }

    /// Waits for the runner to exit by itself.
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the runner did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the runner did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        // SIGTERM first: the runner stops its handler. A SIGKILL alone would leave the
        // handler running, orphaned, after the test (found while running the fault suite).
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- runner output ---\n{}", self.output());
        }
    }
}

/// Queues on the test's Azurite, written and read as the outside world would.
pub struct Queues {
    service: azure_storage_queues::QueueServiceClient,
}

impl Queues {
    pub fn new(azurite: &Azurite) -> Self {
        let service = QueueServiceClientBuilder::with_location(
            CloudLocation::Custom {
                account: "devstoreaccount1".into(),
                uri: format!("http://127.0.0.1:{}/devstoreaccount1", azurite.queue_port),
            },
            StorageCredentials::emulator(),
        )
        .build();
        Self { service }
    }

    fn queue(&self, name: &str) -> QueueClient {
        self.service.queue_client(name)
    }

    /// Puts `text` as is; returns the message id.
    pub async fn put_raw(&self, queue: &str, text: &str) -> String {
        self.queue(queue).create().await.expect("queue created");
        self.queue(queue)
            .put_message(text)
            .await
            .expect("message put")
            .queue_message
            .message_id
    }

    /// Puts `text` base64-encoded, as the app's own enqueue does.
    pub async fn put_base64(&self, queue: &str, text: &str) -> String {
        self.put_raw(
            queue,
            &base64::engine::general_purpose::STANDARD.encode(text),
        )
        .await
    }

    /// Texts of the visible messages (peeked: they stay).
    pub async fn peek(&self, queue: &str) -> Vec<String> {
        match self
            .queue(queue)
            .peek_messages()
            .number_of_messages(32u8)
            .await
        {
            Ok(peeked) => peeked
                .messages
                .into_iter()
                .map(|m| m.message_text)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Waits until `queue` has exactly `count` visible messages; returns their texts.
    pub async fn wait_for_count(
        &self,
        queue: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let texts = self.peek(queue).await;
            if texts.len() == count {
                return texts;
            }
            assert!(
                Instant::now() < deadline,
                "{queue} has {} messages, expected {count}, after {timeout:?}",
                texts.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An executable shell script in `root`.
pub fn script(root: &AppRoot, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = root.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
