//! Property-based fuzzing of everything that parses outside input: the sign-up form (JSON
//! and urlencoded), e-mail and domain normalisation, the Functions host's invocation
//! payload, and the policy file. Each target must never panic and must keep its invariants.
//!
//! A short run (256 cases each) is part of `cargo nextest run`. A long, time-bounded run of
//! one target (SECURITY.md records the figures):
//!   `FUZZ_TARGET=email FUZZ_SECONDS=600 cargo nextest run --profile fuzz --release --lib --run-ignored only fuzz_tests::long_run`
//! Targets: `email`, `domain`, `form`, `invocation`, `policy`.

use std::time::{Duration, Instant};

use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};

use crate::{
    domain::{EmailAddress, EmailDomain},
    functions::signup_http::fuzz_parse,
    invocation::QueueDelivery,
    policy::Policy,
};

/// Text that looks like what attackers send: ASCII punctuation, `@`, dots, Unicode
/// (confusables, combining marks, RTL controls), and control characters.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "[a-zA-Z0-9.@_'+\\-]{0,70}",
        "[a-z.]{0,20}@[a-zA-Z0-9.\\-ÄÖÜäöüßçéàıİ\u{0430}-\u{044f}\u{200b}\u{202e}\u{ff41}-\u{ff5a}]{0,40}",
    ]
}

fn form_bodies() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let body = prop_oneof![
        any::<Vec<u8>>(),
        ".{0,200}".prop_map(String::into_bytes),
        (hostile_text(), ".{0,40}", ".{0,20}").prop_map(|(e, n, a)| {
            serde_json::json!({"email": e, "displayName": n, "access": a})
                .to_string()
                .into_bytes()
        }),
        (hostile_text(), ".{0,40}")
            .prop_map(|(e, n)| format!("email={e}&displayName={n}&email=%FF").into_bytes()),
    ];
    (body, any::<bool>())
}

fn invocation_bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        (".{0,60}", "[0-9\"]{0,6}").prop_map(|(msg, count)| {
            let msg = serde_json::to_string(&msg).unwrap_or_default();
            format!(r#"{{"Data":{{"msg":{msg}}},"Metadata":{{"DequeueCount":"{count}","Id":5}}}}"#)
                .into_bytes()
        }),
    ]
}

fn policy_texts() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,300}",
        (hostile_text(), "(invite|approve|deny|other)", "[a-z\\-]{0,12}").prop_map(
            |(domain, action, access)| {
                let domain = serde_json::to_string(&domain).unwrap_or_default();
                format!(
                    r#"{{"defaultAction":"{action}","accessOptions":{{"{access}":{{"displayName":"x","groups":["11111111-1111-1111-1111-111111111111"]}}}},"rules":[{{"domains":[{domain}],"action":"{action}","access":["{access}"]}}]}}"#
                )
            }
        ),
    ]
}

fn email_property(input: String) -> Result<(), TestCaseError> {
    if let Ok(email) = EmailAddress::parse(&input) {
        let again = EmailAddress::parse(email.as_str());
        prop_assert!(again.is_ok(), "a normalised address parses again");
        prop_assert_eq!(
            again.map(|e| e.as_str().to_owned()).unwrap_or_default(),
            email.as_str()
        );
        prop_assert!(email.as_str().is_ascii());
        let domain = email.domain().as_str();
        prop_assert!(
            domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        );
        prop_assert!(email.as_str().len() <= 254);
    }
    Ok(())
}

fn domain_property(input: String) -> Result<(), TestCaseError> {
    if let Ok(domain) = EmailDomain::parse(&input) {
        prop_assert_eq!(EmailDomain::parse(domain.as_str()).ok(), Some(domain));
    }
    Ok(())
}

fn form_property((body, json): (Vec<u8>, bool)) -> Result<(), TestCaseError> {
    if let Ok(submission) = fuzz_parse(json, &body) {
        prop_assert!(EmailAddress::parse(submission.email.as_str()).is_ok());
        prop_assert!(!submission.display_name.as_str().is_empty());
    }
    Ok(())
}

fn invocation_property(body: Vec<u8>) -> Result<(), TestCaseError> {
    let _ = QueueDelivery::parse(&body, "msg");
    Ok(())
}

fn policy_property(text: String) -> Result<(), TestCaseError> {
    if let Ok(policy) = Policy::from_json(&text) {
        // A loaded policy answers for any domain.
        if let Ok(domain) = EmailDomain::parse("example.org") {
            let _ = policy.decide(&domain).access(None);
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn email_normalisation_is_total_idempotent_and_ascii(input in hostile_text()) {
        email_property(input)?;
    }

    #[test]
    fn domain_normalisation_is_total_and_idempotent(input in hostile_text()) {
        domain_property(input)?;
    }

    #[test]
    fn the_form_parser_never_panics_and_yields_valid_submissions(case in form_bodies()) {
        form_property(case)?;
    }

    #[test]
    fn the_invocation_decoder_never_panics(body in invocation_bodies()) {
        invocation_property(body)?;
    }

    #[test]
    fn the_policy_parser_never_panics(text in policy_texts()) {
        policy_property(text)?;
    }
}

/// One target for `FUZZ_SECONDS` (default 600): batches of fresh random cases until the time
/// is up; prints the number of cases run. Fails on the first counterexample.
#[test]
#[ignore = "long run: FUZZ_TARGET=… FUZZ_SECONDS=… (see the module docs)"]
fn long_run() {
    let target = std::env::var("FUZZ_TARGET").unwrap_or_else(|_| "email".into());
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let budget = Duration::from_secs(seconds);
    const BATCH: u32 = 20_000;
    let started = Instant::now();
    let mut cases: u64 = 0;
    while started.elapsed() < budget {
        let mut runner = TestRunner::new(Config {
            cases: BATCH,
            failure_persistence: None,
            ..Config::default()
        });
        // Counterexamples are reported with their Debug form (each strategy's value type differs).
        let failure = match target.as_str() {
            "email" => runner
                .run(&hostile_text(), email_property)
                .err()
                .map(|e| format!("{e}")),
            "domain" => runner
                .run(&hostile_text(), domain_property)
                .err()
                .map(|e| format!("{e}")),
            "form" => runner
                .run(&form_bodies(), form_property)
                .err()
                .map(|e| format!("{e}")),
            "invocation" => runner
                .run(&invocation_bodies(), invocation_property)
                .err()
                .map(|e| format!("{e}")),
            "policy" => runner
                .run(&policy_texts(), policy_property)
                .err()
                .map(|e| format!("{e}")),
            other => panic!("unknown FUZZ_TARGET {other}"),
        };
        if let Some(failure) = failure {
            panic!("{target}: counterexample after {cases} cases: {failure}");
        }
        cases += u64::from(BATCH);
    }
    println!(
        "fuzz {target}: {cases} cases in {:.0} s, no failure",
        started.elapsed().as_secs_f64()
    );
}
