//! Every app setting in one typed struct, read once from the environment at start-up.
//!
//! Names follow the Functions host where it has one (`FUNCTIONS_CUSTOMHANDLER_PORT`,
//! `AzureWebJobsStorage`); the app's own settings start with `SIGNUP_`. README.md lists them
//! all; `local.settings.json.example` shows each with a placeholder.

use std::path::PathBuf;

use crate::{
    abuse::{CaptchaProvider, CaptchaSettings, RateLimitSettings, Secret},
    auth::{AdminAuthConfigError, AdminAuthSettings},
    graph::{GraphConfigError, GraphSettings},
    lifecycle::DEFAULT_RETENTION_DAYS,
    mail::{MailConfigError, MailOptions},
    site_base::{SITE_URL_SETTING, SiteBase},
    storage::{ConnectionError, StorageAccount},
    worker::DEFAULT_LEASE,
};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines, for a terminal.
    Text,
    /// One JSON object per line, for Application Insights and log queries.
    Json,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `FUNCTIONS_CUSTOMHANDLER_PORT`: the port the host expects us on (127.0.0.1).
    /// Default 8080 when run by hand; 0 lets the OS choose (tests).
    pub port: u16,
    /// `AzureWebJobsStorage` (or its identity-based `__` form).
    pub storage: StorageAccount,
    /// `SIGNUP_POLICY_PATH`, default `policy.json` in the working directory (the app root
    /// under the Functions host).
    pub policy_path: PathBuf,
    /// `SIGNUP_DRY_RUN`: record what would be sent to Graph, send nothing. Default false.
    pub dry_run: bool,
    /// `SIGNUP_LOG_FORMAT`: `text` (default) or `json`. The filter is `RUST_LOG`.
    pub log_format: LogFormat,
    /// Microsoft Graph (`GRAPH_BASE_URL`, `AZURE_TENANT_ID`/`AZURE_CLIENT_ID`/
    /// `AZURE_CLIENT_SECRET` or a managed identity, `AZURE_AUTHORITY_HOST`, timeouts);
    /// `None` when no credential is configured, which only a dry run accepts.
    pub graph: Option<GraphSettings>,
    /// The admin API's tokens (`SIGNUP_ADMIN_APP_ID`, `AZURE_TENANT_ID`,
    /// `AZURE_AUTHORITY_HOST`); `None` when `SIGNUP_ADMIN_APP_ID` is unset: the admin API
    /// is off.
    pub admin_auth: Option<AdminAuthSettings>,
    /// `APPROVAL_WEBHOOK_URL`: a Teams or Slack incoming webhook told about each request
    /// that starts waiting for approval. Optional.
    pub approval_webhook: Option<reqwest::Url>,
    /// `SIGNUP_PUBLIC_BASE_URL`: the app's public address (`https://<app>.azurewebsites.net`),
    /// used in the approval notification's links. Optional.
    pub public_base_url: Option<String>,
    /// `SIGNUP_CAPTCHA_PROVIDER` (`turnstile`, `hcaptcha`, `recaptcha`), `SIGNUP_CAPTCHA_SECRET`
    /// and `SIGNUP_CAPTCHA_VERIFY_URL` (default: the provider's). `None`: no captcha.
    pub captcha: Option<CaptchaSettings>,
    /// `SIGNUP_RATE_LIMITS`: `ip=30/1h,domain=300/1h,address=5/1d` by default; `off`.
    pub rate_limits: RateLimitSettings,
    /// `SIGNUP_TRUSTED_PROXY_HOPS`: proxies in front of the app that append to
    /// `X-Forwarded-For` (1 on Azure Functions; 2 behind Front Door). 0 ignores the header.
    pub trusted_proxy_hops: usize,
    /// `SIGNUP_SITE_URL`: the sign-up page's address, where plain HTML form posts are
    /// redirected (`thanks.html`, `error.html`). Default `/`, the API's own origin.
    pub site_url: SiteBase,
    /// `SIGNUP_STALE_AFTER_SECONDS`, default [`DEFAULT_LEASE`] (2 minutes): the worker's `Inviting` lease,
    /// and the age after which Reconcile treats an `Accepted` row as never enqueued and an
    /// `Inviting` lease as stale. Production keeps the default; the fault suite shortens it
    /// so a run need not wait minutes for recovery.
    pub stale_after: time::Duration,
    /// Mail to partners and approvers (`SIGNUP_MAIL_*`, `SIGNUP_ORG_NAME`,
    /// `SIGNUP_VERIFY_HOURS`, `SIGNUP_APPROVER_EMAILS`; [`crate::mail`]).
    pub mail: MailOptions,
    /// `SIGNUP_RETENTION_DAYS`, default [`DEFAULT_RETENTION_DAYS`] (365), 1–3650: how long
    /// finished requests (`Denied`, `Failed`, `Expired`) and dead letters are kept before
    /// the `Lifecycle` timer deletes them (PRIVACY.md).
    pub retention: time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name} must be {expected}, not {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error(transparent)]
    Storage(#[from] ConnectionError),
    #[error(transparent)]
    Graph(#[from] GraphConfigError),
    #[error(transparent)]
    AdminAuth(#[from] AdminAuthConfigError),
    #[error(transparent)]
    Mail(#[from] MailConfigError),
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let port = match lookup("FUNCTIONS_CUSTOMHANDLER_PORT") {
            None => 8080,
            Some(value) => value.trim().parse().map_err(|_| SettingsError::Invalid {
                name: "FUNCTIONS_CUSTOMHANDLER_PORT",
                expected: "a port number",
                value,
            })?,
        };
        Ok(Self {
            port,
            storage: StorageAccount::from_settings(&lookup)?,
            policy_path: policy_path(&lookup),
            dry_run: parse_bool(&lookup, "SIGNUP_DRY_RUN", false)?,
            log_format: match lookup("SIGNUP_LOG_FORMAT").as_deref().map(str::trim) {
                None | Some("" | "text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(SettingsError::Invalid {
                        name: "SIGNUP_LOG_FORMAT",
                        expected: "\"text\" or \"json\"",
                        value: other.to_owned(),
                    });
                }
            },
            graph: GraphSettings::from_lookup(&lookup)?,
            admin_auth: AdminAuthSettings::from_lookup(&lookup)?,
            approval_webhook: match lookup("APPROVAL_WEBHOOK_URL").filter(|v| !v.trim().is_empty())
            {
                None => None,
                Some(value) => Some(
                    reqwest::Url::parse(value.trim())
                        .ok()
                        .filter(|url| matches!(url.scheme(), "https" | "http"))
                        .ok_or(SettingsError::Invalid {
                            name: "APPROVAL_WEBHOOK_URL",
                            expected: "an http(s) URL",
                            value: "(hidden: webhook URLs carry a secret)".into(),
                        })?,
                ),
            },
            public_base_url: lookup("SIGNUP_PUBLIC_BASE_URL").filter(|v| !v.trim().is_empty()),
            captcha: captcha(&lookup)?,
            rate_limits: match lookup("SIGNUP_RATE_LIMITS").filter(|v| !v.trim().is_empty()) {
                None => RateLimitSettings::default(),
                Some(text) => RateLimitSettings::parse(&text).map_err(|_| SettingsError::Invalid {
                    name: "SIGNUP_RATE_LIMITS",
                    expected: "scope=max/window pairs such as ip=30/1h,domain=300/1h,address=5/1d, or off",
                    value: text,
                })?,
            },
            trusted_proxy_hops: bounded(
                &lookup,
                "SIGNUP_TRUSTED_PROXY_HOPS",
                0..=10,
                1,
                "a number of proxies from 0 to 10",
            )?,
            site_url: match lookup(SITE_URL_SETTING) {
                None => SiteBase::default(),
                Some(value) => SiteBase::parse(&value).map_err(|_| SettingsError::Invalid {
                    name: SITE_URL_SETTING,
                    expected: "an http(s) URL or a path starting with /",
                    value,
                })?,
            },
            stale_after: time::Duration::seconds(bounded(
                &lookup,
                "SIGNUP_STALE_AFTER_SECONDS",
                5..=3600,
                DEFAULT_LEASE.whole_seconds(),
                "a number of seconds from 5 to 3600",
            )?),
            mail: MailOptions::from_lookup(&lookup)?,
            retention: time::Duration::days(i64::from(retention_days(&lookup)?)),
        })
    }
}

fn captcha(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<CaptchaSettings>, SettingsError> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let (provider, secret) = match (get("SIGNUP_CAPTCHA_PROVIDER"), get("SIGNUP_CAPTCHA_SECRET")) {
        (None, None) => return Ok(None),
        (Some(provider), Some(secret)) => (provider, secret),
        (Some(_), None) | (None, Some(_)) => {
            return Err(SettingsError::Invalid {
                name: "SIGNUP_CAPTCHA_PROVIDER",
                expected: "set together with SIGNUP_CAPTCHA_SECRET (both or neither)",
                value: String::new(),
            });
        }
    };
    let provider = CaptchaProvider::parse(&provider).ok_or(SettingsError::Invalid {
        name: "SIGNUP_CAPTCHA_PROVIDER",
        expected: "turnstile, hcaptcha or recaptcha",
        value: provider,
    })?;
    let url = get("SIGNUP_CAPTCHA_VERIFY_URL")
        .unwrap_or_else(|| provider.default_verify_url().to_owned());
    let verify_url = reqwest::Url::parse(url.trim())
        .ok()
        .filter(|u| {
            u.scheme() == "https" || matches!(u.host_str(), Some("127.0.0.1" | "localhost"))
        })
        .ok_or(SettingsError::Invalid {
            name: "SIGNUP_CAPTCHA_VERIFY_URL",
            expected: "an https URL (http only for localhost)",
            value: url,
        })?;
    Ok(Some(CaptchaSettings {
        provider,
        secret: Secret::new(secret.trim()),
        verify_url,
    }))
}

/// The setting naming the policy file.
/// How long finished requests are kept, in days ([`Settings::retention`]).
pub const RETENTION_SETTING: &str = "SIGNUP_RETENTION_DAYS";

/// `SIGNUP_RETENTION_DAYS` (1–3650, default 365): read by the handler and by `site config`,
/// which states it on the sign-up page.
pub fn retention_days(lookup: &impl Fn(&str) -> Option<String>) -> Result<u32, SettingsError> {
    bounded(
        lookup,
        RETENTION_SETTING,
        1..=3650,
        DEFAULT_RETENTION_DAYS,
        "a number of days from 1 to 3650",
    )
}

pub const POLICY_PATH_SETTING: &str = "SIGNUP_POLICY_PATH";
/// The policy file when [`POLICY_PATH_SETTING`] is unset: in the working directory, the
/// app root under the Functions host.
pub const DEFAULT_POLICY_FILE: &str = "policy.json";

/// The policy file the handler and the commands read by default.
pub fn policy_path(lookup: &impl Fn(&str) -> Option<String>) -> PathBuf {
    lookup(POLICY_PATH_SETTING)
        .filter(|p| !p.trim().is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_POLICY_FILE), PathBuf::from)
}

/// `SIGNUP_WORKER_THREADS`: how many threads run the process's async work. 1, the default,
/// runs everything on the main thread (tokio's current-thread runtime); more start a
/// work-stealing pool of that many. Read before the runtime exists, so apart from
/// [`Settings`], and for every subcommand.
///
/// One is the right size for this handler: its work waits on storage and Graph, a
/// sign-up costs ~0.2 ms of CPU, and on the instance it shares with the Functions host a
/// second worker mostly wakes and parks (a quarter more CPU per accepted sign-up,
/// docs/PERFORMANCE.md). Raise it only when the handler itself holds a core at 100 %.
pub fn worker_threads(lookup: impl Fn(&str) -> Option<String>) -> Result<usize, SettingsError> {
    bounded(
        &lookup,
        "SIGNUP_WORKER_THREADS",
        1..=64,
        1,
        "a number of threads from 1 to 64",
    )
}

/// A whole-number setting within `range`; `default` when unset or blank.
fn bounded<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    range: std::ops::RangeInclusive<T>,
    default: T,
    expected: &'static str,
) -> Result<T, SettingsError>
where
    T: std::str::FromStr + PartialOrd,
{
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or(SettingsError::Invalid {
                name,
                expected,
                value,
            }),
    }
}

pub(crate) fn parse_bool(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, SettingsError> {
    match lookup(name)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(SettingsError::Invalid {
            name,
            expected: "true or false",
            value: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn defaults_apply_when_only_storage_is_set() {
        let s = settings(&[("AzureWebJobsStorage", "UseDevelopmentStorage=true")]).unwrap();
        assert_eq!(s.port, 8080);
        assert_eq!(s.policy_path, PathBuf::from("policy.json"));
        assert!(!s.dry_run);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.stale_after, time::Duration::minutes(2));
        assert_eq!(s.stale_after, DEFAULT_LEASE);
        assert_eq!(s.retention, time::Duration::days(365));
        assert!(
            s.admin_auth.is_none(),
            "the admin API is off unless configured"
        );
    }

    #[test]
    fn the_admin_api_reads_its_app_id_and_shares_the_tenant_with_graph() {
        let storage = ("AzureWebJobsStorage", "UseDevelopmentStorage=true");
        let tenant = ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47");
        let app = (
            "SIGNUP_ADMIN_APP_ID",
            "6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01",
        );
        let s = settings(&[storage, tenant, app]).unwrap();
        let admin = s.admin_auth.unwrap();
        assert_eq!(admin.tenant_id().as_str(), tenant.1);
        assert!(matches!(
            settings(&[storage, app]),
            Err(SettingsError::AdminAuth(
                AdminAuthConfigError::MissingTenant
            ))
        ));
    }

    #[test]
    fn worker_threads_default_to_one_and_are_bounded() {
        let threads = |value: Option<&str>| {
            worker_threads(|name| {
                assert_eq!(name, "SIGNUP_WORKER_THREADS");
                value.map(str::to_owned)
            })
        };
        assert_eq!(threads(None).unwrap(), 1);
        assert_eq!(threads(Some(" ")).unwrap(), 1);
        assert_eq!(threads(Some("4")).unwrap(), 4);
        for bad in ["0", "65", "two", "-1"] {
            let error = threads(Some(bad)).unwrap_err().to_string();
            assert!(
                error.starts_with("SIGNUP_WORKER_THREADS must be a number of threads from 1 to 64"),
                "{error}"
            );
        }
    }

    #[test]
    fn retention_is_a_bounded_number_of_days() {
        let storage = ("AzureWebJobsStorage", "UseDevelopmentStorage=true");
        let s = settings(&[storage, (RETENTION_SETTING, "30")]).unwrap();
        assert_eq!(s.retention, time::Duration::days(30));
        for bad in ["0", "3651", "-1", "a year", "30d"] {
            let error = settings(&[storage, (RETENTION_SETTING, bad)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.starts_with("SIGNUP_RETENTION_DAYS must be a number of days from 1 to 3650"),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn stale_after_is_a_bounded_number_of_seconds() {
        let storage = ("AzureWebJobsStorage", "UseDevelopmentStorage=true");
        let s = settings(&[storage, ("SIGNUP_STALE_AFTER_SECONDS", "10")]).unwrap();
        assert_eq!(s.stale_after, time::Duration::seconds(10));
        for bad in ["0", "4", "x", "-3", "3601"] {
            assert!(
                settings(&[storage, ("SIGNUP_STALE_AFTER_SECONDS", bad)]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn captcha_and_abuse_settings() {
        let storage = ("AzureWebJobsStorage", "UseDevelopmentStorage=true");
        let s = settings(&[storage]).unwrap();
        assert!(s.captcha.is_none());
        assert_eq!((s.trusted_proxy_hops, s.rate_limits.limits.len()), (1, 3));

        let s = settings(&[
            storage,
            ("SIGNUP_CAPTCHA_PROVIDER", "Turnstile"),
            ("SIGNUP_CAPTCHA_SECRET", "0x-secret"),
        ])
        .unwrap();
        let captcha = s.captcha.unwrap();
        assert_eq!(
            captcha.verify_url.as_str(),
            "https://challenges.cloudflare.com/turnstile/v0/siteverify"
        );
        assert!(
            !format!("{captcha:?}").contains("0x-secret"),
            "the secret never prints"
        );

        for bad in [
            vec![("SIGNUP_CAPTCHA_PROVIDER", "turnstile")],
            vec![("SIGNUP_CAPTCHA_SECRET", "x")],
            vec![
                ("SIGNUP_CAPTCHA_PROVIDER", "friendlycaptcha"),
                ("SIGNUP_CAPTCHA_SECRET", "x"),
            ],
            vec![
                ("SIGNUP_CAPTCHA_PROVIDER", "hcaptcha"),
                ("SIGNUP_CAPTCHA_SECRET", "x"),
                ("SIGNUP_CAPTCHA_VERIFY_URL", "http://evil.example"),
            ],
            vec![("SIGNUP_RATE_LIMITS", "ip=lots")],
            vec![("SIGNUP_TRUSTED_PROXY_HOPS", "-1")],
        ] {
            let mut pairs = vec![storage];
            pairs.extend(bad.iter().copied());
            assert!(settings(&pairs).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_are_parsed_and_bad_ones_named() {
        let s = settings(&[
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "41234"),
            ("SIGNUP_DRY_RUN", "TRUE"),
            ("SIGNUP_LOG_FORMAT", "json"),
            ("SIGNUP_POLICY_PATH", "/etc/signup/policy.json"),
        ])
        .unwrap();
        assert_eq!(
            (s.port, s.dry_run, s.log_format),
            (41234, true, LogFormat::Json)
        );
        assert_eq!(s.policy_path, PathBuf::from("/etc/signup/policy.json"));

        let error = settings(&[
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            ("SIGNUP_DRY_RUN", "maybe"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("SIGNUP_DRY_RUN"), "{error}");
        assert!(matches!(
            settings(&[]),
            Err(SettingsError::Storage(ConnectionError::Missing))
        ));
    }
}
