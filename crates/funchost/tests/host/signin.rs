//! `--dev-identity`'s secure door: the interactive sign-in a single-page app (the admin
//! console, through MSAL.js) goes through over HTTPS — the authorize page, the code with
//! PKCE, the refresh token, CORS for a loopback page — and the token lifetime flag.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{AppRoot, FakeHandler, HostProcess, TEST_HOST_JSON};

const TENANT: &str = "00000000-0000-4000-8000-00000000d001";
const APP: &str = "00000000-0000-4000-8000-00000000d002";
const PAGE_ORIGIN: &str = "http://127.0.0.1:7071";
const REDIRECT: &str = "http://127.0.0.1:7071/console/";
const VERIFIER: &str = "a-code-verifier-of-at-least-forty-three-characters-0123456789";

/// A client that trusts the self-signed certificate (as a person does once per run) and
/// does not follow redirects, to read them.
fn https_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The runner with the provider on; the secure authority it prints (`…/{tenant}`).
async fn start(extra: &[&str]) -> (FakeHandler, HostProcess, AppRoot, String) {
    let handler = FakeHandler::start(|_| (200, vec![], b"ok".to_vec())).await;
    let root = AppRoot::new(TEST_HOST_JSON);
    let mut args = vec!["--handler-url", handler.url.as_str(), "--dev-identity"];
    args.extend_from_slice(extra);
    let host = HostProcess::start(&root, &args, &[]).await;
    let marker = "sign-in over HTTPS (the admin console's authority): ";
    let output = host.output_with(marker, Duration::from_secs(5)).await;
    let authority = output
        .lines()
        .find_map(|line| line.trim().strip_prefix(marker))
        .expect("the secure authority is printed")
        .to_owned();
    (handler, host, root, authority)
}

fn authorize_url(authority: &str, extra: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", "console-spa")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code")
        .append_pair(
            "scope",
            &format!("api://{APP}/user_impersonation openid profile offline_access"),
        )
        .append_pair("state", "state-1")
        .append_pair("nonce", "nonce-1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{authority}/oauth2/v2.0/authorize?{query}{extra}")
}

/// Signs in as `user` on the authorize page; the code from the redirect.
async fn code_for(client: &reqwest::Client, authority: &str, user: &str) -> String {
    let response = client
        .post(authorize_url(authority, ""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user={user}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let fragment = location
        .strip_prefix(&format!("{REDIRECT}#"))
        .unwrap_or_else(|| panic!("back to the app in the fragment: {location}"));
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(fragment.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("state").as_deref(), Some("state-1"));
    assert!(field("client_info").is_some());
    field("code").expect("a code")
}

async fn token(
    client: &reqwest::Client,
    authority: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(format!("{authority}/oauth2/v2.0/token"))
        .header("origin", PAGE_ORIGIN)
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_page_signs_in_with_a_code_and_pkce_over_https_and_refreshes_its_token() {
    let (_handler, host, _root, authority) = start(&["--dev-identity-token-lifetime", "120"]).await;
    assert!(authority.starts_with("https://127.0.0.1:"), "{authority}");
    assert!(
        authority.ends_with(&format!("/.dev-identity/{TENANT}")),
        "{authority}"
    );
    let client = https_client();

    // The configuration through the secure door: its endpoints there, and an issuer on its
    // origin (MSAL.js requires it); tokens name the plain issuer the handler trusts.
    let get = |url: String| {
        let request = client.get(url);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let configuration = get(format!("{authority}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(configuration["issuer"], format!("{authority}/v2.0"));
    for (name, path) in [
        ("authorization_endpoint", "oauth2/v2.0/authorize"),
        ("token_endpoint", "oauth2/v2.0/token"),
        ("end_session_endpoint", "oauth2/v2.0/logout"),
    ] {
        assert_eq!(configuration[name], format!("{authority}/{path}"), "{name}");
    }
    let jwks = get(configuration["jwks_uri"].as_str().unwrap().to_owned()).await;
    let key = &jwks["keys"][0];
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();

    // The page offers the three users; its form may answer to the app's origin only.
    let page = client
        .get(authorize_url(&authority, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains(&format!("form-action 'self' {PAGE_ORIGIN}")),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    for user in ["user-admin", "user-reader", "user-no-role"] {
        assert!(html.contains(user), "{user} offered");
    }

    // A wrong verifier spends the code.
    let code = code_for(&client, &authority, "reader").await;
    let base = [
        ("grant_type", "authorization_code"),
        ("client_id", "console-spa"),
        ("redirect_uri", REDIRECT),
    ];
    let wrong = token(
        &client,
        &authority,
        &[
            &base[..],
            &[("code", &code), ("code_verifier", &"w".repeat(50))],
        ]
        .concat(),
    )
    .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let again = token(
        &client,
        &authority,
        &[&base[..], &[("code", &code), ("code_verifier", VERIFIER)]].concat(),
    )
    .await;
    assert_eq!(again.status(), 400, "a code is tried once");

    let code = code_for(&client, &authority, "reader").await;
    let response = token(
        &client,
        &authority,
        &[&base[..], &[("code", &code), ("code_verifier", VERIFIER)]].concat(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        PAGE_ORIGIN
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[APP]);
    let access = jsonwebtoken::decode::<Value>(
        body["access_token"].as_str().unwrap(),
        &decoding,
        &validation,
    )
    .expect("signed with the published key")
    .claims;
    assert_eq!(access["roles"], serde_json::json!(["Signup.Read"]));
    assert_eq!(
        access["iss"],
        host.url(&format!("/.dev-identity/{TENANT}/v2.0"))
    );
    assert_eq!(access["scp"], "user_impersonation");
    assert_eq!(access["azp"], "console-spa");
    assert_eq!(
        access["preferred_username"],
        "local-reader@b2b-signup.invalid"
    );
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        120
    );
    validation.set_audience(&["console-spa"]);
    let id =
        jsonwebtoken::decode::<Value>(body["id_token"].as_str().unwrap(), &decoding, &validation)
            .unwrap()
            .claims;
    assert_eq!(id["nonce"], "nonce-1");

    // The refresh token, once; the answer carries the next.
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "console-spa"),
        ("refresh_token", refresh.as_str()),
    ];
    let renewed = token(&client, &authority, &form).await;
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    assert_ne!(renewed["refresh_token"], body["refresh_token"]);
    assert!(renewed["access_token"].is_string());
    assert_eq!(token(&client, &authority, &form).await.status(), 400);

    // Nothing secret in the log.
    let output = host
        .output_with("grant=\"refresh_token\"", Duration::from_secs(5))
        .await;
    for secret in [
        code.as_str(),
        refresh.as_str(),
        body["access_token"].as_str().unwrap(),
    ] {
        assert!(!output.contains(secret));
    }
}

#[tokio::test]
async fn the_secure_door_refuses_what_a_development_provider_must_not_do() {
    let (_handler, host, _root, authority) = start(&[]).await;
    let client = https_client();

    // A silent sign-in: no session here, the person is needed.
    let silent = client
        .get(authorize_url(&authority, "&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(silent.status(), 303);
    let location = silent.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT}#error=login_required")),
        "{location}"
    );

    // A redirect away from this machine is refused on the page, never followed.
    let away = authorize_url(&authority, "").replace("127.0.0.1%3A7071", "evil.example");
    let refused = client.get(away).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("location").is_none());

    // Another origin's page gets no CORS headers; a loopback page's preflight is answered.
    let other = client
        .post(format!("{authority}/oauth2/v2.0/token"))
        .header("origin", "https://evil.example")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", "c"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{authority}/oauth2/v2.0/token"),
        )
        .header("origin", PAGE_ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        PAGE_ORIGIN
    );

    // Sign-out goes back to a loopback page only.
    let logout = client
        .get(format!(
            "{authority}/oauth2/v2.0/logout?post_logout_redirect_uri={}",
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    assert_eq!(logout.headers()["location"], REDIRECT);

    // The plain door has no interactive sign-in.
    let plain = client
        .get(authorize_url(
            &host.url(&format!("/.dev-identity/{TENANT}")),
            "",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 404);
}
