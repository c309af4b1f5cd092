//! `scripts/bench`: the load benchmark of docs/PERFORMANCE.md. Starts its own Azurite (in
//! memory, OS-chosen loopback ports, telemetry off), the release handler as a separate
//! process (so its CPU time and RSS can be read from /proc), a warp hello-world, and a
//! mock Graph; drives them over loopback and prints one table.
//!
//! `cargo bench --bench load -- [--smoke]` (after `cargo build --release --bin b2b-signup
//! --example hello`; `scripts/bench` does both). `--smoke` only checks that every phase runs.

use std::{
    future::Future,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use azure_core::{ClientOptions, TransportOptions};
use azure_data_tables::clients::TableServiceClientBuilder;
use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_queues::QueueServiceClientBuilder;
use b2b_signup::{
    domain::{
        AccessKey, Actor, DisplayName, EmailAddress, FreeText, History, RequestId, RequestStatus,
        SignupRequest,
    },
    storage::{
        AddressClaim, AzureStorage, InviteMessage, RequestStore, SignupQueue, StorageAccount,
        azure::StorageTimeouts,
    },
};
use base64::Engine;
use serde_json::json;
use test_support::{
    Azurite,
    identity::{MockTenant, Signer},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, path_regex},
};

const TENANT: &str = "0f0e0d0c-0000-4000-8000-000000000001";
/// Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks.
const TICKS_PER_SECOND: f64 = 100.0;

struct Sizes {
    /// Requests per concurrency level for accepted sign-ups (per round).
    accepted: Vec<(usize, usize)>,
    /// Alternating rounds of floor and handler (rate limits off) per concurrency level, so
    /// the machine's drift touches both sides alike.
    rounds: usize,
    rejected: usize,
    burst: usize,
    worker: usize,
    starts: usize,
    /// Requests stored before the admin API's list is timed, and calls per query.
    listed: usize,
    list_calls: usize,
}

fn sizes(smoke: bool) -> Sizes {
    if smoke {
        Sizes {
            accepted: vec![(1, 10), (10, 30), (50, 50)],
            rounds: 1,
            rejected: 200,
            burst: 200,
            worker: 32,
            starts: 2,
            listed: 300,
            list_calls: 2,
        }
    } else {
        Sizes {
            // c=1 with 1,000 requests: CPU ticks are 10 ms, so 10 µs per request resolution.
            accepted: vec![(1, 1000), (10, 1000), (50, 1500)],
            rounds: 5,
            rejected: 20_000,
            burst: 1000,
            // Two scenarios: 1,000 invitations for the token budget.
            worker: 500,
            starts: 9,
            listed: 10_000,
            list_calls: 20,
        }
    }
}

#[tokio::main]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    // `--only list,baseline`: those phases alone (start, accepted, hot, rejected, worker,
    // list, baseline).
    let only: Option<Vec<String>> = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .map(|names| names.split(',').map(str::to_owned).collect());
    let wanted = |name: &str| {
        only.as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    };
    let size = sizes(smoke);
    let bins = Bins::locate();
    let started = Instant::now();
    let mut report = Report::default();

    let azurite = Azurite::start();
    let connection = azurite.connection_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, POLICY).expect("policy written");
    let base_env = vec![
        ("AzureWebJobsStorage", connection.clone()),
        ("SIGNUP_POLICY_PATH", policy.display().to_string()),
        ("SIGNUP_DRY_RUN", "true".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");

    // 3. Exec → ready, idle RSS.
    if wanted("start") {
        let mut times = Vec::new();
        let mut idle_rss = Vec::new();
        for _ in 0..size.starts {
            let mut env = base_env.clone();
            env.push(("SIGNUP_RATE_LIMITS", "off".to_owned()));
            let (handler, ready) = Process::start(&bins.handler, &env);
            times.push(ready);
            // Let the background table/queue creation finish; then it is idle.
            tokio::time::sleep(Duration::from_millis(300)).await;
            idle_rss.push(handler.rss_kib());
        }
        times.sort();
        idle_rss.sort();
        report.row(
            "exec → first answer to GET / (median of runs, judged; max)",
            format!(
                "{:.1} ms; {:.1} ms (n={})",
                ms(times[times.len() / 2]),
                ms(*times.last().unwrap()),
                times.len()
            ),
            "< 20 ms",
            ms(times[times.len() / 2]) < 20.0,
        );
        report.row(
            "idle RSS after start (median)",
            format!("{:.1} MiB", idle_rss[idle_rss.len() / 2] as f64 / 1024.0),
            "< 15 MB",
            (idle_rss[idle_rss.len() / 2] as f64) * 1024.0 < 15e6,
        );
    }

    if wanted("accepted") {
        // 1. Accepted sign-ups: two floors (the issue's table insert + queue put, and the
        // handler's own storage calls), both on a runtime like the handler's, next to the
        // handler with the rate limits off, in alternating rounds; then the handler with the
        // default limits, against the same floor figures.
        let floors = FloorRuntime::new();
        let sdk_floor = floors.run(SdkFloor::new(&azurite));
        let storage_floor = floors.run(StorageFloor::new(&connection));
        let mut floor_stats: Vec<(Stats, Stats, Stats)> = Vec::new();
        // The same requests answered by the hello-world: what the HTTP exchange alone costs.
        let (hello, _) = Process::start(&bins.hello, &base_env);
        let hello_url = format!("http://127.0.0.1:{}/api/signup", hello.port);
        for (label, limits) in [
            ("SIGNUP_RATE_LIMITS=off", "off"),
            ("default rate limits", ""),
        ] {
            let mut env = base_env.clone();
            if !limits.is_empty() {
                env.push(("SIGNUP_RATE_LIMITS", limits.to_owned()));
            }
            let (handler, _) = Process::start(&bins.handler, &env);
            let url = format!("http://127.0.0.1:{}/api/signup", handler.port);
            warm_up(&http, &url, label).await;
            for (k, &(concurrency, n)) in size.accepted.iter().enumerate() {
                let (http, url, hello_url) = (&http, &url, &hello_url);
                let (sdk_floor, storage_floor) = (&sdk_floor, &storage_floor);
                let rounds = if limits == "off" { size.rounds } else { 1 };
                let (mut sdk_rounds, mut storage_rounds, mut hello_rounds, mut handlers) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for round in 0..rounds {
                    if limits == "off" {
                        hello_rounds.push(
                            load(n, concurrency, Some(hello.pid), |i| async move {
                                sign_up(http, hello_url, "hello", i).await == 200
                            })
                            .await,
                        );
                        sdk_rounds.push(floors.run(load(n, concurrency, None, |i| async move {
                            sdk_floor
                                .put(&format!("floor-{concurrency}-{round}-{i}"))
                                .await
                        })));
                        storage_rounds.push(floors.run(load(
                            n,
                            concurrency,
                            None,
                            |i| async move {
                                storage_floor
                                    .put(&format!("{concurrency}-{round}-{i}"), i)
                                    .await
                            },
                        )));
                    }
                    handlers.push(
                        load(n, concurrency, Some(handler.pid), |i| async move {
                            let tag = format!("{limits}{concurrency}-{round}-{i}");
                            sign_up(http, url, &tag, i).await == 202
                        })
                        .await,
                    );
                }
                if limits == "off" {
                    let sdk = Stats::merge(&sdk_rounds);
                    report.load(
                    &format!(
                        "floor: table insert + queue put (SDK), c={concurrency}, {rounds} rounds"
                    ),
                    &sdk,
                );
                    let storage = Stats::merge(&storage_rounds);
                    report.load(
                        &format!(
                            "floor: the handler's storage calls, c={concurrency}, {rounds} rounds"
                        ),
                        &storage,
                    );
                    let exchange = Stats::merge(&hello_rounds);
                    report.load(
                    &format!("HTTP exchange alone (hello-world, same requests), c={concurrency}, {rounds} rounds"),
                    &exchange,
                );
                    floor_stats.push((sdk, storage, exchange));
                }
                let stats = Stats::merge(&handlers);
                report.load(
                    &format!("handler, accepted, {label}, c={concurrency}"),
                    &stats,
                );
                let (sdk, storage, exchange) = &floor_stats[k];
                // A yardstick since issue 15 decided the budget (docs/PERFORMANCE.md).
                let over = stats.cpu_per_request / sdk.cpu_per_request - 1.0;
                report.row(
                    &format!("  handler CPU/request over the floor's, {label}, c={concurrency}"),
                    format!("{:+.0} %{}", over * 100.0, spread(&sdk_rounds, &handlers)),
                    "—",
                    true,
                );
                // The decided budget's second half: ≤ +25 % over the handler's own storage calls
                // plus one HTTP exchange (the first, ≤ 1/5 of a Node.js peer, is not measured here).
                let storage_over = stats.cpu_per_request / storage.cpu_per_request - 1.0;
                let served = storage.cpu_per_request + exchange.cpu_per_request;
                let served_over = stats.cpu_per_request / served - 1.0;
                report.row(
                &format!(
                    "  … over its own storage calls; over those + an HTTP exchange, c={concurrency}"
                ),
                format!(
                    "{:+.0} %; {:+.0} % ({:.0} µs + {:.0} µs)",
                    storage_over * 100.0,
                    served_over * 100.0,
                    storage.cpu_per_request * 1e6,
                    exchange.cpu_per_request * 1e6,
                ),
                "≤ +25 % (the second)",
                served_over <= 0.25,
            );
            }
            if limits == "off" {
                // RSS under `burst` sign-ups at 200 concurrent.
                let peak = Arc::new(AtomicUsize::new(0));
                let done = Arc::new(AtomicBool::new(false));
                let sampler = {
                    let (peak, done, pid) = (peak.clone(), done.clone(), handler.pid);
                    tokio::spawn(async move {
                        while !done.load(Ordering::Relaxed) {
                            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    })
                };
                let (http, url) = (&http, &url);
                let stats = load(size.burst, 200, Some(handler.pid), |i| async move {
                    sign_up(http, url, &format!("burst-{i}"), i).await == 202
                })
                .await;
                done.store(true, Ordering::Relaxed);
                sampler.await.unwrap();
                report.load("handler, accepted, c=200 (RSS run)", &stats);
                let peak = peak.load(Ordering::Relaxed).max(handler.hwm_kib());
                report.row(
                    "peak RSS under 200 concurrent sign-ups (VmHWM)",
                    format!("{:.1} MiB", peak as f64 / 1024.0),
                    "< 40 MB",
                    (peak as f64) * 1024.0 < 40e6,
                );
            }
        }

        drop(hello);
    }

    // 1b. One hot domain: a partner's team signing up at once. Every sign-up increments the
    // same domain counter (limit raised so none is refused); any 429 is a failed request.
    if wanted("hot") {
        let mut env = base_env.clone();
        env.push((
            "SIGNUP_RATE_LIMITS",
            "ip=30/1h,domain=100000/1h,address=5/1d".to_owned(),
        ));
        let (handler, _) = Process::start(&bins.handler, &env);
        let url = format!("http://127.0.0.1:{}/api/signup", handler.port);
        for &(concurrency, n) in size.accepted.iter().skip(1) {
            let (http, url) = (&http, &url);
            let stats = load(n, concurrency, Some(handler.pid), |i| async move {
                let tag = format!("hot{concurrency}-{i}");
                // i × 1000: every address at d0.bench.example, each from its own IP.
                sign_up(http, url, &tag, i * 1000).await == 202
            })
            .await;
            report.load(
                &format!("handler, accepted, default limits, one domain, c={concurrency}"),
                &stats,
            );
        }
    }

    // 2. Rejected sign-ups next to a warp hello-world, same load generator.
    if wanted("rejected") {
        let concurrency = 50;
        let mut env = base_env.clone();
        env.push(("SIGNUP_RATE_LIMITS", "off".to_owned()));
        let (hello, _) = Process::start(&bins.hello, &env);
        let hello_url = format!("http://127.0.0.1:{}/api/signup", hello.port);
        let (http, u) = (&http, &hello_url);
        // Unmeasured: opens the client's connections.
        load(size.rejected / 10, concurrency, None, |_| async move {
            post(http, u, INVALID.to_owned(), None).await == 200
        })
        .await;
        let hello_stats = load(
            size.rejected,
            concurrency,
            Some(hello.pid),
            |_| async move { post(http, u, INVALID.to_owned(), None).await == 200 },
        )
        .await;
        report.load(&format!("warp hello-world, c={concurrency}"), &hello_stats);
        drop(hello);
        let (handler, _) = Process::start(&bins.handler, &env);
        let url = format!("http://127.0.0.1:{}/api/signup", handler.port);
        let u = &url;
        load(size.rejected / 10, concurrency, None, |_| async move {
            post(http, u, INVALID.to_owned(), None).await == 400
        })
        .await;
        for (what, body, status) in [
            ("invalid email (400)", INVALID, 400),
            ("refused by policy (403)", REFUSED, 403),
        ] {
            let u = &url;
            let stats = load(
                size.rejected,
                concurrency,
                Some(handler.pid),
                |_| async move { post(http, u, body.to_owned(), None).await == status },
            )
            .await;
            report.load(
                &format!("handler, rejected: {what}, c={concurrency}"),
                &stats,
            );
            let ratio = stats.rps / hello_stats.rps;
            report.row(
                &format!("  rejected {what} req/s ÷ hello-world req/s"),
                format!("{ratio:.2}×"),
                "≥ 0.5×",
                ratio >= 0.5,
            );
        }
    }

    // 4. Worker: the host's invocation payload POSTed to /InviteQueue, 16 concurrent.
    if wanted("worker") {
        // A fresh Azurite: the phases above leave ~50,000 entities and ~20,000 messages in
        // the in-memory one, and its occasional stalls under that weight (one run: p99
        // 749 ms, 122/s) would be charged to the worker.
        let azurite = Azurite::start();
        let graph = MockServer::start().await;
        let mut env = base_env.clone();
        env.retain(|(k, _)| !matches!(*k, "SIGNUP_DRY_RUN" | "AzureWebJobsStorage"));
        env.extend([
            ("AzureWebJobsStorage", azurite.connection_string()),
            ("SIGNUP_DRY_RUN", "false".to_owned()),
            ("SIGNUP_RATE_LIMITS", "off".to_owned()),
            ("GRAPH_BASE_URL", format!("{}/v1.0", graph.uri())),
            ("AZURE_AUTHORITY_HOST", graph.uri()),
            ("AZURE_TENANT_ID", TENANT.to_owned()),
            ("AZURE_CLIENT_ID", "bench-client".to_owned()),
            ("AZURE_CLIENT_SECRET", "bench-secret".to_owned()),
            ("GRAPH_TIMEOUT_SECONDS", "10".to_owned()),
        ]);
        let (handler, _) = Process::start(&bins.handler, &env);
        let (mut tokens, mut invitations) = (0, 0);
        let signup = format!("http://127.0.0.1:{}/api/signup", handler.port);
        let invoke = format!("http://127.0.0.1:{}/InviteQueue", handler.port);
        for (label, group_delay, target) in [
            (
                "invitation 100 ms + group add 0 ms (one 100 ms call)",
                0,
                160.0,
            ),
            (
                "invitation 100 ms + group add 100 ms (two calls)",
                100,
                80.0,
            ),
        ] {
            graph.reset().await;
            Mock::given(method("POST"))
                .and(path(format!("/{TENANT}/oauth2/v2.0/token")))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                    "token_type": "Bearer", "expires_in": 3599, "access_token": "bench-token"
                })))
                .mount(&graph)
                .await;
            Mock::given(method("POST"))
                .and(path("/v1.0/invitations"))
                .respond_with(
                    ResponseTemplate::new(201)
                        .set_body_json(json!({"id": "inv", "invitedUser": {"id": "00000000-0000-4000-8000-00000000000b"}}))
                        .set_delay(Duration::from_millis(100)),
                )
                .mount(&graph)
                .await;
            Mock::given(method("POST"))
                .and(path_regex("/members/"))
                .respond_with(
                    ResponseTemplate::new(204).set_delay(Duration::from_millis(group_delay)),
                )
                .mount(&graph)
                .await;
            // Rows to invite, signed up through the handler (their messages stay queued).
            let rows = Mutex::new(Vec::new());
            {
                let (http, signup, rows) = (&http, &signup, &rows);
                load(size.worker, 10, None, |i| async move {
                    let email = format!("worker{group_delay}-{i}@contoso.com");
                    let response = http
                        .post(signup)
                        .json(&json!({"email": email, "displayName": "Bench Person"}))
                        .send()
                        .await;
                    let Ok(response) = response else { return false };
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    match body["requestId"].as_str() {
                        Some(id) => {
                            rows.lock().unwrap().push(id.to_owned());
                            true
                        }
                        None => false,
                    }
                })
                .await;
            }
            let rows = rows.into_inner().unwrap();
            let (http, invoke, rows) = (&http, &invoke, &rows);
            let stats = load(rows.len(), 16, Some(handler.pid), |i| async move {
                let message = json!({"v": 1, "requestId": rows[i], "domain": "contoso.com"});
                let payload = host_payload(&message.to_string(), 1);
                post(http, invoke, payload, None).await == 200
            })
            .await;
            report.load(&format!("worker /InviteQueue c=16: {label}"), &stats);
            let within = stats.rps >= 0.9 * target;
            report.row(
                &format!("  invocations/s, {label}"),
                format!("{:.1}/s", stats.rps),
                &format!("within 10 % of {target:.0}/s"),
                within,
            );
            // `reset` below forgets the recorded requests: count this scenario's now.
            tokens += graph
                .received_requests()
                .await
                .unwrap_or_default()
                .iter()
                .filter(|r| r.url.path().ends_with("/oauth2/v2.0/token"))
                .count();
            invitations += stats.ok;
        }
        report.row(
            "  token requests per 1,000 invitations (both scenarios, one process)",
            format!(
                "{:.2} ({tokens} for {invitations} invitations)",
                tokens as f64 * 1000.0 / invitations.max(1) as f64
            ),
            "≤ 1",
            tokens * 1000 <= invitations.max(1000),
        );
    }

    // 5. The admin API's list over `listed` stored requests (a quarter waiting for approval,
    // over 200 domains), with a valid administrator's token from a mock tenant.
    for spread in [false, true].into_iter().filter(|_| wanted("list")) {
        let azurite = Azurite::start();
        let entra = MockServer::start().await;
        let tenant =
            MockTenant::start(&entra, TENANT, "0f0e0d0c-0000-4000-8000-0000000000a1").await;
        let mut env = base_env.clone();
        env.retain(|(k, _)| *k != "AzureWebJobsStorage");
        env.push(("AzureWebJobsStorage", azurite.connection_string()));
        env.push(("SIGNUP_RATE_LIMITS", "off".to_owned()));
        env.extend(tenant.settings().map(|(k, v)| (k, v)));
        let (handler, _) = Process::start(&bins.handler, &env);
        let base = format!("http://127.0.0.1:{}/api", handler.port);
        // Burst: signed up through the handler, all within seconds. Spread: written
        // directly, one every 90 days / `listed` back from now, as months of sign-ups are.
        let (seeded, layout) = if spread {
            let store = StorageFloor::new(&azurite.connection_string()).await;
            let (store, now) = (&store, time::OffsetDateTime::now_utc());
            let step = time::Duration::days(90) / size.listed as u32;
            let seeded = load(size.listed, 50, None, |i| async move {
                store.put_listed(i, now - step * i as u32).await
            })
            .await;
            (seeded, "over 90 days")
        } else {
            let (http, signup) = (&http, &format!("{base}/signup"));
            let seeded = load(size.listed, 50, None, |i| async move {
                let domain = match i % 4 {
                    0 => format!("d{}.approve.example", i % 100),
                    _ => format!("d{}.bench.example", i % 100),
                };
                let body =
                    json!({"email": format!("listed-{i}@{domain}"), "displayName": "Bench Person"});
                post(http, signup, body.to_string(), None).await == 202
            })
            .await;
            (seeded, "signed up within seconds")
        };
        let token = tenant.token(
            &Signer {
                username: "bench-admin@contoso.com",
                object_id: "0f0e0d0c-0000-4000-8000-0000000000b1",
            },
            &["Signup.Read"],
        );
        for (query, budget) in [
            ("", Some(150.0)),
            ("?status=PendingApproval", None),
            ("?domain=d7.bench.example", None),
            ("?limit=200", None),
        ] {
            let url = format!("{base}/requests{query}");
            let mut times = Vec::new();
            let mut items = 0;
            for _ in 0..size.list_calls {
                let started = Instant::now();
                let response = http.get(&url).bearer_auth(&token).send().await;
                let body: serde_json::Value = match response {
                    Ok(r) if r.status() == 200 => r.json().await.unwrap_or_default(),
                    Ok(r) => panic!(
                        "GET {url}: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    ),
                    Err(e) => panic!("GET {url}: {e}"),
                };
                times.push(started.elapsed());
                items = body["items"].as_array().map_or(0, Vec::len);
            }
            times.sort();
            let p50 = ms(times[times.len() / 2]);
            let what = format!(
                "admin API GET /api/requests{query}, {} requests {layout} ({} items a page)",
                seeded.ok, items
            );
            let value = format!(
                "p50 {p50:.1} ms, max {:.1} ms (n={})",
                ms(*times.last().unwrap()),
                times.len()
            );
            match budget {
                Some(budget) => report.row(
                    &what,
                    value,
                    &format!("< {budget:.0} ms"),
                    items > 0 && p50 < budget,
                ),
                None => report.row(&what, value, "—", true),
            }
        }
    }

    // 6. With `B2B_SIGNUP_BASELINE_BIN` (another build of the handler, e.g. from before a
    // change): CPU per accepted sign-up of both, side by side in alternating rounds on one
    // Azurite, so the machine's drift touches both alike.
    if wanted("baseline")
        && let Some(baseline) = std::env::var_os("B2B_SIGNUP_BASELINE_BIN").map(PathBuf::from)
    {
        let mut env = base_env.clone();
        env.push(("SIGNUP_RATE_LIMITS", "off".to_owned()));
        let (after, _) = Process::start(&bins.handler, &env);
        // A build from before proof of address refuses the `verifyEmail` it does not know;
        // without it, the two policies are the same.
        let old_policy = dir.path().join("policy-baseline.json");
        std::fs::write(&old_policy, POLICY.replace(r#" "verifyEmail": false,"#, ""))
            .expect("policy written");
        env.retain(|(k, _)| *k != "SIGNUP_POLICY_PATH");
        env.push(("SIGNUP_POLICY_PATH", old_policy.display().to_string()));
        let (before, _) = Process::start(&baseline, &env);
        let (mut befores, mut afters) = (Vec::new(), Vec::new());
        let (concurrency, n) = size.accepted[1];
        for round in 0..size.rounds {
            for (handler, runs, tag) in [
                (&before, &mut befores, "before"),
                (&after, &mut afters, "after"),
            ] {
                let (http, url) = (
                    &http,
                    &format!("http://127.0.0.1:{}/api/signup", handler.port),
                );
                warm_up(http, url, &format!("{tag}{round}")).await;
                runs.push(
                    load(n, concurrency, Some(handler.pid), |i| async move {
                        sign_up(http, url, &format!("{tag}-{round}-{i}"), i).await == 202
                    })
                    .await,
                );
            }
        }
        let (before, after) = (Stats::merge(&befores), Stats::merge(&afters));
        report.load(
            &format!("baseline {}, accepted, c={concurrency}", baseline.display()),
            &before,
        );
        report.load(&format!("this build, accepted, c={concurrency}"), &after);
        let over = after.cpu_per_request / before.cpu_per_request - 1.0;
        report.row(
            "  CPU per accepted sign-up, this build over the baseline",
            format!("{:+.1} %{}", over * 100.0, spread(&befores, &afters)),
            "≤ +5 %",
            over <= 0.05,
        );
    }

    // Binary size.
    match std::fs::metadata(&bins.handler) {
        Ok(meta) => report.row(
            &format!(
                "size: the handler measured above ({})",
                bins.handler.display()
            ),
            format!("{:.1} MiB", meta.len() as f64 / 1048576.0),
            "—",
            true,
        ),
        Err(e) => report.row("size: the handler measured above", e.to_string(), "—", true),
    }

    report.print(smoke, started.elapsed());
    if report.failed_loads > 0 {
        eprintln!(
            "bench: {} load phases had failed requests",
            report.failed_loads
        );
        std::process::exit(1);
    }
}

const POLICY: &str = r#"{
    "defaultAction": "deny", "verifyEmail": false,
    "accessOptions": {
        "partner-portal": { "displayName": "Partner portal", "groups": ["11111111-1111-1111-1111-111111111111"] }
    },
    "rules": [
        { "domains": ["contoso.com", "*.bench.example"], "action": "invite", "access": ["partner-portal"] },
        { "domains": ["*.approve.example"], "action": "approve", "access": ["partner-portal"] },
        { "domains": ["gmail.com"], "action": "deny" }
    ]
}"#;

const INVALID: &str = r#"{"email":"not an address","displayName":"Bench Person"}"#;
const REFUSED: &str = r#"{"email":"someone@gmail.com","displayName":"Bench Person"}"#;

/// One accepted sign-up: a new address each time, spread over 1,000 domains and with a
/// client IP per request, so the default limits (ip 30/h, domain 300/h, address 5/d)
/// count every request without refusing any.
async fn sign_up(http: &reqwest::Client, url: &str, tag: &str, i: usize) -> u16 {
    let body = json!({
        "email": format!("user-{tag}@d{}.bench.example", i % 1000),
        "displayName": "Bench Person",
        "company": "Contoso Ltd",
    })
    .to_string();
    let ip = format!(
        "10.{}.{}.{}:50000",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    );
    post(http, url, body, Some(ip)).await
}

async fn post(http: &reqwest::Client, url: &str, body: String, ip: Option<String>) -> u16 {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(ip) = ip {
        request = request.header("x-forwarded-for", ip);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

async fn warm_up(http: &reqwest::Client, url: &str, tag: &str) {
    for i in 0..5 {
        post(http, url, INVALID.to_owned(), None).await;
        sign_up(http, url, &format!("warm-{tag}-{i}"), i).await;
    }
}

/// As tests/api/worker.rs: what the Functions host POSTs for a queue trigger.
fn host_payload(text: &str, dequeue_count: u32) -> String {
    let twice = |s: &str| serde_json::to_string(&serde_json::to_string(s).unwrap()).unwrap();
    let mut metadata = serde_json::Map::new();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(text) {
        for (key, value) in fields {
            metadata.insert(key, serde_json::Value::String(value.to_string()));
        }
    }
    metadata.insert("DequeueCount".into(), dequeue_count.to_string().into());
    metadata.insert(
        "Id".into(),
        "\"6f1b2c3d-0000-4000-8000-000000000001\"".into(),
    );
    format!(
        r#"{{"Data":{{"msg":{}}},"Metadata":{}}}"#,
        twice(text),
        serde_json::Value::Object(metadata)
    )
}

/// The per-round range of handler CPU/request over a floor's, when there are rounds.
fn spread(floors: &[Stats], handlers: &[Stats]) -> String {
    if floors.len() < 2 {
        return String::new();
    }
    let (lo, hi) = floors
        .iter()
        .zip(handlers)
        .map(|(f, h)| (h.cpu_per_request / f.cpu_per_request - 1.0) * 100.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    format!(" (rounds {lo:+.0} to {hi:+.0} %)")
}

/// Where the floors run: a runtime built like the handler's default
/// ([`b2b_signup::cli::runtime`], one thread), on a thread of its own, so both sides of
/// the comparison are scheduled alike. Its CPU is counted as this process's.
struct FloorRuntime(Option<tokio::runtime::Runtime>);

impl FloorRuntime {
    fn new() -> Self {
        Self(Some(
            b2b_signup::cli::runtime().expect("a runtime for the floors"),
        ))
    }

    fn run<T: Send>(&self, work: impl Future<Output = T> + Send) -> T {
        let runtime = self.0.as_ref().expect("not shut down");
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| runtime.block_on(work))
                    .join()
                    .expect("the floor's thread")
            })
        })
    }
}

/// Dropped inside the bench's own runtime, where a blocking shutdown is not allowed.
impl Drop for FloorRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The issue's floor: what any client needs for one sign-up, a table insert and a queue
/// put, with the same crates and the same kind of pooled reqwest client as the handler.
struct SdkFloor {
    table: azure_data_tables::clients::TableClient,
    queue: azure_storage_queues::QueueClient,
}

impl SdkFloor {
    async fn new(azurite: &Azurite) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let options = ClientOptions::new(TransportOptions::new(Arc::new(http)));
        let location = |port: u16| CloudLocation::Custom {
            account: "devstoreaccount1".into(),
            uri: format!("http://127.0.0.1:{port}/devstoreaccount1"),
        };
        let table = TableServiceClientBuilder::with_location(
            location(azurite.table_port),
            StorageCredentials::emulator(),
        )
        .client_options(options.clone())
        .build()
        .table_client("BenchFloor");
        let queue = QueueServiceClientBuilder::with_location(
            location(azurite.queue_port),
            StorageCredentials::emulator(),
        )
        .client_options(options)
        .build()
        .queue_client("bench-floor");
        table.create().await.expect("floor table");
        queue.create().await.expect("floor queue");
        let floor = Self { table, queue };
        for i in 0..5 {
            floor.put(&format!("warm-{i}")).await;
        }
        floor
    }

    async fn put(&self, key: &str) -> bool {
        // A row the size of a request row.
        let entity = json!({
            "PartitionKey": "bench.example", "RowKey": key,
            "Email": "user@bench.example", "DisplayName": "Bench Person", "Access": "partner-portal",
            "Company": "Contoso Ltd", "Status": "Accepted", "Attempts": 0,
            "CreatedAt": "2026-11-24T02:00:00Z", "UpdatedAt": "2026-11-24T02:00:00Z", "DryRun": true,
        });
        let inserted = match self.table.insert::<_, serde::de::IgnoredAny>(&entity) {
            Ok(insert) => insert.await.is_ok(),
            Err(_) => false,
        };
        let message = base64::engine::general_purpose::STANDARD.encode(format!(
            r#"{{"v":1,"requestId":"{key}","domain":"bench.example"}}"#
        ));
        inserted && self.queue.put_message(message).await.is_ok()
    }
}

/// The handler's own storage calls for a new sign-up, without the handler: the project's
/// storage layer ([`AzureStorage`], its transport and client options) writing a request row
/// and its address claim in one transaction, then the queue message.
struct StorageFloor {
    storage: AzureStorage,
}

/// A row as intake writes it (the same columns and history), for `email` with `id`.
fn bench_request(
    id: RequestId,
    email: EmailAddress,
    status: RequestStatus,
    now: time::OffsetDateTime,
) -> SignupRequest {
    SignupRequest {
        id,
        email,
        display_name: DisplayName::parse("Bench Person").expect("a name"),
        access: AccessKey::parse("partner-portal").expect("an access key"),
        company: FreeText::parse_line(Some("Contoso Ltd"), 200).expect("a company"),
        justification: None,
        status,
        reason: None,
        attempts: 0,
        invited_user_id: None,
        invitation_attempted_at: None,
        graph_request_id: None,
        created_at: now,
        updated_at: now,
        decided_by: None,
        decided_at: None,
        decide_by: None,
        notified_at: None,
        retried_by: None,
        retried_at: None,
        terms_version: None,
        dry_run: true,
        decision_reason: None,
        // As intake writes it, so the floor's entity is the handler's size.
        history: History::of_new(status, Actor::Partner, now),
        language: Default::default(),
        verification: None,
        mail_owed: None,
        share_reason: false,
        access_ends_at: None,
        renewal_opens_at: None,
        renewal_notice_at: None,
        invitation_resent_at: None,
    }
}

impl StorageFloor {
    async fn new(connection: &str) -> Self {
        let account = StorageAccount::from_settings(|name| {
            (name == "AzureWebJobsStorage").then(|| connection.to_owned())
        })
        .expect("Azurite's connection string");
        let storage =
            AzureStorage::new(&account, StorageTimeouts::default()).expect("storage clients");
        storage.ensure_created().await.expect("tables and queue");
        let floor = Self { storage };
        for i in 0..5 {
            floor.put(&format!("warm-{i}"), i).await;
        }
        floor
    }

    /// The `i`-th of the list's rows, created at `at` (its id made then): a quarter waiting
    /// for approval, over 200 domains, as the list phase's sign-ups.
    async fn put_listed(&self, i: usize, at: time::OffsetDateTime) -> bool {
        let (domain, status) = match i % 4 {
            0 => (
                format!("d{}.approve.example", i % 100),
                RequestStatus::PendingApproval,
            ),
            _ => (
                format!("d{}.bench.example", i % 100),
                RequestStatus::Accepted,
            ),
        };
        let email = EmailAddress::parse(&format!("listed-{i}@{domain}")).expect("an address");
        let request = bench_request(RequestId::first_at(at), email, status, at);
        let claim = AddressClaim {
            request_id: request.id,
            claimed_at: at,
        };
        self.storage.create(&request, &claim, None).await.is_ok()
    }

    /// A row like the handler's for `user-floor-{tag}@d{i % 1000}.floor.bench.example`.
    async fn put(&self, tag: &str, i: usize) -> bool {
        let now = time::OffsetDateTime::now_utc();
        let email = EmailAddress::parse(&format!(
            "user-floor-{tag}@d{}.floor.bench.example",
            i % 1000
        ))
        .expect("an address");
        let request = bench_request(RequestId::new(), email, RequestStatus::Accepted, now);
        let claim = AddressClaim {
            request_id: request.id,
            claimed_at: now,
        };
        self.storage.create(&request, &claim, None).await.is_ok()
            && self
                .storage
                .send(&InviteMessage::new(&request))
                .await
                .is_ok()
    }
}

#[derive(Debug)]
struct Stats {
    ok: usize,
    failed: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
    /// CPU seconds (user + sys) of the measured process per request.
    cpu_per_request: f64,
    /// What the figures above come from, for [`Stats::merge`].
    elapsed: Duration,
    cpu: f64,
    latencies: Vec<Duration>,
}

impl Stats {
    fn new(latencies: Vec<Duration>, failed: usize, elapsed: Duration, cpu: f64) -> Self {
        let mut latencies = latencies;
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or_default()
        };
        let n = latencies.len() + failed;
        Self {
            ok: latencies.len(),
            failed,
            rps: n as f64 / elapsed.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
            cpu_per_request: cpu / n.max(1) as f64,
            elapsed,
            cpu,
            latencies,
        }
    }

    /// Several runs of one load as one: requests, time and CPU added up.
    fn merge(runs: &[Stats]) -> Self {
        Self::new(
            runs.iter()
                .flat_map(|r| r.latencies.iter().copied())
                .collect(),
            runs.iter().map(|r| r.failed).sum(),
            runs.iter().map(|r| r.elapsed).sum(),
            runs.iter().map(|r| r.cpu).sum(),
        )
    }
}

/// `n` calls of `call` with `concurrency` in flight; CPU time of `pid` (this process when
/// `None`) over the run.
async fn load<F, Fut>(n: usize, concurrency: usize, pid: Option<u32>, call: F) -> Stats
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = bool>,
{
    let pid = pid.unwrap_or_else(std::process::id);
    let next = &AtomicUsize::new(0);
    let call = &call;
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| async move {
        let mut latencies = Vec::new();
        let mut failed = 0;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            let t = Instant::now();
            if call(i).await {
                latencies.push(t.elapsed());
            } else {
                failed += 1;
            }
        }
        (latencies, failed)
    });
    let results = futures::future::join_all(workers).await;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    let latencies: Vec<Duration> = results.iter().flat_map(|r| r.0.clone()).collect();
    let failed = results.iter().map(|r| r.1).sum();
    Stats::new(latencies, failed, elapsed, cpu)
}

fn proc_field(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default()
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = proc_field(pid, "stat");
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / TICKS_PER_SECOND
}

fn status_kib(pid: u32, key: &str) -> usize {
    proc_field(pid, "status")
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> usize {
    status_kib(pid, "VmRSS:")
}

struct Bins {
    handler: PathBuf,
    hello: PathBuf,
}

impl Bins {
    /// Next to this bench binary (target/release/deps/load-*): target/release/b2b-signup and
    /// target/release/examples/hello; `B2B_SIGNUP_BIN` and `B2B_HELLO_BIN` override them.
    /// `cargo bench` itself rebuilds target/release/b2b-signup with the dev-dependencies'
    /// features (tokio `full` and `test-util`, reqwest `blocking`): `scripts/bench`
    /// therefore passes the deployed build (static musl, built alone) and a hello-world
    /// built the same way.
    fn locate() -> Self {
        let exe = std::env::current_exe().expect("own path");
        let release = exe
            .parent()
            .and_then(Path::parent)
            .expect("in target/release/deps")
            .to_owned();
        let bin = |variable: &str, default: PathBuf| {
            std::env::var_os(variable)
                .map(PathBuf::from)
                .unwrap_or(default)
        };
        let handler = bin("B2B_SIGNUP_BIN", release.join("b2b-signup"));
        let bins = Self {
            handler,
            hello: bin("B2B_HELLO_BIN", release.join("examples/hello")),
        };
        for bin in [&bins.handler, &bins.hello] {
            assert!(
                bin.exists(),
                "{} is missing: run `bash scripts/bench`, which builds it",
                bin.display()
            );
        }
        bins
    }
}

/// A child process serving HTTP on a loopback port, killed when dropped.
struct Process {
    child: Child,
    pid: u32,
    port: u16,
}

impl Process {
    /// Starts `bin` and returns once it answers `GET /`, with the time from exec to that answer.
    fn start(bin: &Path, env: &[(&str, String)]) -> (Self, Duration) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let started = Instant::now();
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("handler starts");
        loop {
            if probe(port) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} did not answer GET / within 10 s",
                bin.display()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        let ready = started.elapsed();
        let pid = child.id();
        (Self { child, pid, port }, ready)
    }

    fn rss_kib(&self) -> usize {
        rss_kib(self.pid)
    }

    fn hwm_kib(&self) -> usize {
        status_kib(self.pid, "VmHWM:")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `GET /` on a new connection: whether it was answered.
fn probe(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 ")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct Report {
    rows: Vec<[String; 4]>,
    failed_loads: usize,
}

impl Report {
    fn row(&mut self, what: &str, value: String, budget: &str, met: bool) {
        let verdict = match budget {
            "—" => "",
            _ if met => "met",
            _ => "NOT met",
        };
        self.rows.push([
            what.to_owned(),
            value,
            budget.to_owned(),
            verdict.to_owned(),
        ]);
    }

    fn load(&mut self, what: &str, stats: &Stats) {
        if stats.failed > 0 {
            self.failed_loads += 1;
        }
        let failed = match stats.failed {
            0 => String::new(),
            n => format!(", {n} FAILED"),
        };
        self.row(
            what,
            format!(
                "{:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, CPU {:.0} µs/req (n={}{failed})",
                stats.rps,
                ms(stats.p50),
                ms(stats.p99),
                stats.cpu_per_request * 1e6,
                stats.ok + stats.failed,
            ),
            "—",
            true,
        );
    }

    fn print(&self, smoke: bool, elapsed: Duration) {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "\nb2b-signup bench{} — {} CPUs, load average {} — {:.0} s",
            if smoke {
                " --smoke (sizes too small for figures)"
            } else {
                ""
            },
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            elapsed.as_secs_f64()
        );
        println!("\n| measurement | value | budget | |\n|---|---|---|---|");
        for [what, value, budget, verdict] in &self.rows {
            println!("| {what} | {value} | {budget} | {verdict} |");
        }
    }
}
