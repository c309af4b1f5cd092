//! Where mail goes and how the app proves who it is to Azure Communication Services, read
//! once at start-up. Nothing here is sent anywhere until the first mail.

use std::time::Duration;

use base64::Engine;
use url::Url;

use crate::{domain::EmailAddress, graph::is_https_or_loopback};

/// The setting naming the Communication Services resource.
pub const ENDPOINT_SETTING: &str = "SIGNUP_MAIL_ENDPOINT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_INLINE_RETRY: Duration = Duration::from_secs(5);

/// Everything the mail client needs; pure data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// `SIGNUP_MAIL_ENDPOINT`: `https://<resource>.communication.azure.com` (`http://` only on
    /// loopback: the development host's mail catcher and the tests' mock).
    pub endpoint: Url,
    /// `SIGNUP_MAIL_SENDER`: `DoNotReply@<verified domain>`.
    pub sender: EmailAddress,
    /// `SIGNUP_MAIL_ACCESS_KEY` (the resource's base64 access key, for HMAC request
    /// signing) when set; otherwise the app's Entra ID identity (the managed identity in
    /// Azure), the same credential Graph uses.
    pub access_key: Option<AccessKey>,
    /// `SIGNUP_MAIL_TIMEOUT_SECONDS`, default 10: one HTTP call, connection included.
    pub timeout: Duration,
    /// The longest `Retry-After` waited out inside one send; longer ones leave the mail
    /// owed for `Reconcile`.
    pub max_inline_retry: Duration,
}

/// A Communication Services access key, decoded; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey(Vec<u8>);

impl AccessKey {
    /// The key as the portal shows it (base64).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        (!bytes.is_empty()).then_some(Self(bytes))
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("{name} must be {expected}, not {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("{0} is needed when SIGNUP_MAIL_ENDPOINT is set")]
    Missing(&'static str),
    #[error("could not build the HTTP client for mail")]
    HttpClient(#[source] reqwest::Error),
    #[error("could not set up the managed identity credential for mail")]
    Credential(#[source] azure_core::Error),
}

impl MailSettings {
    /// `Ok(None)` when `SIGNUP_MAIL_ENDPOINT` is unset: no mail at all.
    pub fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, MailConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let Some(endpoint) = get(ENDPOINT_SETTING) else {
            return Ok(None);
        };
        let endpoint = Url::parse(endpoint.trim())
            .ok()
            .filter(|url| is_https_or_loopback(url) && url.query().is_none())
            .ok_or(MailConfigError::Invalid {
                name: ENDPOINT_SETTING,
                expected: "an https:// URL (http:// only for localhost)",
                value: endpoint,
            })?;
        let sender =
            get("SIGNUP_MAIL_SENDER").ok_or(MailConfigError::Missing("SIGNUP_MAIL_SENDER"))?;
        let sender = EmailAddress::parse(&sender).map_err(|_| MailConfigError::Invalid {
            name: "SIGNUP_MAIL_SENDER",
            expected: "an e-mail address of the resource's verified domain",
            value: sender,
        })?;
        let access_key = match get("SIGNUP_MAIL_ACCESS_KEY") {
            None => None,
            Some(key) => Some(AccessKey::parse(&key).ok_or(MailConfigError::Invalid {
                name: "SIGNUP_MAIL_ACCESS_KEY",
                expected: "the resource's access key (base64)",
                value: "(hidden)".into(),
            })?),
        };
        let timeout = match get("SIGNUP_MAIL_TIMEOUT_SECONDS") {
            None => DEFAULT_TIMEOUT,
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| (0.001..=120.0).contains(s))
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or(MailConfigError::Invalid {
                    name: "SIGNUP_MAIL_TIMEOUT_SECONDS",
                    expected: "a number of seconds above 0, at most 120",
                    value: text,
                })?,
        };
        Ok(Some(Self {
            endpoint,
            sender,
            access_key,
            timeout,
            max_inline_retry: DEFAULT_MAX_INLINE_RETRY,
        }))
    }
}

/// The setting naming the organisation in every mail and on the page.
pub const ORG_NAME_SETTING: &str = "SIGNUP_ORG_NAME";

/// Everything about mail that the app reads at start-up, as one part of
/// [`crate::settings::Settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailOptions {
    /// The Communication Services resource; `None` without `SIGNUP_MAIL_ENDPOINT`.
    pub service: Option<MailSettings>,
    /// `SIGNUP_ORG_NAME`: who invites (required with a mail endpoint).
    pub org_name: String,
    /// `SIGNUP_VERIFY_HOURS`, default 24 (1–168): how long a verification link works.
    pub verify_hours: u32,
    /// `SIGNUP_APPROVER_EMAILS`: comma-separated addresses told about each request that
    /// waits for approval (beside or instead of `APPROVAL_WEBHOOK_URL`).
    pub approvers: Vec<EmailAddress>,
    /// `SIGNUP_SUPPORT_CONTACT` and `SIGNUP_PRIVACY_URL` end every partner mail.
    pub branding: crate::branding::Branding,
}

impl Default for MailOptions {
    fn default() -> Self {
        Self {
            service: None,
            org_name: String::new(),
            verify_hours: crate::verify::DEFAULT_VALID_HOURS,
            approvers: Vec::new(),
            branding: crate::branding::Branding::default(),
        }
    }
}

/// `SIGNUP_VERIFY_HOURS`, default 24 (1–168): how long a verification link works. The mail
/// and the page's `config.json` (`verifyHours`) both say it.
pub fn verify_hours(lookup: &impl Fn(&str) -> Option<String>) -> Result<u32, MailConfigError> {
    match lookup("SIGNUP_VERIFY_HOURS").filter(|v| !v.trim().is_empty()) {
        None => Ok(crate::verify::DEFAULT_VALID_HOURS),
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|h| (1..=168).contains(h))
            .ok_or(MailConfigError::Invalid {
                name: "SIGNUP_VERIFY_HOURS",
                expected: "a number of hours from 1 to 168",
                value: text,
            }),
    }
}

impl MailOptions {
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, MailConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let service = MailSettings::from_lookup(lookup)?;
        let org_name = get(ORG_NAME_SETTING)
            .map(|name| name.trim().to_owned())
            .unwrap_or_default();
        if org_name.chars().count() > 100 || org_name.chars().any(char::is_control) {
            return Err(MailConfigError::Invalid {
                name: ORG_NAME_SETTING,
                expected: "a name of at most 100 characters, without control characters",
                value: org_name,
            });
        }
        if service.is_some() && org_name.is_empty() {
            return Err(MailConfigError::Missing(ORG_NAME_SETTING));
        }
        let verify_hours = verify_hours(lookup)?;
        let approvers = match get("SIGNUP_APPROVER_EMAILS") {
            None => Vec::new(),
            Some(text) => text
                .split([',', ';'])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| {
                    EmailAddress::parse(a).map_err(|_| MailConfigError::Invalid {
                        name: "SIGNUP_APPROVER_EMAILS",
                        expected: "comma-separated e-mail addresses",
                        value: "(an entry is not an address)".into(),
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            service,
            org_name,
            verify_hours,
            approvers,
            branding: crate::branding::Branding::from_lookup(lookup).map_err(|e| {
                MailConfigError::Invalid {
                    name: e.name,
                    expected: e.expected,
                    value: e.value,
                }
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn options(pairs: &[(&str, &str)]) -> Result<MailOptions, MailConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        MailOptions::from_lookup(&|name: &str| map.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn mail_is_off_without_an_endpoint_and_complete_with_one() {
        let off = options(&[]).unwrap();
        assert_eq!(off, MailOptions::default());
        assert_eq!(off.verify_hours, 24);
        let on = options(&[
            (
                "SIGNUP_MAIL_ENDPOINT",
                "https://contoso.communication.azure.com",
            ),
            ("SIGNUP_MAIL_SENDER", "DoNotReply@contoso.example"),
            (
                "SIGNUP_MAIL_ACCESS_KEY",
                "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1hLXNlY3JldA==",
            ),
            ("SIGNUP_ORG_NAME", " Contoso "),
            ("SIGNUP_VERIFY_HOURS", "48"),
            (
                "SIGNUP_APPROVER_EMAILS",
                "a@contoso.example, b@contoso.example",
            ),
        ])
        .unwrap();
        assert_eq!(on.org_name, "Contoso");
        assert_eq!((on.verify_hours, on.approvers.len()), (48, 2));
        let service = on.service.unwrap();
        assert!(service.access_key.is_some());
        assert!(
            !format!("{service:?}").contains("bG9jYWw"),
            "the key never prints"
        );
    }

    #[test]
    fn bad_mail_settings_are_named() {
        let endpoint = (
            "SIGNUP_MAIL_ENDPOINT",
            "https://contoso.communication.azure.com",
        );
        let sender = ("SIGNUP_MAIL_SENDER", "DoNotReply@contoso.example");
        let org = ("SIGNUP_ORG_NAME", "Contoso");
        for (pairs, named) in [
            (vec![endpoint, sender], "SIGNUP_ORG_NAME"),
            (vec![endpoint, org], "SIGNUP_MAIL_SENDER"),
            (
                vec![
                    ("SIGNUP_MAIL_ENDPOINT", "http://contoso.example"),
                    sender,
                    org,
                ],
                "SIGNUP_MAIL_ENDPOINT",
            ),
            (
                vec![
                    endpoint,
                    sender,
                    org,
                    ("SIGNUP_MAIL_ACCESS_KEY", "not base64!"),
                ],
                "SIGNUP_MAIL_ACCESS_KEY",
            ),
            (vec![("SIGNUP_VERIFY_HOURS", "0")], "SIGNUP_VERIFY_HOURS"),
            (
                vec![("SIGNUP_APPROVER_EMAILS", "x")],
                "SIGNUP_APPROVER_EMAILS",
            ),
        ] {
            let error = options(&pairs).unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
        }
    }
}
