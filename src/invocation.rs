//! The Functions host's invocation contract for non-HTTP triggers, as types.
//!
//! This is the only module that knows the wire shapes (docs/ARCHITECTURE.md, "With the
//! Azure Functions host";
//! <https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#request-payload>):
//!
//! - the host calls `POST /<FunctionName>` with `{"Data": {...}, "Metadata": {...}}`;
//! - every string and number in `Data` and `Metadata` is JSON-encoded a second time, so a
//!   queue message `{"v":1}` arrives as `"msg": "\"{\\\"v\\\":1}\""` and `DequeueCount` as
//!   `"1"`; top-level fields of a JSON message are also merged into `Metadata` (where they
//!   may shadow `Id`), so only the metadata the host itself owns is read;
//! - the answer is 2xx with `{"Outputs":{},"Logs":[],"ReturnValue":null}`; anything else
//!   (non-2xx, a body that is not JSON) fails the invocation and the host retries.
//!
//! Decoding accepts a value encoded once or twice, so a host that stops double-encoding one
//! day does not break the handler.

use serde::Deserialize;
use serde_json::Value;
use warp::{http::StatusCode, reply::Reply};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvocationError {
    #[error("the invocation body is not the host's JSON payload")]
    NotAPayload,
    #[error("the invocation has no Data.{0}")]
    MissingBinding(String),
    #[error("Data.{0} is not text")]
    NotText(String),
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "Data", default)]
    data: serde_json::Map<String, Value>,
    #[serde(rename = "Metadata", default)]
    metadata: serde_json::Map<String, Value>,
}

impl Payload {
    fn parse(body: &[u8]) -> Result<Self, InvocationError> {
        // A struct would also deserialize from a JSON array; the host always sends an object.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(InvocationError::NotAPayload);
        }
        serde_json::from_slice(body).map_err(|_| InvocationError::NotAPayload)
    }

    /// `Data.<binding>`: the trigger's value.
    fn binding(&self, name: &str) -> Result<&Value, InvocationError> {
        self.data
            .get(name)
            .ok_or_else(|| InvocationError::MissingBinding(name.to_owned()))
    }
}

/// One delivery of a queue message to a queue-triggered function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDelivery {
    /// The message text, decoded (base64 already undone by the host).
    pub text: String,
    /// 1 on the first delivery; the host moves the message to `<queue>-poison` once a
    /// failed delivery reaches host.json `maxDequeueCount`.
    pub dequeue_count: u32,
    /// The queue message id, for logs.
    pub message_id: Option<String>,
}

impl QueueDelivery {
    /// Decodes the body the host posts; `binding` is the trigger's `name` in function.json.
    pub fn parse(body: &[u8], binding: &str) -> Result<Self, InvocationError> {
        let payload = Payload::parse(body)?;
        let raw = payload.binding(binding)?;
        let text = message_text(raw).ok_or_else(|| InvocationError::NotText(binding.to_owned()))?;
        Ok(Self {
            text,
            dequeue_count: payload
                .metadata
                .get("DequeueCount")
                .and_then(decode_number)
                .unwrap_or(1),
            message_id: payload.metadata.get("Id").and_then(decode_string),
        })
    }
}

/// One firing of a timer-triggered function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerFiring {
    /// The host fired late (for example after the app was stopped).
    pub is_past_due: bool,
}

impl TimerFiring {
    pub fn parse(body: &[u8], binding: &str) -> Result<Self, InvocationError> {
        let payload = Payload::parse(body)?;
        let raw = payload.binding(binding)?;
        let info = unwrap_encoded(raw.clone());
        Ok(Self {
            is_past_due: info
                .get("IsPastDue")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }
}

/// Undoes up to two layers of JSON-in-a-string encoding.
fn unwrap_encoded(mut value: Value) -> Value {
    for _ in 0..2 {
        match &value {
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(inner) => value = inner,
                Err(_) => break,
            },
            _ => break,
        }
    }
    value
}

/// The message text from `Data.<binding>`: a JSON message comes back as its JSON text, a
/// plain-text message as that text.
fn message_text(raw: &Value) -> Option<String> {
    let Value::String(outer) = raw else {
        // Not encoded at all: an object or array is the message itself.
        return matches!(raw, Value::Object(_) | Value::Array(_)).then(|| raw.to_string());
    };
    match serde_json::from_str::<Value>(outer) {
        // Double-encoded: the outer string holds a JSON string, which is the message text.
        Ok(Value::String(text)) => Some(text),
        // Encoded once: the string holds the message's JSON.
        Ok(Value::Object(_) | Value::Array(_)) => Some(outer.clone()),
        // Plain text (or a bare number) encoded once.
        _ => Some(outer.clone()),
    }
}

fn decode_string(raw: &Value) -> Option<String> {
    match unwrap_encoded(raw.clone()) {
        Value::String(text) => Some(text),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn decode_number(raw: &Value) -> Option<u32> {
    match unwrap_encoded(raw.clone()) {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The handler's answer to an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationResult {
    /// Done (including "nothing to do"); the host deletes the message.
    Completed,
    /// Try again later: the host leaves the message for redelivery (and, at
    /// `maxDequeueCount`, moves it to the poison queue). The text goes to the host's log.
    Retry(String),
}

impl InvocationResult {
    /// The status and JSON body the host expects.
    fn parts(self) -> (StatusCode, Value) {
        let (status, logs) = match self {
            Self::Completed => (StatusCode::OK, Vec::new()),
            Self::Retry(reason) => (StatusCode::INTERNAL_SERVER_ERROR, vec![reason]),
        };
        let body = serde_json::json!({ "Outputs": {}, "Logs": logs, "ReturnValue": null });
        (status, body)
    }
}

impl Reply for InvocationResult {
    fn into_response(self) -> warp::reply::Response {
        let (status, body) = self.parts();
        warp::reply::with_status(warp::reply::json(&body), status).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the Functions host posts for the queue message `{"v":1,"requestId":"01J…","domain":"contoso.com"}`:
    /// every value double-encoded, the message's own fields merged into Metadata.
    const QUEUE_FIXTURE: &str = r#"{
        "Data": { "msg": "\"{\\\"v\\\":1,\\\"requestId\\\":\\\"01JDQ3Z6W1T2V3X4Y5Z6A7B8C9\\\",\\\"domain\\\":\\\"contoso.com\\\"}\"" },
        "Metadata": {
            "DequeueCount": "3",
            "ExpirationTime": "\"2026-12-01T10:00:00+00:00\"",
            "Id": "\"2b9c6f1e-59d4-4e4e-a7a1-0b8f5b2b1c3d\"",
            "InsertionTime": "\"2026-11-24T10:00:00+00:00\"",
            "NextVisibleTime": "\"2026-11-24T10:10:00+00:00\"",
            "PopReceipt": "\"AgAAAAMAAAAAAAAA\"",
            "v": "1",
            "requestId": "\"01JDQ3Z6W1T2V3X4Y5Z6A7B8C9\"",
            "domain": "\"contoso.com\"",
            "sys": { "MethodName": "\"InviteQueue\"", "UtcNow": "\"2026-11-24T10:00:01Z\"", "RandGuid": "\"d2a6c1c4-2d1b-4b83-9d43-35d9b0c6a0c1\"" }
        }
    }"#;

    #[test]
    fn decodes_the_host_s_double_encoded_queue_payload() {
        let delivery = QueueDelivery::parse(QUEUE_FIXTURE.as_bytes(), "msg").unwrap();
        assert_eq!(
            delivery.text,
            r#"{"v":1,"requestId":"01JDQ3Z6W1T2V3X4Y5Z6A7B8C9","domain":"contoso.com"}"#
        );
        assert_eq!(delivery.dequeue_count, 3);
        assert_eq!(
            delivery.message_id.as_deref(),
            Some("2b9c6f1e-59d4-4e4e-a7a1-0b8f5b2b1c3d")
        );
    }

    #[test]
    fn accepts_single_encoding_and_plain_text() {
        let once = r#"{"Data":{"msg":"{\"v\":1}"},"Metadata":{"DequeueCount":2}}"#;
        let delivery = QueueDelivery::parse(once.as_bytes(), "msg").unwrap();
        assert_eq!(
            (delivery.text.as_str(), delivery.dequeue_count),
            (r#"{"v":1}"#, 2)
        );

        let plain = r#"{"Data":{"msg":"\"hello world\""},"Metadata":{"DequeueCount":"1"}}"#;
        assert_eq!(
            QueueDelivery::parse(plain.as_bytes(), "msg").unwrap().text,
            "hello world"
        );

        let raw = r#"{"Data":{"msg":"not json at all"},"Metadata":{}}"#;
        let delivery = QueueDelivery::parse(raw.as_bytes(), "msg").unwrap();
        assert_eq!(
            (delivery.text.as_str(), delivery.dequeue_count),
            ("not json at all", 1)
        );
    }

    #[test]
    fn a_message_field_named_id_does_not_confuse_anything_but_metadata_id() {
        let shadowed =
            r#"{"Data":{"msg":"\"{\\\"Id\\\":5}\""},"Metadata":{"Id":"5","DequeueCount":"1"}}"#;
        let delivery = QueueDelivery::parse(shadowed.as_bytes(), "msg").unwrap();
        assert_eq!(delivery.text, r#"{"Id":5}"#);
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        let cases = [
            ("not json", "{", InvocationError::NotAPayload),
            (
                "wrong binding",
                r#"{"Data":{"other":"x"}}"#,
                InvocationError::MissingBinding("msg".into()),
            ),
            (
                "number message",
                r#"{"Data":{"msg":5}}"#,
                InvocationError::NotText("msg".into()),
            ),
            ("array body", "[]", InvocationError::NotAPayload),
        ];
        for (description, body, expected) in cases {
            assert_eq!(
                QueueDelivery::parse(body.as_bytes(), "msg").unwrap_err(),
                expected,
                "{description}"
            );
        }
    }

    #[test]
    fn decodes_a_timer_firing() {
        let body = r#"{"Data":{"timer":"{\"Schedule\":{\"AdjustForDST\":true},\"ScheduleStatus\":null,\"IsPastDue\":true}"},"Metadata":{"sys":{}}}"#;
        assert!(
            TimerFiring::parse(body.as_bytes(), "timer")
                .unwrap()
                .is_past_due
        );
        let doubled = r#"{"Data":{"timer":"\"{\\\"IsPastDue\\\":false}\""},"Metadata":{}}"#;
        assert!(
            !TimerFiring::parse(doubled.as_bytes(), "timer")
                .unwrap()
                .is_past_due
        );
    }

    #[test]
    fn answers_are_json_with_outputs_logs_and_return_value() {
        let (status, body) = InvocationResult::Completed.parts();
        assert_eq!(status, 200);
        assert_eq!(
            body.to_string(),
            r#"{"Logs":[],"Outputs":{},"ReturnValue":null}"#
        );
        let (status, body) = InvocationResult::Retry("Graph 503".into()).parts();
        assert_eq!(status, 500);
        assert_eq!(body["Logs"][0], "Graph 503");
    }
}
