//! Every app setting in one typed struct, read once from the environment at start-up.
//!
//! Names follow the Functions host where it has one (`FUNCTIONS_CUSTOMHANDLER_PORT`,
//! `AzureWebJobsStorage`); the app's own settings start with `SIGNUP_`. README.md lists them
//! all; `local.settings.json.example` shows each with a placeholder.

use std::path::PathBuf;

use crate::{
    functions::html_redirect::{SITE_URL_SETTING, SiteBase},
    graph::{GraphConfigError, GraphSettings},
    storage::{ConnectionError, StorageAccount},
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
    /// `APPROVAL_WEBHOOK_URL`: a Teams or Slack incoming webhook told about each request
    /// that starts waiting for approval. Optional.
    pub approval_webhook: Option<reqwest::Url>,
    /// `SIGNUP_PUBLIC_BASE_URL`: the app's public address (`https://<app>.azurewebsites.net`),
    /// used in the approval notification's links. Optional.
    pub public_base_url: Option<String>,
    /// `SIGNUP_SITE_URL`: the sign-up page's address, where plain HTML form posts are
    /// redirected (`thanks.html`, `error.html`). Default `/`, the API's own origin.
    pub site_url: SiteBase,
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
            policy_path: lookup("SIGNUP_POLICY_PATH")
                .filter(|p| !p.trim().is_empty())
                .map_or_else(|| PathBuf::from("policy.json"), PathBuf::from),
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
            site_url: match lookup(SITE_URL_SETTING) {
                None => SiteBase::default(),
                Some(value) => SiteBase::parse(&value).map_err(|_| SettingsError::Invalid {
                    name: SITE_URL_SETTING,
                    expected: "an http(s) URL or a path starting with /",
                    value,
                })?,
            },
        })
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
