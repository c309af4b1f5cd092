use super::*;

const GROUP_A: &str = "11111111-1111-1111-1111-111111111111";
const GROUP_B: &str = "22222222-2222-2222-2222-222222222222";

fn key(text: &str) -> AccessKey {
    AccessKey::parse(text).unwrap()
}

fn example() -> Policy {
    Policy::from_json(&format!(
        r#"{{
        "defaultAction": "deny",
        "accessOptions": {{
            "partner-portal": {{ "displayName": "Partner portal", "groups": ["{GROUP_A}"] }},
            "sales-extranet": {{ "displayName": "Sales extranet", "groups": ["{GROUP_A}", "{GROUP_B}"] }}
        }},
        "rules": [
            {{ "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal", "sales-extranet"] }},
            {{ "domains": ["fabrikam.com", "*.fabrikam.com"], "action": "approve", "access": ["partner-portal"] }},
            {{ "domains": ["*.research.fabrikam.com"], "action": "deny" }},
            {{ "domains": ["*.com"], "action": "approve", "access": ["partner-portal"] }},
            {{ "domains": ["münchen.de"], "action": "invite", "access": ["sales-extranet"],
               "inviteRedirectUrl": "https://apps.example/welcome", "messageLanguage": "de-DE" }},
            {{ "domains": ["gmail.com", "outlook.com"], "action": "deny" }}
        ]
    }}"#
    ))
    .expect("example policy is valid")
}

fn action_for(policy: &Policy, domain: &str) -> Action {
    policy
        .decide(&crate::domain::EmailDomain::parse(domain).expect("test domain parses"))
        .action()
}

#[test]
fn domains_match_as_the_design_says() {
    let policy = example();
    let cases = [
        ("exact", "contoso.com", Action::Invite),
        ("upper case", "CONTOSO.COM", Action::Invite),
        ("trailing dot", "contoso.com.", Action::Invite),
        (
            "exact rule does not cover subdomains (falls to *.com)",
            "eu.contoso.com",
            Action::Approve,
        ),
        (
            "suffix trick without a dot (falls to *.com)",
            "evilcontoso.com",
            Action::Approve,
        ),
        (
            "domain appended (no rule, default deny)",
            "contoso.com.evil.example",
            Action::Deny,
        ),
        (
            "wildcard and exact listed together: the domain",
            "fabrikam.com",
            Action::Approve,
        ),
        ("wildcard: a subdomain", "eu.fabrikam.com", Action::Approve),
        (
            "wildcard: a deep subdomain",
            "a.b.fabrikam.com",
            Action::Approve,
        ),
        (
            "more specific deny wildcard beats allow wildcard",
            "lab.research.fabrikam.com",
            Action::Deny,
        ),
        (
            "deny wildcard does not cover its own apex",
            "research.fabrikam.com",
            Action::Approve,
        ),
        ("exact beats wildcard", "gmail.com", Action::Deny),
        ("unicode form", "MÜNCHEN.de", Action::Invite),
        ("punycode form", "xn--mnchen-3ya.de", Action::Invite),
        (
            "unknown domain gets the default",
            "example.org",
            Action::Deny,
        ),
    ];
    for (description, domain, expected) in cases {
        assert_eq!(
            action_for(&policy, domain),
            expected,
            "{description}: {domain}"
        );
    }
}

#[test]
fn access_follows_the_rule() {
    let policy = example();
    let contoso = crate::domain::EmailDomain::parse("contoso.com").unwrap();
    let decision = policy.decide(&contoso);
    assert_eq!(
        decision.access(None).unwrap().key.as_str(),
        "partner-portal",
        "first option is the default"
    );
    assert_eq!(
        decision
            .access(Some(&key("sales-extranet")))
            .unwrap()
            .group_list(),
        format!("{GROUP_A}, {GROUP_B}")
    );
    assert_eq!(
        decision.access(Some(&key("admin"))),
        Err(Refusal::AccessNotAllowed),
        "unknown key"
    );

    let fabrikam = crate::domain::EmailDomain::parse("fabrikam.com").unwrap();
    assert_eq!(
        policy
            .decide(&fabrikam)
            .access(Some(&key("sales-extranet"))),
        Err(Refusal::AccessNotAllowed),
        "known key the rule does not allow"
    );
    let gmail = crate::domain::EmailDomain::parse("gmail.com").unwrap();
    assert_eq!(
        policy.decide(&gmail).access(None),
        Err(Refusal::DomainNotAllowed)
    );
}

#[test]
fn rules_override_invitation_settings() {
    let policy = example();
    let munich = crate::domain::EmailDomain::parse("münchen.de").unwrap();
    let invitation = policy.decide(&munich).invitation();
    assert_eq!(invitation.redirect_url, "https://apps.example/welcome");
    assert_eq!(invitation.message_language.as_deref(), Some("de-DE"));
    let contoso = crate::domain::EmailDomain::parse("contoso.com").unwrap();
    assert_eq!(
        policy.decide(&contoso).invitation().redirect_url,
        "https://myapps.microsoft.com"
    );
}

#[test]
fn default_approve_uses_default_access() {
    let policy = Policy::from_json(&format!(
        r#"{{ "defaultAction": "approve", "defaultAccess": ["p"],
             "accessOptions": {{ "p": {{ "displayName": "P", "groups": ["{GROUP_A}"] }} }},
             "rules": [] }}"#
    ))
    .unwrap();
    let domain = crate::domain::EmailDomain::parse("anywhere.example").unwrap();
    let decision = policy.decide(&domain);
    assert_eq!(decision.action(), Action::Approve);
    assert!(decision.rule.is_none());
    assert_eq!(decision.access(None).unwrap().key.as_str(), "p");
}

#[test]
fn approval_deadlines_default_to_14_days_and_rules_override_them() {
    let policy = Policy::from_json(&format!(
        r#"{{ "defaultAction": "approve", "defaultAccess": ["p"], "approvalTimeoutDays": 30,
             "accessOptions": {{ "p": {{ "displayName": "P", "groups": ["{GROUP_A}"] }} }},
             "rules": [{{ "domains": ["fast.example"], "action": "approve", "access": ["p"], "approvalTimeoutDays": 2 }}] }}"#
    ))
    .unwrap();
    let days = |domain: &str| {
        policy
            .decide(&crate::domain::EmailDomain::parse(domain).unwrap())
            .approval_timeout()
            .whole_days()
    };
    assert_eq!((days("fast.example"), days("other.example")), (2, 30));
    assert_eq!(
        example()
            .decide(&crate::domain::EmailDomain::parse("fabrikam.com").unwrap())
            .approval_timeout()
            .whole_days(),
        14
    );
}

#[test]
fn invalid_policies_name_the_place() {
    let options =
        format!(r#""accessOptions": {{ "p": {{ "displayName": "P", "groups": ["{GROUP_A}"] }} }}"#);
    let cases = [
        ("invite as default", format!(r#"{{ "defaultAction": "invite", {options}, "rules": [] }}"#), "defaultAction"),
        ("unknown default", format!(r#"{{ "defaultAction": "allow", {options}, "rules": [] }}"#), "defaultAction"),
        ("approve default without access", format!(r#"{{ "defaultAction": "approve", {options}, "rules": [] }}"#), "defaultAccess"),
        ("bad domain", format!(r#"{{ {options}, "rules": [{{ "domains": ["contoso"], "action": "deny" }}] }}"#), "rules[0].domains[0]"),
        ("bare wildcard", format!(r#"{{ {options}, "rules": [{{ "domains": ["*."], "action": "deny" }}] }}"#), "rules[0].domains[0]"),
        ("mid wildcard", format!(r#"{{ {options}, "rules": [{{ "domains": ["a.*.com"], "action": "deny" }}] }}"#), "rules[0].domains[0]"),
        ("unknown action", format!(r#"{{ {options}, "rules": [{{ "domains": ["a.com"], "action": "allow" }}] }}"#), "rules[0].action"),
        ("unknown access", format!(r#"{{ {options}, "rules": [{{ "domains": ["a.com"], "action": "invite", "access": ["x"] }}] }}"#), "rules[0].access[0]"),
        ("invite without access", format!(r#"{{ {options}, "rules": [{{ "domains": ["a.com"], "action": "invite" }}] }}"#), "rules[0].access"),
        ("duplicate domain", format!(r#"{{ {options}, "rules": [{{ "domains": ["a.com"], "action": "deny" }}, {{ "domains": ["A.COM."], "action": "deny" }}] }}"#), "rules[1].domains[0]"),
        ("http redirect", format!(r#"{{ "inviteRedirectUrl": "http://apps.example", {options}, "rules": [] }}"#), "inviteRedirectUrl"),
        ("bad group id", r#"{ "accessOptions": { "p": { "displayName": "P", "groups": ["sales"] } }, "rules": [] }"#.to_owned(), "accessOptions.p.groups[0]"),
        ("no groups", r#"{ "accessOptions": { "p": { "displayName": "P", "groups": [] } }, "rules": [] }"#.to_owned(), "accessOptions.p.groups"),
        ("bad option key", format!(r#"{{ "accessOptions": {{ "Bad Key": {{ "displayName": "P", "groups": ["{GROUP_A}"] }} }}, "rules": [] }}"#), "accessOptions.Bad Key"),
        ("bad terms version", format!(r#"{{ "terms": {{ "version": "v 1", "url": "https://contoso.example/terms" }}, {options}, "rules": [] }}"#), "terms.version"),
        ("http terms url", format!(r#"{{ "terms": {{ "version": "1", "url": "http://contoso.example/terms" }}, {options}, "rules": [] }}"#), "terms.url"),
        ("zero-day deadline", format!(r#"{{ "approvalTimeoutDays": 0, {options}, "rules": [] }}"#), "approvalTimeoutDays"),
        ("bad language", format!(r#"{{ {options}, "rules": [{{ "domains": ["a.com"], "action": "invite", "access": ["p"], "messageLanguage": "en_US" }}] }}"#), "rules[0].messageLanguage"),
    ];
    for (description, json, place) in cases {
        match Policy::from_json(&json) {
            Err(PolicyError::Invalid { place: got, .. }) => assert_eq!(got, place, "{description}"),
            other => panic!("{description}: expected an error at {place}, got {other:?}"),
        }
    }
}

#[test]
fn typos_and_bad_json_are_syntax_errors_with_a_position() {
    let typo = format!(
        r#"{{ "accessOptions": {{ "p": {{ "displayName": "P", "groups": ["{GROUP_A}"] }} }},
             "rules": [{{ "domains": ["a.com"], "action": "invite", "acess": ["p"] }}] }}"#
    );
    let message = Policy::from_json(&typo).unwrap_err().to_string();
    assert!(
        message.contains("unknown field `acess`") && message.contains("line 2"),
        "{message}"
    );
    assert!(matches!(
        Policy::from_json("{"),
        Err(PolicyError::Syntax(_))
    ));
}

#[test]
fn a_thousand_rules_still_match_by_label() {
    let rules: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{ "domains": ["d{i}.example", "*.w{i}.example"], "action": "invite", "access": ["p"] }}"#))
        .collect();
    let policy = Policy::from_json(&format!(
        r#"{{ "accessOptions": {{ "p": {{ "displayName": "P", "groups": ["{GROUP_A}"] }} }}, "rules": [{}] }}"#,
        rules.join(",")
    ))
    .unwrap();
    assert_eq!(action_for(&policy, "d999.example"), Action::Invite);
    assert_eq!(action_for(&policy, "x.w500.example"), Action::Invite);
    assert_eq!(action_for(&policy, "w500.example"), Action::Deny);
}

#[test]
fn terms_are_optional_and_validated() {
    assert!(example().terms().is_none());
    let policy = Policy::from_json(&format!(
        r#"{{ "terms": {{ "version": "2026-01", "url": "https://contoso.example/terms" }},
             "accessOptions": {{ "p": {{ "displayName": "P", "groups": ["{GROUP_A}"] }} }}, "rules": [] }}"#
    ))
    .unwrap();
    let terms = policy.terms().unwrap();
    assert_eq!(
        (terms.version.as_str(), terms.url.as_str()),
        ("2026-01", "https://contoso.example/terms")
    );
}

/// A policy whose `contoso.com` rule and `partner-portal` option carry `extra` fields.
fn with_expiry(rule_extra: &str, option_extra: &str) -> Result<Policy, PolicyError> {
    Policy::from_json(&format!(
        r#"{{
        "accessOptions": {{
            "partner-portal": {{ "displayName": "Partner portal", "groups": ["{GROUP_A}"] {option_extra} }},
            "sales-extranet": {{ "displayName": "Sales extranet", "groups": ["{GROUP_B}"] }}
        }},
        "rules": [
            {{ "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal", "sales-extranet"] {rule_extra} }},
            {{ "domains": ["gmail.com"], "action": "deny" }}
        ]
    }}"#
    ))
}

#[test]
fn access_ends_as_the_rule_or_else_the_access_option_says() {
    let days = |d: i64| time::Duration::days(d);
    let contoso = crate::domain::EmailDomain::parse("contoso.com").unwrap();
    let expiry_of = |policy: &Policy, option: &str| {
        let option = policy.access_option(&key(option)).unwrap();
        policy.decide(&contoso).expiry(option)
    };

    let policy = with_expiry("", r#", "accessDays": 90"#).unwrap();
    assert_eq!(
        expiry_of(&policy, "partner-portal"),
        Some(Expiry {
            access: days(90),
            renew_before: days(14)
        }),
        "renewBeforeDays defaults to 14"
    );
    assert_eq!(
        expiry_of(&policy, "sales-extranet"),
        None,
        "no accessDays: never ends"
    );

    let policy = with_expiry(
        r#", "accessDays": 30, "renewBeforeDays": 7"#,
        r#", "accessDays": 90"#,
    )
    .unwrap();
    let rule = Some(Expiry {
        access: days(30),
        renew_before: days(7),
    });
    assert_eq!(expiry_of(&policy, "partner-portal"), rule, "the rule wins");
    assert_eq!(expiry_of(&policy, "sales-extranet"), rule);

    let policy = with_expiry(r#", "accessDays": 5"#, "").unwrap();
    assert_eq!(
        expiry_of(&policy, "partner-portal").unwrap().renew_before,
        days(4),
        "a short access renews from its day before last at the latest"
    );
    let text = policy
        .explain(&crate::domain::EmailAddress::parse("ada@contoso.com").unwrap())
        .to_string();
    assert!(
        text.contains("expiry:   partner-portal: access ends 5 days after the invitation"),
        "{text}"
    );
}

#[test]
fn bad_expiry_settings_name_their_place() {
    let cases = [
        (
            "accessDays 0",
            r#", "accessDays": 0"#,
            "",
            "rules[0].accessDays",
        ),
        (
            "accessDays too long",
            r#", "accessDays": 3651"#,
            "",
            "rules[0].accessDays",
        ),
        (
            "renewal not before the end",
            r#", "accessDays": 30, "renewBeforeDays": 30"#,
            "",
            "rules[0].renewBeforeDays",
        ),
        (
            "renewal without an end",
            r#", "renewBeforeDays": 7"#,
            "",
            "rules[0].renewBeforeDays",
        ),
        (
            "on an access option",
            "",
            r#", "accessDays": 10, "renewBeforeDays": 12"#,
            "accessOptions.partner-portal.renewBeforeDays",
        ),
    ];
    for (what, rule, option, place) in cases {
        match with_expiry(rule, option) {
            Err(PolicyError::Invalid { place: got, .. }) => assert_eq!(got, place, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    let deny = Policy::from_json(&format!(
        r#"{{ "accessOptions": {{ "p": {{ "displayName": "P", "groups": ["{GROUP_A}"] }} }},
        "rules": [ {{ "domains": ["gmail.com"], "action": "deny", "accessDays": 30 }} ] }}"#
    ));
    assert!(
        matches!(deny, Err(PolicyError::Invalid { ref place, .. }) if place == "rules[0].accessDays"),
        "{deny:?}"
    );
}
