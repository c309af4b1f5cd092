//! `--dev-identity`: the development identity provider at `/.dev-identity/...` — its
//! OpenID configuration and keys as Entra ID shapes them, its tokens verifiable with the
//! keys it publishes, the settings it gives the handler, and nothing at all without the flag.
//! (That the product's token validation accepts its tokens is tested with the product, in
//! `tests/portal/`.)

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::{AppRoot, FakeHandler, HostProcess, TEST_HOST_JSON, client, script};

const TENANT: &str = "00000000-0000-4000-8000-00000000d001";
const APP: &str = "00000000-0000-4000-8000-00000000d002";
const ADMIN_OID: &str = "00000000-0000-4000-8000-00000000d003";

/// The runner with the provider on, in front of a fake handler.
async fn start(extra_args: &[&str], env: &[(&str, &str)]) -> (FakeHandler, HostProcess, AppRoot) {
    let handler = FakeHandler::start(|_| (200, vec![], b"ok".to_vec())).await;
    let root = AppRoot::new(TEST_HOST_JSON);
    let mut args = vec!["--handler-url", handler.url.as_str()];
    args.extend_from_slice(extra_args);
    let host = HostProcess::start(&root, &args, env).await;
    (handler, host, root)
}

fn authority(host: &HostProcess) -> String {
    host.url("/.dev-identity")
}

async fn get_json(url: &str) -> Value {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    response.json().await.unwrap()
}

async fn token_request(host: &HostProcess, tenant: &str, form: &str) -> reqwest::Response {
    client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", authority(host)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap()
}

fn default_form() -> String {
    format!("grant_type=client_credentials&scope=api%3A%2F%2F{APP}%2F.default")
}

/// The configuration's issuer, and the decoding key of the one key in its JWKS with its id.
async fn published_key(host: &HostProcess) -> (String, String, DecodingKey) {
    let configuration = get_json(&format!(
        "{}/{TENANT}/v2.0/.well-known/openid-configuration",
        authority(host)
    ))
    .await;
    let issuer = configuration["issuer"].as_str().unwrap().to_owned();
    let jwks = get_json(configuration["jwks_uri"].as_str().unwrap()).await;
    let key = &jwks["keys"][0];
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    (issuer, key["kid"].as_str().unwrap().to_owned(), decoding)
}

#[tokio::test]
async fn the_configuration_and_the_keys_are_shaped_as_entra_ids() {
    let (_handler, host, _root) = start(&["--dev-identity"], &[]).await;
    let base = format!("{}/{TENANT}", authority(&host));

    let configuration = get_json(&format!("{base}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(configuration["issuer"], format!("{base}/v2.0"));
    assert_eq!(
        configuration["jwks_uri"],
        format!("{base}/discovery/v2.0/keys")
    );
    assert_eq!(
        configuration["token_endpoint"],
        format!("{base}/oauth2/v2.0/token")
    );
    assert_eq!(
        configuration["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );

    let jwks = get_json(&format!("{base}/discovery/v2.0/keys")).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert!(
        key["kid"].as_str().unwrap().starts_with("funchost-dev-"),
        "{key}"
    );
    assert_eq!(key["e"], "AQAB");
    let modulus = base64_len(key["n"].as_str().unwrap());
    assert_eq!(modulus, 256, "an RSA-2048 modulus");
    assert!(
        key.get("d").is_none(),
        "the private half is never published"
    );

    // The tenant's GUID in either case; another tenant is not served.
    let upper = format!(
        "{}/{}/discovery/v2.0/keys",
        authority(&host),
        TENANT.to_uppercase()
    );
    assert_eq!(client().get(&upper).send().await.unwrap().status(), 200);
    let other = format!(
        "{}/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys",
        authority(&host)
    );
    assert_eq!(client().get(&other).send().await.unwrap().status(), 404);
    // Wrong methods and unknown endpoints.
    for (method, endpoint, allowed) in [
        (reqwest::Method::POST, "discovery/v2.0/keys", "GET"),
        (reqwest::Method::GET, "oauth2/v2.0/token", "POST"),
    ] {
        let url = format!("{base}/{endpoint}");
        let response = client().request(method, &url).send().await.unwrap();
        assert_eq!(response.status(), 405, "{url}");
        assert_eq!(response.headers()["allow"], allowed, "{url}");
    }
    for path in [
        "/.dev-identity",
        "/.dev-identity/",
        &format!("/.dev-identity/{TENANT}/oauth2/v2.0/authorize"),
    ] {
        let status = client().get(host.url(path)).send().await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
}

fn base64_len(text: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_token_is_for_the_local_administrator_and_verifies_with_the_published_key() {
    let (_handler, host, _root) = start(&["--dev-identity"], &[]).await;
    let (issuer, kid, key) = published_key(&host).await;

    let response = token_request(&host, TENANT, &default_form()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));

    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[APP]);
    validation.set_issuer(&[&issuer]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("signed with the published key")
        .claims;
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["oid"], ADMIN_OID);
    assert_eq!(
        claims["preferred_username"],
        "local-admin@b2b-signup.invalid"
    );
    assert_eq!(
        claims["roles"],
        serde_json::json!(["Signup.Read", "Signup.Approve"])
    );
    assert_eq!(claims["ver"], "2.0");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (nbf, exp) = (
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!((now - 60..=now + 5).contains(&nbf), "nbf {nbf}, now {now}");
    assert_eq!(exp - nbf, 3600, "valid one hour");

    // Another key does not verify it (the signature is real).
    let other = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_rsa_components(&format!("{}A", "x".repeat(342)), "AQAB").unwrap(),
        &validation,
    );
    assert!(other.is_err());
    // The token never reaches the log.
    let output = host
        .output_with(
            "dev identity: issued an access token",
            Duration::from_secs(5),
        )
        .await;
    assert!(!output.contains(token));
    assert!(output.contains("dev identity: issued an access token"));
}

#[tokio::test]
async fn roles_and_the_user_name_can_be_chosen_and_bad_requests_are_oauth_errors() {
    let (_handler, host, _root) = start(
        &["--dev-identity"],
        &[("B2B_HOST_DEV_IDENTITY_USER", "ada@contoso.example")],
    )
    .await;
    let (_issuer, _kid, key) = published_key(&host).await;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;

    // The identifier-URI form and the bare app id both name the admin API.
    for (form, roles) in [
        (
            format!("{}&roles=Signup.Read", default_form()),
            serde_json::json!(["Signup.Read"]),
        ),
        (
            format!("grant_type=client_credentials&scope={APP}/.default&roles="),
            serde_json::json!([]),
        ),
    ] {
        let response = token_request(&host, TENANT, &form).await;
        assert_eq!(response.status(), 200, "{form}");
        let body: Value = response.json().await.unwrap();
        let claims = jsonwebtoken::decode::<Value>(
            body["access_token"].as_str().unwrap(),
            &key,
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["roles"], roles, "{form}");
        assert_eq!(claims["preferred_username"], "ada@contoso.example");
    }
    assert!(
        host.output()
            .contains("issues tokens for ada@contoso.example")
    );

    let cases = [
        (
            "no grant type",
            format!("scope=api://{APP}/.default"),
            "invalid_request",
        ),
        (
            "another grant",
            format!("grant_type=password&scope=api://{APP}/.default"),
            "unsupported_grant_type",
        ),
        (
            "Graph's scope",
            "grant_type=client_credentials&scope=https://graph.microsoft.com/.default".to_owned(),
            "invalid_scope",
        ),
        (
            "no scope",
            "grant_type=client_credentials".to_owned(),
            "invalid_scope",
        ),
        (
            "an unknown role",
            format!("{}&roles=Signup.Admin", default_form()),
            "invalid_request",
        ),
    ];
    for (description, form, error) in cases {
        let response = token_request(&host, TENANT, &form).await;
        assert_eq!(response.status(), 400, "{description}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{description}: {body}");
        assert!(body["error_description"].is_string(), "{description}");
        assert!(body.get("access_token").is_none(), "{description}");
    }
    assert_eq!(
        token_request(
            &host,
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            &default_form()
        )
        .await
        .status(),
        404,
        "another tenant"
    );
}

#[tokio::test]
async fn without_the_flag_there_is_no_identity_provider() {
    let (_handler, host, _root) = start(&[], &[]).await;
    for path in [
        format!("/.dev-identity/{TENANT}/v2.0/.well-known/openid-configuration"),
        format!("/.dev-identity/{TENANT}/discovery/v2.0/keys"),
    ] {
        let status = client().get(host.url(&path)).send().await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(
        token_request(&host, TENANT, &default_form()).await.status(),
        404
    );
    assert!(!host.output().contains("Development identity provider"));
}

/// A handler that writes its environment to `env.txt`, then serves HTTP.
fn env_recording_handler(root: &AppRoot) -> String {
    let path = script(
        root,
        "handler.sh",
        r#"env > "$PWD/env.txt"
exec python3 -m http.server "$FUNCTIONS_CUSTOMHANDLER_PORT" --bind 127.0.0.1 >/dev/null 2>&1"#,
    );
    path.to_str().unwrap().to_owned()
}

fn handler_env(root: &AppRoot) -> Vec<String> {
    std::fs::read_to_string(root.path().join("env.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_handler_it_starts_is_given_the_settings_that_trust_it() {
    let root = AppRoot::new(TEST_HOST_JSON);
    let handler = env_recording_handler(&root);
    let mut host = HostProcess::start(&root, &["--handler", &handler, "--dev-identity"], &[]).await;
    let env = handler_env(&root);
    for expected in [
        format!("AZURE_AUTHORITY_HOST={}", authority(&host)),
        format!("AZURE_TENANT_ID={TENANT}"),
        format!("SIGNUP_ADMIN_APP_ID={APP}"),
    ] {
        assert!(env.contains(&expected), "{expected} in {env:?}");
    }
    let output = host.output();
    assert!(
        output.contains(&format!(
            "curl -s -X POST {}/{TENANT}/oauth2/v2.0/token -d 'grant_type=client_credentials&scope=api://{APP}/.default'",
            authority(&host)
        )),
        "{output}"
    );
    host.terminate().await;
}

#[tokio::test]
async fn settings_already_given_win_and_the_provider_issues_for_them() {
    let root = AppRoot::new(TEST_HOST_JSON).file(
        "local.settings.json",
        r#"{"Values": {
            "SIGNUP_ADMIN_APP_ID": "6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01",
            "AZURE_TENANT_ID": "",
            "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com"
        }}"#,
    );
    let handler = env_recording_handler(&root);
    let mut host = HostProcess::start(&root, &["--handler", &handler, "--dev-identity"], &[]).await;
    let env = handler_env(&root);
    for expected in [
        "SIGNUP_ADMIN_APP_ID=6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01".to_owned(),
        // Empty counts as unset, as the handler reads it.
        format!("AZURE_TENANT_ID={TENANT}"),
        "AZURE_AUTHORITY_HOST=https://login.microsoftonline.com".to_owned(),
    ] {
        assert!(env.contains(&expected), "{expected} in {env:?}");
    }
    let output = host.output();
    assert!(
        output.contains("AZURE_AUTHORITY_HOST is set (https://login.microsoftonline.com)"),
        "{output}"
    );
    let response = token_request(
        &host,
        TENANT,
        "grant_type=client_credentials&scope=api://6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01/.default",
    )
    .await;
    assert_eq!(
        response.status(),
        200,
        "tokens for the app the handler trusts"
    );
    host.terminate().await;
}
