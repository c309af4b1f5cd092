//! What funchost's tests add to the shared ones (`test_support::funchost`): a fake handler
//! in the test process (the runner's `--handler-url`) that records what the runner sends.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::sync::mpsc as async_mpsc;
use warp::{
    Filter,
    http::{HeaderMap, Method},
};

pub use test_support::{
    Azurite,
    funchost::{AppRoot, FUNCTION_KEY, HostProcess, Queues, TEST_HOST_JSON, script},
};

/// An HTTP client for the runner's address, with a timeout a hung runner cannot outlast.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain HTTP client builds")
}

/// A request the fake handler received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The fake handler's answer: status, headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// The answer a custom handler gives a successful invocation.
pub fn invocation_ok() -> Answer {
    (
        200,
        vec![("content-type", "application/json".into())],
        br#"{"Outputs":{},"Logs":["handled"],"ReturnValue":null}"#.to_vec(),
    )
}

/// An HTTP server in the test process standing in for the handler: records every request
/// and answers with `respond`.
pub struct FakeHandler {
    pub url: String,
    received: async_mpsc::UnboundedReceiver<Received>,
}

impl FakeHandler {
    pub async fn start(respond: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Self {
        let respond = Arc::new(respond);
        let (tx, received) = async_mpsc::unbounded_channel();
        let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
        let routes = warp::any()
            .and(warp::method())
            .and(warp::path::full())
            .and(raw_query)
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |method, path: warp::path::FullPath, query: String, headers, body| {
                    let path_and_query = if query.is_empty() {
                        path.as_str().to_owned()
                    } else {
                        format!("{}?{query}", path.as_str())
                    };
                    let request = Received {
                        method,
                        path_and_query,
                        headers,
                        body,
                    };
                    let (status, headers, body) = respond(&request);
                    let _ = tx.send(request);
                    let mut response = warp::http::Response::builder().status(status);
                    for (name, value) in headers {
                        response = response.header(name, value);
                    }
                    response
                        .body(body)
                        .unwrap_or_else(|_| warp::http::Response::new(Vec::new()))
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(warp::serve(routes).incoming(listener).run());
        Self { url, received }
    }

    /// The next request to `path` (ignoring others), within `timeout`.
    pub async fn next_to(&mut self, path: &str, timeout: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(request)) if request.path_and_query.starts_with(path) => return request,
                Ok(Some(_)) => continue,
                _ => panic!("no request to {path} within {timeout:?}"),
            }
        }
    }

    /// Requests to `path` received so far (without waiting).
    pub fn received_so_far(&mut self, path: &str) -> Vec<Received> {
        let mut found = Vec::new();
        while let Ok(request) = self.received.try_recv() {
            if request.path_and_query.starts_with(path) {
                found.push(request);
            }
        }
        found
    }
}

/// Decodes a double-encoded Data/Metadata string: the outer JSON string holds JSON text.
pub fn decode_twice(value: &serde_json::Value) -> String {
    let text = value.as_str().expect("a string");
    serde_json::from_str(text).expect("the string holds a JSON string")
}
