//! Criterion micro-benchmarks of the pure functions every sign-up runs:
//! `cargo bench --bench parsing` (docs/PERFORMANCE.md).

use std::hint::black_box;

use b2b_signup::{
    domain::{EmailAddress, EmailDomain},
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

criterion_group!(benches, email, form, policy);
criterion_main!(benches);
