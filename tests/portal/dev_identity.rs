//! funchost's development identity provider (`--dev-identity`) against the product's own
//! token validation: a token it issues is accepted by `b2b_signup::auth::Authenticator`
//! pointed at its authority, names the local administrator, and is refused for another
//! audience or a role it does not hold. What `scripts/run` relies on for the admin API.

use std::time::Duration;

use b2b_signup::{
    auth::{AdminAuthSettings, AuthError, Authenticator, Rejection, Role},
    clock::Clock,
    domain::{AdministratorName, AppId, TenantId},
};
use serde_json::Value;
use test_support::funchost::{AppRoot, HostProcess, TEST_HOST_JSON};
use url::Url;
use warp::{Filter, http::HeaderValue};

/// funchost's development tenant and admin API app (crates/funchost/src/identity.rs).
pub(crate) const DEV_TENANT: &str = "00000000-0000-4000-8000-00000000d001";
pub(crate) const DEV_APP: &str = "00000000-0000-4000-8000-00000000d002";
pub(crate) const DEV_ADMIN_OID: &str = "00000000-0000-4000-8000-00000000d003";

/// funchost with the provider on, in front of a stand-in handler (the authenticator under
/// test runs in this process, as the handler would run it).
async fn dev_identity_host() -> (HostProcess, AppRoot) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        warp::serve(warp::any().map(|| "ok"))
            .incoming(listener)
            .run(),
    );
    let root = AppRoot::new(TEST_HOST_JSON);
    let host = HostProcess::start(
        &root,
        &["--handler-url", &handler_url, "--dev-identity"],
        &[],
    )
    .await;
    (host, root)
}

/// A token from the provider's endpoint, as `curl` or the command line gets it; `roles`
/// asks for fewer roles than both.
async fn get_token(host: &HostProcess, roles: Option<&str>) -> String {
    let scope = format!("api://{DEV_APP}/.default");
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("scope", scope.as_str()),
    ];
    if let Some(roles) = roles {
        form.push(("roles", roles));
    }
    let response = reqwest::Client::new()
        .post(host.url(&format!("/.dev-identity/{DEV_TENANT}/oauth2/v2.0/token")))
        .timeout(Duration::from_secs(10))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn authenticator(host: &HostProcess, app: &str) -> Authenticator {
    let settings = AdminAuthSettings::new(
        AppId::parse(app).unwrap(),
        TenantId::parse(DEV_TENANT).unwrap(),
        Url::parse(&host.url("/.dev-identity")).unwrap(),
    )
    .unwrap();
    Authenticator::new(Some(settings), Clock::system()).unwrap()
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

#[tokio::test]
async fn the_product_accepts_a_dev_identity_token_as_the_local_administrator() {
    let (host, _root) = dev_identity_host().await;
    let token = get_token(&host, None).await;
    let authenticator = authenticator(&host, DEV_APP);

    let principal = authenticator
        .authenticate(Some(&bearer(&token)), Role::Approve)
        .await
        .expect("the product accepts the development token");
    assert_eq!(
        principal.administrator().name(),
        &AdministratorName::User("local-admin@b2b-signup.invalid".to_owned())
    );
    assert_eq!(
        principal.administrator().object_id().as_str(),
        DEV_ADMIN_OID
    );
    assert!(principal.roles().allow(Role::Approve) && principal.roles().allow(Role::Read));

    // A reader's token reads, and may not approve.
    let reader = get_token(&host, Some("Signup.Read")).await;
    assert!(
        authenticator
            .authenticate(Some(&bearer(&reader)), Role::Read)
            .await
            .is_ok()
    );
    assert_eq!(
        authenticator
            .authenticate(Some(&bearer(&reader)), Role::Approve)
            .await,
        Err(AuthError::Forbidden {
            needed: Role::Approve
        })
    );
}

#[tokio::test]
async fn a_dev_identity_token_for_another_audience_is_refused() {
    let (host, _root) = dev_identity_host().await;
    let token = get_token(&host, None).await;
    // The same provider and tenant, but an admin API of another app registration.
    let other_app = authenticator(&host, "6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01");

    assert_eq!(
        other_app
            .authenticate(Some(&bearer(&token)), Role::Read)
            .await,
        Err(AuthError::Unauthenticated(Rejection::Audience))
    );
}
