//! The sign-up page's two generated pieces and how the local host serves them:
//! `b2b-signup site config` (config.json from the policy) and `b2b-signup site csp` (the
//! Content-Security-Policy the page needs), which `scripts/run` gives to funchost.

use std::{path::Path, process::Command};

use crate::CONTOSO_INVITE_POLICY as POLICY;
use test_support::funchost::{AppRoot, HostProcess, TEST_HOST_JSON};

/// Storage that refuses connections at once: the page needs none.
const NO_STORAGE: &str = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;\
     TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;";

fn site(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_b2b-signup"));
    command
        .arg("site")
        .args(args)
        .env_remove("SIGNUP_POLICY_PATH")
        .env_remove("SIGNUP_CAPTCHA_PROVIDER")
        .env_remove("SIGNUP_CAPTCHA_SITE_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the command runs")
}

fn site_config(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec!["config"];
    all.extend_from_slice(args);
    site(&all, env)
}

#[tokio::test]
async fn a_configured_captcha_provider_is_allowed_by_the_policy_and_a_bad_one_stops_the_runner() {
    // The page's policy for Turnstile, as scripts/run asks for it.
    let csp = site(&["csp"], &[("SIGNUP_CAPTCHA_PROVIDER", "turnstile")]);
    assert!(csp.status.success(), "{csp:?}");
    let csp = String::from_utf8(csp.stdout).unwrap().trim().to_owned();

    // The page served by the local host with that policy.
    let root = AppRoot::new(TEST_HOST_JSON).file("policy.json", POLICY);
    std::fs::create_dir_all(root.path().join("site")).unwrap();
    std::fs::write(root.path().join("site/index.html"), "<!doctype html>").unwrap();
    let site_dir = root.path().join("site");
    let handler = env!("CARGO_BIN_EXE_b2b-signup");
    let host = HostProcess::start(
        &root,
        &[
            "--handler",
            handler,
            "--site",
            site_dir.to_str().unwrap(),
            "--site-csp",
            &csp,
        ],
        &[
            ("AzureWebJobsStorage", NO_STORAGE),
            ("SIGNUP_POLICY_PATH", "policy.json"),
            ("SIGNUP_DRY_RUN", "true"),
        ],
    )
    .await;
    let page = reqwest::get(host.url("/")).await.unwrap();
    let served = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        served.contains("script-src 'self' https://challenges.cloudflare.com;"),
        "{served}"
    );
    assert!(
        served.contains("frame-src https://challenges.cloudflare.com;"),
        "{served}"
    );
    drop(host);

    // An unknown provider is a configuration error naming the setting.
    let bad = site(&["csp"], &[("SIGNUP_CAPTCHA_PROVIDER", "captchaly")]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SIGNUP_CAPTCHA_PROVIDER"));
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn site_config_writes_the_page_configuration_from_the_policy() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "policy.json",
        r#"{
            "terms": { "version": "v3", "url": "https://contoso.example/terms" },
            "accessOptions": { "portal": { "displayName": "Partner portal", "groups": ["11111111-1111-1111-1111-111111111111"] } },
            "rules": [ { "domains": ["hidden-partner.example"], "action": "invite", "access": ["portal"] } ]
        }"#,
    );
    let out = dir.path().join("config.json");

    // Act
    let done = site_config(
        &["--policy", &policy, "--out", out.to_str().unwrap()],
        &[
            ("SIGNUP_CAPTCHA_PROVIDER", "hcaptcha"),
            (
                "SIGNUP_CAPTCHA_SITE_KEY",
                "10000000-ffff-ffff-ffff-000000000001",
            ),
            ("SIGNUP_CAPTCHA_SECRET", "never-in-the-file"),
            ("SIGNUP_RETENTION_DAYS", "90"),
            ("SIGNUP_VERIFY_HOURS", "12"),
        ],
    );

    // Assert
    assert!(done.status.success(), "{done:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        config,
        serde_json::json!({
            "accessOptions": [{"key": "portal", "displayName": "Partner portal"}],
            "terms": {"version": "v3", "url": "https://contoso.example/terms"},
            "captcha": {"provider": "hcaptcha", "siteKey": "10000000-ffff-ffff-ffff-000000000001"},
            "retentionDays": 90,
            "verifyHours": 12
        })
    );
    assert!(!text.contains("hidden-partner") && !text.contains("never-in-the-file"));

    // Standard output without --out; the policy from SIGNUP_POLICY_PATH.
    let printed = site_config(&[], &[("SIGNUP_POLICY_PATH", &policy)]);
    assert!(printed.status.success());
    assert!(String::from_utf8_lossy(&printed.stdout).contains(r#""captcha": null"#));

    // A bad policy is exit 1, a bad captcha setting exit 2.
    let bad_policy = write(dir.path(), "bad.json", r#"{"defaultAction": "invite"}"#);
    assert_eq!(
        site_config(&["--policy", &bad_policy], &[]).status.code(),
        Some(1)
    );
    let no_key = site_config(
        &["--policy", &policy],
        &[("SIGNUP_CAPTCHA_PROVIDER", "turnstile")],
    );
    assert_eq!(no_key.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("SIGNUP_CAPTCHA_SITE_KEY"));
}
