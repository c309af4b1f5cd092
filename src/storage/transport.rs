//! The HTTP transport under every storage client: one pooled `reqwest::Client` with the
//! storage timeouts, and one repair of the 0.21 SDK's entity-group transactions.
//!
//! The SDK writes a `$batch` body with bare LF line ends and a close delimiter without its
//! trailing `--`, and it cannot ask an insert inside the batch not to echo its entity.
//! [`normalize_batch`] rewrites the body the way RFC 2046 and the Table service's
//! documentation write it (<https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions>):
//! CRLF line ends, `--batch_…--` at the end, and `Prefer: return-no-content` on each
//! insert, so the answer carries each insert's status and ETag and no entity. Every other
//! request goes out untouched.

use async_trait::async_trait;
use azure_core::{Body, HttpClient, Request, Response, headers};

/// How an insert starts inside a `$batch` body: only batches holding one are rewritten
/// (delete-only batches, from retention and erasure, need none of it). The SDK sets
/// `Content-Length` before this transport runs, so a rewritten body gets its own:
/// otherwise the service reads the longer body short (the closing delimiters of intake's
/// transaction, the last operations of a large one). The Table service's Shared Key
/// signature does not cover `Content-Length`
/// (<https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key#table-service-shared-key-authorization>),
/// so the request stays signed.
const INSERT_LINE: &str = "\nPOST ";

#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    /// Requests sent (each SDK retry counts), for benchmarks ([`super::AzureStorage::calls`]).
    pub(crate) calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait]
impl HttpClient for Transport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<Response> {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if request.url().path().ends_with("/$batch")
            && let Body::Bytes(body) = request.body()
            && let Ok(text) = std::str::from_utf8(body)
            && text.contains(INSERT_LINE)
        {
            let mut batch = request.clone();
            let body = normalize_batch(text);
            batch.insert_header(headers::CONTENT_LENGTH, body.len().to_string());
            batch.set_body(body);
            return self.http.execute_request(&batch).await;
        }
        self.http.execute_request(request).await
    }
}

/// A `$batch` body as the Table service documents it; see the module comment. Idempotent.
pub(crate) fn normalize_batch(body: &str) -> String {
    let lines: Vec<&str> = body
        .strip_suffix('\n')
        .unwrap_or(body)
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let opening = lines.first().copied().unwrap_or_default();
    let last = lines.len().saturating_sub(1);
    let mut out = String::with_capacity(body.len() + 64);
    let mut insert_headers = false;
    for (i, line) in lines.iter().enumerate() {
        if insert_headers && line.eq_ignore_ascii_case("prefer: return-no-content") {
            insert_headers = false;
        }
        if insert_headers && line.is_empty() {
            out.push_str("Prefer: return-no-content\r\n");
            insert_headers = false;
        }
        out.push_str(line);
        if i == last && opening.starts_with("--batch_") && *line == opening {
            out.push_str("--");
        }
        out.push_str("\r\n");
        if line.starts_with("POST ") && line.ends_with(" HTTP/1.1") {
            insert_headers = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize_batch;

    /// What azure_data_tables 0.21 writes for an insert and a conditional update.
    const SDK_BODY: &str = "--batch_b1\n\
        Content-Type: multipart/mixed; boundary=changeset_c1\n\
        \n\
        --changeset_c1\n\
        Content-Type: application/http\n\
        Content-Transfer-Encoding: binary\n\
        \n\
        POST http://127.0.0.1:10002/devstoreaccount1/SignupRequests HTTP/1.1\n\
        accept: application/json;odata=fullmetadata\n\
        content-type: application/json\n\
        \n\
        {\"PartitionKey\":\"contoso.com\",\"RowKey\":\"01J\"}\n\
        --changeset_c1\n\
        Content-Type: application/http\n\
        Content-Transfer-Encoding: binary\n\
        \n\
        PUT http://127.0.0.1:10002/devstoreaccount1/SignupRequests(PartitionKey='contoso.com',RowKey='address:ada') HTTP/1.1\n\
        accept: application/json;odata=fullmetadata\n\
        content-type: application/json\n\
        if-match: W/\"datetime'2026-11-24T05%3A00%3A00Z'\"\n\
        \n\
        {\"PartitionKey\":\"contoso.com\",\"RowKey\":\"address:ada\"}\n\
        --changeset_c1--\n\
        --batch_b1\n";

    const DOCUMENTED: &str = "--batch_b1\r\n\
        Content-Type: multipart/mixed; boundary=changeset_c1\r\n\
        \r\n\
        --changeset_c1\r\n\
        Content-Type: application/http\r\n\
        Content-Transfer-Encoding: binary\r\n\
        \r\n\
        POST http://127.0.0.1:10002/devstoreaccount1/SignupRequests HTTP/1.1\r\n\
        accept: application/json;odata=fullmetadata\r\n\
        content-type: application/json\r\n\
        Prefer: return-no-content\r\n\
        \r\n\
        {\"PartitionKey\":\"contoso.com\",\"RowKey\":\"01J\"}\r\n\
        --changeset_c1\r\n\
        Content-Type: application/http\r\n\
        Content-Transfer-Encoding: binary\r\n\
        \r\n\
        PUT http://127.0.0.1:10002/devstoreaccount1/SignupRequests(PartitionKey='contoso.com',RowKey='address:ada') HTTP/1.1\r\n\
        accept: application/json;odata=fullmetadata\r\n\
        content-type: application/json\r\n\
        if-match: W/\"datetime'2026-11-24T05%3A00%3A00Z'\"\r\n\
        \r\n\
        {\"PartitionKey\":\"contoso.com\",\"RowKey\":\"address:ada\"}\r\n\
        --changeset_c1--\r\n\
        --batch_b1--\r\n";

    #[test]
    fn the_sdk_s_batch_becomes_the_documented_one() {
        assert_eq!(normalize_batch(SDK_BODY), DOCUMENTED);
    }

    #[test]
    fn a_documented_batch_is_left_as_it_is() {
        assert_eq!(normalize_batch(DOCUMENTED), DOCUMENTED);
    }

    /// The rewritten body is longer than the SDK's `Content-Length` said: the request must
    /// carry its own, or the service reads it short (its closing delimiter lost).
    #[tokio::test]
    async fn a_rewritten_batch_goes_out_whole_with_its_own_length() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(202))
            .mount(&server)
            .await;
        let transport = super::Transport {
            http: reqwest::Client::new(),
            calls: Default::default(),
        };
        let url = format!("{}/devstoreaccount1/$batch", server.uri())
            .parse()
            .unwrap();
        let mut request = azure_core::Request::new(url, azure_core::Method::Post);
        request.insert_header(
            azure_core::headers::CONTENT_LENGTH,
            SDK_BODY.len().to_string(),
        );
        request.set_body(SDK_BODY);
        azure_core::HttpClient::execute_request(&transport, &request)
            .await
            .unwrap();
        let received = server.received_requests().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&received[0].body), DOCUMENTED);
    }
}
