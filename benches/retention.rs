//! `scripts/bench`: a `Lifecycle` retention pass over 100,000 request rows on Azurite (issue
//! 19, docs/PERFORMANCE.md). Rows are generated straight into Azurite with entity-group
//! inserts of 100, in the product's columns: 80 % finished (`Denied`, `Failed`, `Expired`)
//! and unchanged for 400 days, each with its address claim, and 20 % live (`Invited`,
//! `PendingApproval`), as old, which must all stay. Then passes run, as the timer runs them,
//! until nothing is left to delete; each pass's time and storage calls (HTTP requests,
//! [`AzureStorage::calls`]) are printed.
//!
//! `cargo bench --bench retention -- [--smoke] [--rows N]`; `--smoke` uses 1,000 rows.

use std::{sync::Arc, time::Instant};

use azure_data_tables::clients::TableServiceClientBuilder;
use azure_storage::{CloudLocation, StorageCredentials};
use b2b_signup::{
    clock::{Clock, rfc3339},
    lifecycle::{Lifecycle, NoMail, RETENTION_BATCH},
    policy::Policy,
    storage::{AzureStorage, RequestQuery, RequestStore, StorageAccount, azure::StorageTimeouts},
    worker::Mode,
};
use futures::StreamExt;
use serde_json::{Value, json};
use test_support::Azurite;

const DOMAINS: usize = 50;
const POLICY: &str = r#"{
    "accessOptions": { "partner-portal": { "displayName": "Partner portal", "groups": ["11111111-1111-1111-1111-111111111111"] } },
    "rules": [ { "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal"] } ]
}"#;

fn status_of(i: usize) -> &'static str {
    match i % 10 {
        0..=2 => "Denied",
        3..=5 => "Failed",
        6 | 7 => "Expired",
        8 => "Invited",
        _ => "PendingApproval",
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let rows = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if smoke { 1_000 } else { 100_000 });

    let azurite = Azurite::start();
    let account = StorageAccount::from_connection_string(&azurite.connection_string()).unwrap();
    let storage = AzureStorage::new(&account, StorageTimeouts::default()).unwrap();
    storage.ensure_created().await.unwrap();

    let generated = Instant::now();
    let live = generate(&azurite, rows).await;
    println!(
        "== retention: {rows} rows ({live} live) in {DOMAINS} partitions generated in {:.1} s",
        generated.elapsed().as_secs_f64()
    );

    let lifecycle = Lifecycle {
        policy: Arc::new(Policy::from_json(POLICY).unwrap()),
        store: Arc::new(storage.clone()),
        housekeeping: Arc::new(storage.clone()),
        mode: Mode::DryRun,
        notices: Arc::new(NoMail),
        clock: Clock::system(),
        retention: time::Duration::days(365),
        batch: 1_000,
        retention_batch: RETENTION_BATCH,
    };
    println!(
        "| pass | rows deleted | claims deleted | left for next pass | time | storage calls |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let (mut total_time, mut total_calls) = (0.0, 0);
    for pass in 1.. {
        let calls = storage.calls();
        let started = Instant::now();
        let report = lifecycle.run().await.expect("the pass completes");
        let seconds = started.elapsed().as_secs_f64();
        let calls = storage.calls() - calls;
        total_time += seconds;
        total_calls += calls;
        println!(
            "| {pass} | {} | {} | {} | {seconds:.1} s | {calls} |",
            report.deleted_requests, report.deleted_claims, report.skipped
        );
        if report.deleted_requests == 0 {
            break;
        }
    }
    let left = storage
        .query(&RequestQuery::default(), usize::MAX)
        .await
        .unwrap()
        .len();
    println!("| all | | | | {total_time:.1} s | {total_calls} |");
    assert_eq!(
        left, live,
        "every live request stays, every finished one goes"
    );
    println!("rows left: {left} (all live)");
}

/// Writes `rows` requests (and the finished ones' claims) with entity-group inserts of 100
/// per partition; returns how many are live.
async fn generate(azurite: &Azurite, rows: usize) -> usize {
    let service = TableServiceClientBuilder::with_location(
        CloudLocation::Custom {
            account: "devstoreaccount1".into(),
            uri: format!("http://127.0.0.1:{}/devstoreaccount1", azurite.table_port),
        },
        StorageCredentials::emulator(),
    )
    .build();
    let table = service.table_client("SignupRequests");
    let old = rfc3339(time::OffsetDateTime::now_utc() - time::Duration::days(400));
    let mut live = 0;
    let per_domain = rows.div_ceil(DOMAINS);
    let mut inserts = futures::stream::FuturesUnordered::new();
    for d in 0..DOMAINS {
        let domain = format!("partner{d}.example");
        let mut entities: Vec<Value> = Vec::new();
        for i in (0..per_domain).take(rows.saturating_sub(d * per_domain)) {
            let status = status_of(i);
            let id = ulid::Ulid::new().to_string();
            if matches!(status, "Invited" | "PendingApproval") {
                live += 1;
            }
            let history = json!([{"at": old, "actor": "partner", "action": "created", "from": null, "to": status, "reason": null}]);
            entities.push(json!({
                "PartitionKey": domain, "RowKey": id,
                "Email": format!("person{i}@{domain}"), "DisplayName": "Bench Person",
                "Access": "partner-portal", "Company": "Contoso Ltd", "Status": status,
                "Attempts": 1, "DryRun": true,
                "CreatedAt": old, "CreatedAt@odata.type": "Edm.DateTime",
                "UpdatedAt": old, "UpdatedAt@odata.type": "Edm.DateTime",
                "History": history.to_string(),
            }));
            entities.push(json!({
                "PartitionKey": domain, "RowKey": format!("address:person{i}"),
                "RequestId": id, "ClaimedAt": old, "ClaimedAt@odata.type": "Edm.DateTime",
            }));
        }
        for chunk in entities.chunks(100) {
            let mut batch = table.partition_key_client(domain.clone()).transaction();
            for entity in chunk {
                batch = batch.insert(entity.clone()).expect("an entity");
            }
            inserts.push(async move { batch.await.expect("a batch insert") });
            if inserts.len() >= 8 {
                inserts.next().await;
            }
        }
    }
    while inserts.next().await.is_some() {}
    live
}
