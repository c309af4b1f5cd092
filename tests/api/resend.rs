//! A repeat sign-up of an `Invited` guest who has not redeemed: Microsoft's invitation is
//! sent again, at most once a day, against a wiremock Graph reached through the operator's
//! settings (`GRAPH_BASE_URL`, `AZURE_AUTHORITY_HOST`), with the manual clock.

use b2b_signup::domain::{Actor, HistoryAction, RequestStatus, SignupRequest};
use serde_json::{Value, json};
use time::Duration;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, query_param},
};

use crate::{
    helpers::{TestApp, default_policy, spawn_live_app_with},
    html_form::{BROWSER_ACCEPT, location, post_form},
    lifecycle::{GUEST, graph},
};

const ADA: &str = "ada@contoso.com";

/// Graph answers the guest's `externalUserState` with `answer`.
async fn guest_state(graph: &MockServer, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/users/{GUEST}")))
        .and(query_param("$select", "externalUserState"))
        .respond_with(answer)
        .mount(graph)
        .await;
}

fn state(value: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "externalUserState": value }))
}

/// Requests Graph received other than for tokens, as `METHOD path`.
async fn graph_calls(graph: &MockServer) -> Vec<String> {
    graph
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().starts_with("/v1.0/"))
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

async fn invitations(graph: &MockServer) -> usize {
    graph_calls(graph)
        .await
        .iter()
        .filter(|c| *c == "POST /v1.0/invitations")
        .count()
}

fn resent_entries(request: &SignupRequest) -> Vec<(Actor, Option<String>)> {
    request
        .history
        .entries()
        .iter()
        .filter(|e| e.action == HistoryAction::InvitationResent)
        .map(|e| (e.actor.clone(), e.reason.clone()))
        .collect()
}

impl TestApp {
    /// Signs `email` up: the JSON answer (202 asserted).
    async fn sign_up_body(&self, email: &str) -> Value {
        let response = self
            .post_json(&json!({"email": email, "displayName": "Ada Lovelace"}).to_string())
            .await;
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    /// Signs ada@contoso.com up and delivers the message: the request's id, `Invited`.
    async fn ada_invited(&self) -> String {
        self.invited(ADA, "partner-portal").await.id.to_string()
    }

    /// A repeat sign-up of Ada: whether it says it resent; the earlier id is asserted.
    async fn repeat_resent(&self, id: &str) -> bool {
        let body = self.sign_up_body(ADA).await;
        assert_eq!(body["requestId"], id, "the earlier request answers");
        assert_eq!(body["status"], "queued");
        body["resent"]
            .as_bool()
            .expect("resent is a boolean for an invited request")
    }
}

#[tokio::test]
async fn an_unredeemed_guest_gets_the_invitation_again_at_most_once_a_day() {
    let graph = graph().await;
    guest_state(&graph, state("PendingAcceptance")).await;
    let app = spawn_live_app_with(&graph, &default_policy(), |_| {}).await;
    let id = app.ada_invited().await;
    assert_eq!(invitations(&graph).await, 1);

    assert!(app.repeat_resent(&id).await);
    assert_eq!(invitations(&graph).await, 2, "sent again");
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(row.invitation_resent_at, Some(app.time.now()));
    let entries = resent_entries(&row);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, Actor::Partner);
    assert_eq!(
        app.sign_up_body("grace@contoso.com").await.get("resent"),
        None,
        "only an answer with an invited request says resent"
    );

    // The same day: nothing more, not even a state read.
    app.time.advance(Duration::hours(23));
    let reads = graph_calls(&graph).await.len();
    assert!(!app.repeat_resent(&id).await);
    assert_eq!(invitations(&graph).await, 2, "not twice a day");
    assert_eq!(graph_calls(&graph).await.len(), reads, "Graph not asked");
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(resent_entries(&row).len(), 1);

    // A day after the resend: once more; the HTML form's thank-you page says so too.
    app.time.advance(Duration::hours(1));
    let form = "email=ada%40contoso.com&displayName=Ada+Lovelace&lang=en";
    let sent = location(&post_form(&app, Some(BROWSER_ACCEPT), form).await);
    assert_eq!(
        sent,
        format!("/thanks.html?id={id}&status=queued&resent=1#resent")
    );
    let again = location(&post_form(&app, Some(BROWSER_ACCEPT), form).await);
    assert!(again.ends_with("&resent=0#already_sent"), "{again}");
    assert_eq!(invitations(&graph).await, 3);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(resent_entries(&row).len(), 2);
    assert_eq!(row.invitation_resent_at, Some(app.time.now()));
}

#[tokio::test]
async fn a_guest_who_redeemed_is_sent_nothing() {
    let graph = graph().await;
    guest_state(&graph, state("Accepted")).await;
    let app = spawn_live_app_with(&graph, &default_policy(), |_| {}).await;
    let id = app.ada_invited().await;

    assert!(!app.repeat_resent(&id).await);
    assert_eq!(invitations(&graph).await, 1, "only the first invitation");
    assert!(
        graph_calls(&graph)
            .await
            .contains(&format!("GET /v1.0/users/{GUEST}")),
        "the state was read"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert!(resent_entries(&row).is_empty());
    assert_eq!(row.invitation_resent_at, None);
}

#[tokio::test]
async fn graph_failing_on_the_state_read_still_answers_and_the_next_repeat_resends() {
    let graph = graph().await;
    let app = spawn_live_app_with(&graph, &default_policy(), |_| {}).await;
    let id = app.ada_invited().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/users/{GUEST}")))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2) // the call and its one retry of a read
        .mount(&graph)
        .await;
    let before = app.row("contoso.com", &id).await.unwrap();

    assert!(
        !app.repeat_resent(&id).await,
        "a 202 that says nothing was sent"
    );
    assert_eq!(invitations(&graph).await, 1);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Invited);
    assert_eq!(row.history.entries().len(), before.history.entries().len());
    assert_eq!(
        row.invitation_resent_at, None,
        "nothing recorded, so nothing lost"
    );

    guest_state(&graph, state("PendingAcceptance")).await;
    assert!(app.repeat_resent(&id).await, "Graph is back: sent");
    assert_eq!(invitations(&graph).await, 2);
}

#[tokio::test]
async fn a_dry_run_records_what_it_would_have_done_and_calls_nothing() {
    let graph = graph().await;
    guest_state(&graph, state("PendingAcceptance")).await;
    let app = spawn_live_app_with(&graph, &default_policy(), |s| s.dry_run = true).await;
    let id = app.ada_invited().await;

    assert!(!app.repeat_resent(&id).await, "nothing was sent");
    assert!(app.repeat_resent(&id).await.eq(&false));
    assert_eq!(
        graph_calls(&graph).await,
        Vec::<String>::new(),
        "Graph never called"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    let entries = resent_entries(&row);
    assert_eq!(entries.len(), 1, "recorded once a day: {entries:?}");
    assert!(entries[0].1.as_deref().unwrap().starts_with("dry run:"));
    assert_eq!(row.invitation_resent_at, Some(app.time.now()));
}
