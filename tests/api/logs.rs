//! The real binary's log lines under concurrent work: an administrator following one
//! request in Application Insights must find each line under that request, and only there.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use test_support::entra::{invitation_created, mount_token_endpoint};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use crate::{
    helpers::{Azurite, TENANT, default_policy, write_policy},
    worker::host_payload,
};

/// The handler binary in live mode against `graph`, JSON logs on stdout, read line by line.
struct Handler {
    child: Child,
    address: String,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Handler {
    async fn start(azurite: &Azurite, graph: &MockServer, policy: &Path, threads: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_b2b-signup"))
            .env_clear()
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("AzureWebJobsStorage", azurite.connection_string())
            .env("SIGNUP_POLICY_PATH", policy)
            .env("SIGNUP_DRY_RUN", "false")
            .env("SIGNUP_RATE_LIMITS", "off")
            .env("SIGNUP_LOG_FORMAT", "json")
            .env("SIGNUP_WORKER_THREADS", threads)
            .env("RUST_LOG", "info")
            .env("GRAPH_BASE_URL", format!("{}/v1.0", graph.uri()))
            .env("AZURE_AUTHORITY_HOST", graph.uri())
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", "app-client-id")
            .env("AZURE_CLIENT_SECRET", "s3cr3t-value")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the handler starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let handler = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            lines,
            reader: Some(reader),
        };
        let started = Instant::now();
        while reqwest::get(format!("{}/", handler.address)).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the handler did not answer within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handler
    }

    async fn sign_up(&self, http: &reqwest::Client, email: String) -> String {
        let response = http
            .post(format!("{}/api/signup", self.address))
            .json(&json!({"email": email, "displayName": "Ada Lovelace"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json::<Value>().await.unwrap()["requestId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn deliver(&self, http: &reqwest::Client, id: &str) -> u16 {
        let message = json!({"v": 1, "requestId": id, "domain": "contoso.com"}).to_string();
        http.post(format!("{}/InviteQueue", self.address))
            .header("content-type", "application/json")
            .body(host_payload(&message, 1))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Stops the handler; every line it wrote.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every request id a JSON log line names (its own fields, its current span, every span it
/// is in), and how many `invite` spans it is in.
fn named_requests(line: &Value) -> (BTreeSet<String>, usize) {
    let spans = line["spans"].as_array().cloned().unwrap_or_default();
    let ids = std::iter::once(&line["request_id"])
        .chain(std::iter::once(&line["span"]["request_id"]))
        .chain(spans.iter().map(|span| &span["request_id"]))
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect();
    let invites = spans.iter().filter(|span| span["name"] == "invite").count();
    (ids, invites)
}

/// 24 deliveries at once against a Graph answering in 200 ms, and sign-ups arriving while
/// they wait: on the default one-thread runtime and on four threads.
#[tokio::test]
async fn under_concurrent_deliveries_each_log_line_names_one_request_its_own() {
    let azurite = Azurite::start();
    let graph = MockServer::start().await;
    mount_token_endpoint(&graph, TENANT, "test-access-token").await;
    let delay = Duration::from_millis(200);
    Mock::given(method("POST"))
        .and(path("/v1.0/invitations"))
        .respond_with(
            invitation_created("9a0b1c2d-0000-4000-8000-00000000000a", "graph-request-1")
                .set_delay(delay),
        )
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/members/"))
        .respond_with(ResponseTemplate::new(204).set_delay(delay))
        .mount(&graph)
        .await;
    let policy = write_policy(&default_policy());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    for threads in ["1", "4"] {
        let handler = Handler::start(&azurite, &graph, policy.path(), threads).await;
        let signups =
            (0..24).map(|i| handler.sign_up(&http, format!("t{threads}-u{i}@contoso.com")));
        let ids = futures::future::join_all(signups).await;

        let deliveries = futures::future::join_all(ids.iter().map(|id| handler.deliver(&http, id)));
        let arrivals = futures::future::join_all(
            (0..8).map(|i| handler.sign_up(&http, format!("t{threads}-late{i}@contoso.com"))),
        );
        let (statuses, late) = futures::join!(deliveries, arrivals);
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        let lines = handler.stop();

        let mut invitations_sent: Vec<String> = Vec::new();
        let mut stored: Vec<String> = Vec::new();
        for text in &lines {
            let line: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {text}"));
            let (ids, invites) = named_requests(&line);
            assert!(
                ids.len() <= 1 && invites <= 1,
                "{threads} thread(s): a line names {} requests in {invites} invite spans: {text}",
                ids.len()
            );
            let Some(id) = ids.into_iter().next() else {
                continue;
            };
            match line["message"].as_str() {
                Some("invitation sent") => invitations_sent.push(id),
                Some("sign-up stored") => {
                    assert_eq!(invites, 0, "intake's line is in no invitation: {text}");
                    stored.push(id);
                }
                _ => {}
            }
        }
        // Each request's own lines are under it: one "invitation sent" each.
        invitations_sent.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(invitations_sent, expected, "{threads} thread(s)");
        for id in &late {
            assert!(stored.contains(id), "{threads} thread(s): {id} stored");
        }
    }
}
