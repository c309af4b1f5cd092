//! The invocation payload the Functions host sends a custom handler for a non-HTTP trigger:
//! `POST /<FunctionName>` with `{"Data": {...}, "Metadata": {...}}`. The only place in the
//! runner that knows its shape.
//!
//! The host builds it in `ScriptInvocationContextExtensions.ToHttpScriptInvocationContext`
//! (Azure/azure-functions-host, `src/WebJobs.Script/Workers/ScriptInvocationContextExtensions.cs`)
//! and serialises it with Newtonsoft's `JsonMediaTypeFormatter`. Each value goes through
//! `GetHttpScriptInvocationContextValue`, which is why values look the way they do:
//!
//! - a string or number is `JsonConvert.SerializeObject(value)`: its JSON text, sent as a JSON
//!   string. A queue message `{"a":1}` arrives as `"\"{\\\"a\\\":1}\""`, `DequeueCount` as `"1"`,
//!   `Id` as `"\"<guid>\""`;
//! - a `DateTimeOffset` is re-parsed from its `ToString()` (whole seconds) and serialised once,
//!   as `"2024-05-01T12:00:00+00:00"`;
//! - an object (`sys`, a nested object of a JSON message) is `JObject.FromObject`: sent as is.
//!
//! Metadata is the trigger's binding data (`QueueTriggerBinding.CreateBindingData` in the
//! storage extension): `DequeueCount`, `ExpirationTime`, `Id`, `InsertionTime`,
//! `NextVisibleTime`, `PopReceipt`, then the top-level fields of a JSON message, which
//! override those of the same name (case-insensitively); then `sys` (`$sys` when the message
//! has a `sys` field). Keys ending in `Trigger` are left out, as the host does (the trigger
//! value is in `Data`), and so are null fields. Documented sample: <https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#request-payload>

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// The system binding data every invocation carries (`SystemBindingData` in the WebJobs SDK).
#[derive(Debug, Clone)]
pub struct Sys<'a> {
    /// The function's name.
    pub method_name: &'a str,
    pub utc_now: OffsetDateTime,
    pub rand_guid: uuid::Uuid,
}

/// What Get Messages said about a dequeued message.
#[derive(Debug, Clone)]
pub struct MessageInfo<'a> {
    pub id: &'a str,
    pub pop_receipt: &'a str,
    pub dequeue_count: u64,
    pub insertion_time: OffsetDateTime,
    pub expiration_time: OffsetDateTime,
    pub next_visible_time: OffsetDateTime,
}

/// A queue trigger's invocation: `text` is the message after base64 decoding (if any).
pub fn queue_invocation(
    binding: &str,
    text: &str,
    message: &MessageInfo<'_>,
    sys: &Sys<'_>,
) -> Value {
    let mut metadata = Map::new();
    metadata.insert(
        "DequeueCount".into(),
        Value::String(message.dequeue_count.to_string()),
    );
    metadata.insert(
        "ExpirationTime".into(),
        Value::String(offset_seconds(message.expiration_time)),
    );
    metadata.insert("Id".into(), encode_again(message.id));
    metadata.insert(
        "InsertionTime".into(),
        Value::String(offset_seconds(message.insertion_time)),
    );
    metadata.insert(
        "NextVisibleTime".into(),
        Value::String(offset_seconds(message.next_visible_time)),
    );
    metadata.insert("PopReceipt".into(), encode_again(message.pop_receipt));
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) {
        for (name, value) in fields {
            if name.to_ascii_lowercase().ends_with("trigger") {
                continue;
            }
            if let Some(value) = metadata_value(value) {
                insert_ignoring_case(&mut metadata, name, value);
            }
        }
    }
    insert_sys(&mut metadata, sys);
    invocation(binding, encode_again(text), metadata)
}

/// `TimerInfo`, serialised as the timer extension does (property order kept).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimerInfo {
    pub schedule: TimerSchedule,
    /// Absent (`null`) when the schedule is not monitored (`useMonitor`).
    #[serde(serialize_with = "serialize_status")]
    pub schedule_status: Option<ScheduleStatus>,
    pub is_past_due: bool,
}

/// `TimerInfo.Schedule`: for a cron schedule, only its DST flag is serialised.
#[derive(Debug, Clone, Serialize)]
pub struct TimerSchedule {
    /// Always true for NCRONTAB schedules.
    #[serde(rename = "AdjustForDST")]
    pub adjust_for_dst: bool,
}

/// `TimerInfo.ScheduleStatus`: the previous and next occurrences, and when they were set.
#[derive(Debug, Clone)]
pub struct ScheduleStatus {
    pub last: OffsetDateTime,
    pub next: OffsetDateTime,
    pub last_updated: OffsetDateTime,
}

fn serialize_status<S: serde::Serializer>(
    status: &Option<ScheduleStatus>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Dates {
        last: String,
        next: String,
        last_updated: String,
    }
    status
        .as_ref()
        .map(|s| Dates {
            // DateTime values in the host's (UTC) local time zone.
            last: dotnet_iso(s.last, "+00:00"),
            next: dotnet_iso(s.next, "+00:00"),
            last_updated: dotnet_iso(s.last_updated, "+00:00"),
        })
        .serialize(serializer)
}

/// A timer trigger's invocation: the timer info's JSON text, encoded again like any string.
pub fn timer_invocation(binding: &str, info: &TimerInfo, sys: &Sys<'_>) -> Value {
    let text = serde_json::to_string(info).unwrap_or_default();
    let mut metadata = Map::new();
    insert_sys(&mut metadata, sys);
    invocation(binding, encode_again(&text), metadata)
}

fn invocation(binding: &str, data: Value, metadata: Map<String, Value>) -> Value {
    let mut data_map = Map::new();
    data_map.insert(binding.to_owned(), data);
    let mut payload = Map::new();
    payload.insert("Data".into(), Value::Object(data_map));
    payload.insert("Metadata".into(), Value::Object(metadata));
    Value::Object(payload)
}

fn insert_sys(metadata: &mut Map<String, Value>, sys: &Sys<'_>) {
    let mut object = Map::new();
    object.insert(
        "MethodName".into(),
        Value::String(sys.method_name.to_owned()),
    );
    object.insert("UtcNow".into(), Value::String(dotnet_iso(sys.utc_now, "Z")));
    object.insert("RandGuid".into(), Value::String(sys.rand_guid.to_string()));
    // User data takes precedence: the SDK files its own under "$sys" then.
    let key = if metadata.keys().any(|k| k.eq_ignore_ascii_case("sys")) {
        "$sys"
    } else {
        "sys"
    };
    metadata.insert(key.into(), Value::Object(object));
}

/// `JsonConvert.SerializeObject(text)`: the JSON text of a string, as a string.
fn encode_again(text: &str) -> Value {
    Value::String(Value::String(text.to_owned()).to_string())
}

/// A JSON message field as `GetHttpScriptInvocationContextValue` turns it out.
fn metadata_value(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(encode_again(&s)),
        object @ Value::Object(_) => Some(object),
        other => Some(Value::String(other.to_string())),
    }
}

/// Binding data is a case-insensitive dictionary: a later key replaces the value of an
/// earlier one that differs only in case, which keeps its spelling.
fn insert_ignoring_case(map: &mut Map<String, Value>, name: String, value: Value) {
    let existing = map.keys().find(|k| k.eq_ignore_ascii_case(&name)).cloned();
    map.insert(existing.unwrap_or(name), value);
}

/// A `DateTimeOffset` after the host's `Parse(ToString())` round trip: whole seconds.
fn offset_seconds(time: OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// Newtonsoft's ISO format `yyyy-MM-ddTHH:mm:ss.FFFFFFFK`: up to seven fraction digits,
/// trailing zeros (and a bare dot) dropped.
fn dotnet_iso(time: OffsetDateTime, zone: &str) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    let ticks = utc.nanosecond() / 100;
    let fraction = if ticks == 0 {
        String::new()
    } else {
        format!(".{ticks:07}").trim_end_matches('0').to_owned()
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{zone}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sys(name: &str) -> Sys<'_> {
        Sys {
            method_name: name,
            utc_now: datetime!(2024-05-01 12:00:00.1234567 UTC),
            rand_guid: uuid::Uuid::from_u128(0x6a1e_5b3c_9d2f_4e8a_b7c1_0f2e_3d4c_5b6a),
        }
    }

    fn message() -> MessageInfo<'static> {
        MessageInfo {
            id: "0f6c1d43-5d0e-4a5b-9c8e-2b7a6f1e3d21",
            pop_receipt: "AgAAAAMAAAAAAAAAbm9wZQ==",
            dequeue_count: 1,
            insertion_time: datetime!(2024-05-01 11:59:58 UTC),
            expiration_time: datetime!(2024-05-08 11:59:58 UTC),
            next_visible_time: datetime!(2024-05-01 12:10:00 UTC),
        }
    }

    fn fixture(name: &str) -> Value {
        let text = match name {
            "queue_json" => include_str!("fixtures/queue_json_message.json"),
            "queue_text" => include_str!("fixtures/queue_text_message.json"),
            _ => include_str!("fixtures/timer.json"),
        };
        serde_json::from_str(text).expect("fixtures are JSON")
    }

    #[test]
    fn a_json_queue_message_matches_the_fixture() {
        let text = r#"{"v":1,"requestId":"01HXAMPLE0000000000000000","domain":"contoso.com"}"#;
        let payload = queue_invocation("msg", text, &message(), &sys("InviteQueue"));
        assert_eq!(payload, fixture("queue_json"));

        // The exact escaping, spelled out: decode the payload, then the string, then JSON.
        let wire = payload.to_string();
        assert!(
            wire.contains(r#""msg":"\"{\\\"v\\\":1,\\\"requestId\\\""#),
            "{wire}"
        );
        assert!(wire.contains(r#""DequeueCount":"1""#), "{wire}");
        assert!(
            wire.contains(r#""Id":"\"0f6c1d43-5d0e-4a5b-9c8e-2b7a6f1e3d21\"""#),
            "{wire}"
        );
        let once: String = serde_json::from_str(payload["Data"]["msg"].as_str().unwrap()).unwrap();
        assert_eq!(once, text);
    }

    #[test]
    fn a_text_queue_message_matches_the_fixture() {
        let payload = queue_invocation("msg", "hello \"world\"", &message(), &sys("InviteQueue"));
        assert_eq!(payload, fixture("queue_text"));
    }

    #[test]
    fn message_fields_shadow_metadata_and_sys_moves_aside() {
        let text = r#"{"id":"mine","sys":1,"queueTrigger":"x","nothing":null,"tags":["a"],"nested":{"k":2}}"#;
        let payload = queue_invocation("msg", text, &message(), &sys("InviteQueue"));
        let metadata = &payload["Metadata"];
        assert_eq!(
            metadata["Id"], "\"mine\"",
            "the message's id shadows Id, keeping its key"
        );
        assert!(metadata.get("id").is_none());
        assert_eq!(metadata["sys"], "1");
        assert_eq!(metadata["$sys"]["MethodName"], "InviteQueue");
        assert!(metadata.get("queueTrigger").is_none());
        assert!(metadata.get("nothing").is_none());
        assert_eq!(metadata["tags"], r#"["a"]"#);
        assert_eq!(metadata["nested"], serde_json::json!({"k": 2}));
    }

    #[test]
    fn a_timer_invocation_matches_the_fixture() {
        let info = TimerInfo {
            schedule: TimerSchedule {
                adjust_for_dst: true,
            },
            schedule_status: Some(ScheduleStatus {
                last: datetime!(2024-05-01 11:55:00 UTC),
                next: datetime!(2024-05-01 12:05:00 UTC),
                last_updated: datetime!(2024-05-01 12:00:00.0012 UTC),
            }),
            is_past_due: false,
        };
        let payload = timer_invocation("timer", &info, &sys("Reconcile"));
        assert_eq!(payload, fixture("timer"));

        let unmonitored = TimerInfo {
            schedule_status: None,
            ..info
        };
        let payload = timer_invocation("timer", &unmonitored, &sys("Reconcile"));
        let once: String =
            serde_json::from_str(payload["Data"]["timer"].as_str().unwrap()).unwrap();
        assert_eq!(
            once,
            r#"{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}"#
        );
    }

    #[test]
    fn dates_are_written_like_newtonsoft() {
        assert_eq!(
            dotnet_iso(datetime!(2024-05-01 12:00:00 UTC), "Z"),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            dotnet_iso(datetime!(2024-05-01 12:00:00.5 UTC), "Z"),
            "2024-05-01T12:00:00.5Z"
        );
        assert_eq!(
            dotnet_iso(datetime!(2024-05-01 12:00:00.123456789 UTC), "+00:00"),
            "2024-05-01T12:00:00.1234567+00:00"
        );
        assert_eq!(
            offset_seconds(datetime!(2024-05-01 14:00:00.9 +02:00)),
            "2024-05-01T12:00:00+00:00"
        );
    }
}
