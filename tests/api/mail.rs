//! Mail and proof of address: a loopback stand-in for Azure Communication Services Email
//! (wiremock, reached through `SIGNUP_MAIL_ENDPOINT` as an operator would set it) records
//! every send; the tests read the mails' links as a partner would and click them.

use std::time::Duration;

use b2b_signup::{
    app::{Application, StartupError},
    domain::{HistoryAction, MailKind, RequestStatus},
    mail::{MailOptions, sign::signature},
};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::{TestApp, default_policy, settings_for, spawn_app_with, write_policy};

/// The made-up access key the tests sign with (base64 of a readable text).
const KEY: &str = "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1hLXNlY3JldA==";
const ORG: &str = "Contoso Ltd";

/// The helpers' policy with proof of address on (its default).
fn verifying_policy() -> String {
    default_policy().replace(r#""verifyEmail": false,"#, "")
}

fn mail_options(acs: &MockServer) -> MailOptions {
    let uri = acs.uri();
    MailOptions::from_lookup(&|name: &str| match name {
        "SIGNUP_MAIL_ENDPOINT" => Some(uri.clone()),
        "SIGNUP_MAIL_SENDER" => Some("DoNotReply@contoso.example".into()),
        "SIGNUP_MAIL_ACCESS_KEY" => Some(KEY.into()),
        "SIGNUP_MAIL_TIMEOUT_SECONDS" => Some("2".into()),
        "SIGNUP_ORG_NAME" => Some(ORG.into()),
        "SIGNUP_APPROVER_EMAILS" => Some("approver@contoso.example".into()),
        _ => None,
    })
    .expect("valid mail settings")
}

async fn spawn_mail_app(acs: &MockServer) -> TestApp {
    let mail = mail_options(acs);
    spawn_app_with(&verifying_policy(), move |settings| {
        settings.mail = mail;
        settings.site_url =
            b2b_signup::site_base::SiteBase::parse("http://127.0.0.1:9/site/").unwrap();
    })
    .await
}

async fn accepting_acs() -> MockServer {
    let acs = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/emails:send"))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(json!({"id": "x", "status": "Running"})),
        )
        .mount(&acs)
        .await;
    acs
}

/// One mail as the stand-in received it.
struct Caught {
    headers: wiremock::http::HeaderMap,
    url: url::Url,
    body: Vec<u8>,
    json: Value,
}

impl Caught {
    fn to(&self) -> &str {
        self.json["recipients"]["to"][0]["address"]
            .as_str()
            .unwrap()
    }
    fn subject(&self) -> &str {
        self.json["content"]["subject"].as_str().unwrap()
    }
    fn text(&self) -> &str {
        self.json["content"]["plainText"].as_str().unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
    /// The token of the verification link in the text part.
    fn token(&self) -> String {
        let text = self.text();
        let start = text.find("verify.html#t=").expect("a verification link") + 14;
        text[start..].split_whitespace().next().unwrap().to_owned()
    }
}

/// Waits (bounded) until the stand-in has at least `n` mails, and returns them all.
async fn mails(acs: &MockServer, n: usize) -> Vec<Caught> {
    for _ in 0..100 {
        let received = acs.received_requests().await.unwrap_or_default();
        if received.len() >= n {
            return received
                .into_iter()
                .map(|r| Caught {
                    json: serde_json::from_slice(&r.body).expect("JSON body"),
                    headers: r.headers,
                    url: r.url,
                    body: r.body,
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} mails at the stand-in");
}

impl TestApp {
    async fn verify(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/verify", self.address))
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_sign_up_waits_for_proof_of_address_and_the_mailed_link_moves_it_on() {
    // Arrange
    let acs = accepting_acs().await;
    let app = spawn_mail_app(&acs).await;

    // Act: sign up; nothing but the mail happens.
    let (id, status) = app.sign_up("ada@contoso.com").await;

    // Assert
    assert_eq!(status, "pending_verification");
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::PendingVerification);
    assert!(
        app.queued_messages().await.is_empty(),
        "nothing queued before the proof"
    );
    let mail = &mails(&acs, 1).await[0];
    assert_eq!(mail.to(), "ada@contoso.com");
    assert!(mail.subject().contains(ORG), "{}", mail.subject());
    assert!(
        mail.text()
            .contains("http://127.0.0.1:9/site/verify.html#t=")
    );
    let token = mail.token();
    let stored = row.verification.unwrap();
    assert!(
        !format!("{stored:?}").contains(&token),
        "only a digest is stored"
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.mail_owed, None, "the sent mail is no longer owed");

    // Act: the partner clicks.
    let response = app.verify(&token).await;

    // Assert
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"requestId": id, "status": "queued", "changed": true})
    );
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::Accepted);
    let last = row.history.entries().last().unwrap();
    assert_eq!(
        (last.action, last.actor.to_string(), last.from, last.to),
        (
            HistoryAction::Verified,
            "partner".to_owned(),
            Some(RequestStatus::PendingVerification),
            RequestStatus::Accepted
        )
    );
    assert_eq!(app.queued_messages().await.len(), 1);

    // A link opened twice: already done, nothing changes.
    let again: Value = app.verify(&token).await.json().await.unwrap();
    assert_eq!(again["changed"], false);
    assert_eq!(app.queued_messages().await.len(), 1);
}

#[tokio::test]
async fn the_request_is_the_documented_acs_call_signed_with_the_access_key() {
    let acs = accepting_acs().await;
    let app = spawn_mail_app(&acs).await;
    app.sign_up("ada@contoso.com").await;
    let mail = &mails(&acs, 1).await[0];

    assert_eq!(mail.url.query(), Some("api-version=2023-03-31"));
    assert_eq!(mail.json["senderAddress"], "DoNotReply@contoso.example");
    assert_eq!(mail.json["userEngagementTrackingDisabled"], true);
    assert!(
        mail.json["content"]["html"]
            .as_str()
            .unwrap()
            .contains("<a href=")
    );
    // The body's hash, and the signature over verb, path and query, date, host and hash.
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&mail.body));
    assert_eq!(mail.header("x-ms-content-sha256"), hash);
    // The Host header as received, which is what the service checks.
    let host = mail.header("host");
    assert_eq!(host, acs.address().to_string());
    let signed = format!(
        "POST\n/emails:send?api-version=2023-03-31\n{};{host};{hash}",
        mail.header("x-ms-date")
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    assert_eq!(
        mail.header("authorization"),
        format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={}",
            signature(&key, &signed)
        )
    );
    // Idempotency: one id for both headers, a well-formed UUID, and an HTTP date.
    let id = mail.header("repeatability-request-id");
    assert_eq!(mail.header("operation-id"), id);
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert!(mail.header("repeatability-first-sent").ends_with(" GMT"));
}

#[tokio::test]
async fn bad_reused_and_expired_links_change_nothing() {
    let acs = accepting_acs().await;
    let app = spawn_mail_app(&acs).await;
    let (id, _) = app.sign_up("ada@contoso.com").await;
    let token = mails(&acs, 1).await[0].token();
    let tampered = {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = "A".repeat(43);
        parts.join(".")
    };

    for (description, text) in [
        ("garbage", "hello".to_owned()),
        ("tampered secret", tampered),
        (
            "unknown request",
            token.replacen(&id, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 1),
        ),
    ] {
        let response = app.verify(&text).await;
        assert_eq!(response.status(), 400, "{description}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_token", "{description}");
    }
    let not_json = app
        .http
        .post(format!("{}/api/verify", app.address))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);

    // 25 hours later the link has expired: 410, and the row is still waiting.
    app.time.advance(time::Duration::hours(25));
    let expired = app.verify(&token).await;
    assert_eq!(expired.status(), 410);
    assert_eq!(
        expired.json::<Value>().await.unwrap()["code"],
        "verification_expired"
    );
    assert_eq!(
        app.row("contoso.com", &id).await.unwrap().status,
        RequestStatus::PendingVerification
    );

    // Signing up again mails a new link at once; the old one no longer works.
    let (again, status) = app.sign_up("ada@contoso.com").await;
    assert_eq!(
        (again.as_str(), status.as_str()),
        (id.as_str(), "pending_verification")
    );
    let new_token = mails(&acs, 2).await[1].token();
    assert_ne!(new_token, token);
    assert_eq!(app.verify(&token).await.status(), 400);
    assert_eq!(app.verify(&new_token).await.status(), 200);
}

#[tokio::test]
async fn a_repeat_sign_up_mails_the_link_again_at_most_once_per_ten_minutes() {
    let acs = accepting_acs().await;
    let app = spawn_mail_app(&acs).await;
    app.sign_up("ada@contoso.com").await;
    mails(&acs, 1).await;

    app.sign_up("ada@contoso.com").await;
    app.time.advance(time::Duration::minutes(9));
    app.sign_up("ada@contoso.com").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        acs.received_requests().await.unwrap().len(),
        1,
        "no second mail within 10 minutes"
    );

    app.time.advance(time::Duration::minutes(2));
    app.sign_up("ada@contoso.com").await;
    assert_eq!(mails(&acs, 2).await.len(), 2);
}

#[tokio::test]
async fn an_approval_rule_waits_after_the_proof_and_partner_approver_and_denial_are_told() {
    let acs = accepting_acs().await;
    let app = spawn_mail_app(&acs).await;
    let (id, _) = app.sign_up("grace@fabrikam.com").await;
    let token = mails(&acs, 1).await[0].token();

    let body: Value = app.verify(&token).await.json().await.unwrap();
    assert_eq!(body["status"], "pending_approval");
    let row = app.row("fabrikam.com", &id).await.unwrap();
    assert_eq!(row.status, RequestStatus::PendingApproval);
    assert!(
        row.decide_by.is_some(),
        "the deadline starts with the proof"
    );

    // The approver's notice (domain and console, not the person) and the partner's.
    let sent = mails(&acs, 3).await;
    let approver = sent
        .iter()
        .find(|m| m.to() == "approver@contoso.example")
        .unwrap();
    assert!(approver.text().contains("fabrikam.com") && !approver.text().contains("grace"));
    assert!(
        approver
            .text()
            .contains(&format!("console/#/requests/{id}"))
    );
    let waiting = sent
        .iter()
        .skip(1)
        .find(|m| m.to() == "grace@fabrikam.com")
        .unwrap();
    assert!(
        waiting.subject().contains("waiting for approval"),
        "{}",
        waiting.subject()
    );

    // A denial whose reason the administrator shares.
    let response = app
        .admin(reqwest::Method::POST, &format!("requests/{id}/deny"))
        .json(&json!({"reason": "not a current partner", "shareReason": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = mails(&acs, 4).await;
    let denial = &sent[3];
    assert_eq!(denial.to(), "grace@fabrikam.com");
    assert!(
        denial.text().contains("not a current partner"),
        "{}",
        denial.text()
    );
}

#[tokio::test]
async fn a_mail_outage_never_loses_a_sign_up_and_reconcile_sends_what_is_owed() {
    // The stand-in fails every send until it recovers.
    let acs = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&acs)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&acs)
        .await;
    let app = spawn_mail_app(&acs).await;

    let (id, status) = app.sign_up("ada@contoso.com").await;
    assert_eq!(
        status, "pending_verification",
        "the sign-up answers 202 whatever mail does"
    );
    mails(&acs, 3).await; // one send, tried three times
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(
        row.mail_owed.map(|m| m.kind),
        Some(MailKind::Verify),
        "still owed"
    );

    // Reconcile sends what has been owed for the stale age (2 minutes in these tests).
    app.time.advance(time::Duration::minutes(1));
    app.reconcile().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(acs.received_requests().await.unwrap().len(), 3, "not yet");
    app.time.advance(time::Duration::minutes(2));
    app.reconcile().await;

    let sent = mails(&acs, 4).await;
    assert_eq!(sent.len(), 4);
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.mail_owed, None);
    // The mail that went out carries a link that works.
    assert_eq!(app.verify(&sent[3].token()).await.status(), 200);
}

#[tokio::test]
async fn a_policy_asking_for_proof_of_address_without_mail_does_not_start() {
    let azurite = test_support::Azurite::start();
    let policy = write_policy(&verifying_policy());
    let settings = settings_for(&azurite.connection_string(), policy.path().to_owned());
    let error = Application::build(&settings).await.err().expect("refused");
    assert!(matches!(error, StartupError::VerifyWithoutMail), "{error}");
    assert!(error.to_string().contains("SIGNUP_MAIL_ENDPOINT"));
}

#[tokio::test]
async fn the_mail_ends_with_the_support_contact_and_the_privacy_notice_from_the_settings() {
    // Arrange: branding settings through the same lookup an operator's settings go through.
    let acs = accepting_acs().await;
    let uri = acs.uri();
    let mail = MailOptions::from_lookup(&|name: &str| match name {
        "SIGNUP_MAIL_ENDPOINT" => Some(uri.clone()),
        "SIGNUP_MAIL_SENDER" => Some("DoNotReply@contoso.example".into()),
        "SIGNUP_MAIL_ACCESS_KEY" => Some(KEY.into()),
        "SIGNUP_ORG_NAME" => Some(ORG.into()),
        "SIGNUP_SUPPORT_CONTACT" => Some("https://contoso.example/help?a=1&b=2".into()),
        "SIGNUP_PRIVACY_URL" => Some("/privacy.html".into()),
        _ => None,
    })
    .expect("valid mail settings");
    let app = spawn_app_with(&verifying_policy(), move |settings| {
        settings.mail = mail;
        settings.site_url =
            b2b_signup::site_base::SiteBase::parse("http://127.0.0.1:9/site/").unwrap();
    })
    .await;

    // Act
    app.sign_up("ada@contoso.com").await;

    // Assert
    let sent = &mails(&acs, 1).await[0];
    assert!(
        sent.text().contains(
            "Questions? Contact https://contoso.example/help?a=1&b=2\nHow we handle your information: http://127.0.0.1:9/privacy.html"
        ),
        "{}",
        sent.text()
    );
    let html = sent.json["content"]["html"].as_str().unwrap();
    assert!(
        html.contains("<a href=\"https://contoso.example/help?a=1&amp;b=2\">"),
        "{html}"
    );
    assert!(
        html.contains("href=\"http://127.0.0.1:9/privacy.html\""),
        "{html}"
    );
}

#[test]
fn a_bad_branding_setting_stops_the_mail_settings_naming_it() {
    let error = MailOptions::from_lookup(&|name: &str| {
        (name == "SIGNUP_SUPPORT_CONTACT").then(|| "javascript:alert(1)".to_owned())
    })
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("SIGNUP_SUPPORT_CONTACT must be"),
        "{error}"
    );
}
