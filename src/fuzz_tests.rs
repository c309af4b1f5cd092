//! Property-based fuzzing of everything that parses outside input: the sign-up form (JSON
//! and urlencoded), e-mail and domain normalisation, the Functions host's invocation
//! payload, and the policy file. Each target must never panic and must keep its invariants.
//!
//! A short run is part of `cargo nextest run`; a long one sets `PROPTEST_CASES`
//! (SECURITY.md records the figures):
//!   `PROPTEST_CASES=2000000 cargo nextest run --profile fuzz --release --lib fuzz_tests::email`

use proptest::prelude::*;

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

proptest! {
    #[test]
    fn email_normalisation_is_total_idempotent_and_ascii(input in hostile_text()) {
        if let Ok(email) = EmailAddress::parse(&input) {
            let again = EmailAddress::parse(email.as_str()).expect("a normalised address parses");
            prop_assert_eq!(again.as_str(), email.as_str());
            prop_assert!(email.as_str().is_ascii());
            let domain = email.domain().as_str();
            prop_assert!(domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'));
            prop_assert!(email.as_str().len() <= 254);
        }
    }

    #[test]
    fn domain_normalisation_is_total_and_idempotent(input in hostile_text()) {
        if let Ok(domain) = EmailDomain::parse(&input) {
            prop_assert_eq!(EmailDomain::parse(domain.as_str()).unwrap(), domain);
        }
    }

    #[test]
    fn the_form_parser_never_panics_and_yields_valid_submissions(
        body in prop_oneof![
            any::<Vec<u8>>(),
            ".{0,200}".prop_map(String::into_bytes),
            (hostile_text(), ".{0,40}", ".{0,20}").prop_map(|(e, n, a)| {
                serde_json::json!({"email": e, "displayName": n, "access": a}).to_string().into_bytes()
            }),
            (hostile_text(), ".{0,40}").prop_map(|(e, n)| format!("email={e}&displayName={n}&email=%FF").into_bytes()),
        ],
        json in any::<bool>(),
    ) {
        if let Ok(submission) = fuzz_parse(json, &body) {
            prop_assert!(EmailAddress::parse(submission.email.as_str()).is_ok());
            prop_assert!(!submission.display_name.as_str().is_empty());
        }
    }

    #[test]
    fn the_invocation_decoder_never_panics(
        body in prop_oneof![
            any::<Vec<u8>>(),
            (".{0,60}", "[0-9\"]{0,6}").prop_map(|(msg, count)| {
                format!(r#"{{"Data":{{"msg":{}}},"Metadata":{{"DequeueCount":"{}","Id":5}}}}"#, serde_json::to_string(&msg).unwrap(), count).into_bytes()
            }),
        ],
    ) {
        let _ = QueueDelivery::parse(&body, "msg");
    }

    #[test]
    fn the_policy_parser_never_panics(
        text in prop_oneof![
            ".{0,300}",
            (hostile_text(), "(invite|approve|deny|other)", "[a-z\\-]{0,12}").prop_map(|(domain, action, access)| format!(
                r#"{{"defaultAction":"{action}","accessOptions":{{"{access}":{{"displayName":"x","groups":["11111111-1111-1111-1111-111111111111"]}}}},"rules":[{{"domains":[{}],"action":"{action}","access":["{access}"]}}]}}"#,
                serde_json::to_string(&domain).unwrap()
            )),
        ],
    ) {
        if let Ok(policy) = Policy::from_json(&text) {
            // A loaded policy answers for any domain.
            let domain = EmailDomain::parse("example.org").unwrap();
            let _ = policy.decide(&domain).access(None);
        }
    }
}
