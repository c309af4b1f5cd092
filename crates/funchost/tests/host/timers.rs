//! Timer triggers: a schedule that fires every second, and `runOnStartup`.

use std::time::Duration;

use crate::helpers::{
    AppRoot, FakeHandler, HostProcess, TEST_HOST_JSON, decode_twice, invocation_ok,
};

#[tokio::test]
async fn timers_fire_on_schedule_and_on_startup_with_the_timer_payload() {
    let mut handler = FakeHandler::start(|_| invocation_ok()).await;
    let root = AppRoot::new(TEST_HOST_JSON)
        .function(
            "Tick",
            r#"{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"*/1 * * * * *"}]}"#,
        )
        .function(
            "Yearly",
            r#"{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 0 0 1 1 *","runOnStartup":true}]}"#,
        );
    let _host = HostProcess::start(&root, &["--handler-url", &handler.url], &[]).await;

    let startup = handler.next_to("/Yearly", Duration::from_secs(5)).await;
    let info: serde_json::Value =
        serde_json::from_str(&decode_twice(&startup.json()["Data"]["timer"])).unwrap();
    assert_eq!(info["Schedule"]["AdjustForDST"], true);
    assert_eq!(info["IsPastDue"], false);
    let next = info["ScheduleStatus"]["Next"].as_str().unwrap();
    assert!(
        next.contains("-01-01T00:00:00"),
        "a yearly schedule is monitored: {next}"
    );
    assert_eq!(startup.json()["Metadata"]["sys"]["MethodName"], "Yearly");

    let tick = handler.next_to("/Tick", Duration::from_secs(5)).await;
    assert_eq!(tick.method, "POST");
    let info: serde_json::Value =
        serde_json::from_str(&decode_twice(&tick.json()["Data"]["timer"])).unwrap();
    assert_eq!(
        info,
        serde_json::json!({"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": false}),
        "a one-second schedule is not monitored"
    );
    let again = handler.next_to("/Tick", Duration::from_secs(5)).await;
    assert_eq!(again.json()["Metadata"]["sys"]["MethodName"], "Tick");
}
