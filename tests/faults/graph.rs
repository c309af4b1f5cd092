//! A misbehaving Microsoft Graph (and its token endpoint) that records every invitation it
//! accepted, so the suite can count duplicates. Faults are drawn per call:
//!
//! - `5xx`: 500/502/503 (no `Retry-After`), the worker's transient path;
//! - 429 bursts: every `burst_every`, for `burst_for`, every call gets 429 with a
//!   `Retry-After` of 0.5 or 1 s (waited out inside the invocation) or 8 s (longer than
//!   `GRAPH_MAX_INLINE_RETRY_SECONDS`: the invocation fails, the host retries);
//! - timeouts: the call hangs past `GRAPH_TIMEOUT_SECONDS` and nothing is done;
//! - lost answers: the invitation IS accepted and recorded, then the answer hangs past the
//!   timeout (what a dropped connection after Graph's commit looks like to the caller);
//! - slow answers: a correct answer after `slow` (below the timeout).
//!
//! `GET /users?$filter=…` (the worker's lookup after an unanswered invitation) finds a guest
//! once an invitation for the address was accepted, and suffers the same faults except lost
//! answers (a lookup changes nothing).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use warp::{Filter, http::Response};

#[derive(Debug, Clone, Copy)]
pub struct GraphFaults {
    pub p_5xx: f64,
    pub p_timeout: f64,
    pub p_lost_answer: f64,
    pub p_slow: f64,
    pub slow: Duration,
    /// Longer than the handler's `GRAPH_TIMEOUT_SECONDS`.
    pub hang: Duration,
    pub burst_every: Duration,
    pub burst_for: Duration,
}

#[derive(Debug, Default, Clone)]
pub struct GraphCounts {
    pub token: u64,
    pub invitation_calls: u64,
    pub lookup_calls: u64,
    /// Lookups answered with a guest (an earlier invitation had gone through).
    pub lookups_found: u64,
    pub member_calls: u64,
    pub answered_5xx: u64,
    pub answered_429: u64,
    pub timeouts: u64,
    pub lost_answers: u64,
    pub slow: u64,
}

#[derive(Default)]
struct State {
    /// Accepted invitations per address, with when they were accepted.
    invitations: BTreeMap<String, Vec<Instant>>,
    /// Addresses whose accepted invitation's answer was lost on purpose.
    lost_answer: BTreeSet<String>,
    counts: GraphCounts,
    rng: u64,
}

impl State {
    fn roll(&mut self) -> f64 {
        // xorshift64*: deterministic per seed, no extra crate.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone)]
pub struct MockGraph {
    pub url: String,
    state: Arc<Mutex<State>>,
}

enum Plan {
    Ok,
    Status(u16),
    TooMany(&'static str),
    Hang,
    LoseAnswer,
    Slow,
}

impl MockGraph {
    pub async fn start(faults: GraphFaults, seed: u64) -> Self {
        let state = Arc::new(Mutex::new(State {
            rng: seed | 1,
            ..Default::default()
        }));
        let started = Instant::now();
        let st = state.clone();
        let posts = warp::post()
            .and(warp::path::full())
            .and(warp::body::bytes())
            .then(move |path: warp::path::FullPath, body: Bytes| {
                let state = st.clone();
                async move { answer(&state, faults, started, path.as_str(), &body).await }
            });
        let st = state.clone();
        let lookups = warp::get()
            .and(warp::path!("v1.0" / "users"))
            .and(warp::query::<BTreeMap<String, String>>())
            .then(move |query: BTreeMap<String, String>| {
                let state = st.clone();
                async move { find_user(&state, faults, started, &query).await }
            });
        let routes = lookups.or(posts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(warp::serve(routes).incoming(listener).run());
        Self { url, state }
    }

    pub fn invitations(&self) -> BTreeMap<String, Vec<Instant>> {
        self.state.lock().unwrap().invitations.clone()
    }

    pub fn lost_answers(&self) -> BTreeSet<String> {
        self.state.lock().unwrap().lost_answer.clone()
    }

    pub fn counts(&self) -> GraphCounts {
        self.state.lock().unwrap().counts.clone()
    }
}

fn json(status: u16, body: serde_json::Value) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("request-id", "faults-request")
        .body(body.to_string().into_bytes())
        .unwrap()
}

fn guest_id(email: &str) -> String {
    // The same address is always the same guest, as in Graph.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in email.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    // Object ids are GUIDs: the hash fills the last 16 hex digits.
    format!(
        "00000000-0000-4000-{:04x}-{:012x}",
        h >> 48,
        h & 0xffff_ffff_ffff
    )
}

async fn answer(
    state: &Mutex<State>,
    faults: GraphFaults,
    started: Instant,
    path: &str,
    body: &[u8],
) -> Response<Vec<u8>> {
    if path.ends_with("/oauth2/v2.0/token") {
        state.lock().unwrap().counts.token += 1;
        return json(
            200,
            serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "faults-token"}),
        );
    }
    let invitation = path == "/v1.0/invitations";
    let member = path.starts_with("/v1.0/groups/") && path.ends_with("/members/$ref");
    if !invitation && !member {
        return json(404, serde_json::json!({"error": {"code": "NotFound"}}));
    }
    let email = if invitation {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["invitedUserEmailAddress"].as_str().map(str::to_lowercase))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let plan = {
        let mut s = state.lock().unwrap();
        if invitation {
            s.counts.invitation_calls += 1;
        } else {
            s.counts.member_calls += 1;
        }
        roll_plan(&mut s, faults, started, invitation)
    };
    if let Some(response) = fault_response(&plan, faults).await {
        return response;
    }
    if member {
        return Response::builder().status(204).body(Vec::new()).unwrap();
    }
    {
        let mut s = state.lock().unwrap();
        s.invitations
            .entry(email.clone())
            .or_default()
            .push(Instant::now());
        if matches!(plan, Plan::LoseAnswer) {
            s.lost_answer.insert(email.clone());
        }
    }
    if matches!(plan, Plan::LoseAnswer) {
        tokio::time::sleep(faults.hang).await;
    }
    json(
        201,
        serde_json::json!({
            "id": "invitation",
            "inviteRedeemUrl": "https://redeem.example/secret",
            "invitedUserEmailAddress": email,
            "invitedUser": {"id": guest_id(&email)}
        }),
    )
}

/// `GET /users?$filter=… mail eq '{address}' …`: the guest, once invited.
async fn find_user(
    state: &Mutex<State>,
    faults: GraphFaults,
    started: Instant,
    query: &BTreeMap<String, String>,
) -> Response<Vec<u8>> {
    let email = query
        .get("$filter")
        .and_then(|f| f.split("mail eq '").nth(1))
        .and_then(|rest| rest.split('\'').next())
        .map(str::to_lowercase)
        .unwrap_or_default();
    let plan = {
        let mut s = state.lock().unwrap();
        s.counts.lookup_calls += 1;
        roll_plan(&mut s, faults, started, false)
    };
    if let Some(response) = fault_response(&plan, faults).await {
        return response;
    }
    let found = state.lock().unwrap().invitations.contains_key(&email);
    if found {
        state.lock().unwrap().counts.lookups_found += 1;
        json(
            200,
            serde_json::json!({"value": [{"id": guest_id(&email)}]}),
        )
    } else {
        json(200, serde_json::json!({"value": []}))
    }
}

/// Draws this call's fault (and counts it); `LoseAnswer` only for invitations.
fn roll_plan(s: &mut State, faults: GraphFaults, started: Instant, invitation: bool) -> Plan {
    let in_burst = (started.elapsed().as_millis() % faults.burst_every.as_millis())
        < faults.burst_for.as_millis();
    if in_burst {
        s.counts.answered_429 += 1;
        let r = s.roll();
        Plan::TooMany(if r < 0.4 {
            "0.5"
        } else if r < 0.8 {
            "1"
        } else {
            "8"
        })
    } else {
        let r = s.roll();
        let mut edge = faults.p_5xx;
        if r < edge {
            s.counts.answered_5xx += 1;
            let r = s.roll();
            Plan::Status(if r < 0.4 {
                500
            } else if r < 0.7 {
                502
            } else {
                503
            })
        } else if r < {
            edge += faults.p_timeout;
            edge
        } {
            s.counts.timeouts += 1;
            Plan::Hang
        } else if invitation
            && r < {
                edge += faults.p_lost_answer;
                edge
            }
        {
            s.counts.lost_answers += 1;
            Plan::LoseAnswer
        } else if r < {
            edge += faults.p_slow;
            edge
        } {
            s.counts.slow += 1;
            Plan::Slow
        } else {
            Plan::Ok
        }
    }
}

/// The answer a fault gives instead of the real one (`None`: answer for real, after the
/// slow wait if any).
async fn fault_response(plan: &Plan, faults: GraphFaults) -> Option<Response<Vec<u8>>> {
    match plan {
        Plan::Status(status) => Some(json(
            *status,
            serde_json::json!({"error": {"code": "ServiceUnavailable", "message": "injected"}}),
        )),
        Plan::TooMany(retry_after) => {
            let mut response = json(
                429,
                serde_json::json!({"error": {"code": "TooManyRequests", "message": "injected"}}),
            );
            response
                .headers_mut()
                .insert("retry-after", retry_after.parse().unwrap());
            Some(response)
        }
        Plan::Hang => {
            tokio::time::sleep(faults.hang).await;
            Some(json(
                504,
                serde_json::json!({"error": {"code": "GatewayTimeout"}}),
            ))
        }
        Plan::Slow => {
            tokio::time::sleep(faults.slow).await;
            None
        }
        Plan::Ok | Plan::LoseAnswer => None,
    }
}
