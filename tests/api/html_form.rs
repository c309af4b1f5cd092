//! The sign-up page without JavaScript: a plain HTML form post (`Accept: text/html`) is
//! answered with `303 See Other` to the site's thank-you or error page; JSON callers keep
//! the JSON answers.

use std::time::Duration;

use b2b_signup::{domain::RequestStatus, site_base::SiteBase};

use crate::helpers::{TestApp, assert_problem, default_policy, spawn_app, spawn_app_with};

/// What Chromium sends when it navigates after a form submission.
pub(crate) const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";
const FORM: &str = "application/x-www-form-urlencoded";

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) async fn post_form(
    app: &TestApp,
    accept: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = browser()
        .post(format!("{}/api/signup", app.address))
        .header("content-type", FORM)
        .body(body.to_owned());
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.expect("request sent")
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "a See Other");
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_form_sign_up_is_sent_on_to_the_thank_you_page_with_its_request_id() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = post_form(
        &app,
        Some(BROWSER_ACCEPT),
        "email=ada%40contoso.com&displayName=Ada+Lovelace&company=&justification=&website=&lang=en",
    )
    .await;

    // Assert
    let location = location(&response);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rest = location
        .strip_prefix("/thanks.html?id=")
        .unwrap_or_else(|| panic!("{location}"));
    let (id, rest) = rest.split_once('&').unwrap();
    assert_eq!(rest, "status=queued#queued");
    let row = app.row("contoso.com", id).await.expect("the row is stored");
    assert_eq!(row.status, RequestStatus::Accepted);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_french_form_goes_to_the_french_pages() {
    let app = spawn_app().await;

    let waiting = post_form(
        &app,
        Some(BROWSER_ACCEPT),
        "email=ada%40fabrikam.com&displayName=Ada&lang=fr",
    )
    .await;
    let refused = post_form(
        &app,
        Some(BROWSER_ACCEPT),
        "email=ada%40gmail.com&displayName=Ada&lang=fr",
    )
    .await;

    let waiting = location(&waiting);
    assert!(waiting.starts_with("/fr/thanks.html?id="), "{waiting}");
    assert!(
        waiting.ends_with("&status=pending_approval#pending_approval"),
        "{waiting}"
    );
    assert_eq!(
        location(&refused),
        "/fr/error.html?code=domain_not_allowed&field=email#domain_not_allowed"
    );
}

#[tokio::test]
async fn form_errors_go_to_the_error_page_naming_the_code_and_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            "an invalid address",
            "email=not-an-address&displayName=Ada",
            "/error.html?code=invalid_email&field=email#invalid_email",
        ),
        (
            "no name",
            "email=ada%40contoso.com&displayName=",
            "/error.html?code=invalid_display_name&field=displayName#invalid_display_name",
        ),
        (
            "a refused domain",
            "email=ada%40gmail.com&displayName=Ada",
            "/error.html?code=domain_not_allowed&field=email#domain_not_allowed",
        ),
        (
            "an access the domain may not have",
            "email=ada%40fabrikam.com&displayName=Ada&access=sales-extranet",
            "/error.html?code=access_not_allowed&field=access#access_not_allowed",
        ),
        (
            "a field twice",
            "email=a%40contoso.com&email=b%40contoso.com&displayName=Ada",
            "/error.html?code=invalid_request&field=email#invalid_request",
        ),
        (
            "an unknown language is English",
            "email=x&displayName=Ada&lang=de",
            "/error.html?code=invalid_email&field=email#invalid_email",
        ),
    ];
    for (description, body, expected) in cases {
        let response = post_form(&app, Some(BROWSER_ACCEPT), body).await;
        assert_eq!(response.status(), 303, "{description}");
        assert_eq!(location(&response), expected, "{description}");
    }
}

#[tokio::test]
async fn redirects_go_only_under_the_configured_site_address() {
    // Arrange: the page is hosted elsewhere than the API.
    let app = spawn_app_with(&default_policy(), |settings| {
        settings.site_url = SiteBase::parse("https://signup.contoso.example/partners").unwrap();
    })
    .await;

    // Act: a form that tries to choose where it is sent.
    let response = post_form(
        &app,
        Some(BROWSER_ACCEPT),
        "email=ada%40contoso.com&displayName=Ada&lang=https%3A%2F%2Fevil.example%2F&redirect=https%3A%2F%2Fevil.example%2F",
    )
    .await;

    // Assert
    let location = location(&response);
    assert!(
        location.starts_with("https://signup.contoso.example/partners/thanks.html?id="),
        "{location}"
    );
}

#[tokio::test]
async fn fetch_and_json_callers_keep_the_json_answers() {
    let app = spawn_app().await;
    let valid = "email=grace%40contoso.com&displayName=Grace+Hopper";

    for accept in [None, Some("*/*"), Some("application/json")] {
        let response = post_form(&app, accept, valid).await;
        assert_eq!(response.status(), 202, "Accept {accept:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "Accept {accept:?}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], "queued");
    }

    let invalid = post_form(&app, Some("application/json"), "email=x&displayName=A").await;
    let problem = assert_problem(invalid, 400, "invalid_email").await;
    assert_eq!(problem["field"], "email");

    let json = browser()
        .post(format!("{}/api/signup", app.address))
        .header("content-type", "application/json")
        .body(r#"{"email":"ada@gmail.com","displayName":"Ada"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(json, 403, "domain_not_allowed").await;
}

#[tokio::test]
async fn a_rate_limited_form_carries_the_wait_to_the_error_page_never_the_address() {
    // Arrange: one sign-up per address a day.
    let limits = b2b_signup::abuse::RateLimitSettings::parse("address=1/1d").unwrap();
    let app = spawn_app_with(&default_policy(), move |s| s.rate_limits = limits).await;
    let body = "email=ada%40contoso.com&displayName=Ada&lang=fr";
    location(&post_form(&app, Some(BROWSER_ACCEPT), body).await);

    // Act
    let response = post_form(&app, Some(BROWSER_ACCEPT), body).await;

    // Assert: the page gets the same wait as the header, in seconds.
    let retry_after: u32 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let location = location(&response);
    assert_eq!(
        location,
        format!("/fr/error.html?code=rate_limited&retry={retry_after}#rate_limited")
    );
    assert!(!location.contains("ada") && !location.contains("contoso"));
}
