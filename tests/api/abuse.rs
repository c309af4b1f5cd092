//! Abuse resistance: a hostile-input table, captcha, honeypot, terms, rate limits (also
//! shared by two instances), and client-IP header tricks.

use std::time::Duration;

use b2b_signup::{
    abuse::{CaptchaProvider, CaptchaSettings, RateLimitSettings, Secret},
    app::Application,
};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

use crate::helpers::{
    GROUP_A, TestApp, assert_problem, settings_for, spawn_app_with, write_policy,
};

fn policy_with_terms() -> String {
    format!(
        r#"{{
        "defaultAction": "deny", "verifyEmail": false,
        "terms": {{ "version": "2026-01", "url": "https://contoso.example/terms" }},
        "accessOptions": {{
            "partner-portal": {{ "displayName": "Partner portal", "groups": ["{GROUP_A}"] }},
            "admin-tools": {{ "displayName": "Admin tools", "groups": ["99999999-9999-9999-9999-999999999999"] }}
        }},
        "rules": [
            {{ "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal"] }},
            {{ "domains": ["xn--mnchen-3ya.de"], "action": "invite", "access": ["partner-portal"] }},
            {{ "domains": ["*.fabrikam.com"], "action": "approve", "access": ["partner-portal"] }},
            {{ "domains": ["partners.contoso.net"], "action": "invite", "access": ["partner-portal"] }},
            {{ "domains": ["gmail.com"], "action": "deny" }}
        ]
    }}"#
    )
}

/// A captcha provider that passes the token `good-token` only.
async fn captcha_provider() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/siteverify"))
        .and(body_string_contains("response=good-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/siteverify"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"success": false, "error-codes": ["invalid-input-response"]}),
            ),
        )
        .mount(&server)
        .await;
    server
}

fn turnstile(server: &MockServer) -> CaptchaSettings {
    CaptchaSettings {
        provider: CaptchaProvider::Turnstile,
        secret: Secret::new("captcha-secret-value"),
        verify_url: reqwest::Url::parse(&format!("{}/siteverify", server.uri())).unwrap(),
    }
}

async fn guarded_app(captcha: &MockServer) -> TestApp {
    let settings = turnstile(captcha);
    spawn_app_with(&policy_with_terms(), move |s| s.captcha = Some(settings)).await
}

/// A valid body with `overrides` merged in (`null` removes a field).
fn body(overrides: serde_json::Value) -> String {
    let mut base = json!({
        "email": "ada@contoso.com",
        "displayName": "Ada Lovelace",
        "acceptTerms": "2026-01",
        "captchaToken": "good-token"
    });
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(key);
        } else {
            base[key] = value.clone();
        }
    }
    base.to_string()
}

/// (description, content type, body, status, code or "" for 202)
type Case = (&'static str, &'static str, String, u16, &'static str);

fn email(address: &str) -> String {
    body(json!({ "email": address }))
}

fn hostile_cases() -> Vec<Case> {
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let valid_form = "email=ada%40contoso.com&displayName=Ada&acceptTerms=2026-01&cf-turnstile-response=good-token";
    vec![
        // --- e-mail parsing and normalisation ---
        ("plain valid", json, email("ada@contoso.com"), 202, ""),
        ("upper-case domain", json, email("ada@CONTOSO.COM"), 202, ""),
        ("trailing dot", json, email("ada@contoso.com."), 202, ""),
        ("fullwidth letters map to the same domain", json, email("ada@ｃｏｎｔｏｓｏ.com"), 202, ""),
        ("unicode domain allowed by its punycode rule", json, email("ada@münchen.de"), 202, ""),
        ("two trailing dots", json, email("ada@contoso.com.."), 400, "invalid_email"),
        ("null byte in local part", json, email("ada\u{0}@contoso.com"), 400, "invalid_email"),
        ("null byte in domain", json, email("ada@contoso.com\u{0}.evil.example"), 400, "invalid_email"),
        ("CRLF header injection", json, email("ada@contoso.com\r\nBcc: victim@evil.example"), 400, "invalid_email"),
        ("newline", json, email("ada\n@contoso.com"), 400, "invalid_email"),
        ("tab", json, email("ada\t@contoso.com"), 400, "invalid_email"),
        ("RTL override in local part", json, email("ada\u{202e}moc@contoso.com"), 400, "invalid_email"),
        ("zero-width space in domain", json, email("ada@con\u{200b}toso.com"), 202, ""),
        ("HTML in local part", json, email("<script>@contoso.com"), 400, "invalid_email"),
        ("SQL-ish local part", json, email("a';DROP TABLE x;--@contoso.com"), 400, "invalid_email"),
        ("OData-ish local part", json, email("a' or '1' eq '1@contoso.com"), 400, "invalid_email"),
        ("percent-encoded at sign", json, email("ada%40contoso.com"), 400, "invalid_email"),
        ("comment syntax", json, email("ada(comment)@contoso.com"), 400, "invalid_email"),
        ("quoted local part", json, email("\"ada lovelace\"@contoso.com"), 400, "invalid_email"),
        ("escaped at in quotes", json, email("\"a@b\"@contoso.com"), 400, "invalid_email"),
        ("plus addressing (Graph refuses)", json, email("ada+spam@contoso.com"), 400, "invalid_email"),
        ("source route", json, email("@relay.example:ada@contoso.com"), 400, "invalid_email"),
        ("IP literal", json, email("ada@[203.0.113.5]"), 400, "invalid_email"),
        ("IPv6 literal", json, email("ada@[IPv6:2001:db8::1]"), 400, "invalid_email"),
        ("dotted quad", json, email("ada@203.0.113.5"), 400, "invalid_email"),
        ("single label", json, email("ada@localhost"), 400, "invalid_email"),
        ("invalid punycode", json, email("ada@xn--zz.com"), 400, "invalid_email"),
        ("label with leading hyphen", json, email("ada@-contoso.com"), 400, "invalid_email"),
        ("64-char label", json, email(&format!("ada@{}.com", "a".repeat(64))), 400, "invalid_email"),
        ("65-char local part", json, email(&format!("{}@contoso.com", "a".repeat(65))), 400, "invalid_email"),
        ("non-ASCII local part", json, email("adà@contoso.com"), 400, "invalid_email"),
        ("emoji local part", json, email("🦀@contoso.com"), 400, "invalid_email"),
        ("several addresses with semicolon", json, email("ada@contoso.com;eve@evil.example"), 400, "invalid_email"),
        ("several addresses with comma", json, email("ada@contoso.com,eve@evil.example"), 400, "invalid_email"),
        ("several addresses with space", json, email("ada@contoso.com eve@evil.example"), 400, "invalid_email"),
        ("display-name form", json, email("Ada <ada@contoso.com>"), 400, "invalid_email"),
        ("mailto prefix", json, email("mailto:ada@contoso.com"), 400, "invalid_email"),
        ("empty", json, email(""), 400, "invalid_email"),
        ("email as array", json, body(json!({"email": ["ada@contoso.com"]})), 400, "invalid_request"),
        ("email as object", json, body(json!({"email": {"$ne": ""}})), 400, "invalid_request"),
        ("email as boolean", json, body(json!({"email": true})), 400, "invalid_request"),
        // --- policy bypass attempts ---
        ("suffix without a dot", json, email("eve@evilcontoso.com"), 403, "domain_not_allowed"),
        ("allowed name as a subdomain of evil", json, email("eve@contoso.com.evil.example"), 403, "domain_not_allowed"),
        ("subdomain of an exact-only rule", json, email("eve@mail.contoso.com"), 403, "domain_not_allowed"),
        ("Cyrillic look-alike domain", json, email("eve@соntoso.com"), 403, "domain_not_allowed"),
        ("Greek look-alike letter", json, email("eve@cοntoso.com"), 403, "domain_not_allowed"),
        ("parent of an allowed subdomain rule", json, email("eve@contoso.net"), 403, "domain_not_allowed"),
        ("apex of a wildcard-only rule", json, email("eve@fabrikam.com"), 403, "domain_not_allowed"),
        ("wildcard rule covers a subdomain", json, email("grace@eu.fabrikam.com"), 202, ""),
        ("denied consumer domain", json, email("eve@gmail.com"), 403, "domain_not_allowed"),
        ("denied domain upper-case", json, email("eve@GMAIL.COM"), 403, "domain_not_allowed"),
        ("denied domain with trailing dot", json, email("eve@gmail.com."), 403, "domain_not_allowed"),
        ("unlisted domain", json, email("eve@example.org"), 403, "domain_not_allowed"),
        ("domain with path", json, email("eve@contoso.com/evil"), 400, "invalid_email"),
        ("domain with port", json, email("eve@contoso.com:25"), 400, "invalid_email"),
        ("domain with userinfo trick", json, email("eve@contoso.com@evil.example"), 400, "invalid_email"),
        ("backslash", json, email("eve\\@contoso.com"), 400, "invalid_email"),
        // --- group escalation through access ---
        ("access the rule does not allow", json, body(json!({"access": "admin-tools"})), 403, "access_not_allowed"),
        ("access in upper case", json, body(json!({"access": "PARTNER-PORTAL"})), 403, "access_not_allowed"),
        ("access path traversal", json, body(json!({"access": "../admin-tools"})), 403, "access_not_allowed"),
        ("access as group id", json, body(json!({"access": "99999999-9999-9999-9999-999999999999"})), 403, "access_not_allowed"),
        ("access as list", json, body(json!({"access": ["partner-portal", "admin-tools"]})), 400, "invalid_request"),
        ("access with spaces is trimmed", json, body(json!({"access": " partner-portal "})), 202, ""),
        ("groups field is ignored", json, body(json!({"groups": ["99999999-9999-9999-9999-999999999999"]})), 202, ""),
        ("status field is ignored", json, body(json!({"status": "Invited", "requestId": "01JDQ3Z6W1T2V3X4Y5Z6A7B8C9"})), 202, ""),
        // --- display name and free text ---
        ("display name with newline", json, body(json!({"displayName": "Ada\nLovelace"})), 400, "invalid_display_name"),
        ("display name with escape codes", json, body(json!({"displayName": "\u{1b}[2J"})), 400, "invalid_display_name"),
        ("display name with bidi override", json, body(json!({"displayName": "Ada\u{202e}"})), 202, ""),
        ("display name 256 chars", json, body(json!({"displayName": "é".repeat(256)})), 202, ""),
        ("display name 257 chars", json, body(json!({"displayName": "é".repeat(257)})), 400, "invalid_display_name"),
        ("display name only spaces", json, body(json!({"displayName": "   "})), 400, "invalid_display_name"),
        ("display name as number", json, body(json!({"displayName": 42})), 400, "invalid_request"),
        ("HTML in display name is stored as text", json, body(json!({"displayName": "<img src=x onerror=alert(1)>"})), 202, ""),
        ("company 201 chars", json, body(json!({"company": "x".repeat(201)})), 400, "invalid_field"),
        ("company with formula", json, body(json!({"company": "=cmd|' /C calc'!A0"})), 202, ""),
        ("company with control character", json, body(json!({"company": "Contoso\u{7}"})), 400, "invalid_field"),
        ("justification 1001 chars", json, body(json!({"justification": "x".repeat(1001)})), 400, "invalid_field"),
        ("justification with newlines", json, body(json!({"justification": "line\nline"})), 202, ""),
        // --- body and header tricks ---
        ("no content type", "", email("ada@contoso.com"), 415, "unsupported_media_type"),
        ("text/plain", "text/plain", email("ada@contoso.com"), 415, "unsupported_media_type"),
        ("application/json-seq", "application/json-seq", email("ada@contoso.com"), 415, "unsupported_media_type"),
        ("JSON with charset", "application/json; charset=utf-8", email("ada@contoso.com"), 202, ""),
        ("JSON declared, form sent", json, valid_form.to_owned(), 400, "invalid_request"),
        ("form declared, JSON sent", form, email("ada@contoso.com"), 400, "invalid_email"),
        ("JSON array body", json, "[]".to_owned(), 400, "invalid_request"),
        ("JSON null body", json, "null".to_owned(), 400, "invalid_request"),
        ("deeply nested field value", json, body(json!({"email": null})).replace('}', &format!(",\"email\":{}1{}}}", "[".repeat(200), "]".repeat(200))), 400, "invalid_request"),
        ("16 KiB of nesting in an unknown field is skipped, not recursed", json, body(json!({})).replace('}', &format!(",\"x\":{}{}}}", "[".repeat(8000), "]".repeat(8000))), 202, ""),
        ("trailing garbage after JSON", json, format!("{} x", email("ada@contoso.com")), 400, "invalid_request"),
        ("duplicate JSON key", json, r#"{"email":"ada@contoso.com","email":"eve@gmail.com","displayName":"A"}"#.to_owned(), 400, "invalid_request"),
        ("escaped key spelling the same field", json, r#"{"\u0065mail":"ada@contoso.com","displayName":"Ada","acceptTerms":"2026-01","captchaToken":"good-token"}"#.to_owned(), 202, ""),
        ("byte order mark", json, format!("\u{feff}{}", email("ada@contoso.com")), 400, "invalid_request"),
        ("invalid UTF-8 in form", form, "email=ada%40contoso.com&displayName=%C3%28".to_owned(), 400, "invalid_request"),
        ("duplicate form field", form, format!("{valid_form}&email=eve%40gmail.com"), 400, "invalid_request"),
        ("valid form post", form, valid_form.to_owned(), 202, ""),
        ("form with plus as space", form, valid_form.replace("displayName=Ada", "displayName=Ada+Lovelace"), 202, ""),
        ("form field names are case-sensitive", form, valid_form.replace("email=", "EMAIL="), 400, "invalid_email"),
        ("oversized body", json, body(json!({"justification": "x".repeat(17 * 1024)})), 413, "payload_too_large"),
        // --- captcha ---
        ("captcha token missing", json, body(json!({"captchaToken": null})), 400, "captcha_failed"),
        ("captcha token wrong", json, body(json!({"captchaToken": "forged"})), 400, "captcha_failed"),
        ("captcha token blank", json, body(json!({"captchaToken": "  "})), 400, "captcha_failed"),
        ("captcha token too long", json, body(json!({"captchaToken": "g".repeat(5000)})), 400, "captcha_failed"),
        ("captcha token as number", json, body(json!({"captchaToken": 1})), 400, "invalid_request"),
        ("captcha in the provider's own field", json, body(json!({"captchaToken": null, "cf-turnstile-response": "good-token"})), 202, ""),
        ("another provider's field is not read", json, body(json!({"captchaToken": null, "h-captcha-response": "good-token"})), 400, "captcha_failed"),
        // --- honeypot ---
        ("honeypot filled", json, body(json!({"website": "http://spam.example"})), 202, ""),
        ("honeypot whitespace only", json, body(json!({"website": "  "})), 202, ""),
        ("honeypot as number", json, body(json!({"website": 1})), 202, ""),
        // --- terms ---
        ("terms missing", json, body(json!({"acceptTerms": null})), 400, "invalid_field"),
        ("terms as true", json, body(json!({"acceptTerms": "true"})), 400, "invalid_field"),
        ("older terms version", json, body(json!({"acceptTerms": "2025-06"})), 400, "invalid_field"),
        ("terms version with spaces", json, body(json!({"acceptTerms": " 2026-01 "})), 202, ""),
        ("terms as boolean", json, body(json!({"acceptTerms": true})), 400, "invalid_request"),
    ]
}

#[tokio::test]
async fn a_hundred_hostile_inputs_get_the_right_answer() {
    let captcha = captcha_provider().await;
    let app = guarded_app(&captcha).await;
    let cases = hostile_cases();
    assert!(cases.len() >= 100, "{} cases", cases.len());

    for (description, content_type, body, status, code) in cases {
        let mut request = app
            .http
            .post(format!("{}/api/signup", app.address))
            .body(body);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{description}: {text}");
        if code.is_empty() {
            assert!(text.contains("requestId"), "{description}: {text}");
        } else {
            let problem: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(problem["code"], code, "{description}: {text}");
            assert!(
                !text.contains("captcha-secret-value") && !text.contains("evil.example"),
                "{description}: nothing echoed: {text}"
            );
        }
    }
}

#[tokio::test]
async fn accepted_terms_are_recorded_and_injected_fields_change_nothing() {
    let captcha = captcha_provider().await;
    let app = guarded_app(&captcha).await;
    let response = app
        .post_json(&body(json!({"groups": ["99999999-9999-9999-9999-999999999999"], "access": null, "status": "Invited"})))
        .await;
    let id = response.json::<serde_json::Value>().await.unwrap()["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = app.row("contoso.com", &id).await.unwrap();
    assert_eq!(row.terms_version.as_deref(), Some("2026-01"));
    assert_eq!(row.access.as_str(), "partner-portal");
    assert_eq!(row.status, b2b_signup::domain::RequestStatus::Accepted);
}

#[tokio::test]
async fn the_captcha_gets_the_secret_and_the_client_ip_and_fails_closed() {
    let captcha = captcha_provider().await;
    let app = guarded_app(&captcha).await;
    let response = app
        .http
        .post(format!("{}/api/signup", app.address))
        .header("content-type", "application/json")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9:40000")
        .body(body(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let sent =
        String::from_utf8(captcha.received_requests().await.unwrap()[0].body.clone()).unwrap();
    assert!(
        sent.contains("secret=captcha-secret-value") && sent.contains("response=good-token"),
        "{sent}"
    );
    assert!(
        sent.contains("remoteip=203.0.113.9"),
        "the address the front end appended: {sent}"
    );
}

#[tokio::test]
async fn an_unreachable_or_failing_captcha_provider_fails_closed() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let erroring = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&erroring)
        .await;

    for verify_url in [
        format!("http://127.0.0.1:{port}/siteverify"),
        format!("{}/siteverify", erroring.uri()),
    ] {
        let settings = CaptchaSettings {
            provider: CaptchaProvider::Turnstile,
            secret: Secret::new("captcha-secret-value"),
            verify_url: reqwest::Url::parse(&verify_url).unwrap(),
        };
        let app = spawn_app_with(&policy_with_terms(), move |s| s.captcha = Some(settings)).await;

        let response = app.post_json(&body(json!({}))).await;

        assert_eq!(response.headers()["retry-after"], "30");
        assert_problem(response, 503, "service_unavailable").await;
        assert!(app.queued_messages().await.is_empty(), "nothing stored");
    }
}

async fn limited_app(limits: &str) -> TestApp {
    limited_app_behind(limits, 1).await
}

/// With `hops` trusted proxies (`SIGNUP_TRUSTED_PROXY_HOPS`).
async fn limited_app_behind(limits: &str, hops: usize) -> TestApp {
    let limits = RateLimitSettings::parse(limits).unwrap();
    spawn_app_with(&crate::helpers::default_policy(), move |s| {
        s.rate_limits = limits;
        s.trusted_proxy_hops = hops;
    })
    .await
}

impl TestApp {
    async fn sign_up_from(&self, email: &str, forwarded_for: &str) -> reqwest::Response {
        self.sign_up_with(email, Some(forwarded_for.as_bytes()))
            .await
    }

    /// A sign-up with `X-Forwarded-For` as raw bytes (a client may send any), or without one.
    async fn sign_up_with(&self, email: &str, forwarded_for: Option<&[u8]>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/api/signup", self.address))
            .json(&json!({"email": email, "displayName": "Someone"}));
        if let Some(value) = forwarded_for {
            let value = reqwest::header::HeaderValue::from_bytes(value).unwrap();
            request = request.header("x-forwarded-for", value);
        }
        request.send().await.unwrap()
    }

    /// Statuses of `n` sign-ups (new addresses) with `forwarded_for`.
    async fn statuses_from(&self, tag: &str, n: usize, forwarded_for: Option<&[u8]>) -> Vec<u16> {
        let mut statuses = Vec::new();
        for i in 0..n {
            let response = self
                .sign_up_with(&format!("{tag}{i}@contoso.com"), forwarded_for)
                .await;
            statuses.push(response.status().as_u16());
        }
        statuses
    }
}

#[tokio::test]
async fn a_byte_that_is_not_text_does_not_switch_the_ip_limit_off() {
    // Behind Front Door (two trusted hops), as the issue reproduced it: the same header in
    // ASCII and with one byte that is not text both get 429 from the 6th sign-up.
    for (description, header) in [
        ("ASCII", &b"198.51.100.7, 203.0.113.78"[..]),
        ("not text", &b"198.51.100.7\xff, 203.0.113.78"[..]),
    ] {
        let app = limited_app_behind("ip=5/1h,domain=100/1h,address=100/1d", 2).await;
        let statuses = app.statuses_from("u", 7, Some(header)).await;
        assert_eq!(
            statuses,
            [202, 202, 202, 202, 202, 429, 429],
            "{description}"
        );
    }

    // The byte in the client's own entry spoils that entry only: the trusted entries are
    // read, and the sign-ups count against the address the proxies reported.
    let app = limited_app_behind("ip=5/1h,domain=100/1h,address=100/1d", 2).await;
    let spoiled = app
        .statuses_from(
            "a",
            3,
            Some(b"198.51.100.7\xff, 203.0.113.78, 10.0.0.4:5000"),
        )
        .await;
    let clean = app
        .statuses_from("b", 3, Some(b"192.0.2.1, 203.0.113.78, 10.0.0.4:5000"))
        .await;
    assert_eq!((spoiled, clean), (vec![202; 3], vec![202, 202, 429]));
    assert_eq!(
        app.statuses_from("c", 1, Some(b"203.0.113.79, 10.0.0.4"))
            .await,
        [202],
        "another client is not affected"
    );
}

#[tokio::test]
async fn sign_ups_without_a_known_address_share_one_bucket() {
    let app = limited_app("ip=3/1h,domain=100/1h,address=100/1d").await;
    // No header (the front end always adds one), an entry that is not an address, and one
    // that is not text: no client address, one shared bucket.
    let unknown: [Option<&[u8]>; 4] = [None, Some(b"not-an-ip"), Some(b"\xff\xfe"), None];
    let mut statuses = Vec::new();
    for (i, header) in unknown.into_iter().enumerate() {
        statuses.extend(app.statuses_from(&format!("n{i}-"), 1, header).await);
    }
    assert_eq!(statuses, [202, 202, 202, 429]);
    // Two trusted hops and one entry: a call that bypassed a proxy is unknown too.
    let app = limited_app_behind("ip=2/1h,domain=100/1h,address=100/1d", 2).await;
    assert_eq!(
        app.statuses_from("d", 3, Some(b"203.0.113.78")).await,
        [202, 202, 429]
    );
    assert_eq!(
        app.statuses_from("e", 1, None).await,
        [429],
        "the same bucket"
    );
    // A client whose address is known has a bucket of its own.
    assert_eq!(
        app.statuses_from("f", 1, Some(b"203.0.113.78, 10.0.0.4"))
            .await,
        [202]
    );
}

#[tokio::test]
async fn no_trusted_hops_turns_the_ip_limit_off_by_setting() {
    // SIGNUP_TRUSTED_PROXY_HOPS=0 trusts no entry: the IP limit is off by configuration,
    // while the domain and address limits still count.
    let app = limited_app_behind("ip=2/1h,domain=4/1h,address=100/1d", 0).await;
    assert_eq!(
        app.statuses_from("g", 5, Some(b"203.0.113.78")).await,
        [202, 202, 202, 202, 429]
    );
}

#[tokio::test]
async fn the_ip_limit_cannot_be_dodged_by_prepending_addresses() {
    let app = limited_app("ip=3/1h,domain=100/1h,address=100/1d").await;
    for i in 0..3 {
        let spoof = format!("10.0.0.{i}, 192.0.2.{i}, 203.0.113.7");
        assert_eq!(
            app.sign_up_from(&format!("u{i}@contoso.com"), &spoof)
                .await
                .status(),
            202
        );
    }
    let response = app
        .sign_up_from("u9@contoso.com", "198.51.100.99, 203.0.113.7")
        .await;
    let retry_after: u32 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_problem(response, 429, "rate_limited").await;
    // Another client is not affected.
    assert_eq!(
        app.sign_up_from("u10@contoso.com", "203.0.113.8")
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn domain_and_address_limits_apply() {
    // Every attempt counts against every limit, even one another limit refuses.
    let app = limited_app("ip=100/1h,domain=4/1h,address=2/1d").await;
    assert_eq!(
        app.sign_up_from("ada@contoso.com", "203.0.113.1")
            .await
            .status(),
        202
    );
    assert_eq!(
        app.sign_up_from("ADA@contoso.com", "203.0.113.2")
            .await
            .status(),
        202
    );
    assert_problem(
        app.sign_up_from("ada@Contoso.com", "203.0.113.3").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(
        app.sign_up_from("grace@contoso.com", "203.0.113.4")
            .await
            .status(),
        202
    );
    assert_problem(
        app.sign_up_from("linus@contoso.com", "203.0.113.5").await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(
        app.sign_up_from("linus@fabrikam.com", "203.0.113.5")
            .await
            .status(),
        202,
        "other domains unaffected"
    );
}

#[tokio::test]
async fn two_instances_share_their_limits() {
    let first = limited_app("ip=4/1h,domain=100/1h,address=100/1d").await;
    let policy = write_policy(&crate::helpers::default_policy());
    let mut settings = settings_for(&first.azurite.connection_string(), policy.path().to_owned());
    settings.rate_limits =
        RateLimitSettings::parse("ip=4/1h,domain=100/1h,address=100/1d").unwrap();
    let second = Application::build(&settings).await.unwrap();
    let second_address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped(std::future::pending()));

    // Eight concurrent sign-ups from one IP, alternating between the two instances.
    let attempts = (0..8).map(|i| {
        let address = if i % 2 == 0 {
            first.address.clone()
        } else {
            second_address.clone()
        };
        let http = first.http.clone();
        async move {
            http.post(format!("{address}/api/signup"))
                .header("x-forwarded-for", "203.0.113.50")
                .json(&json!({"email": format!("p{i}@contoso.com"), "displayName": "P"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        4,
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// `n` sign-ups at once, each a new address at contoso.com from its own IP: their statuses.
async fn burst_from_one_domain(app: &TestApp, n: usize) -> Vec<u16> {
    let attempts = (0..n).map(|i| async move {
        app.sign_up_from(
            &format!("burst{i}@contoso.com"),
            &format!("198.51.100.{}", i + 1),
        )
        .await
        .status()
        .as_u16()
    });
    futures::future::join_all(attempts).await
}

#[tokio::test]
async fn a_burst_from_one_domain_is_counted_not_refused() {
    // A partner's team signing up together races on one domain counter; losing races is
    // not reaching the limit.
    let app = limited_app("ip=100/1h,domain=1000/1h,address=5/1d").await;
    let statuses = burst_from_one_domain(&app, 60).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
}

#[tokio::test]
async fn a_burst_from_one_domain_gets_exactly_the_domain_limit() {
    let app = limited_app("ip=100/1h,domain=25/1h,address=5/1d").await;
    let statuses = burst_from_one_domain(&app, 60).await;
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    assert_eq!((count(202), count(429)), (25, 35), "{statuses:?}");
}
