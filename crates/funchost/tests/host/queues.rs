//! Queue triggers on a real Azurite: the exact invocation payload, retries with growing
//! DequeueCount, and the poison queue.

use std::time::Duration;

use crate::helpers::{
    AppRoot, Azurite, FakeHandler, HostProcess, Queues, TEST_HOST_JSON, decode_twice, invocation_ok,
};

const INVITE_QUEUE: &str = r#"{"bindings":[
    {"type":"queueTrigger","direction":"in","name":"msg","queueName":"signup-requests","connection":"AzureWebJobsStorage"}]}"#;
const MESSAGE: &str = r#"{"v":1,"requestId":"01HXAMPLE0000000000000000","domain":"contoso.com"}"#;

struct QueueTest {
    handler: FakeHandler,
    queues: Queues,
    _host: HostProcess,
    _root: AppRoot,
    _azurite: Azurite,
}

async fn start(answer: fn() -> crate::helpers::Answer) -> QueueTest {
    let azurite = Azurite::start();
    let handler = FakeHandler::start(move |_| answer()).await;
    let root = AppRoot::new(TEST_HOST_JSON).function("InviteQueue", INVITE_QUEUE);
    let host = HostProcess::start(
        &root,
        &["--handler-url", &handler.url],
        &[("AzureWebJobsStorage", &azurite.connection_string())],
    )
    .await;
    QueueTest {
        handler,
        queues: Queues::new(&azurite),
        _host: host,
        _root: root,
        _azurite: azurite,
    }
}

fn is_offset_date(text: &str) -> bool {
    // "2024-05-01T12:00:00+00:00": the host's DateTimeOffset, whole seconds.
    text.len() == 25
        && text.ends_with("+00:00")
        && text.as_bytes()[10] == b'T'
        && time::PrimitiveDateTime::parse(
            &text[..19],
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        )
        .is_ok()
}

#[tokio::test]
async fn a_base64_message_arrives_as_the_hosts_double_encoded_payload_and_is_deleted() {
    let mut test = start(invocation_ok).await;

    let id = test.queues.put_base64("signup-requests", MESSAGE).await;

    let request = test
        .handler
        .next_to("/InviteQueue", Duration::from_secs(15))
        .await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path_and_query, "/InviteQueue");
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(request.header("x-azure-functions-invocationid").is_some());
    let payload = request.json();
    // Data: the message's JSON text, encoded as a JSON string once more.
    assert_eq!(
        payload["Data"]["msg"],
        serde_json::to_string(MESSAGE).unwrap()
    );
    assert_eq!(decode_twice(&payload["Data"]["msg"]), MESSAGE);
    let metadata = &payload["Metadata"];
    assert_eq!(metadata["DequeueCount"], "1");
    assert_eq!(metadata["Id"], format!("\"{id}\""));
    assert!(metadata["PopReceipt"].as_str().unwrap().starts_with('"'));
    for field in ["InsertionTime", "ExpirationTime", "NextVisibleTime"] {
        let value = metadata[field].as_str().unwrap();
        assert!(is_offset_date(value), "{field}: {value}");
    }
    // The message's own top-level fields, double-encoded the same way.
    assert_eq!(metadata["v"], "1");
    assert_eq!(metadata["requestId"], "\"01HXAMPLE0000000000000000\"");
    assert_eq!(metadata["domain"], "\"contoso.com\"");
    assert_eq!(metadata["sys"]["MethodName"], "InviteQueue");
    assert!(metadata["sys"]["UtcNow"].as_str().unwrap().ends_with('Z'));
    assert_eq!(metadata["sys"]["RandGuid"].as_str().unwrap().len(), 36);

    test.queues
        .wait_for_count("signup-requests", 0, Duration::from_secs(10))
        .await;
    assert!(test.queues.peek("signup-requests-poison").await.is_empty());
}

#[tokio::test]
async fn a_failing_invocation_is_retried_then_poisoned_after_max_dequeue_count() {
    let mut test = start(|| (500, vec![], b"boom".to_vec())).await;
    test.queues.put_base64("signup-requests", MESSAGE).await;

    // host.json: maxDequeueCount 3, visibilityTimeout 00:00:00 (retry at once).
    for expected in ["1", "2", "3"] {
        let request = test
            .handler
            .next_to("/InviteQueue", Duration::from_secs(15))
            .await;
        assert_eq!(request.json()["Metadata"]["DequeueCount"], expected);
        assert_eq!(decode_twice(&request.json()["Data"]["msg"]), MESSAGE);
    }

    let poisoned = test
        .queues
        .wait_for_count("signup-requests-poison", 1, Duration::from_secs(10))
        .await;
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, MESSAGE);
    assert_eq!(poisoned, [encoded], "the original text, still base64");
    test.queues
        .wait_for_count("signup-requests", 0, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        test.handler.received_so_far("/InviteQueue").is_empty(),
        "no fourth delivery"
    );
}

#[tokio::test]
async fn a_message_that_is_not_base64_goes_straight_to_the_poison_queue() {
    let mut test = start(invocation_ok).await;

    test.queues.put_raw("signup-requests", MESSAGE).await;

    let poisoned = test
        .queues
        .wait_for_count("signup-requests-poison", 1, Duration::from_secs(15))
        .await;
    assert_eq!(poisoned, [MESSAGE]);
    test.queues
        .wait_for_count("signup-requests", 0, Duration::from_secs(10))
        .await;
    assert!(
        test.handler.received_so_far("/InviteQueue").is_empty(),
        "the handler never sees it"
    );
}

#[tokio::test]
async fn a_non_json_answer_fails_the_invocation_like_an_error_status() {
    let mut test = start(|| (200, vec![], b"OK".to_vec())).await;

    test.queues
        .put_base64("signup-requests", "plain text")
        .await;

    for expected in ["1", "2"] {
        let request = test
            .handler
            .next_to("/InviteQueue", Duration::from_secs(15))
            .await;
        assert_eq!(request.json()["Metadata"]["DequeueCount"], expected);
        assert_eq!(request.json()["Data"]["msg"], "\"plain text\"");
    }
}
