//! InviteQueue and InvitePoison: the row-driven state machine against real Azurite.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use async_trait::async_trait;
use b2b_signup::{
    clock::Clock,
    domain::{EmailAddress, EmailDomain, GroupId, RequestId, RequestStatus, UserId},
    graph::{GraphError, GuestState, Invitation, Invited},
    policy::Policy,
    storage::{InviteMessage, RequestStore},
    worker::{DEFAULT_LEASE, Delivery, Directory, Mode, Step, Worker},
};

use crate::helpers::{GROUP_A, GROUP_B, TestApp, changes, default_policy, spawn_app};

/// The invocation payload the Functions host posts for a queue message: every string and
/// number in Data and Metadata JSON-encoded a second time, message fields merged into Metadata.
pub fn host_payload(text: &str, dequeue_count: u32) -> String {
    let twice = |s: &str| serde_json::to_string(&serde_json::to_string(s).unwrap()).unwrap();
    let mut metadata = serde_json::Map::new();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(text) {
        for (key, value) in fields {
            metadata.insert(key, serde_json::Value::String(value.to_string()));
        }
    }
    metadata.insert(
        "DequeueCount".into(),
        serde_json::Value::String(dequeue_count.to_string()),
    );
    metadata.insert(
        "Id".into(),
        serde_json::Value::String("\"6f1b2c3d-0000-4000-8000-000000000001\"".into()),
    );
    format!(
        r#"{{"Data":{{"msg":{}}},"Metadata":{}}}"#,
        twice(text),
        serde_json::Value::Object(metadata)
    )
}

impl TestApp {
    pub async fn invoke(
        &self,
        function: &str,
        text: &str,
        dequeue_count: u32,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/{function}", self.address))
            .header("content-type", "application/json")
            .body(host_payload(text, dequeue_count))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response
                .json()
                .await
                .expect("invocation answers are always JSON"),
        )
    }

    async fn signed_up_message(&self, email: &str) -> (String, String) {
        let (id, _) = self.sign_up(email).await;
        let message = self
            .queued_messages()
            .await
            .into_iter()
            .find(|m| m.request_id == id)
            .unwrap();
        (id, serde_json::to_string(&message).unwrap())
    }
}

#[tokio::test]
async fn a_dry_run_delivery_records_what_would_be_sent_and_redelivery_changes_nothing() {
    let app = spawn_app().await;
    let (id, message) = app.signed_up_message("ada@contoso.com").await;

    let (status, body) = app.invoke("InviteQueue", &message, 1).await;

    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"Outputs": {}, "Logs": [], "ReturnValue": null})
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert!(row.dry_run);
    let reason = row.reason.clone().unwrap();
    assert!(
        reason.starts_with("dry run: nothing sent to Graph") && reason.contains(GROUP_A),
        "{reason}"
    );
    assert_eq!(row.attempts, 1);

    let (status, _) = app.invoke("InviteQueue", &message, 2).await;
    assert_eq!(status, 200);
    let again = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(
        (again.status, again.attempts, again.updated_at),
        (row.status, row.attempts, row.updated_at)
    );
}

#[tokio::test]
async fn malformed_messages_are_kept_as_dead_letters_not_retried_forever() {
    let app = spawn_app().await;
    let cases = [
        ("not JSON", "hello"),
        (
            "unknown version",
            r#"{"v":2,"requestId":"01JDQ3Z6W1T2V3X4Y5Z6A7B8C9","domain":"contoso.com"}"#,
        ),
        (
            "bad id",
            r#"{"v":1,"requestId":"nope","domain":"contoso.com"}"#,
        ),
        (
            "no such row",
            r#"{"v":1,"requestId":"01JDQ3Z6W1T2V3X4Y5Z6A7B8C9","domain":"contoso.com"}"#,
        ),
    ];
    for (description, text) in cases {
        let (status, _) = app.invoke("InviteQueue", text, 1).await;
        assert_eq!(
            status, 200,
            "{description}: completed, so the host does not retry it"
        );
    }
    assert_eq!(
        app.dead_letters().await,
        4,
        "every one kept for an administrator"
    );
}

#[tokio::test]
async fn a_row_that_cannot_be_read_is_dead_lettered_once_and_the_invocation_succeeds() {
    let app = spawn_app().await;
    let (id, message) = app.signed_up_message("ada@contoso.com").await;
    app.write_status_text("contoso.com", &id, "Frozen").await;

    let (status, body) = app.invoke("InviteQueue", &message, 1).await;

    assert_eq!(
        status, 200,
        "completed, so the host neither retries nor poisons it"
    );
    assert_eq!(body["ReturnValue"], serde_json::Value::Null);
    let errors = app.dead_letter_errors().await;
    assert_eq!(
        errors.len(),
        1,
        "kept once for an administrator: {errors:?}"
    );
    assert!(
        errors[0].starts_with("the request's row cannot be read:") && errors[0].contains("Status"),
        "{errors:?}"
    );
    // A copy of the message that arrives anyway (sent twice, or already in the poison
    // queue) is kept too and also completes: nothing loops.
    let (status, _) = app.invoke("InvitePoison", &message, 5).await;
    assert_eq!(status, 200);
    assert_eq!(app.dead_letters().await, 2);
    // Reconcile does not send it again either, however old it gets.
    app.time.advance(time::Duration::hours(1));
    app.reconcile().await;
    assert_eq!(
        app.queued_messages().await.len(),
        1,
        "only the sign-up's message"
    );
}

#[tokio::test]
async fn a_payload_that_is_not_the_host_s_fails_the_invocation() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(format!("{}/InviteQueue", app.address))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ReturnValue"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_poisoned_message_fails_the_unfinished_request_with_the_last_reason() {
    let app = spawn_app().await;
    let (id, message) = app.signed_up_message("ada@contoso.com").await;

    let (status, _) = app.invoke("InvitePoison", &message, 5).await;

    assert_eq!(status, 200);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Failed);
    assert!(
        row.reason
            .unwrap()
            .starts_with("poisoned after 0 attempts; last:")
    );

    // A poison message for a finished request changes nothing.
    let (id, message) = app.signed_up_message("grace@contoso.com").await;
    app.invoke("InviteQueue", &message, 1).await;
    app.invoke("InvitePoison", &message, 5).await;
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Invited
    );
}

/// The guest's object id the scripted Graph invites.
const GUEST: &str = "9a0b1c2d-0000-4000-8000-00000000000a";

fn guest() -> UserId {
    UserId::parse(GUEST).unwrap()
}

/// A scripted Graph: answers from a list, counts calls. Without a scripted answer a lookup
/// finds the guest once any invitation was called (as Graph would after a lost answer).
#[derive(Default)]
struct ScriptedDirectory {
    invites: AtomicUsize,
    lookups: AtomicUsize,
    adds: Mutex<Vec<String>>,
    invite_answers: Mutex<Vec<Result<Invited, GraphError>>>,
    add_answers: Mutex<Vec<Result<(), GraphError>>>,
    lookup_answers: Mutex<Vec<Lookup>>,
    slow: Option<std::time::Duration>,
}

#[async_trait]
impl Directory for ScriptedDirectory {
    async fn invite(&self, invitation: &Invitation) -> Result<Invited, GraphError> {
        assert_eq!(invitation.redirect_url, "https://myapps.microsoft.com");
        self.invites.fetch_add(1, Ordering::SeqCst);
        if let Some(delay) = self.slow {
            tokio::time::sleep(delay).await;
        }
        let mut answers = self.invite_answers.lock().unwrap();
        if answers.is_empty() {
            Ok(Invited {
                user_id: guest(),
                request_id: Some("req-1".into()),
            })
        } else {
            answers.remove(0)
        }
    }

    async fn add_member(&self, group_id: &GroupId, user_id: &UserId) -> Result<(), GraphError> {
        assert_eq!(*user_id, guest(), "the guest, not a group, is added");
        self.adds.lock().unwrap().push(group_id.to_string());
        let mut answers = self.add_answers.lock().unwrap();
        if answers.is_empty() {
            Ok(())
        } else {
            answers.remove(0)
        }
    }

    async fn find_guest(&self, email: &EmailAddress) -> Result<Option<UserId>, GraphError> {
        assert_eq!(email.as_str(), "ada@contoso.com");
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.lookup_answers.lock().unwrap();
        if answers.is_empty() {
            let invited = self.invites.load(Ordering::SeqCst) > 0;
            Ok(invited.then(guest))
        } else {
            answers.remove(0)
        }
    }

    async fn remove_member(&self, _: &GroupId, _: &UserId) -> Result<(), GraphError> {
        panic!("the worker never removes a member: only Lifecycle does")
    }

    async fn guest_state(&self, _: &UserId) -> Result<GuestState, GraphError> {
        panic!("the worker never reads a guest's state: only a repeat sign-up does")
    }
}

fn worker(app: &TestApp, directory: Arc<ScriptedDirectory>) -> Worker {
    let time = app.time.clone();
    Worker {
        policy: Arc::new(Policy::from_json(&default_policy()).unwrap()),
        store: Arc::new(app.store.clone()),
        dead_letters: Arc::new(app.store.clone()),
        mode: Mode::Live(directory),
        clock: Clock::from_fn(move || time.now()),
        lease: DEFAULT_LEASE,
        outbox: None,
    }
}

fn delivery(message: &str, count: u32) -> Delivery<'_> {
    Delivery {
        text: message,
        dequeue_count: count,
        message_id: None,
    }
}

async fn sales_sign_up(app: &TestApp) -> (String, String) {
    let response = app
        .post_json(r#"{"email":"ada@contoso.com","displayName":"Ada","access":"sales-extranet"}"#)
        .await;
    let id = response.json::<serde_json::Value>().await.unwrap()["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = serde_json::to_string(&InviteMessage {
        v: 1,
        request_id: id.clone(),
        domain: "contoso.com".into(),
    })
    .unwrap();
    (id, message)
}

#[tokio::test]
async fn a_live_delivery_invites_adds_every_group_and_records_the_guest() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = Arc::new(ScriptedDirectory::default());
    let worker = worker(&app, directory.clone());

    assert_eq!(
        worker.deliver(&delivery(&message, 1)).await,
        Step::Done("request Invited".into())
    );

    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(
        row.invited_user_id.as_ref().map(UserId::as_str),
        Some(GUEST)
    );
    assert_eq!(row.graph_request_id.as_deref(), Some("req-1"));
    assert_eq!(*directory.adds.lock().unwrap(), [GROUP_A, GROUP_B]);
    assert_eq!(
        changes(&row),
        [
            "partner created (new)→Accepted",
            "worker started Accepted→Inviting",
            "worker invitation_sent Inviting→Inviting",
            "worker added_to_groups Inviting→Inviting",
            "worker invited Inviting→Invited",
        ]
    );
    assert_eq!(
        row.history.entries()[3].reason,
        Some(format!("{GROUP_A}, {GROUP_B}"))
    );

    // Redelivery of a finished request calls nothing.
    assert!(matches!(
        worker.deliver(&delivery(&message, 2)).await,
        Step::Done(_)
    ));
    assert_eq!(directory.invites.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_transient_failure_retries_and_resumes_without_inviting_twice() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = Arc::new(ScriptedDirectory::default());
    directory.add_answers.lock().unwrap().push(Ok(()));
    directory
        .add_answers
        .lock()
        .unwrap()
        .push(Err(transient(Some(503))));
    let worker = worker(&app, directory.clone());

    let step = worker.deliver(&delivery(&message, 1)).await;
    assert!(
        matches!(&step, Step::Retry(r) if r.contains("Graph is unavailable (status Some(503))")),
        "{step:?}"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(
        row.status,
        RequestStatus::Queued,
        "handed back so the retry need not wait for the lease"
    );
    assert_eq!(
        row.invited_user_id.as_ref().map(UserId::as_str),
        Some(GUEST),
        "progress kept"
    );
    assert_eq!(
        changes(&row)[1..],
        [
            "worker started Accepted→Inviting",
            "worker invitation_sent Inviting→Inviting",
            "worker handed_back Inviting→Queued",
        ],
        "the invitation is recorded with the guest's id"
    );
    assert_eq!(row.history.entries()[3].reason, row.reason);

    assert!(matches!(
        worker.deliver(&delivery(&message, 2)).await,
        Step::Done(_)
    ));
    assert_eq!(
        directory.invites.load(Ordering::SeqCst),
        1,
        "the guest was not invited twice"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(
        changes(&row)[4..],
        [
            "worker started Queued→Inviting",
            "worker added_to_groups Inviting→Inviting",
            "worker invited Inviting→Invited",
        ],
        "no second invitation_sent"
    );
}

#[tokio::test]
async fn a_permanent_failure_ends_the_request_with_graph_s_code() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = Arc::new(ScriptedDirectory::default());
    directory
        .invite_answers
        .lock()
        .unwrap()
        .push(Err(GraphError::Permanent {
            status: 400,
            code: "BadRequest".into(),
            message: "Invalid invitation.".into(),
            request_id: Some("graph-req-9".into()),
        }));
    let worker = worker(&app, directory.clone());

    assert!(matches!(
        worker.deliver(&delivery(&message, 1)).await,
        Step::Done(_)
    ));

    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Failed);
    assert_eq!(
        row.reason.as_deref(),
        Some("invitation: Graph refused (BadRequest)")
    );
    assert_eq!(row.graph_request_id.as_deref(), Some("graph-req-9"));
    assert!(directory.adds.lock().unwrap().is_empty());
    assert_eq!(
        changes(&row)[1..],
        [
            "worker started Accepted→Inviting",
            "worker failed Inviting→Failed",
        ]
    );
    assert_eq!(row.history.entries()[2].reason, row.reason);
}

#[tokio::test]
async fn two_deliveries_at_once_send_one_invitation() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = Arc::new(ScriptedDirectory {
        slow: Some(std::time::Duration::from_millis(300)),
        ..Default::default()
    });
    let worker = worker(&app, directory.clone());

    let (first, second) = (delivery(&message, 1), delivery(&message, 1));
    let (a, b) = tokio::join!(worker.deliver(&first), worker.deliver(&second));

    let steps = [a, b];
    assert_eq!(
        steps.iter().filter(|s| matches!(s, Step::Done(_))).count(),
        1,
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Retry(r) if r.contains("lease"))),
        "{steps:?}"
    );
    assert_eq!(directory.invites.load(Ordering::SeqCst), 1);
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Invited
    );
}

#[tokio::test]
async fn a_stale_lease_is_taken_over() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    // A delivery took the lease and died mid-invitation.
    app.set_status("contoso.com", &id, RequestStatus::Inviting)
        .await;
    let directory = Arc::new(ScriptedDirectory::default());
    let worker = worker(&app, directory.clone());

    assert!(
        matches!(worker.deliver(&delivery(&message, 2)).await, Step::Retry(r) if r.contains("lease"))
    );
    assert_eq!(
        directory.invites.load(Ordering::SeqCst),
        0,
        "a fresh lease is respected"
    );

    app.time.advance(time::Duration::minutes(3));
    assert!(matches!(
        worker.deliver(&delivery(&message, 3)).await,
        Step::Done(_)
    ));
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Invited
    );
}

#[tokio::test]
async fn approval_pending_requests_are_not_invited_by_a_stray_message() {
    let app = spawn_app().await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    let message = serde_json::to_string(&InviteMessage {
        v: 1,
        request_id: id.clone(),
        domain: "fabrikam.com".into(),
    })
    .unwrap();
    let directory = Arc::new(ScriptedDirectory::default());
    assert!(matches!(
        worker(&app, directory.clone())
            .deliver(&delivery(&message, 1))
            .await,
        Step::Done(_)
    ));
    assert_eq!(directory.invites.load(Ordering::SeqCst), 0);
    assert_eq!(
        app.row("fabrikam.com", &id).await.unwrap().status,
        RequestStatus::PendingApproval
    );
}

#[tokio::test]
async fn a_poison_message_leaves_a_request_whose_lease_is_held_to_its_delivery() {
    // Found by the fault suite: deliveries that failed while another one held the lease
    // (or while the handler was down) poison the message; InvitePoison then marked the
    // row Failed under the running delivery, which sent the invitation anyway.
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = Arc::new(ScriptedDirectory {
        slow: Some(std::time::Duration::from_millis(400)),
        ..Default::default()
    });
    let worker = worker(&app, directory.clone());

    let holder = delivery(&message, 1);
    let poison = delivery(&message, 5);
    let (step, poisoned) = tokio::join!(worker.deliver(&holder), async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        worker.poisoned(&poison).await
    });

    assert!(
        matches!(&poisoned, Step::Done(r) if r.contains("lease")),
        "{poisoned:?}"
    );
    assert_eq!(step, Step::Done("request Invited".into()));
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Invited
    );
    assert_eq!(directory.invites.load(Ordering::SeqCst), 1);

    // A stale lease whose attempts ran out is another matter: the request fails as before.
    let (id, message) = {
        let response = app
            .post_json(r#"{"email":"bob@contoso.com","displayName":"Bob"}"#)
            .await;
        let id = response.json::<serde_json::Value>().await.unwrap()["requestId"]
            .as_str()
            .unwrap()
            .to_owned();
        let message = serde_json::to_string(&InviteMessage {
            v: 1,
            request_id: id.clone(),
            domain: "contoso.com".into(),
        })
        .unwrap();
        (id, message)
    };
    {
        let (domain, request) = (
            EmailDomain::parse("contoso.com").unwrap(),
            RequestId::parse(&id).unwrap(),
        );
        let mut row = app.store.get(&domain, &request).await.unwrap().unwrap();
        row.value.status = RequestStatus::Inviting;
        row.value.attempts = 5;
        app.store.replace(&row.value, &row.etag).await.unwrap();
    }
    app.time.advance(time::Duration::minutes(3));
    assert!(matches!(
        worker.poisoned(&delivery(&message, 5)).await,
        Step::Done(r) if r.contains("poisoned")
    ));
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Failed
    );
}

#[tokio::test]
async fn a_poison_message_for_a_stale_lease_leaves_it_to_reconcile_until_attempts_run_out() {
    // Found by the fault suite: a handler killed mid-invitation leaves a fresh lease; the
    // redeliveries all fail on it ("another delivery holds the lease") and poison the
    // message, so the request ended "Failed: poisoned after 1 attempts" although Graph was
    // tried once (and had accepted the invitation). Reconcile re-sends stale leases: that
    // is the recovery, as long as deliveries keep taking the lease.
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let (domain, request) = (
        EmailDomain::parse("contoso.com").unwrap(),
        RequestId::parse(&id).unwrap(),
    );
    let set_attempts = |attempts: u32| {
        let (store, domain, request) = (app.store.clone(), domain.clone(), request);
        async move {
            let mut row = store.get(&domain, &request).await.unwrap().unwrap();
            row.value.status = RequestStatus::Inviting;
            row.value.attempts = attempts;
            store.replace(&row.value, &row.etag).await.unwrap();
        }
    };
    let directory = Arc::new(ScriptedDirectory::default());
    let worker = worker(&app, directory.clone());

    set_attempts(1).await;
    app.time.advance(time::Duration::minutes(3));
    let step = worker.poisoned(&delivery(&message, 5)).await;
    assert!(
        matches!(&step, Step::Done(r) if r.contains("Reconcile")),
        "{step:?}"
    );
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Inviting,
        "left for Reconcile to re-send"
    );

    // A request whose deliveries took the lease again and again (a handler that keeps
    // dying on it) fails as before.
    set_attempts(5).await;
    app.time.advance(time::Duration::minutes(3));
    let step = worker.poisoned(&delivery(&message, 5)).await;
    assert!(
        matches!(&step, Step::Done(r) if r.contains("poisoned")),
        "{step:?}"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Failed);
    assert!(row.reason.unwrap().starts_with("poisoned after 5 attempts"));
    assert_eq!(directory.invites.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------- one e-mail per request

type Lookup = Result<Option<UserId>, GraphError>;

/// A scripted Graph whose first invitations and lookups answer as given.
fn scripted(
    invites: Vec<Result<Invited, GraphError>>,
    lookups: Vec<Lookup>,
) -> Arc<ScriptedDirectory> {
    Arc::new(ScriptedDirectory {
        invite_answers: Mutex::new(invites),
        lookup_answers: Mutex::new(lookups),
        ..Default::default()
    })
}

/// A 5xx (`Some(status)`) or no answer at all (`None`): the call may have gone through.
fn transient(status: Option<u16>) -> GraphError {
    GraphError::Transient {
        status,
        request_id: None,
    }
}

/// Delivers once more after the settle time, as the host's retry would.
async fn redeliver_after_settle(app: &TestApp, worker: &Worker, message: &str) -> Step {
    app.time
        .advance(worker.settle() + time::Duration::seconds(1));
    worker.deliver(&delivery(message, 2)).await
}

#[tokio::test]
async fn a_lost_invitation_answer_is_found_in_the_directory_not_sent_again() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    // Graph invited, and the answer never came back.
    let directory = scripted(vec![Err(transient(None))], vec![]);
    let worker = worker(&app, directory.clone());

    assert!(matches!(
        worker.deliver(&delivery(&message, 1)).await,
        Step::Retry(_)
    ));
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Queued);
    assert!(
        row.invitation_attempted_at.is_some(),
        "the doubt is recorded"
    );

    // A retry at once first waits out the settle time (so directory replication has
    // caught up) instead of looking too early or spending a delivery.
    let worker = Worker {
        lease: time::Duration::seconds(4),
        ..worker
    };
    let started = std::time::Instant::now();
    let step = worker.deliver(&delivery(&message, 2)).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(step, Step::Done("request Invited".into()));
    assert_eq!(
        directory.invites.load(Ordering::SeqCst),
        1,
        "no second invitation"
    );
    assert_eq!(directory.lookups.load(Ordering::SeqCst), 1);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(
        row.invited_user_id.as_ref().map(UserId::as_str),
        Some(GUEST)
    );
    assert_eq!(row.invitation_attempted_at, None);
    assert!(row.reason.unwrap().contains("not invited again"));
    assert_eq!(*directory.adds.lock().unwrap(), [GROUP_A, GROUP_B]);
}

#[tokio::test]
async fn an_invitation_that_never_arrived_is_sent_after_the_lookup_finds_no_guest() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = scripted(vec![Err(transient(Some(502)))], vec![Ok(None)]);
    let worker = worker(&app, directory.clone());

    assert!(matches!(
        worker.deliver(&delivery(&message, 1)).await,
        Step::Retry(_)
    ));
    assert_eq!(
        redeliver_after_settle(&app, &worker, &message).await,
        Step::Done("request Invited".into())
    );

    assert_eq!(directory.lookups.load(Ordering::SeqCst), 1);
    assert_eq!(
        directory.invites.load(Ordering::SeqCst),
        2,
        "sent, since the first never arrived"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(row.reason, None);
}

#[tokio::test]
async fn a_handler_killed_before_saving_the_guest_is_resumed_by_a_lookup() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = Arc::new(ScriptedDirectory::default());
    let worker = worker(&app, directory.clone());
    // A delivery took the lease, called Graph (which invited) and died before saving.
    let domain = EmailDomain::parse("contoso.com").unwrap();
    let rid = RequestId::parse(&id).unwrap();
    let row = app.store.get(&domain, &rid).await.unwrap().unwrap();
    let mut leased = row.value.clone();
    leased.status = RequestStatus::Inviting;
    leased.invitation_attempted_at = Some(app.time.now());
    app.store.replace(&leased, &row.etag).await.unwrap();
    directory.invites.fetch_add(1, Ordering::SeqCst);

    app.time.advance(DEFAULT_LEASE + time::Duration::seconds(1));
    assert_eq!(
        worker.deliver(&delivery(&message, 2)).await,
        Step::Done("request Invited".into())
    );

    assert_eq!(
        directory.invites.load(Ordering::SeqCst),
        1,
        "the dead delivery's invitation only"
    );
    assert_eq!(directory.lookups.load(Ordering::SeqCst), 1);
    assert_eq!(
        app.row("contoso.com", &id)
            .await
            .unwrap()
            .invited_user_id
            .as_ref()
            .map(UserId::as_str),
        Some(GUEST)
    );
}

#[tokio::test]
async fn throttling_is_known_not_to_have_invited_so_no_lookup_follows() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = scripted(
        vec![Err(GraphError::Throttled {
            status: 429,
            retry_after: std::time::Duration::from_secs(30),
            request_id: None,
        })],
        vec![],
    );
    let worker = worker(&app, directory.clone());

    assert!(matches!(
        worker.deliver(&delivery(&message, 1)).await,
        Step::Retry(_)
    ));
    assert_eq!(
        app.row("contoso.com", &id)
            .await
            .unwrap()
            .invitation_attempted_at,
        None
    );
    assert_eq!(
        worker.deliver(&delivery(&message, 2)).await,
        Step::Done("request Invited".into()),
        "no settle wait: there is no doubt"
    );
    assert_eq!(directory.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_permission_to_look_the_worker_invites_again() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = scripted(
        vec![Err(transient(None))],
        vec![Err(GraphError::Permanent {
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges to complete the operation.".into(),
            request_id: None,
        })],
    );
    let worker = worker(&app, directory.clone());

    assert!(matches!(
        worker.deliver(&delivery(&message, 1)).await,
        Step::Retry(_)
    ));
    assert_eq!(
        redeliver_after_settle(&app, &worker, &message).await,
        Step::Done("request Invited".into())
    );
    assert_eq!(directory.invites.load(Ordering::SeqCst), 2);
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::Invited
    );
}

#[tokio::test]
async fn a_failed_lookup_hands_the_row_back_with_the_doubt_kept() {
    let app = spawn_app().await;
    let (id, message) = sales_sign_up(&app).await;
    let directory = scripted(vec![Err(transient(None))], vec![Err(transient(Some(500)))]);
    let worker = worker(&app, directory.clone());

    assert!(matches!(
        worker.deliver(&delivery(&message, 1)).await,
        Step::Retry(_)
    ));
    let step = redeliver_after_settle(&app, &worker, &message).await;
    assert!(
        matches!(&step, Step::Retry(r) if r.contains("looking for the guest")),
        "{step:?}"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Queued);
    assert!(row.invitation_attempted_at.is_some());

    assert_eq!(
        redeliver_after_settle(&app, &worker, &message).await,
        Step::Done("request Invited".into())
    );
    assert_eq!(directory.invites.load(Ordering::SeqCst), 1);
}
