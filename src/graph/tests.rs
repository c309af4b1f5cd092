//! Graph client against wiremock: one mock server plays both Graph (`/v1.0/…`) and the
//! Entra ID token endpoint (`/{tenant}/oauth2/v2.0/token`), reached through the real
//! `azure_identity` client secret credential.

use std::{collections::HashMap, time::Duration};

use futures::future::join_all;
use serde_json::json;
use tokio::time::Instant;
use url::Url;
use wiremock::{
    Match, Mock, MockServer, Request, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param},
};

use super::{
    FailureKind, GraphClient, GraphConfigError, GraphCredential, GraphError, GraphSettings,
    GuestState, Invitation, Invited, Membership, TokenCache, client::parse_retry_after,
    token::refresh_after,
};
use crate::domain::{DisplayName, EmailAddress, GroupId, UserId};

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT_ID: &str = "app-client-id";
const SECRET: &str = "client-s3cret-value";
const TOKEN_PATH: &str = "/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token";
const INVITATIONS: &str = "/v1.0/invitations";
/// The group and the guest of the membership tests: directory object ids are GUIDs.
const GROUP: &str = "6a1e5b3c-0000-4000-8000-000000000001";
const GUEST: &str = "9a0b1c2d-0000-4000-8000-00000000000a";
const GROUP_MEMBERS: &str = "/v1.0/groups/6a1e5b3c-0000-4000-8000-000000000001/members/$ref";

fn group() -> GroupId {
    GroupId::parse(GROUP).expect("a GUID")
}

fn guest() -> UserId {
    UserId::parse(GUEST).expect("a GUID")
}

// ---------------------------------------------------------------- helpers

fn settings(server: &MockServer) -> GraphSettings {
    GraphSettings {
        base_url: Url::parse(&format!("{}/v1.0", server.uri())).expect("mock URL"),
        credential: GraphCredential::ClientSecret {
            tenant_id: TENANT.into(),
            client_id: CLIENT_ID.into(),
            client_secret: crate::secret::Secret::new(SECRET),
        },
        authority_host: Url::parse(&server.uri()).expect("mock URL"),
        timeout: Duration::from_secs(5),
        max_inline_retry: Duration::from_secs(1),
    }
}

fn client(settings: &GraphSettings) -> GraphClient {
    GraphClient::new(settings).expect("client builds")
}

/// A form field of the token request, e.g. `scope`.
struct FormField(&'static str, String);

impl Match for FormField {
    fn matches(&self, request: &Request) -> bool {
        url::form_urlencoded::parse(&request.body).any(|(k, v)| k == self.0 && v == self.1)
    }
}

fn token_response(access_token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
    }))
}

/// The token endpoint as `azure_identity` 0.21 calls it: client credentials in the form
/// body, scope `{graph origin}/.default`.
fn token_endpoint(server: &MockServer) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(FormField("grant_type", "client_credentials".into()))
        .and(FormField("client_id", CLIENT_ID.into()))
        .and(FormField("client_secret", SECRET.into()))
        .and(FormField("scope", format!("{}/.default", server.uri())))
}

/// A server whose token endpoint hands out `token-1` for an hour, as often as asked.
async fn graph_server() -> MockServer {
    let server = MockServer::start().await;
    token_endpoint(&server)
        .respond_with(token_response("token-1", 3599))
        .mount(&server)
        .await;
    server
}

fn invitation() -> Invitation {
    Invitation {
        email: EmailAddress::parse("ada.lovelace@fabrikam.example").expect("valid"),
        display_name: DisplayName::parse("Ada Lovelace").expect("valid"),
        redirect_url: "https://myapps.microsoft.com".into(),
        send_invitation_message: true,
        message: None,
        message_language: None,
    }
}

fn invited_response(user_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(201)
        .insert_header("request-id", "req-invite-1")
        .set_body_json(json!({
            "id": "7b92124c-9fa9-406f-8b8e-225df8376ba9",
            "inviteRedeemUrl": "https://login.microsoftonline.com/redeem?rd=secret-ticket",
            "invitedUserEmailAddress": "ada.lovelace@fabrikam.example",
            "status": "PendingAcceptance",
            "invitedUser": { "id": user_id },
        }))
}

fn graph_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("request-id", "req-failed-1")
        .set_body_json(json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": { "request-id": "req-failed-1", "date": "2024-05-01T10:00:00" }
            }
        }))
}

// ---------------------------------------------------------------- invitations

#[tokio::test]
async fn invite_posts_exactly_the_documented_fields_with_a_bearer_token() {
    // Arrange
    let server = graph_server().await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .and(header("authorization", "Bearer token-1"))
        .and(body_json(json!({
            "invitedUserEmailAddress": "ada.lovelace@fabrikam.example",
            "invitedUserDisplayName": "Ada Lovelace",
            "inviteRedirectUrl": "https://myapps.microsoft.com",
            "sendInvitationMessage": true,
            "invitedUserMessageInfo": {
                "customizedMessageBody": "Welcome to Contoso's partner portal.",
                "messageLanguage": "de-DE",
            },
        })))
        .respond_with(invited_response(GUEST))
        .expect(1)
        .mount(&server)
        .await;
    let invitation = Invitation {
        message: Some("Welcome to Contoso's partner portal.".into()),
        message_language: Some("de-DE".into()),
        ..invitation()
    };

    // Act
    let invited = client(&settings(&server)).invite(&invitation).await;

    // Assert
    assert_eq!(
        invited.expect("invited"),
        Invited {
            user_id: guest(),
            request_id: Some("req-invite-1".into()),
        }
    );
}

#[tokio::test]
async fn invite_leaves_out_message_info_when_the_rule_sets_none() {
    let server = graph_server().await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .and(body_json(json!({
            "invitedUserEmailAddress": "ada.lovelace@fabrikam.example",
            "invitedUserDisplayName": "Ada Lovelace",
            "inviteRedirectUrl": "https://myapps.microsoft.com",
            "sendInvitationMessage": true,
        })))
        .respond_with(invited_response(GUEST))
        .expect(1)
        .mount(&server)
        .await;

    let invited = client(&settings(&server)).invite(&invitation()).await;

    assert_eq!(invited.expect("invited").user_id, guest());
}

#[tokio::test]
async fn invite_with_an_undocumented_success_body_is_a_retryable_error() {
    let server = graph_server().await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .respond_with(ResponseTemplate::new(201).set_body_string("<html>proxy</html>"))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&settings(&server))
        .invite(&invitation())
        .await
        .expect_err("unexpected body");

    assert!(matches!(
        error,
        GraphError::UnexpectedResponse { status: 201, .. }
    ));
    assert!(error.is_transient());
}

fn throttled(status: u16) -> GraphError {
    GraphError::Throttled {
        status,
        retry_after: Duration::from_secs(30),
        request_id: None,
    }
}

#[test]
fn only_a_429_is_known_not_to_have_invited() {
    assert_eq!(throttled(429).kind(), FailureKind::NotApplied);
    let no_token = GraphError::Token(super::TokenError::Timeout(Duration::from_secs(5)));
    assert_eq!(no_token.kind(), FailureKind::NotApplied, "nothing was sent");
    for uncertain in [
        throttled(503),
        GraphError::Transient {
            status: None,
            request_id: None,
        },
        GraphError::UnexpectedResponse {
            status: 201,
            request_id: None,
        },
    ] {
        assert_eq!(uncertain.kind(), FailureKind::Uncertain, "{uncertain:?}");
        assert!(uncertain.is_transient());
    }
    let refused = GraphError::Permanent {
        status: 403,
        code: "Authorization_RequestDenied".into(),
        message: String::new(),
        request_id: None,
    };
    assert_eq!(refused.kind(), FailureKind::Refused);
    assert_eq!(refused.code(), Some("Authorization_RequestDenied"));
    assert!(!refused.is_transient());
}

// ---------------------------------------------------------------- looking for a guest

#[tokio::test]
async fn find_user_asks_with_microsoft_s_documented_filter_and_reads_the_id() {
    // Arrange: an apostrophe in the local part must be doubled inside the OData string.
    let server = graph_server().await;
    let email = EmailAddress::parse("o'brien@fabrikam.example").expect("valid");
    let e = "o''brien@fabrikam.example";
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(header("authorization", "Bearer token-1"))
        .and(query_param(
            "$filter",
            format!(
                "userPrincipalName eq '{e}' or mail eq '{e}' or proxyAddresses/any(x:x eq 'SMTP:{e}') or otherMails/any(x:x eq '{e}')"
            ),
        ))
        .and(query_param("$select", "id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id)",
            "value": [{ "id": GUEST }]
        })))
        .expect(1)
        .mount(&server)
        .await;

    // Act
    let found = client(&settings(&server)).find_user(&email).await;

    // Assert
    assert_eq!(found.expect("found"), Some(guest()));
}

#[tokio::test]
async fn find_user_answers_none_refused_or_retryable_by_graph_status() {
    let cases = [
        (
            "an empty list: no such user",
            ResponseTemplate::new(200).set_body_json(json!({ "value": [] })),
            "none",
        ),
        (
            "403 without User.Read.All is permanent",
            graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
            "permanent",
        ),
        (
            "a 200 that is not a list is retryable",
            ResponseTemplate::new(200).set_body_string("<html>"),
            "transient",
        ),
        (
            "502 twice is retryable",
            ResponseTemplate::new(502),
            "transient",
        ),
    ];
    for (description, answer, expected) in cases {
        let server = graph_server().await;
        Mock::given(method("GET"))
            .and(path("/v1.0/users"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let email = EmailAddress::parse("ada@fabrikam.example").expect("valid");

        let outcome = client(&settings(&server)).find_user(&email).await;

        let got = match &outcome {
            Ok(None) => "none",
            Ok(Some(_)) => "found",
            Err(GraphError::Permanent { code, .. }) if code == "Authorization_RequestDenied" => {
                "permanent"
            }
            Err(error) if error.is_transient() => "transient",
            Err(_) => "other",
        };
        assert_eq!(got, expected, "{description}: {outcome:?}");
    }
}

#[tokio::test]
async fn guest_state_reads_external_user_state_by_graph_answer() {
    let cases = [
        (
            "not redeemed",
            json!({ "externalUserState": "PendingAcceptance" }),
            Some(GuestState::PendingAcceptance),
        ),
        (
            "redeemed",
            json!({ "externalUserState": "Accepted" }),
            Some(GuestState::Accepted),
        ),
        (
            "not an invited user",
            json!({ "externalUserState": null }),
            Some(GuestState::Other),
        ),
        (
            "a value Graph adds later",
            json!({ "externalUserState": "Paused" }),
            Some(GuestState::Other),
        ),
        ("not an object", json!(["Accepted"]), None),
        ("not JSON", json!("<html>"), None),
    ];
    for (description, body, expected) in cases {
        let server = graph_server().await;
        Mock::given(method("GET"))
            .and(path(format!("/v1.0/users/{GUEST}")))
            .and(header("authorization", "Bearer token-1"))
            .and(query_param("$select", "externalUserState"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;

        let outcome = client(&settings(&server)).guest_state(&guest()).await;

        match expected {
            Some(state) => assert_eq!(outcome.ok(), Some(state), "{description}"),
            None => assert!(
                outcome.as_ref().is_err_and(GraphError::is_transient),
                "{description}: {outcome:?}"
            ),
        }
    }
}

#[tokio::test]
async fn find_user_tries_a_5xx_lookup_once_more_at_once() {
    let server = graph_server().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [] })))
        .expect(1)
        .mount(&server)
        .await;
    let email = EmailAddress::parse("ada@fabrikam.example").expect("valid");

    let found = client(&settings(&server)).find_user(&email).await;

    assert_eq!(found.expect("answered the second time"), None);
}

// ---------------------------------------------------------------- group members

#[tokio::test]
async fn add_member_answers_by_graph_status() {
    struct Case {
        description: &'static str,
        answer: ResponseTemplate,
        expected: Result<Membership, (u16, &'static str)>,
    }
    let cases = [
        Case {
            description: "204 adds the member",
            answer: ResponseTemplate::new(204),
            expected: Ok(Membership::Added),
        },
        Case {
            description: "400 'already exist' is success",
            answer: graph_error(
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the following \
                 modified properties: 'members'.",
            ),
            expected: Ok(Membership::AlreadyMember),
        },
        Case {
            description: "404 unknown group is permanent",
            answer: graph_error(
                404,
                "Request_ResourceNotFound",
                "Resource 'group-1' does not exist or one of its queried reference-property \
                 objects are not present.",
            ),
            expected: Err((404, "Request_ResourceNotFound")),
        },
    ];

    for case in cases {
        // Arrange
        let server = graph_server().await;
        let body = json!({
            "@odata.id": format!("{}/v1.0/directoryObjects/{GUEST}", server.uri())
        });
        Mock::given(method("POST"))
            .and(path(GROUP_MEMBERS))
            .and(header("authorization", "Bearer token-1"))
            .and(body_json(body))
            .respond_with(case.answer)
            .expect(1)
            .mount(&server)
            .await;

        // Act
        let outcome = client(&settings(&server))
            .add_member(&group(), &guest())
            .await;

        // Assert
        match (outcome, case.expected) {
            (Ok(membership), Ok(expected)) => {
                assert_eq!(membership, expected, "{}", case.description);
            }
            (
                Err(GraphError::Permanent {
                    status,
                    code,
                    request_id,
                    ..
                }),
                Err((expected_status, expected_code)),
            ) => {
                assert_eq!((status, code.as_str()), (expected_status, expected_code));
                assert_eq!(request_id.as_deref(), Some("req-failed-1"));
            }
            (other, _) => panic!("{}: unexpected {other:?}", case.description),
        }
    }
}

// ---------------------------------------------------------------- error classification

#[tokio::test]
async fn graph_errors_are_sorted_into_transient_and_permanent() {
    let long_message = "x".repeat(1000);
    let cases = [
        (
            "500 is transient",
            graph_error(500, "InternalServerError", "boom"),
            true,
        ),
        ("502 is transient", ResponseTemplate::new(502), true),
        (
            "a guest id that is not an object id is an unexpected answer (never put in a URL or stored)",
            invited_response("../groups/x"),
            true,
        ),
        (
            "400 is permanent",
            graph_error(400, "BadRequest", &long_message),
            false,
        ),
        (
            "403 is permanent",
            graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges",
            ),
            false,
        ),
    ];

    for (description, answer, transient) in cases {
        let server = graph_server().await;
        Mock::given(method("POST"))
            .and(path(INVITATIONS))
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;

        let error = client(&settings(&server))
            .invite(&invitation())
            .await
            .expect_err(description);

        assert_eq!(error.is_transient(), transient, "{description}: {error:?}");
        match error {
            GraphError::Transient { status, .. } => assert!(status >= Some(500), "{description}"),
            GraphError::UnexpectedResponse { status: 201, .. } => {}
            GraphError::Permanent {
                status: 400,
                code,
                message,
                request_id,
            } => {
                assert_eq!(code, "BadRequest");
                assert_eq!(request_id.as_deref(), Some("req-failed-1"));
                assert!(message.chars().count() <= 301, "message is truncated");
            }
            GraphError::Permanent {
                status: 403, code, ..
            } => {
                assert_eq!(code, "Authorization_RequestDenied");
            }
            other => panic!("{description}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_permanent_error_without_a_header_takes_the_request_id_from_the_body() {
    let server = graph_server().await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": { "code": "BadRequest", "message": "Bad", "innerError": { "request-id": "from-body" } }
        })))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&settings(&server))
        .invite(&invitation())
        .await
        .expect_err("400");

    assert_eq!(error.request_id(), Some("from-body"));
}

// ---------------------------------------------------------------- throttling

#[tokio::test]
async fn a_short_retry_after_is_waited_out_inline() {
    for status in [429, 503] {
        // Arrange
        let server = graph_server().await;
        Mock::given(method("POST"))
            .and(path(INVITATIONS))
            .respond_with(ResponseTemplate::new(status).insert_header("Retry-After", "0.2"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(INVITATIONS))
            .respond_with(invited_response(GUEST))
            .expect(1)
            .mount(&server)
            .await;
        let graph = client(&settings(&server));

        // Act
        let started = Instant::now();
        let invited = graph.invite(&invitation()).await;

        // Assert
        assert_eq!(invited.expect("invited after waiting").user_id, guest());
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{status}: waited"
        );
    }
}

#[tokio::test]
async fn a_long_retry_after_fails_at_once_so_the_host_retries_later() {
    for status in [429, 503] {
        let server = graph_server().await;
        Mock::given(method("POST"))
            .and(path(INVITATIONS))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("Retry-After", "120")
                    .insert_header("request-id", "req-throttled"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let graph = client(&settings(&server));

        let started = Instant::now();
        let error = graph.invite(&invitation()).await.expect_err("throttled");

        assert!(started.elapsed() < Duration::from_secs(1), "did not wait");
        assert!(error.is_transient());
        assert!(
            matches!(
                &error,
                GraphError::Throttled { retry_after, request_id, .. }
                    if *retry_after == Duration::from_secs(120)
                        && request_id.as_deref() == Some("req-throttled")
            ),
            "{status}: {error:?}"
        );
    }
}

#[tokio::test]
async fn throttling_without_retry_after_assumes_five_seconds() {
    let server = graph_server().await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .respond_with(ResponseTemplate::new(429))
        .expect(1)
        .mount(&server)
        .await;

    // The test settings wait at most 1 s inline, so 5 s is handed back to the caller.
    let error = client(&settings(&server))
        .invite(&invitation())
        .await
        .expect_err("throttled");

    assert!(matches!(
        error,
        GraphError::Throttled { retry_after, .. } if retry_after == Duration::from_secs(5)
    ));
}

#[tokio::test]
async fn inline_retries_stop_after_three() {
    let server = graph_server().await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0.05"))
        .expect(4)
        .mount(&server)
        .await;

    let error = client(&settings(&server))
        .invite(&invitation())
        .await
        .expect_err("still throttled");

    assert!(matches!(error, GraphError::Throttled { .. }), "{error:?}");
}

#[test]
fn retry_after_accepts_whole_and_fractional_seconds() {
    let cases = [
        ("1", Some(Duration::from_secs(1))),
        ("1.5", Some(Duration::from_millis(1500))),
        (" 0 ", Some(Duration::ZERO)),
        ("1e12", Some(Duration::from_secs(3600))),
        ("-1", None),
        ("NaN", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_retry_after(value), expected, "{value:?}");
    }
}

// ---------------------------------------------------------------- timeouts

#[tokio::test]
async fn a_slow_answer_is_a_transient_timeout() {
    // Arrange
    let server = graph_server().await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .respond_with(invited_response(GUEST).set_delay(Duration::from_secs(3)))
        .expect(1)
        .mount(&server)
        .await;
    let graph = client(&GraphSettings {
        timeout: Duration::from_millis(300),
        ..settings(&server)
    });

    // Act
    let started = Instant::now();
    let error = graph.invite(&invitation()).await.expect_err("timed out");

    // Assert
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up in time"
    );
    assert!(
        matches!(error, GraphError::Transient { status: None, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unreachable_graph_is_transient() {
    // Arrange: tokens from the mock, Graph on a port that was free a moment ago.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token_response("token-1", 3599))
        .expect(1)
        .mount(&server)
        .await;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let graph = client(&GraphSettings {
        base_url: Url::parse(&format!("http://127.0.0.1:{closed_port}/v1.0")).expect("URL"),
        ..settings(&server)
    });

    // Act
    let outcome = graph.add_member(&group(), &guest()).await;

    // Assert
    assert!(
        matches!(outcome, Err(GraphError::Transient { status: None, .. })),
        "{outcome:?}"
    );
}

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn concurrent_calls_share_one_token_request() {
    // Arrange
    let server = MockServer::start().await;
    token_endpoint(&server)
        .respond_with(token_response("token-1", 3599).set_delay(Duration::from_millis(100)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .and(header("authorization", "Bearer token-1"))
        .respond_with(invited_response(GUEST).set_delay(Duration::from_millis(200)))
        .expect(24)
        .mount(&server)
        .await;
    let graph = client(&settings(&server));
    let invitation = invitation();

    // Act
    let results = join_all((0..24).map(|_| graph.invite(&invitation))).await;

    // Assert
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_once() {
    // Arrange: a 2 s token is used for 1 s (half its lifetime), then replaced.
    let server = MockServer::start().await;
    token_endpoint(&server)
        .respond_with(token_response("short-lived", 2))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    token_endpoint(&server)
        .respond_with(token_response("renewed", 3599))
        .expect(1)
        .mount(&server)
        .await;
    for (token, calls) in [("short-lived", 1), ("renewed", 8)] {
        Mock::given(method("POST"))
            .and(path(GROUP_MEMBERS))
            .and(header("authorization", format!("Bearer {token}").as_str()))
            .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_millis(50)))
            .expect(calls)
            .mount(&server)
            .await;
    }
    let graph = client(&settings(&server));
    graph
        .add_member(&group(), &guest())
        .await
        .expect("first call");

    // Act
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (group, guest) = (group(), guest());
    let results = join_all((0..8).map(|_| graph.add_member(&group, &guest))).await;

    // Assert
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[tokio::test]
async fn a_rejected_token_is_replaced_and_the_call_repeated_once() {
    // Arrange: both tokens are valid for an hour, so only the 401 can cause the refresh
    // (azure_identity's own cache would hand back the rejected token if not cleared).
    let server = MockServer::start().await;
    token_endpoint(&server)
        .respond_with(token_response("revoked", 3599))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    token_endpoint(&server)
        .respond_with(token_response("fresh", 3599))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .and(header("authorization", "Bearer revoked"))
        .respond_with(graph_error(
            401,
            "InvalidAuthenticationToken",
            "Token is revoked",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(invited_response(GUEST))
        .expect(1)
        .mount(&server)
        .await;

    // Act
    let invited = client(&settings(&server)).invite(&invitation()).await;

    // Assert
    assert_eq!(invited.expect("invited").user_id, guest());
}

#[tokio::test]
async fn a_second_401_is_permanent() {
    let server = MockServer::start().await;
    token_endpoint(&server)
        .respond_with(token_response("token-1", 3599))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .respond_with(graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure",
        ))
        .expect(2)
        .mount(&server)
        .await;

    let error = client(&settings(&server))
        .invite(&invitation())
        .await
        .expect_err("401");

    assert!(matches!(error, GraphError::Permanent { status: 401, .. }));
}

#[tokio::test]
async fn a_failing_token_endpoint_is_one_request_and_a_retryable_error_for_all_waiting() {
    // Arrange
    let server = MockServer::start().await;
    token_endpoint(&server)
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                }))
                .set_delay(Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .respond_with(invited_response(GUEST))
        .expect(0)
        .mount(&server)
        .await;
    let graph = client(&settings(&server));
    let invitation = invitation();

    // Act
    let results = join_all((0..8).map(|_| graph.invite(&invitation))).await;

    // Assert
    for result in results {
        let error = result.expect_err("no token");
        assert!(matches!(error, GraphError::Token(_)), "{error:?}");
        assert!(error.is_transient());
        assert!(!format!("{error:?}").contains(SECRET), "{error:?}");
    }
}

#[test]
fn tokens_are_replaced_five_minutes_early_or_at_half_their_lifetime() {
    let cases = [(3599, 3299), (600, 300), (300, 150), (2, 1), (0, 0)];
    for (lifetime, used_for) in cases {
        assert_eq!(
            refresh_after(Duration::from_secs(lifetime)),
            Duration::from_secs(used_for),
            "lifetime {lifetime} s"
        );
    }
}

#[test]
fn the_token_scope_is_the_graph_origin() {
    let cases = [
        (
            "https://graph.microsoft.com/v1.0",
            "https://graph.microsoft.com/.default",
        ),
        (
            "https://graph.microsoft.us/beta/",
            "https://graph.microsoft.us/.default",
        ),
        (
            "http://127.0.0.1:8089/v1.0",
            "http://127.0.0.1:8089/.default",
        ),
    ];
    for (base, scope) in cases {
        let base = Url::parse(base).expect("URL");
        assert_eq!(TokenCache::scope_for(&base), scope);
    }
}

// ---------------------------------------------------------------- settings

fn read(pairs: &[(&str, &str)]) -> Result<Option<GraphSettings>, GraphConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    GraphSettings::from_lookup(|name| map.get(name).cloned())
}

/// Environment variables for one case.
type Vars = Vec<(&'static str, &'static str)>;

const CLIENT_SECRET_VARS: [(&str, &str); 3] = [
    ("AZURE_TENANT_ID", TENANT),
    ("AZURE_CLIENT_ID", CLIENT_ID),
    ("AZURE_CLIENT_SECRET", SECRET),
];

#[test]
fn settings_choose_the_credential() {
    let client_secret = GraphCredential::ClientSecret {
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        client_secret: crate::secret::Secret::new(SECRET),
    };
    let identity = ("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token");
    let cases: [(&str, Vars, Option<GraphCredential>); 6] = [
        ("nothing configured", vec![], None),
        (
            "client secret",
            CLIENT_SECRET_VARS.to_vec(),
            Some(client_secret.clone()),
        ),
        (
            "managed identity",
            vec![identity],
            Some(GraphCredential::ManagedIdentity),
        ),
        (
            "managed identity, the tenant set for the admin API",
            vec![identity, ("AZURE_TENANT_ID", TENANT)],
            Some(GraphCredential::ManagedIdentity),
        ),
        (
            "the tenant alone is no credential",
            vec![("AZURE_TENANT_ID", TENANT)],
            None,
        ),
        (
            "an explicit client secret wins over the platform identity",
            [CLIENT_SECRET_VARS.as_slice(), &[identity]].concat(),
            Some(client_secret),
        ),
    ];
    for (description, vars, expected) in cases {
        let settings = read(&vars).expect(description);
        assert_eq!(settings.map(|s| s.credential), expected, "{description}");
    }
}

#[test]
fn settings_have_defaults_and_take_overrides() {
    let defaults = read(&CLIENT_SECRET_VARS)
        .expect("valid")
        .expect("configured");
    assert_eq!(
        defaults.base_url.as_str(),
        "https://graph.microsoft.com/v1.0"
    );
    assert_eq!(
        defaults.authority_host.as_str(),
        "https://login.microsoftonline.com/"
    );
    assert_eq!(defaults.timeout, Duration::from_secs(10));
    assert_eq!(defaults.max_inline_retry, Duration::from_secs(5));

    let overrides = [
        ("GRAPH_BASE_URL", "https://graph.microsoft.us/v1.0"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"),
        ("GRAPH_TIMEOUT_SECONDS", "2.5"),
        ("GRAPH_MAX_INLINE_RETRY_SECONDS", "0"),
    ];
    let custom = read(&[CLIENT_SECRET_VARS.as_slice(), &overrides].concat())
        .expect("valid")
        .expect("configured");
    assert_eq!(custom.base_url.as_str(), "https://graph.microsoft.us/v1.0");
    assert_eq!(
        custom.authority_host.host_str(),
        Some("login.microsoftonline.us")
    );
    assert_eq!(custom.timeout, Duration::from_millis(2500));
    assert_eq!(custom.max_inline_retry, Duration::ZERO);
}

#[test]
fn bad_settings_are_named() {
    let cases: [(&str, Vars, &[&str]); 7] = [
        (
            "a secret alone",
            vec![("AZURE_CLIENT_SECRET", SECRET)],
            &["AZURE_TENANT_ID and AZURE_CLIENT_ID not set"],
        ),
        (
            "no secret",
            vec![("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", CLIENT_ID)],
            &["AZURE_CLIENT_SECRET not set"],
        ),
        (
            "a client id alone (user-assigned identity) is not silently ignored",
            vec![
                ("AZURE_CLIENT_ID", CLIENT_ID),
                ("IDENTITY_ENDPOINT", "http://localhost/msi"),
            ],
            &["AZURE_TENANT_ID and AZURE_CLIENT_SECRET not set"],
        ),
        (
            "plain http to a remote Graph",
            [
                CLIENT_SECRET_VARS.as_slice(),
                &[("GRAPH_BASE_URL", "http://graph.example/v1.0")],
            ]
            .concat(),
            &["GRAPH_BASE_URL", "https://"],
        ),
        (
            "authority host not a URL",
            [
                CLIENT_SECRET_VARS.as_slice(),
                &[("AZURE_AUTHORITY_HOST", "login")],
            ]
            .concat(),
            &["AZURE_AUTHORITY_HOST"],
        ),
        (
            "zero timeout",
            [
                CLIENT_SECRET_VARS.as_slice(),
                &[("GRAPH_TIMEOUT_SECONDS", "0")],
            ]
            .concat(),
            &["GRAPH_TIMEOUT_SECONDS"],
        ),
        (
            "inline wait not a number",
            [
                CLIENT_SECRET_VARS.as_slice(),
                &[("GRAPH_MAX_INLINE_RETRY_SECONDS", "soon")],
            ]
            .concat(),
            &["GRAPH_MAX_INLINE_RETRY_SECONDS", "soon"],
        ),
    ];
    for (description, vars, mentions) in cases {
        let error = read(&vars).expect_err(description).to_string();
        for mention in mentions {
            assert!(error.contains(mention), "{description}: {error}");
        }
        assert!(!error.contains(SECRET), "{description}: {error}");
    }
}

#[test]
fn debug_output_never_shows_the_client_secret() {
    let settings = read(&CLIENT_SECRET_VARS)
        .expect("valid")
        .expect("configured");

    let debug = format!("{settings:?}");

    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("client_secret: ***"), "{debug}");
}

// ---------------------------------------------------------------- logs

#[tokio::test]
async fn logs_carry_status_and_request_id_but_no_secret_token_or_address() {
    // Arrange: a token refresh after a 401, an invitation, and a refused group add.
    let (logs, _guard) = test_support::logs::LogBuffer::capture();
    let server = MockServer::start().await;
    token_endpoint(&server)
        .respond_with(token_response("first-access-token", 3599))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    token_endpoint(&server)
        .respond_with(token_response("second-access-token", 3599))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .and(header("authorization", "Bearer first-access-token"))
        .respond_with(graph_error(401, "InvalidAuthenticationToken", "expired"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(INVITATIONS))
        .respond_with(invited_response(GUEST))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GROUP_MEMBERS))
        .respond_with(graph_error(
            400,
            "BadRequest",
            "Invalid member ada.lovelace@fabrikam.example",
        ))
        .mount(&server)
        .await;
    let graph = client(&settings(&server));

    // Act
    graph.invite(&invitation()).await.expect("invited");
    let refused = graph.add_member(&group(), &guest()).await;

    // Assert
    assert!(matches!(refused, Err(GraphError::Permanent { .. })));
    let logs = logs.text();
    for needle in [
        "req-invite-1",
        "req-failed-1",
        "fabrikam.example",
        "status=401",
    ] {
        assert!(logs.contains(needle), "{needle} missing from:\n{logs}");
    }
    for secret in [
        SECRET,
        "first-access-token",
        "second-access-token",
        "ada.lovelace",
        "secret-ticket",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into:\n{logs}");
    }
}
