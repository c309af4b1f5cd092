//! The policy file as written (`policy.json`), and its validation into [`Policy`].
//!
//! Unknown fields are refused so a typo (`"acess"`) is an error, not a silently ignored rule.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    AccessOption, Action, InvitationSettings, Policy, PolicyError, Rule,
    matching::{DomainIndex, DomainPattern},
};
use crate::domain::{AccessKey, GroupId};

const DEFAULT_REDIRECT_URL: &str = "https://myapps.microsoft.com";
/// How long a request waits for an administrator unless the policy says otherwise.
const DEFAULT_APPROVAL_TIMEOUT_DAYS: u32 = 14;
const MAX_APPROVAL_TIMEOUT_DAYS: u32 = 365;
/// When the renewal notice goes out unless `renewBeforeDays` says otherwise.
const DEFAULT_RENEW_BEFORE_DAYS: u32 = 14;
/// Longest `accessDays`: ten years (longer is "never", which is leaving it out).
const MAX_ACCESS_DAYS: u32 = 3650;
/// Graph limits `customizedMessageBody`; keep well inside what mail clients show.
const MAX_MESSAGE_CHARS: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PolicyDocument {
    #[serde(default)]
    default_action: Option<String>,
    #[serde(default)]
    default_access: Vec<String>,
    #[serde(default)]
    invite_redirect_url: Option<String>,
    #[serde(default)]
    send_invitation_message: Option<bool>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_language: Option<String>,
    #[serde(default)]
    approval_timeout_days: Option<u32>,
    #[serde(default)]
    terms: Option<TermsDocument>,
    /// Proof of address before anything else happens (default `true`).
    #[serde(default)]
    verify_email: Option<bool>,
    access_options: BTreeMap<String, AccessOptionDocument>,
    rules: Vec<RuleDocument>,
    /// Free text for the people who maintain the file.
    #[serde(default, rename = "$comment")]
    _comment: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsDocument {
    version: String,
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccessOptionDocument {
    display_name: String,
    groups: Vec<String>,
    #[serde(default)]
    access_days: Option<u32>,
    #[serde(default)]
    renew_before_days: Option<u32>,
    #[serde(default, rename = "$comment")]
    _comment: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleDocument {
    domains: Vec<String>,
    action: String,
    #[serde(default)]
    access: Vec<String>,
    #[serde(default)]
    invite_redirect_url: Option<String>,
    #[serde(default)]
    send_invitation_message: Option<bool>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_language: Option<String>,
    #[serde(default)]
    approval_timeout_days: Option<u32>,
    #[serde(default)]
    access_days: Option<u32>,
    #[serde(default)]
    renew_before_days: Option<u32>,
    #[serde(default, rename = "$comment")]
    _comment: Option<serde::de::IgnoredAny>,
}

fn invalid(place: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        place: place.into(),
        message: message.into(),
    }
}

impl PolicyDocument {
    pub(super) fn validate(self) -> Result<Policy, PolicyError> {
        let options = validate_options(self.access_options)?;

        let base = InvitationSettings {
            redirect_url: validate_url("inviteRedirectUrl", self.invite_redirect_url)?
                .unwrap_or_else(|| DEFAULT_REDIRECT_URL.to_owned()),
            send_invitation_message: self.send_invitation_message.unwrap_or(true),
            message: validate_message("message", self.message)?,
            message_language: validate_language("messageLanguage", self.message_language)?,
        };

        let default_action = match self.default_action.as_deref() {
            None | Some("deny") => Action::Deny,
            Some("approve") => Action::Approve,
            Some("invite") => {
                return Err(invalid(
                    "defaultAction",
                    "\"invite\" is not allowed as the default: it would invite every domain on earth; \
                     use \"deny\" or \"approve\" and list the domains to invite in rules",
                ));
            }
            Some(other) => {
                return Err(invalid(
                    "defaultAction",
                    format!("{other:?} is not one of \"deny\", \"approve\""),
                ));
            }
        };
        let default_access = validate_access_list("defaultAccess", &self.default_access, &options)?;
        match default_action {
            Action::Approve if default_access.is_empty() => {
                return Err(invalid(
                    "defaultAccess",
                    "is required when defaultAction is \"approve\" (which access would approved requests get?)",
                ));
            }
            Action::Deny if !default_access.is_empty() => {
                return Err(invalid(
                    "defaultAccess",
                    "has no meaning when defaultAction is \"deny\"",
                ));
            }
            _ => {}
        }
        let base_timeout = validate_timeout("approvalTimeoutDays", self.approval_timeout_days)?
            .unwrap_or(time::Duration::days(DEFAULT_APPROVAL_TIMEOUT_DAYS.into()));
        let default_rule = Rule {
            index: usize::MAX,
            domains: Vec::new(),
            action: default_action,
            access: default_access,
            invitation: base.clone(),
            approval_timeout: base_timeout,
            expiry: None,
        };

        let mut index = DomainIndex::default();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.into_iter().enumerate() {
            let place = format!("rules[{i}]");
            let validated = validate_rule(&place, i, rule, &options, &base, base_timeout)?;
            for (d, pattern) in validated.domains.iter().enumerate() {
                if let Some(other) = index.insert(pattern, i) {
                    return Err(invalid(
                        format!("{place}.domains[{d}]"),
                        format!(
                            "{pattern} is already listed in rules[{other}]; a domain may appear in one rule only"
                        ),
                    ));
                }
            }
            rules.push(validated);
        }

        let terms = match self.terms {
            None => None,
            Some(terms) => {
                let version = terms.version.trim().to_owned();
                let valid = (1..=64).contains(&version.len())
                    && version
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
                if !valid {
                    return Err(invalid(
                        "terms.version",
                        "must be 1-64 letters, digits, '.', '-' or '_'",
                    ));
                }
                let url = validate_url("terms.url", Some(terms.url))?.unwrap_or_default();
                Some(super::Terms { version, url })
            }
        };
        Ok(Policy {
            options,
            rules,
            default_rule,
            index,
            terms,
            verify_email: self.verify_email.unwrap_or(true),
        })
    }
}

fn validate_options(
    documents: BTreeMap<String, AccessOptionDocument>,
) -> Result<BTreeMap<AccessKey, AccessOption>, PolicyError> {
    if documents.is_empty() {
        return Err(invalid(
            "accessOptions",
            "at least one access option is required",
        ));
    }
    let mut options = BTreeMap::new();
    for (name, option) in documents {
        let place = format!("accessOptions.{name}");
        let key = AccessKey::parse(&name).ok_or_else(|| {
            invalid(
                &place,
                "key must be 1-64 lower-case letters, digits, - or _",
            )
        })?;
        let display_name = option.display_name.trim().to_owned();
        if display_name.is_empty() || display_name.chars().count() > 100 {
            return Err(invalid(
                format!("{place}.displayName"),
                "must be 1-100 characters",
            ));
        }
        if option.groups.is_empty() {
            return Err(invalid(
                format!("{place}.groups"),
                "at least one Entra group object id is required",
            ));
        }
        let expiry = validate_expiry(&place, option.access_days, option.renew_before_days)?;
        let mut groups = Vec::with_capacity(option.groups.len());
        for (g, text) in option.groups.iter().enumerate() {
            let group = GroupId::parse(text).ok_or_else(|| {
                invalid(
                    format!("{place}.groups[{g}]"),
                    format!(
                        "{text:?} is not a group object id (a GUID such as 8f1c3c1e-0000-4000-8000-000000000000)"
                    ),
                )
            })?;
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        options.insert(
            key.clone(),
            AccessOption {
                key,
                display_name,
                groups,
                expiry,
            },
        );
    }
    Ok(options)
}

fn validate_rule(
    place: &str,
    index: usize,
    rule: RuleDocument,
    options: &BTreeMap<AccessKey, AccessOption>,
    base: &InvitationSettings,
    base_timeout: time::Duration,
) -> Result<Rule, PolicyError> {
    if rule.domains.is_empty() {
        return Err(invalid(
            format!("{place}.domains"),
            "at least one domain is required",
        ));
    }
    let domains = rule
        .domains
        .iter()
        .enumerate()
        .map(|(d, text)| {
            DomainPattern::parse(text).ok_or_else(|| {
                invalid(
                    format!("{place}.domains[{d}]"),
                    format!("{text:?} is not a domain (contoso.com) or a subdomain wildcard (*.contoso.com)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let action = match rule.action.as_str() {
        "invite" => Action::Invite,
        "approve" => Action::Approve,
        "deny" => Action::Deny,
        other => {
            return Err(invalid(
                format!("{place}.action"),
                format!("{other:?} is not one of \"invite\", \"approve\", \"deny\""),
            ));
        }
    };
    let access = validate_access_list(&format!("{place}.access"), &rule.access, options)?;
    match action {
        Action::Deny if !access.is_empty() => {
            return Err(invalid(
                format!("{place}.access"),
                "has no meaning on a deny rule",
            ));
        }
        Action::Invite | Action::Approve if access.is_empty() => {
            return Err(invalid(
                format!("{place}.access"),
                "at least one access option is required for invite and approve rules",
            ));
        }
        _ => {}
    }
    let invitation = InvitationSettings {
        redirect_url: validate_url(
            &format!("{place}.inviteRedirectUrl"),
            rule.invite_redirect_url,
        )?
        .unwrap_or_else(|| base.redirect_url.clone()),
        send_invitation_message: rule
            .send_invitation_message
            .unwrap_or(base.send_invitation_message),
        message: validate_message(&format!("{place}.message"), rule.message)?
            .or_else(|| base.message.clone()),
        message_language: validate_language(
            &format!("{place}.messageLanguage"),
            rule.message_language,
        )?
        .or_else(|| base.message_language.clone()),
    };
    let approval_timeout = validate_timeout(
        &format!("{place}.approvalTimeoutDays"),
        rule.approval_timeout_days,
    )?
    .unwrap_or(base_timeout);
    let expiry = validate_expiry(place, rule.access_days, rule.renew_before_days)?;
    if expiry.is_some() && action == Action::Deny {
        return Err(invalid(
            format!("{place}.accessDays"),
            "has no meaning on a deny rule",
        ));
    }
    Ok(Rule {
        index,
        domains,
        action,
        access,
        invitation,
        approval_timeout,
        expiry,
    })
}

fn validate_access_list(
    place: &str,
    keys: &[String],
    options: &BTreeMap<AccessKey, AccessOption>,
) -> Result<Vec<AccessKey>, PolicyError> {
    let mut access = Vec::with_capacity(keys.len());
    for (a, key) in keys.iter().enumerate() {
        let known = AccessKey::parse(key).filter(|k| options.contains_key(k));
        let key = known.ok_or_else(|| {
            invalid(
                format!("{place}[{a}]"),
                format!("{key:?} is not a key of accessOptions"),
            )
        })?;
        if !access.contains(&key) {
            access.push(key);
        }
    }
    Ok(access)
}

fn validate_url(place: &str, url: Option<String>) -> Result<Option<String>, PolicyError> {
    let Some(url) = url else { return Ok(None) };
    let parsed = reqwest::Url::parse(&url)
        .map_err(|_| invalid(place, format!("{url:?} is not an absolute URL")))?;
    let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1"));
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && local) {
        return Err(invalid(
            place,
            "must be an https:// URL (http:// only for localhost)",
        ));
    }
    Ok(Some(url))
}

fn validate_message(place: &str, message: Option<String>) -> Result<Option<String>, PolicyError> {
    match message {
        Some(text) if text.trim().is_empty() || text.chars().count() > MAX_MESSAGE_CHARS => Err(
            invalid(place, format!("must be 1-{MAX_MESSAGE_CHARS} characters")),
        ),
        other => Ok(other),
    }
}

/// A BCP 47 tag as Graph's `messageLanguage` takes it (`en-US`, `fr`).
fn validate_language(place: &str, language: Option<String>) -> Result<Option<String>, PolicyError> {
    let Some(tag) = language else { return Ok(None) };
    let valid = !tag.is_empty()
        && tag.split('-').all(|part| {
            (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if valid {
        Ok(Some(tag))
    } else {
        Err(invalid(
            place,
            format!("{tag:?} is not a language tag such as \"en-US\""),
        ))
    }
}

fn validate_timeout(place: &str, days: Option<u32>) -> Result<Option<time::Duration>, PolicyError> {
    match days {
        None => Ok(None),
        Some(days @ 1..=MAX_APPROVAL_TIMEOUT_DAYS) => Ok(Some(time::Duration::days(days.into()))),
        Some(_) => Err(invalid(
            place,
            format!("must be 1-{MAX_APPROVAL_TIMEOUT_DAYS} days"),
        )),
    }
}

/// `accessDays` (1-3650) and `renewBeforeDays` (0 to less than `accessDays`, default 14 or
/// `accessDays - 1` when shorter) at `place` (a rule or an access option).
fn validate_expiry(
    place: &str,
    access_days: Option<u32>,
    renew_before_days: Option<u32>,
) -> Result<Option<super::Expiry>, PolicyError> {
    let access = match access_days {
        None if renew_before_days.is_some() => {
            return Err(invalid(
                format!("{place}.renewBeforeDays"),
                "has no meaning without accessDays",
            ));
        }
        None => return Ok(None),
        Some(days @ 1..=MAX_ACCESS_DAYS) => days,
        Some(_) => {
            return Err(invalid(
                format!("{place}.accessDays"),
                format!(
                    "must be 1-{MAX_ACCESS_DAYS} days (leave it out for access that does not end)"
                ),
            ));
        }
    };
    let renew_before = match renew_before_days {
        None => DEFAULT_RENEW_BEFORE_DAYS.min(access - 1),
        Some(days) if days < access => days,
        Some(_) => {
            return Err(invalid(
                format!("{place}.renewBeforeDays"),
                format!(
                    "must be 0-{} days: less than accessDays ({access})",
                    access - 1
                ),
            ));
        }
    };
    Ok(Some(super::Expiry {
        access: time::Duration::days(access.into()),
        renew_before: time::Duration::days(renew_before.into()),
    }))
}
