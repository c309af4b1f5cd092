//! No lost sign-ups (issue 6): the real binary under the local host runner, two runners on
//! one queue, Azurite persisting to disk, a misbehaving Graph, and faults injected while
//! sign-ups flow. At the end every 202 is reconciled against the rows and the invitations
//! Graph accepted.
//!
//! `scripts/faults` runs the short variant (CI, about two minutes); `scripts/faults --full`
//! runs the ignored full one (1,000 sign-ups). Figures: docs/RELIABILITY.md.
//!
//! Injected while sign-ups flow:
//! - Azurite stopped (SIGTERM) and started again on the same ports, with its data on disk;
//!   sign-ups sent while it is down must get 503, never 202;
//! - the handler killed with SIGKILL at random moments (between the row write and the
//!   enqueue, mid-invitation, ...); the runner exits with it and is started again;
//! - Graph: 5xx, bursts of 429 with short and long `Retry-After`, timeouts, answers lost
//!   after the invitation was accepted, slow answers (graph.rs);
//! - duplicated and reordered deliveries: extra copies of requests' messages put on the
//!   queue at random moments, repeat sign-ups for the same address, two runners polling
//!   the same queue.
//!
//! Recovery relies on the product's own mechanisms: redelivery (host.json
//! `visibilityTimeout`, `maxDequeueCount`) and Reconcile, here firing every 5 s, with
//! `SIGNUP_STALE_AFTER_SECONDS` shortening the 2-minute lease / stuck-`Accepted` age.

mod cluster;
mod graph;
mod lifecycle;
mod mail;

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use b2b_signup::{
    domain::{EmailDomain, RequestId, RequestStatus},
    storage::{
        AzureStorage, InviteMessage, RequestQuery, RequestStore, SignupQueue, StorageAccount,
        azure::StorageTimeouts,
    },
};
use serde_json::json;

use cluster::{DiskAzurite, Runner};
use graph::{GraphFaults, MockGraph};

const TENANT: &str = "0f0e0d0c-0000-4000-8000-000000000006";
const POLICY: &str = r#"{
    "defaultAction": "deny", "verifyEmail": false,
    "accessOptions": {
        "partner-portal": { "displayName": "Partner portal", "groups": ["11111111-1111-1111-1111-111111111111"] }
    },
    "rules": [ { "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal"] } ]
}"#;
/// Production's queue settings, except retries spaced 2 s apart (production: 30 s) and a
/// 20 s function timeout (the runner locks fetched messages for it plus 60 s).
const HOST_JSON: &str = r#"{
    "version": "2.0",
    "functionTimeout": "00:00:20",
    "customHandler": {
        "description": { "defaultExecutablePath": "b2b-signup", "workingDirectory": "", "arguments": [] },
        "enableForwardingHttpRequest": true
    },
    "extensions": {
        "http": { "routePrefix": "api" },
        "queues": {
            "batchSize": 16,
            "newBatchThreshold": 8,
            "maxDequeueCount": 5,
            "visibilityTimeout": "00:00:02",
            "maxPollingInterval": "00:00:01",
            "messageEncoding": "base64"
        }
    }
}"#;

#[derive(Debug, Clone)]
struct Plan {
    name: &'static str,
    signups: usize,
    concurrency: usize,
    runners: usize,
    /// Sign-ups are spread over this long; faults happen inside it.
    traffic: Duration,
    handler_kills: usize,
    storage_outages: usize,
    outage: Duration,
    /// Share of sign-ups that get extra queue messages, and a repeat sign-up.
    duplicate_share: f64,
    stale_after_seconds: u32,
    drain_budget: Duration,
    graph: GraphFaults,
    seed: u64,
}

fn graph_faults() -> GraphFaults {
    GraphFaults {
        p_5xx: 0.20,
        p_timeout: 0.03,
        p_lost_answer: 0.02,
        p_slow: 0.05,
        slow: Duration::from_millis(1500),
        hang: Duration::from_secs(3), // GRAPH_TIMEOUT_SECONDS is 2
        burst_every: Duration::from_secs(15),
        burst_for: Duration::from_secs(2),
    }
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

impl Plan {
    fn short() -> Self {
        Self {
            name: "short",
            signups: env_number("FAULTS_SIGNUPS").unwrap_or(150),
            concurrency: 6,
            runners: 2,
            traffic: Duration::from_secs(30),
            handler_kills: 4,
            storage_outages: 1,
            outage: Duration::from_secs(4),
            duplicate_share: 0.15,
            stale_after_seconds: 10,
            drain_budget: Duration::from_secs(150),
            graph: graph_faults(),
            seed: 0x5eed_0006,
        }
    }

    fn full() -> Self {
        Self {
            name: "full",
            signups: env_number("FAULTS_SIGNUPS").unwrap_or(1000),
            concurrency: 8,
            runners: 2,
            traffic: Duration::from_secs(150),
            handler_kills: 16,
            storage_outages: 3,
            outage: Duration::from_secs(6),
            duplicate_share: 0.15,
            stale_after_seconds: 15,
            drain_budget: Duration::from_secs(420),
            graph: graph_faults(),
            seed: 0x5eed_1006,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_fault_run_loses_and_duplicates_nothing() {
    run(Plan::short()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the full run takes about 3 minutes: scripts/faults --full"]
async fn full_fault_run_loses_and_duplicates_nothing() {
    run(Plan::full()).await;
}

/// A deterministic generator for the suite's own choices.
#[derive(Clone)]
struct Rng(Arc<Mutex<u64>>);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(seed | 1)))
    }
    fn next(&self) -> f64 {
        let mut s = self.0.lock().unwrap();
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the partners were told.
#[derive(Default)]
struct Traffic {
    /// email → request ids answered with 202 (more than one only after a repeat).
    accepted: Mutex<BTreeMap<String, Vec<String>>>,
    answers_202: AtomicU64,
    answers_503: AtomicU64,
    connection_errors: AtomicU64,
    other: Mutex<BTreeMap<u16, u64>>,
    gave_up: AtomicU64,
    repeats: AtomicU64,
    repeat_new_id: AtomicU64,
    extra_messages: AtomicU64,
    /// 202 answers received while storage was down (must be 0).
    accepted_while_down: AtomicU64,
    /// Probes sent while storage was down and what they got.
    down_probes: Mutex<BTreeMap<String, u64>>,
}

struct Chaos {
    handler_kills: AtomicU64,
    runner_restarts: AtomicU64,
    storage_outages: AtomicU64,
    storage_down: AtomicBool,
    kill_times: Mutex<Vec<Instant>>,
}

fn work_dir(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("faults").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    dir
}

fn app_root(work: &Path, azurite: &DiskAzurite, graph: &MockGraph, plan: &Plan) -> PathBuf {
    write_app(
        work,
        POLICY,
        &["SignupHttp", "InviteQueue", "InvitePoison", "Approval"],
        json!({
            "SIGNUP_DRY_RUN": "false",
            "SIGNUP_STALE_AFTER_SECONDS": plan.stale_after_seconds.to_string(),
            "GRAPH_BASE_URL": format!("{}/v1.0", graph.url),
            "AZURE_AUTHORITY_HOST": graph.url,
            "AZURE_TENANT_ID": TENANT,
            "AZURE_CLIENT_ID": "faults-client-id",
            "AZURE_CLIENT_SECRET": "faults-secret-value",
            "GRAPH_TIMEOUT_SECONDS": "2",
            "GRAPH_MAX_INLINE_RETRY_SECONDS": "2",
            "B2B_HOST_FUNCTION_KEYS": "default=faults-key-0123456789",
        }),
        azurite,
    )
}

/// A temporary app root under `work`: the suite's host.json, `policy`, the project's
/// `functions` folders and Reconcile (every 5 s), and local.settings.json with `values`
/// beside the settings every run shares.
fn write_app(
    work: &Path,
    policy: &str,
    functions: &[&str],
    values: serde_json::Value,
    azurite: &DiskAzurite,
) -> PathBuf {
    let root = work.join("app");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("host.json"), HOST_JSON).unwrap();
    std::fs::write(root.join("policy.json"), policy).unwrap();
    for function in functions {
        std::fs::create_dir_all(root.join(function)).unwrap();
        std::fs::copy(
            format!("{}/{function}/function.json", env!("CARGO_MANIFEST_DIR")),
            root.join(function).join("function.json"),
        )
        .unwrap();
    }
    fast_reconcile(&root);
    let mut all = json!({
        "FUNCTIONS_WORKER_RUNTIME": "custom",
        "AzureWebJobsStorage": azurite.connection_string(),
        "SIGNUP_POLICY_PATH": "policy.json",
        "SIGNUP_RATE_LIMITS": "off",
        "RUST_LOG": "warn"
    });
    if let (Some(all), Some(values)) = (all.as_object_mut(), values.as_object()) {
        all.extend(values.clone());
    }
    std::fs::write(
        root.join("local.settings.json"),
        json!({"IsEncrypted": false, "Values": all}).to_string(),
    )
    .unwrap();
    root
}

/// Reconcile as shipped, but every 5 seconds instead of every 5 minutes.
fn fast_reconcile(root: &Path) {
    let reconcile = std::fs::read_to_string(format!(
        "{}/Reconcile/function.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("\"0 */5 * * * *\"", "\"*/5 * * * * *\"");
    assert!(reconcile.contains("*/5 * * * * *"), "Reconcile's schedule");
    std::fs::create_dir_all(root.join("Reconcile")).unwrap();
    std::fs::write(root.join("Reconcile/function.json"), reconcile).unwrap();
}

async fn run(plan: Plan) {
    let started = Instant::now();
    let work = work_dir(plan.name);
    let rng = Rng::new(plan.seed);
    let graph = MockGraph::start(plan.graph, plan.seed).await;
    let mut azurite = DiskAzurite::new(&work);
    azurite.start();
    let connection = azurite.connection_string();
    let root = app_root(&work, &azurite, &graph, &plan);
    let azurite = Arc::new(Mutex::new(azurite));

    let mut runners: Vec<Runner> = (0..plan.runners)
        .map(|i| Runner::new(i, &root, &work))
        .collect();
    for runner in &mut runners {
        runner.start();
    }
    for runner in &mut runners {
        assert!(
            runner.wait_ready(Duration::from_secs(60)),
            "runner {} did not start; see {}",
            runner.index,
            work.display()
        );
    }
    let urls: Vec<String> = runners.iter().map(Runner::url).collect();
    let runners = Arc::new(Mutex::new(runners));
    let account = StorageAccount::from_connection_string(&connection).unwrap();
    let storage = AzureStorage::new(&account, StorageTimeouts::default()).unwrap();

    let traffic = Arc::new(Traffic::default());
    let chaos = Arc::new(Chaos {
        handler_kills: AtomicU64::new(0),
        runner_restarts: AtomicU64::new(0),
        storage_outages: AtomicU64::new(0),
        storage_down: AtomicBool::new(false),
        kill_times: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));

    // The supervisor: a runner whose handler died exits; start it again (bounded waits).
    let supervisor = {
        let (runners, chaos, stop) = (runners.clone(), chaos.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                {
                    let mut runners = runners.lock().unwrap();
                    for runner in runners.iter_mut() {
                        if !runner.alive() {
                            runner.reap(Duration::from_secs(1));
                            runner.start();
                            chaos.runner_restarts.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // The chaos monkey: handler kills and storage outages at random moments of the burst.
    let chaos_thread = {
        let (runners, chaos, azurite, rng, plan, urls) = (
            runners.clone(),
            chaos.clone(),
            azurite.clone(),
            rng.clone(),
            plan.clone(),
            urls.clone(),
        );
        let traffic = traffic.clone();
        std::thread::spawn(move || {
            let begin = Instant::now();
            let mut events: Vec<(Duration, bool)> = Vec::new(); // (when, is_outage)
            let span = plan.traffic.as_secs_f64();
            for _ in 0..plan.handler_kills {
                events.push((
                    Duration::from_secs_f64(span * (0.05 + 0.9 * rng.next())),
                    false,
                ));
            }
            for i in 0..plan.storage_outages {
                let slot = (i as f64 + 0.3 + 0.4 * rng.next()) / plan.storage_outages as f64;
                events.push((Duration::from_secs_f64(span * slot * 0.9), true));
            }
            events.sort();
            for (at, outage) in events {
                if let Some(wait) = at.checked_sub(begin.elapsed()) {
                    std::thread::sleep(wait);
                }
                if outage {
                    // Down from when Azurite has exited (its ports closed) until it is started.
                    azurite.lock().unwrap().stop();
                    chaos.storage_down.store(true, Ordering::SeqCst);
                    chaos.storage_outages.fetch_add(1, Ordering::SeqCst);
                    // Sign-ups while storage is down: 503, never 202.
                    let client = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(20))
                        .build()
                        .unwrap();
                    for (i, url) in urls.iter().enumerate() {
                        for n in 0..3 {
                            let answer = client
                                .post(format!("{url}/api/signup"))
                                .json(&json!({"email": format!("down.{}.{i}.{n}@contoso.com", chaos.storage_outages.load(Ordering::SeqCst)), "displayName": "Probe"}))
                                .send()
                                .map(|r| r.status().as_u16().to_string())
                                .unwrap_or_else(|_| "connection error".into());
                            *traffic
                                .down_probes
                                .lock()
                                .unwrap()
                                .entry(answer)
                                .or_default() += 1;
                        }
                    }
                    let rest = plan.outage.saturating_sub(Duration::from_secs(1));
                    std::thread::sleep(rest);
                    chaos.storage_down.store(false, Ordering::SeqCst);
                    azurite.lock().unwrap().start();
                } else {
                    let runners = runners.lock().unwrap();
                    let which = (rng.next() * runners.len() as f64) as usize % runners.len();
                    if runners[which].kill_handler() {
                        chaos.handler_kills.fetch_add(1, Ordering::SeqCst);
                        chaos.kill_times.lock().unwrap().push(Instant::now());
                    }
                }
            }
        })
    };

    // The partners: every sign-up is retried (bounded) until it gets a 202, as a browser
    // user would press the button again.
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let traffic_start = Instant::now();
    let mut partners = Vec::new();
    let side_tasks = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..plan.concurrency {
        let (next, client, traffic, urls, chaos, rng, plan) = (
            next.clone(),
            client.clone(),
            traffic.clone(),
            urls.clone(),
            chaos.clone(),
            rng.clone(),
            plan.clone(),
        );
        let (storage, side_tasks) = (storage.clone(), side_tasks.clone());
        partners.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= plan.signups {
                    break;
                }
                let due = traffic_start + plan.traffic.mul_f64(i as f64 / plan.signups as f64);
                tokio::time::sleep_until(due.into()).await;
                let email = format!("partner.{i:05}@contoso.com");
                let Some(id) = sign_up(&client, &urls, &email, i, &traffic, &chaos).await else {
                    continue;
                };
                if rng.next() < plan.duplicate_share {
                    // Extra deliveries of this request's message, now and later (reordered
                    // against everything else), and a repeat sign-up for the address.
                    let delays = [rng.next() * 2.0, rng.next() * 6.0, rng.next() * 3.0];
                    let (client, urls, traffic, chaos, storage) = (
                        client.clone(),
                        urls.clone(),
                        traffic.clone(),
                        chaos.clone(),
                        storage.clone(),
                    );
                    side_tasks.lock().unwrap().push(tokio::spawn(async move {
                        let id = RequestId::parse(&id).unwrap();
                        for delay in &delays[..2] {
                            tokio::time::sleep(Duration::from_secs_f64(*delay)).await;
                            if let Ok(Some(row)) = storage.find(&id).await {
                                if storage.send(&InviteMessage::new(&row.value)).await.is_ok() {
                                    traffic.extra_messages.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        }
                        tokio::time::sleep(Duration::from_secs_f64(delays[2])).await;
                        traffic.repeats.fetch_add(1, Ordering::SeqCst);
                        if let Some(again) =
                            sign_up(&client, &urls, &email, i + 1, &traffic, &chaos).await
                        {
                            if again != id.to_string() {
                                traffic.repeat_new_id.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }));
                }
            }
        }));
    }
    for partner in partners {
        partner.await.unwrap();
    }
    let side: Vec<_> = std::mem::take(&mut *side_tasks.lock().unwrap());
    for task in side {
        task.await.unwrap();
    }
    tokio::task::spawn_blocking(move || chaos_thread.join().unwrap())
        .await
        .unwrap();
    let traffic_done = Instant::now();
    let burst = traffic_done - traffic_start;

    // Drain: Graph keeps misbehaving; wait (bounded) until every row is Invited or Failed.
    let accepted = traffic.accepted.lock().unwrap().clone();
    let drain_deadline = Instant::now() + plan.drain_budget;
    let (rows, drained_in) = loop {
        let rows = all_rows(&storage).await;
        let open = rows
            .values()
            .filter(|r| !matches!(r.status, RequestStatus::Invited | RequestStatus::Failed))
            .count();
        let missing = accepted
            .values()
            .flatten()
            .filter(|id| !rows.contains_key(*id))
            .count();
        if open == 0 && missing == 0 {
            break (rows, Some(traffic_done.elapsed()));
        }
        if Instant::now() > drain_deadline {
            break (rows, None);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    // Stragglers (a delivery still in flight) would show up now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || supervisor.join().unwrap())
        .await
        .unwrap();

    // Reconcile every 202 against the rows and Graph's invitations.
    let invitations = graph.invitations();
    let lost_answers = graph.lost_answers();
    let kill_times = chaos.kill_times.lock().unwrap().clone();
    let mut lost_no_row = Vec::new();
    let mut stuck = Vec::new();
    let mut invited = 0;
    let mut failed = Vec::new();
    let mut invited_without_invitation = Vec::new();
    let mut failed_with_invitation = 0;
    for (email, ids) in &accepted {
        for id in ids {
            match rows.get(id) {
                None => lost_no_row.push(format!("{email} {id}")),
                Some(row) => match row.status {
                    RequestStatus::Invited => {
                        invited += 1;
                        if !invitations.contains_key(email) {
                            invited_without_invitation.push(email.clone());
                        }
                    }
                    RequestStatus::Failed => {
                        failed.push(row.reason.clone().unwrap_or_default());
                        if invitations.contains_key(email) {
                            failed_with_invitation += 1;
                        }
                    }
                    other => stuck.push(format!("{email} {id} {other}")),
                },
            }
        }
    }
    let unacknowledged_open = rows
        .values()
        .filter(|r| {
            !accepted.contains_key(r.email.as_str())
                && !matches!(r.status, RequestStatus::Invited | RequestStatus::Failed)
        })
        .count();
    // Every accepted invitation is an e-mail to the partner: more than one is a duplicate,
    // whatever the cause. The causes are listed to make a failure readable.
    let mut duplicated = Vec::new();
    for (email, times) in &invitations {
        if times.len() > 1 {
            let (first, last) = (times[0], times[times.len() - 1]);
            let killed_between = kill_times.iter().any(|k| *k >= first && *k <= last);
            let cause = if lost_answers.contains(email) {
                "after a lost answer"
            } else if killed_between {
                "after a handler kill"
            } else {
                "no fault in between"
            };
            duplicated.push(format!("{email} ×{} ({cause})", times.len()));
        }
    }
    let mut failure_reasons: BTreeMap<String, usize> = BTreeMap::new();
    for reason in &failed {
        let key: String = reason.chars().take(60).collect();
        *failure_reasons.entry(key).or_default() += 1;
    }
    let counts = graph.counts();
    let signups_202 = accepted.len();
    let report = format!(
        "### {name} run ({signups} sign-ups planned, seed {seed:#x})\n\n\
         | figure | value |\n| --- | --- |\n\
         | sign-ups answered 202 (distinct addresses) | {signups_202} |\n\
         | sign-ups that never got a 202 within 90 s (gave up) | {gave_up} |\n\
         | answers seen by partners: 202 / 503 / connection errors / other | {a202} / {a503} / {conn} / {other:?} |\n\
         | sign-ups sent while storage was down: answers | {probes:?} |\n\
         | 202 answered while Azurite was stopped | {while_down} |\n\
         | repeat sign-ups (same address) / answered with a new id | {repeats} / {repeat_new} |\n\
         | extra (duplicate, reordered) queue messages | {extra} |\n\
         | handler kills (SIGKILL) / runner restarts | {kills} / {restarts} |\n\
         | storage outages (Azurite stopped and started) | {outages} |\n\
         | Graph calls: invitations / group adds / token | {inv_calls} / {member_calls} / {token} |\n\
         | Graph faults: 5xx / 429 / timeouts / lost answers / slow | {f5xx} / {f429} / {ftimeout} / {flost} / {fslow} |\n\
         | **lost** (202, no row) | **{lost}** |\n\
         | **stuck** (202, row not Invited/Failed after {budget:?}) | **{stuck_n}** |\n\
         | unacknowledged rows (no 202 seen) not finished | {unack} |\n\
         | Invited / Failed | {invited} / {failed_n} |\n\
         | Failed with an invitation sent | {failed_inv} |\n\
         | Invited without any invitation at Graph | {no_inv} |\n\
         | **duplicated** (>1 invitation e-mail per address) | **{dups}** |\n\
         | lookups after an unanswered invitation: calls / guest found | {lookups} / {found} |\n\
         | burst length / time to drain after it | {burst:.1?} / {drain} |\n\
         | whole run | {total:.1?} |\n\n\
         Failure reasons: {failure_reasons:?}\n",
        name = plan.name,
        signups = plan.signups,
        seed = plan.seed,
        gave_up = traffic.gave_up.load(Ordering::SeqCst),
        a202 = traffic.answers_202.load(Ordering::SeqCst),
        a503 = traffic.answers_503.load(Ordering::SeqCst),
        conn = traffic.connection_errors.load(Ordering::SeqCst),
        other = traffic.other.lock().unwrap().clone(),
        probes = traffic.down_probes.lock().unwrap().clone(),
        while_down = traffic.accepted_while_down.load(Ordering::SeqCst),
        repeats = traffic.repeats.load(Ordering::SeqCst),
        repeat_new = traffic.repeat_new_id.load(Ordering::SeqCst),
        extra = traffic.extra_messages.load(Ordering::SeqCst),
        kills = chaos.handler_kills.load(Ordering::SeqCst),
        restarts = chaos.runner_restarts.load(Ordering::SeqCst),
        outages = chaos.storage_outages.load(Ordering::SeqCst),
        inv_calls = counts.invitation_calls,
        member_calls = counts.member_calls,
        token = counts.token,
        f5xx = counts.answered_5xx,
        f429 = counts.answered_429,
        ftimeout = counts.timeouts,
        flost = counts.lost_answers,
        fslow = counts.slow,
        lost = lost_no_row.len(),
        budget = plan.drain_budget,
        stuck_n = stuck.len(),
        unack = unacknowledged_open,
        failed_n = failed.len(),
        failed_inv = failed_with_invitation,
        no_inv = invited_without_invitation.len(),
        dups = duplicated.len(),
        lookups = counts.lookup_calls,
        found = counts.lookups_found,
        drain = drained_in.map_or_else(|| "did not drain".into(), |d| format!("{d:.1?}")),
        total = started.elapsed(),
    );
    println!("{report}");
    std::fs::write(work.join("report.md"), &report).unwrap();
    drop(runners);

    assert!(lost_no_row.is_empty(), "lost: {lost_no_row:?}\n{report}");
    assert!(stuck.is_empty(), "stuck: {stuck:?}\n{report}");
    assert!(
        duplicated.is_empty(),
        "duplicated: {duplicated:?}\n{report}"
    );
    assert!(
        invited_without_invitation.is_empty(),
        "Invited without an invitation: {invited_without_invitation:?}"
    );
    assert_eq!(traffic.accepted_while_down.load(Ordering::SeqCst), 0);
    assert!(
        !traffic.down_probes.lock().unwrap().contains_key("202"),
        "a sign-up got 202 while storage was down\n{report}"
    );
    assert_eq!(unacknowledged_open, 0, "{report}");
    assert!(drained_in.is_some(), "{report}");
}

/// One sign-up, retried until 202 (bounded). Returns the request id.
async fn sign_up(
    client: &reqwest::Client,
    urls: &[String],
    email: &str,
    salt: usize,
    traffic: &Traffic,
    chaos: &Chaos,
) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    for attempt in 0.. {
        if Instant::now() > deadline {
            traffic.gave_up.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        let url = &urls[(salt + attempt) % urls.len()];
        let down_before = chaos.storage_down.load(Ordering::SeqCst);
        match client
            .post(format!("{url}/api/signup"))
            .json(&json!({"email": email, "displayName": "Fault Tolerant"}))
            .send()
            .await
        {
            Ok(response) if response.status() == 202 => {
                traffic.answers_202.fetch_add(1, Ordering::SeqCst);
                if down_before && chaos.storage_down.load(Ordering::SeqCst) {
                    traffic.accepted_while_down.fetch_add(1, Ordering::SeqCst);
                }
                let body: serde_json::Value = response.json().await.ok()?;
                let id = body["requestId"].as_str()?.to_owned();
                let mut accepted = traffic.accepted.lock().unwrap();
                let ids = accepted.entry(email.to_owned()).or_default();
                if !ids.contains(&id) {
                    ids.push(id.clone());
                }
                return Some(id);
            }
            Ok(response) if response.status() == 503 => {
                traffic.answers_503.fetch_add(1, Ordering::SeqCst);
            }
            Ok(response) => {
                *traffic
                    .other
                    .lock()
                    .unwrap()
                    .entry(response.status().as_u16())
                    .or_default() += 1;
            }
            Err(_) => {
                traffic.connection_errors.fetch_add(1, Ordering::SeqCst);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    None
}

/// Every request row, by id (retried while storage is briefly unavailable).
async fn all_rows(storage: &AzureStorage) -> HashMap<String, b2b_signup::domain::SignupRequest> {
    for _ in 0..10 {
        if let Ok(rows) = storage
            .query(
                &RequestQuery {
                    domain: Some(EmailDomain::parse("contoso.com").unwrap()),
                    ..Default::default()
                },
                1_000_000,
            )
            .await
        {
            return rows
                .into_iter()
                .map(|r| (r.value.id.to_string(), r.value))
                .collect();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("cannot read the rows");
}
