//! The authenticator against a mock Entra ID on loopback (wiremock): the tenant's OpenID
//! configuration and JWKS, tokens signed with the test-only keys of `tests/fixtures/entra/`.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};
use test_support::identity::{
    self, KEY_1, KEY_2, TestKey, changed, hs256_token, jwks, openid_configuration,
    openid_configuration_document, unsigned_token,
};
use time::OffsetDateTime;
use url::Url;
use warp::{
    Reply,
    http::{HeaderValue, StatusCode, header},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{any, path},
};

use super::{
    AdminAuthSettings, AuthError, Authenticator, Rejection, Role, keys::MIN_REFRESH_INTERVAL,
    token::CLOCK_SKEW_SECONDS,
};
use crate::{
    clock::{Clock, ManualTime},
    domain::{AppId, TenantId},
    problem::Problem,
};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
/// The admin API's app registration.
const APP: &str = "6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01";
const OTHER_APP: &str = "00000003-0000-0000-c000-000000000000";
/// The automation's client id, in an app-only token's `azp`.
const AUTOMATION: &str = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
const OID: &str = "5f0c8e3a-1b2c-4d5e-8f90-0123456789ab";
const ADMIN: &str = "admin@contoso.com";
/// 2026-11-24T10:00:00Z: the tests' clock stands here until moved.
const NOW: i64 = 1_795_514_400;

fn start_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).expect("a valid time")
}

/// An authenticator for the mock tenant at `server`, on a clock the test moves.
fn authenticator(server: &MockServer) -> (Authenticator, ManualTime) {
    authenticator_at(&server.uri(), Duration::from_secs(5))
}

fn authenticator_at(authority: &str, fetch_timeout: Duration) -> (Authenticator, ManualTime) {
    let (clock, time) = Clock::manual(start_time());
    let settings = AdminAuthSettings::new(
        AppId::parse(APP).expect("a GUID"),
        TenantId::parse(TENANT).expect("a GUID"),
        Url::parse(authority).expect("the mock's URL"),
    )
    .expect("loopback authority")
    .with_fetch_timeout(fetch_timeout);
    let authenticator = Authenticator::new(Some(settings), clock).expect("client builds");
    (authenticator, time)
}

/// Mounts the tenant's configuration and a JWKS of `keys`, each expected `fetches` times.
async fn mount_tenant(server: &MockServer, keys: &[&TestKey], fetches: u64) {
    openid_configuration(&server.uri(), TENANT)
        .expect(fetches)
        .mount(server)
        .await;
    jwks(TENANT, keys).expect(fetches).mount(server).await;
}

/// The claims of a valid v2.0 access token a signed-in administrator got for the admin API.
fn person(server: &MockServer, roles: &[&str]) -> Value {
    json!({
        "aud": APP,
        "iss": identity::issuer(&server.uri(), TENANT),
        "iat": NOW - 60,
        "nbf": NOW - 60,
        "exp": NOW + 3600,
        "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "name": "Admin",
        "oid": OID,
        "preferred_username": ADMIN,
        "roles": roles,
        "scp": "access_as_user",
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "tid": TENANT,
        "ver": "2.0",
    })
}

/// The claims of an app-only token (client credentials): no `scp`, no `preferred_username`.
fn application(server: &MockServer, roles: &[&str]) -> Value {
    changed(
        &person(server, roles),
        json!({"azp": AUTOMATION, "idtyp": "app", "preferred_username": null, "scp": null, "name": null}),
    )
}

fn bearer(token: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value"))
}

/// What a call should come to: who decided, or the error.
type Outcome = Result<String, AuthError>;

fn refused(rejection: Rejection) -> Outcome {
    Err(AuthError::Unauthenticated(rejection))
}

async fn outcome(
    authenticator: &Authenticator,
    authorization: Option<HeaderValue>,
    needed: Role,
) -> Outcome {
    authenticator
        .authenticate(authorization.as_ref(), needed)
        .await
        .map(|principal| principal.decider().to_string())
}

#[tokio::test]
async fn every_token_case_gets_its_answer() {
    // Arrange: one tenant publishing key 1; its configuration and keys are fetched once for
    // all the cases (the unknown kid among them comes within the minute: no refresh).
    let server = MockServer::start().await;
    mount_tenant(&server, &[&KEY_1], 1).await;
    let (authenticator, _time) = authenticator(&server);
    let read = person(&server, &["Signup.Read"]);
    let approve = person(&server, &["Signup.Approve"]);
    let sign = |claims: &Value| bearer(&KEY_1.sign(claims));
    let ok = |name: &str| Ok(name.to_owned());
    let app = format!("app:{AUTOMATION}");

    let cases: Vec<(&str, Option<HeaderValue>, Role, Outcome)> = vec![
        (
            "valid Read token for a read",
            sign(&read),
            Role::Read,
            ok(ADMIN),
        ),
        (
            "valid Approve token for a decision",
            sign(&approve),
            Role::Approve,
            ok(ADMIN),
        ),
        (
            "Approve implies Read",
            sign(&approve),
            Role::Read,
            ok(ADMIN),
        ),
        (
            "both roles and others",
            sign(&person(
                &server,
                &["Other.Role", "Signup.Read", "Signup.Approve"],
            )),
            Role::Approve,
            ok(ADMIN),
        ),
        (
            "missing header",
            None,
            Role::Read,
            refused(Rejection::MissingHeader),
        ),
        (
            "not Bearer",
            Some(HeaderValue::from_static("Basic YWRtaW46cGFzc3dvcmQ=")),
            Role::Read,
            refused(Rejection::NotBearer),
        ),
        (
            "a bare token, no scheme",
            Some(HeaderValue::from_str(&KEY_1.sign(&read)).expect("header")),
            Role::Read,
            refused(Rejection::NotBearer),
        ),
        (
            "Bearer and nothing",
            bearer(" "),
            Role::Read,
            refused(Rejection::Malformed),
        ),
        (
            "malformed: one part",
            bearer("abc"),
            Role::Read,
            refused(Rejection::Malformed),
        ),
        (
            "malformed: not base64 JSON",
            bearer("a.b.c"),
            Role::Read,
            refused(Rejection::Malformed),
        ),
        (
            "malformed: four parts",
            bearer(&format!("{}.x", KEY_1.sign(&read))),
            Role::Read,
            refused(Rejection::Malformed),
        ),
        (
            "no kid",
            bearer(&unsigned_token(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &read,
            )),
            Role::Read,
            refused(Rejection::Malformed),
        ),
        (
            "alg: none",
            bearer(&unsigned_token(
                &json!({"alg": "none", "kid": KEY_1.kid()}),
                &approve,
            )),
            Role::Read,
            refused(Rejection::Algorithm),
        ),
        (
            "HS256 signed with the public key as the HMAC secret",
            bearer(&hs256_token(
                KEY_1.public_pem().as_bytes(),
                KEY_1.kid(),
                &approve,
            )),
            Role::Read,
            refused(Rejection::Algorithm),
        ),
        (
            "RS256 claimed, signature of another key under a known kid",
            bearer(&KEY_2.sign_as(KEY_1.kid(), &approve)),
            Role::Read,
            refused(Rejection::Signature),
        ),
        (
            "unknown kid (keys refreshed less than a minute ago)",
            bearer(&KEY_2.sign(&approve)),
            Role::Read,
            refused(Rejection::UnknownKey),
        ),
        (
            "wrong issuer: Entra ID's v1.0 issuer",
            sign(&changed(
                &read,
                json!({"iss": format!("https://sts.windows.net/{TENANT}/")}),
            )),
            Role::Read,
            refused(Rejection::Issuer),
        ),
        (
            "wrong audience: another app (Microsoft Graph)",
            sign(&changed(&read, json!({"aud": OTHER_APP}))),
            Role::Read,
            refused(Rejection::Audience),
        ),
        (
            "wrong audience: another app's identifier URI",
            sign(&changed(
                &read,
                json!({"aud": format!("api://{OTHER_APP}")}),
            )),
            Role::Read,
            refused(Rejection::Audience),
        ),
        (
            "audience as the identifier URI api://{app id}",
            sign(&changed(&read, json!({"aud": format!("api://{APP}")}))),
            Role::Read,
            ok(ADMIN),
        ),
        (
            "another tenant",
            sign(&changed(&read, json!({"tid": OTHER_TENANT}))),
            Role::Read,
            refused(Rejection::Tenant),
        ),
        (
            "expired beyond the skew",
            sign(&changed(
                &read,
                json!({"exp": NOW - CLOCK_SKEW_SECONDS - 1}),
            )),
            Role::Read,
            refused(Rejection::Expired),
        ),
        (
            "expired within the skew",
            sign(&changed(
                &read,
                json!({"exp": NOW - CLOCK_SKEW_SECONDS + 1}),
            )),
            Role::Read,
            ok(ADMIN),
        ),
        (
            "not yet valid beyond the skew",
            sign(&changed(
                &read,
                json!({"nbf": NOW + CLOCK_SKEW_SECONDS + 1}),
            )),
            Role::Read,
            refused(Rejection::NotYetValid),
        ),
        (
            "not yet valid within the skew",
            sign(&changed(
                &read,
                json!({"nbf": NOW + CLOCK_SKEW_SECONDS - 1}),
            )),
            Role::Read,
            ok(ADMIN),
        ),
        (
            "exp as a string (GHSA-h395-gr6q-cpjc)",
            sign(&changed(&read, json!({"exp": "never"}))),
            Role::Read,
            refused(Rejection::Claims),
        ),
        (
            "nbf as a string (GHSA-h395-gr6q-cpjc)",
            sign(&changed(&read, json!({"nbf": (NOW + 86_400).to_string()}))),
            Role::Read,
            refused(Rejection::Claims),
        ),
        (
            "no exp",
            sign(&changed(&read, json!({"exp": null}))),
            Role::Read,
            refused(Rejection::Claims),
        ),
        (
            "oid not a GUID",
            sign(&changed(&read, json!({"oid": "admin"}))),
            Role::Read,
            refused(Rejection::Identity),
        ),
        (
            "no roles",
            sign(&changed(&read, json!({"roles": null}))),
            Role::Read,
            Err(AuthError::Forbidden { needed: Role::Read }),
        ),
        (
            "an unrelated role only",
            sign(&person(&server, &["Other.Role"])),
            Role::Read,
            Err(AuthError::Forbidden { needed: Role::Read }),
        ),
        (
            "Signup.Read trying to approve",
            sign(&read),
            Role::Approve,
            Err(AuthError::Forbidden {
                needed: Role::Approve,
            }),
        ),
        (
            "app-only token (idtyp: app) names the application",
            sign(&application(&server, &["Signup.Approve"])),
            Role::Approve,
            ok(&app),
        ),
        (
            "app-only token without idtyp: no scp, no preferred_username",
            sign(&changed(
                &application(&server, &["Signup.Approve"]),
                json!({"idtyp": null}),
            )),
            Role::Approve,
            ok(&app),
        ),
        (
            "app-only token whose azp is not a client id",
            sign(&changed(
                &application(&server, &["Signup.Read"]),
                json!({"azp": "automation"}),
            )),
            Role::Read,
            refused(Rejection::Identity),
        ),
        (
            "delegated token without preferred_username",
            sign(&changed(&read, json!({"preferred_username": ""}))),
            Role::Read,
            refused(Rejection::Identity),
        ),
    ];

    for (description, authorization, needed, expected) in cases {
        // Act
        let actual = outcome(&authenticator, authorization, needed).await;

        // Assert
        assert_eq!(actual, expected, "{description}");
    }
}

#[tokio::test]
async fn the_principal_carries_the_object_id_and_roles() {
    let server = MockServer::start().await;
    mount_tenant(&server, &[&KEY_1], 1).await;
    let (authenticator, _time) = authenticator(&server);

    let principal = authenticator
        .authenticate(
            bearer(&KEY_1.sign(&person(&server, &["Signup.Approve"]))).as_ref(),
            Role::Read,
        )
        .await
        .expect("accepted");

    assert_eq!(principal.administrator().object_id().as_str(), OID);
    assert_eq!(
        principal.decider().object_id().map(|id| id.as_str()),
        Some(OID)
    );
    assert!(principal.roles().allow(Role::Approve));
}

#[tokio::test]
async fn every_refusal_answers_as_design_says_and_never_says_which_check_failed() {
    let unauthenticated = [
        AuthError::Off,
        AuthError::Unauthenticated(Rejection::MissingHeader),
        AuthError::Unauthenticated(Rejection::Algorithm),
        AuthError::Unauthenticated(Rejection::Expired),
        AuthError::Unauthenticated(Rejection::Tenant),
    ];
    let mut bodies = Vec::new();
    for error in unauthenticated {
        let problem = Problem::from(error.clone());
        let body = serde_json::to_value(&problem).expect("JSON");
        let response = problem.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{error:?}");
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer",
            "{error:?}"
        );
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body["code"], "unauthenticated", "{error:?}");
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "one answer for every failed check"
    );

    let forbidden = Problem::from(AuthError::Forbidden {
        needed: Role::Approve,
    })
    .into_response();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(forbidden.headers().get(header::WWW_AUTHENTICATE).is_none());

    let unavailable = Problem::from(AuthError::Unavailable);
    assert_eq!(unavailable.retry_after_seconds(), Some(30));
    let unavailable = unavailable.into_response();
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.headers()[header::RETRY_AFTER], "30");
}

#[tokio::test]
async fn the_admin_api_off_refuses_every_call_without_fetching() {
    let authenticator = Authenticator::new(None, Clock::manual(start_time()).0).expect("off");
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;

    let outcome = outcome(
        &authenticator,
        bearer(&KEY_1.sign(&person(&server, &["Signup.Approve"]))),
        Role::Read,
    )
    .await;

    assert!(!authenticator.is_on());
    assert_eq!(outcome, Err(AuthError::Off));
}

#[tokio::test]
async fn a_new_key_in_the_jwks_is_accepted_after_a_refresh() {
    // Arrange: the tenant signs with key 1; the keys are cached.
    let server = MockServer::start().await;
    mount_tenant(&server, &[&KEY_1], 1).await;
    let (authenticator, time) = authenticator(&server);
    let claims = person(&server, &["Signup.Read"]);
    assert_eq!(
        outcome(&authenticator, bearer(&KEY_1.sign(&claims)), Role::Read).await,
        Ok(ADMIN.into())
    );
    server.verify().await;
    server.reset().await;
    // Entra ID rolls over to key 2; the configuration is not read again.
    openid_configuration(&server.uri(), TENANT)
        .expect(0)
        .mount(&server)
        .await;
    jwks(TENANT, &[&KEY_1, &KEY_2])
        .expect(1)
        .mount(&server)
        .await;

    // Act: a key-2 token within the minute of the first fetch, then after it.
    let too_soon = outcome(&authenticator, bearer(&KEY_2.sign(&claims)), Role::Read).await;
    time.advance(MIN_REFRESH_INTERVAL);
    let after_refresh = outcome(&authenticator, bearer(&KEY_2.sign(&claims)), Role::Read).await;
    let old_key = outcome(&authenticator, bearer(&KEY_1.sign(&claims)), Role::Read).await;

    // Assert
    assert_eq!(too_soon, refused(Rejection::UnknownKey));
    assert_eq!(after_refresh, Ok(ADMIN.into()));
    assert_eq!(old_key, Ok(ADMIN.into()), "key 1 is still published");
}

#[tokio::test]
async fn unknown_kids_refresh_the_keys_at_most_once_a_minute() {
    // Arrange
    let server = MockServer::start().await;
    mount_tenant(&server, &[&KEY_1], 1).await;
    let (authenticator, time) = authenticator(&server);
    let claims = person(&server, &["Signup.Read"]);

    // Act: two made-up kids within a minute: one fetch (the first one's).
    let first = outcome(
        &authenticator,
        bearer(&KEY_2.sign_as("made-up-1", &claims)),
        Role::Read,
    )
    .await;
    time.advance(MIN_REFRESH_INTERVAL - time::Duration::seconds(1));
    let second = outcome(
        &authenticator,
        bearer(&KEY_2.sign_as("made-up-2", &claims)),
        Role::Read,
    )
    .await;

    // Assert
    assert_eq!(first, refused(Rejection::UnknownKey));
    assert_eq!(second, refused(Rejection::UnknownKey));
    server.verify().await;

    // A minute after the last fetch, an unknown kid may fetch again: once.
    server.reset().await;
    jwks(TENANT, &[&KEY_1]).expect(1).mount(&server).await;
    time.advance(time::Duration::seconds(1));
    for kid in ["made-up-3", "made-up-4"] {
        let outcome = outcome(
            &authenticator,
            bearer(&KEY_2.sign_as(kid, &claims)),
            Role::Read,
        )
        .await;
        assert_eq!(outcome, refused(Rejection::UnknownKey), "{kid}");
    }
}

#[tokio::test]
async fn identity_provider_down_with_nothing_cached_is_unavailable_until_it_is_back() {
    let claims = |server: &MockServer| person(server, &["Signup.Read"]);
    let cases = [
        ("configuration answers 500", ResponseTemplate::new(500)),
        (
            "configuration is not JSON",
            ResponseTemplate::new(200).set_body_string("<html>"),
        ),
        (
            "configuration takes longer than the fetch timeout",
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(2))
                .set_body_json(json!({})),
        ),
    ];
    for (description, answer) in cases {
        // Arrange
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(answer).mount(&server).await;
        let (authenticator, _time) = authenticator_at(&server.uri(), Duration::from_millis(300));
        let token = bearer(&KEY_1.sign(&claims(&server)));

        // Act
        let down = outcome(&authenticator, token.clone(), Role::Read).await;
        server.reset().await;
        mount_tenant(&server, &[&KEY_1], 1).await;
        let back = outcome(&authenticator, token, Role::Read).await;

        // Assert: 503 while down; no minute to wait once it is back (nothing was cached).
        assert_eq!(down, Err(AuthError::Unavailable), "{description}");
        assert_eq!(back, Ok(ADMIN.into()), "{description}");
    }
}

#[tokio::test]
async fn identity_provider_unreachable_or_unusable_is_unavailable() {
    // Nothing listens: a port that was just free.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let authority = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let (unreachable, _time) = authenticator_at(&authority, Duration::from_secs(2));
    let claims = json!({"iss": identity::issuer(&authority, TENANT)});
    assert_eq!(
        outcome(&unreachable, bearer(&KEY_1.sign(&claims)), Role::Read).await,
        Err(AuthError::Unavailable),
        "connection refused"
    );

    let unusable = [
        (
            "jwks_uri on plain http off loopback",
            json!({"issuer": "x", "jwks_uri": "http://login.example/keys"}),
            json!({"keys": [KEY_1.jwk()]}),
        ),
        (
            "no RSA signing key in the JWKS",
            json!({}),
            json!({"keys": [{"kty": "EC", "kid": "ec", "crv": "P-256"}, changed(&KEY_1.jwk(), json!({"use": "enc"}))]}),
        ),
    ];
    for (description, configuration, keys) in unusable {
        let server = MockServer::start().await;
        let mut configuration = changed(
            &json!({"issuer": identity::issuer(&server.uri(), TENANT), "jwks_uri": format!("{}/keys", server.uri())}),
            configuration,
        );
        if description.starts_with("jwks_uri") {
            configuration["issuer"] = json!(identity::issuer(&server.uri(), TENANT));
        }
        Mock::given(path(format!(
            "/{TENANT}/v2.0/.well-known/openid-configuration"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(configuration))
        .mount(&server)
        .await;
        Mock::given(path("/keys"))
            .respond_with(ResponseTemplate::new(200).set_body_json(keys))
            .mount(&server)
            .await;
        let (authenticator, _time) = authenticator(&server);

        let outcome = outcome(
            &authenticator,
            bearer(&KEY_1.sign(&person(&server, &["Signup.Read"]))),
            Role::Read,
        )
        .await;

        assert_eq!(outcome, Err(AuthError::Unavailable), "{description}");
    }
}

#[tokio::test]
async fn identity_provider_down_with_keys_cached_still_validates() {
    // Arrange: keys cached, then the identity provider fails everything.
    let server = MockServer::start().await;
    mount_tenant(&server, &[&KEY_1], 1).await;
    let (authenticator, time) = authenticator(&server);
    let claims = person(&server, &["Signup.Read"]);
    assert!(
        outcome(&authenticator, bearer(&KEY_1.sign(&claims)), Role::Read)
            .await
            .is_ok()
    );
    server.verify().await;
    server.reset().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    time.advance(MIN_REFRESH_INTERVAL * 10);

    // Act
    let known = outcome(&authenticator, bearer(&KEY_1.sign(&claims)), Role::Read).await;
    let unknown = outcome(&authenticator, bearer(&KEY_2.sign(&claims)), Role::Read).await;
    // A failed refresh does not throw the cached keys away.
    let known_after_failed_refresh =
        outcome(&authenticator, bearer(&KEY_1.sign(&claims)), Role::Read).await;

    // Assert: a known key still validates; an unknown one is a 401, not a 503 (keys exist).
    assert_eq!(known, Ok(ADMIN.into()));
    assert_eq!(unknown, refused(Rejection::UnknownKey));
    assert_eq!(known_after_failed_refresh, Ok(ADMIN.into()));
}

#[tokio::test]
async fn concurrent_first_calls_fetch_each_document_once() {
    // Arrange: slow answers, so the 24 calls really overlap.
    let server = MockServer::start().await;
    let delay = Duration::from_millis(200);
    Mock::given(path(format!(
        "/{TENANT}/v2.0/.well-known/openid-configuration"
    )))
    .respond_with(openid_configuration_document(&server.uri(), TENANT).set_delay(delay))
    .expect(1)
    .mount(&server)
    .await;
    jwks(TENANT, &[&KEY_1]).expect(1).mount(&server).await;
    let (authenticator, _time) = authenticator(&server);
    let token = bearer(&KEY_1.sign(&person(&server, &["Signup.Read"])));

    // Act: each call on its own clone, as each request would have.
    let calls = (0..24).map(|_| {
        let authenticator = authenticator.clone();
        let token = token.clone();
        async move { outcome(&authenticator, token, Role::Read).await }
    });
    let outcomes = join_all(calls).await;

    // Assert (the mocks' `expect(1)` are checked when the server drops)
    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome == &Ok(ADMIN.to_owned())),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn concurrent_first_calls_share_one_failure() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&server)
        .await;
    let (authenticator, _time) = authenticator(&server);
    let token = bearer(&KEY_1.sign(&person(&server, &["Signup.Read"])));

    let outcomes =
        join_all((0..8).map(|_| outcome(&authenticator, token.clone(), Role::Read))).await;

    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome == &Err(AuthError::Unavailable)),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn tokens_never_reach_the_logs_only_the_failed_checks_name() {
    // Arrange: everything logged, at every level.
    let (logs, _guard) = test_support::logs::LogBuffer::capture();
    let server = MockServer::start().await;
    mount_tenant(&server, &[&KEY_1], 1).await;
    let (authenticator, _time) = authenticator(&server);
    let valid = KEY_1.sign(&person(&server, &["Signup.Read"]));
    let wrong_tenant = KEY_1.sign(&changed(
        &person(&server, &["Signup.Read"]),
        json!({"tid": OTHER_TENANT}),
    ));

    // Act
    let _ = outcome(&authenticator, bearer(&valid), Role::Approve).await;
    let _ = outcome(&authenticator, bearer(&wrong_tenant), Role::Read).await;

    // Assert
    let logs = logs.text();
    assert!(logs.contains("check=\"tid\""), "{logs}");
    assert!(logs.contains("Signup.Approve"), "{logs}");
    for token in [&valid, &wrong_tenant] {
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(!logs.contains(signature), "a token leaked into:\n{logs}");
    }
    assert!(!logs.contains(ADMIN), "{logs}");
}
