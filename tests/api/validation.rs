//! Every field rule and body rule of `POST /api/signup`, table-driven.

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app};

/// (description, content type, body, status, code, field)
type Case = (
    &'static str,
    &'static str,
    String,
    u16,
    &'static str,
    Option<&'static str>,
);

#[tokio::test]
async fn invalid_bodies_get_stable_problem_codes() {
    let app = spawn_app().await;
    let long = |n: usize| "x".repeat(n);
    let cases: Vec<Case> = vec![
        (
            "email missing",
            "application/json",
            json!({"displayName": "A"}).to_string(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "email blank",
            "application/json",
            json!({"email": "  ", "displayName": "A"}).to_string(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "email without @",
            "application/json",
            json!({"email": "ada.contoso.com", "displayName": "A"}).to_string(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "two addresses",
            "application/json",
            json!({"email": "a@contoso.com, b@contoso.com", "displayName": "A"}).to_string(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "plus in local part",
            "application/json",
            json!({"email": "a+b@contoso.com", "displayName": "A"}).to_string(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "double dot",
            "application/json",
            json!({"email": "a..b@contoso.com", "displayName": "A"}).to_string(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "65-char local part",
            "application/json",
            json!({"email": format!("{}@contoso.com", long(65)), "displayName": "A"}).to_string(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "single-label domain",
            "application/json",
            json!({"email": "a@contoso", "displayName": "A"}).to_string(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "displayName missing",
            "application/json",
            json!({"email": "a@contoso.com"}).to_string(),
            400,
            "invalid_display_name",
            Some("displayName"),
        ),
        (
            "displayName blank",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": " "}).to_string(),
            400,
            "invalid_display_name",
            Some("displayName"),
        ),
        (
            "displayName 257 chars",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": long(257)}).to_string(),
            400,
            "invalid_display_name",
            Some("displayName"),
        ),
        (
            "displayName control char",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": "A\u{1b}[31m"}).to_string(),
            400,
            "invalid_display_name",
            Some("displayName"),
        ),
        (
            "company 201 chars",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": "A", "company": long(201)}).to_string(),
            400,
            "invalid_field",
            Some("company"),
        ),
        (
            "justification 1001 chars",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": "A", "justification": long(1001)})
                .to_string(),
            400,
            "invalid_field",
            Some("justification"),
        ),
        (
            "email is a number",
            "application/json",
            json!({"email": 5, "displayName": "A"}).to_string(),
            400,
            "invalid_request",
            Some("email"),
        ),
        (
            "displayName is an object",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": {"x": 1}}).to_string(),
            400,
            "invalid_request",
            Some("displayName"),
        ),
        (
            "access is a list",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": "A", "access": ["partner-portal"]})
                .to_string(),
            400,
            "invalid_request",
            Some("access"),
        ),
        (
            "malformed JSON",
            "application/json",
            r#"{"email": "a@contoso.com","#.to_owned(),
            400,
            "invalid_request",
            None,
        ),
        (
            "JSON array",
            "application/json",
            r#"["a@contoso.com", "A"]"#.to_owned(),
            400,
            "invalid_request",
            None,
        ),
        (
            "JSON string",
            "application/json",
            r#""a@contoso.com""#.to_owned(),
            400,
            "invalid_request",
            None,
        ),
        (
            "empty body",
            "application/json",
            String::new(),
            400,
            "invalid_request",
            None,
        ),
        (
            "duplicate JSON field",
            "application/json",
            r#"{"email": "a@contoso.com", "email": "b@contoso.com", "displayName": "A"}"#
                .to_owned(),
            400,
            "invalid_request",
            None,
        ),
        (
            "duplicate form field",
            "application/x-www-form-urlencoded",
            "email=a%40contoso.com&email=b%40contoso.com&displayName=A".to_owned(),
            400,
            "invalid_request",
            Some("email"),
        ),
        (
            "form without email",
            "application/x-www-form-urlencoded",
            "displayName=A".to_owned(),
            400,
            "invalid_email",
            Some("email"),
        ),
        (
            "form with bad percent-encoding",
            "application/x-www-form-urlencoded",
            "email=%FF%FE&displayName=A".to_owned(),
            400,
            "invalid_request",
            None,
        ),
        (
            "text/plain",
            "text/plain",
            "email=a@contoso.com".to_owned(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "multipart",
            "multipart/form-data; boundary=x",
            "--x--".to_owned(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "body over 16 KiB",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": "A", "pad": long(16 * 1024)})
                .to_string(),
            413,
            "payload_too_large",
            None,
        ),
    ];
    for (description, content_type, body, status, code, field) in cases {
        let problem = assert_problem(app.post(content_type, body).await, status, code).await;
        assert_eq!(problem["field"].as_str(), field, "{description}: {problem}");
        let text = problem.to_string();
        assert!(
            !text.contains("contoso.com"),
            "{description}: a problem never echoes the input: {text}"
        );
    }
    assert!(
        app.queued_messages().await.is_empty(),
        "no bad input reached the queue"
    );
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_read() {
    let app = spawn_app().await;
    let body =
        json!({"email": "a@contoso.com", "displayName": "A", "pad": "x".repeat(16 * 1024 - 80)})
            .to_string();
    assert!(body.len() <= 16 * 1024);
    assert_eq!(app.post_json(&body).await.status(), 202);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_while_reading() {
    let app = spawn_app().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    assert_problem(
        app.post("application/json", body).await,
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn content_type_parameters_and_case_are_accepted() {
    let app = spawn_app().await;
    let body = json!({"email": "a@contoso.com", "displayName": "A"}).to_string();
    assert_eq!(
        app.post("Application/JSON; charset=utf-8", body)
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/api/nothing", app.address))
        .send()
        .await
        .unwrap();
    assert_problem(response, 404, "not_found").await;
    let response = app
        .http
        .get(format!("{}/api/signup", app.address))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(response.status().as_u16(), 404 | 405),
        "{}",
        response.status()
    );
}

#[tokio::test]
async fn control_characters_in_free_text_are_refused_naming_the_field() {
    let app = spawn_app().await;
    // (description, field, value, code): what could steer an administrator's terminal.
    let cases = [
        (
            "company with CR",
            "company",
            "Contoso\rFabrikam",
            "invalid_field",
        ),
        (
            "company with a line break",
            "company",
            "Contoso\nLtd",
            "invalid_field",
        ),
        (
            "company with a tab",
            "company",
            "Contoso\tLtd",
            "invalid_field",
        ),
        (
            "company with ESC",
            "company",
            "Contoso\u{1b}[2J",
            "invalid_field",
        ),
        (
            "justification with a lone CR",
            "justification",
            "none\rAPPROVED BY SECURITY",
            "invalid_field",
        ),
        (
            "justification with ESC",
            "justification",
            "a\u{1b}]0;title\u{7}",
            "invalid_field",
        ),
        (
            "justification with backspace",
            "justification",
            "yes\u{8}\u{8}\u{8}no",
            "invalid_field",
        ),
        (
            "justification with a tab",
            "justification",
            "a\tb",
            "invalid_field",
        ),
        (
            "justification with DEL",
            "justification",
            "a\u{7f}",
            "invalid_field",
        ),
        (
            "justification with C1 CSI",
            "justification",
            "a\u{9b}2J",
            "invalid_field",
        ),
        (
            "justification with NUL",
            "justification",
            "a\0b",
            "invalid_field",
        ),
        (
            "displayName with C1 inside",
            "displayName",
            "A\u{85}da",
            "invalid_display_name",
        ),
        (
            "displayName with DEL inside",
            "displayName",
            "A\u{7f}da",
            "invalid_display_name",
        ),
    ];
    for (description, field, value, code) in cases {
        let mut body = json!({"email": "a@contoso.com", "displayName": "A"});
        body[field] = json!(value);
        let problem = assert_problem(app.post_json(&body.to_string()).await, 400, code).await;
        assert_eq!(problem["field"], field, "{description}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("control characters")),
            "{description}: {problem}"
        );
    }
    assert!(app.queued_messages().await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn a_justification_keeps_its_line_breaks_and_crlf_is_stored_as_lf() {
    let app = spawn_app().await;
    // (description, content type, body): a browser's form post sends a textarea's line
    // breaks as CRLF.
    let cases = [
        (
            "JSON with LF",
            "application/json",
            json!({"email": "a@contoso.com", "displayName": "A", "justification": "one\ntwo"})
                .to_string(),
        ),
        (
            "JSON with CRLF",
            "application/json",
            json!({"email": "b@contoso.com", "displayName": "B", "justification": "one\r\ntwo"})
                .to_string(),
        ),
        (
            "form with CRLF",
            "application/x-www-form-urlencoded",
            "email=c%40contoso.com&displayName=C&justification=one%0D%0Atwo".to_owned(),
        ),
    ];
    for (description, content_type, body) in cases {
        let response = app.post(content_type, body).await;
        assert_eq!(response.status(), 202, "{description}");
        let answer: serde_json::Value = response.json().await.unwrap();
        let id = answer["requestId"].as_str().unwrap();
        let row = app.row("contoso.com", id).await.unwrap();
        assert_eq!(
            row.justification.unwrap().as_str(),
            "one\ntwo",
            "{description}"
        );
    }
}
