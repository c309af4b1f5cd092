//! Criterion micro-benchmarks of the pure functions every sign-up runs:
//! `cargo bench --bench parsing` (docs/PERFORMANCE.md). Plus the admin API's token check,
//! which every admin call runs.

use std::hint::black_box;

use b2b_signup::{
    auth::{AdminAuthSettings, Authenticator, Role},
    clock::Clock,
    domain::{AppId, EmailAddress, EmailDomain, TenantId},
    functions::signup_http::fuzz_parse,
    policy::Policy,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn email(c: &mut Criterion) {
    c.bench_function("email: parse + normalise ASCII", |b| {
        b.iter(|| EmailAddress::parse(black_box("  Grace.Hopper@Contoso.COM ")).unwrap())
    });
    c.bench_function("email: parse + normalise IDN", |b| {
        b.iter(|| EmailAddress::parse(black_box("juergen.mueller@bücher.example")).unwrap())
    });
    c.bench_function("email: reject invalid", |b| {
        b.iter(|| EmailAddress::parse(black_box("not an address")).is_err())
    });
}

fn form(c: &mut Criterion) {
    let json = br#"{"email":"grace.hopper@contoso.com","displayName":"Grace Brewster Hopper","company":"Contoso Ltd","justification":"Partner portal access for the Q3 project."}"#;
    let urlencoded = b"email=grace.hopper%40contoso.com&displayName=Grace+Brewster+Hopper&company=Contoso+Ltd&justification=Partner+portal+access+for+the+Q3+project.";
    c.bench_function("form: JSON body → submission", |b| {
        b.iter(|| fuzz_parse(true, black_box(json)).unwrap())
    });
    c.bench_function("form: urlencoded body → submission", |b| {
        b.iter(|| fuzz_parse(false, black_box(urlencoded)).unwrap())
    });
}

/// A policy of 1,000 rules: 500 exact domains and 500 `*.` wildcards.
fn big_policy() -> Policy {
    let rules: Vec<String> = (0..1000)
        .map(|i| {
            let domain = if i % 2 == 0 {
                format!("partner{i}.example")
            } else {
                format!("*.region{i}.example")
            };
            format!(r#"{{ "domains": ["{domain}"], "action": "invite", "access": ["portal"] }}"#)
        })
        .collect();
    Policy::from_json(&format!(
        r#"{{
            "defaultAction": "deny",
            "accessOptions": {{ "portal": {{ "displayName": "Portal", "groups": ["11111111-1111-1111-1111-111111111111"] }} }},
            "rules": [{}]
        }}"#,
        rules.join(",")
    ))
    .expect("valid policy")
}

fn policy(c: &mut Criterion) {
    let policy = big_policy();
    assert_eq!(policy.rules().len(), 1000);
    let exact = EmailDomain::parse("partner998.example").unwrap();
    let wildcard = EmailDomain::parse("eu.sales.region999.example").unwrap();
    let none = EmailDomain::parse("a.b.c.unknown.example").unwrap();
    c.bench_function("policy 1,000 rules: exact match", |b| {
        b.iter(|| policy.decide(black_box(&exact)).action())
    });
    c.bench_function("policy 1,000 rules: wildcard match", |b| {
        b.iter(|| policy.decide(black_box(&wildcard)).action())
    });
    c.bench_function("policy 1,000 rules: no match (default)", |b| {
        b.iter(|| policy.decide(black_box(&none)).action())
    });
}

/// One admin API token validated with the tenant's keys already cached (the first call
/// fetched them from a mock Entra ID on loopback): header, RS256 signature, claims, role.
fn admin_token(c: &mut Criterion) {
    use test_support::identity::{KEY_1, issuer, jwks, openid_configuration};
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const APP: &str = "6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01";

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (authenticator, header) = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        openid_configuration(&server.uri(), TENANT)
            .mount(&server)
            .await;
        jwks(TENANT, &[&KEY_1]).mount(&server).await;
        let settings = AdminAuthSettings::new(
            AppId::parse(APP).expect("GUID"),
            TenantId::parse(TENANT).expect("GUID"),
            server.uri().parse().expect("URL"),
        )
        .expect("settings");
        let authenticator = Authenticator::new(Some(settings), Clock::system()).expect("built");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let token = KEY_1.sign(&serde_json::json!({
            "aud": APP, "iss": issuer(&server.uri(), TENANT), "tid": TENANT,
            "iat": now, "nbf": now, "exp": now + 3600,
            "oid": "5f0c8e3a-1b2c-4d5e-8f90-0123456789ab",
            "preferred_username": "admin@contoso.com", "scp": "access_as_user",
            "roles": ["Signup.Approve"], "ver": "2.0",
        }));
        let header = warp::http::HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        authenticator
            .authenticate(Some(&header), Role::Approve)
            .await
            .expect("the first call fetches the keys");
        // The keys stay cached for the bench: the server may go.
        (authenticator, header)
    });
    c.bench_function("admin token: validate (keys cached)", |b| {
        b.iter(|| {
            runtime
                .block_on(authenticator.authenticate(black_box(Some(&header)), Role::Approve))
                .expect("valid")
        })
    });
}

criterion_group!(benches, email, form, policy, admin_token);
criterion_main!(benches);
