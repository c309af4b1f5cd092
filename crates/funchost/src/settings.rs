//! App settings as the runner and the handler see them: the process environment, plus the
//! `Values` of `local.settings.json` in the app root for names the environment does not set —
//! what `func start` does, so one file configures a local run.
//!
//! <https://learn.microsoft.com/azure/azure-functions/functions-develop-local#local-settings-file>

use std::{collections::BTreeMap, fmt, path::Path};

use serde::Deserialize;

/// Setting with the keys that satisfy `authLevel: function` / `admin` routes:
/// comma-separated `name=key` pairs. The host keeps keys in storage; locally they are settings.
pub const FUNCTION_KEYS_SETTING: &str = "B2B_HOST_FUNCTION_KEYS";

/// A local.settings.json that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file does not parse, is encrypted, or has a value that is not text.
    #[error("{path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// Every setting by name. Values may be secrets, so `Debug` shows names only.
#[derive(Clone, Default)]
pub struct HostSettings {
    values: BTreeMap<String, String>,
    /// Names that came from local.settings.json (they must be passed to the handler).
    from_file: Vec<String>,
    /// `Host.LocalHttpPort` from local.settings.json, `func start`'s default port.
    local_http_port: Option<u16>,
    /// `Host.CORS` (comma-separated origins, or `*`) and `Host.CORSCredentials`.
    cors: Option<(String, bool)>,
}

impl fmt::Debug for HostSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSettings")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LocalSettingsFile {
    #[serde(default)]
    is_encrypted: bool,
    #[serde(default)]
    values: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    host: Option<LocalHostSection>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LocalHostSection {
    local_http_port: Option<u16>,
    #[serde(rename = "CORS")]
    cors: Option<String>,
    #[serde(rename = "CORSCredentials", default)]
    cors_credentials: bool,
}

impl HostSettings {
    /// The process environment plus `<app_root>/local.settings.json` if it exists.
    pub fn load(app_root: &Path) -> Result<Self, SettingsError> {
        let mut settings = Self {
            // vars_os: `vars` panics on a variable that is not UTF-8; such names are skipped.
            values: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            ..Self::default()
        };
        let path = app_root.join("local.settings.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => settings.add_local_settings(&path.display().to_string(), &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
        Ok(settings)
    }

    /// Settings from fixed pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Self::default()
        }
    }

    /// Adds local.settings.json `Values` that are not set yet; `path` names the file in errors.
    pub fn add_local_settings(&mut self, path: &str, text: &str) -> Result<(), SettingsError> {
        let invalid = |message: String| SettingsError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: LocalSettingsFile =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.is_encrypted {
            return Err(invalid(
                "IsEncrypted is true; decrypt it first (`func settings decrypt`)".into(),
            ));
        }
        for (name, value) in file.values {
            // func accepts strings; numbers and booleans are written as their JSON text.
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(invalid(format!("Values.{name} must be a string"))),
            };
            if !self.values.contains_key(&name) {
                self.values.insert(name.clone(), value);
                self.from_file.push(name);
            }
        }
        if let Some(host) = file.host {
            self.local_http_port = host.local_http_port;
            self.cors = host.cors.map(|origins| (origins, host.cors_credentials));
        }
        Ok(())
    }

    /// The value of setting `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// Sets `name` for the runner and the handler (the development identity provider's
    /// settings), as a local.settings.json value would be.
    pub fn provide(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_owned(), value.to_owned());
        // Passed to the handler even when the environment had it (empty: unset for the app).
        if !self.from_file.iter().any(|n| n == name) {
            self.from_file.push(name.to_owned());
        }
    }

    /// Settings that came from local.settings.json (or [`Self::provide`]), to add to the
    /// handler's environment.
    pub fn from_file(&self) -> impl Iterator<Item = (&str, &str)> {
        self.from_file
            .iter()
            .filter_map(|name| self.values.get(name).map(|v| (name.as_str(), v.as_str())))
    }

    /// `Host.LocalHttpPort` from local.settings.json, if set.
    pub fn local_http_port(&self) -> Option<u16> {
        self.local_http_port
    }

    /// `Host.CORS` and `Host.CORSCredentials` from local.settings.json, if set.
    pub fn cors(&self) -> Option<(&str, bool)> {
        self.cors
            .as_ref()
            .map(|(origins, credentials)| (origins.as_str(), *credentials))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_values_fill_in_without_overriding_the_environment() {
        let mut settings = HostSettings::from_pairs([("AzureWebJobsStorage", "from-env")]);
        settings
            .add_local_settings(
                "local.settings.json",
                r#"{
                    "IsEncrypted": false,
                    "Values": {
                        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                        "SIGNUP_DRY_RUN": "true",
                        "RETRIES": 3
                    },
                    "Host": { "LocalHttpPort": 7072 }
                }"#,
            )
            .unwrap();
        assert_eq!(
            settings.get("AzureWebJobsStorage").as_deref(),
            Some("from-env")
        );
        assert_eq!(settings.get("SIGNUP_DRY_RUN").as_deref(), Some("true"));
        assert_eq!(settings.get("RETRIES").as_deref(), Some("3"));
        let from_file: Vec<_> = settings.from_file().collect();
        assert_eq!(from_file, [("RETRIES", "3"), ("SIGNUP_DRY_RUN", "true")]);
        assert_eq!(settings.local_http_port(), Some(7072));
    }

    #[test]
    fn provided_settings_reach_the_handler_over_empty_ones() {
        let mut settings = HostSettings::from_pairs([("AZURE_TENANT_ID", "")]);
        settings
            .add_local_settings(
                "local.settings.json",
                r#"{"Values": {"SIGNUP_ADMIN_APP_ID": ""}}"#,
            )
            .unwrap();
        settings.provide("AZURE_TENANT_ID", "tenant");
        settings.provide("SIGNUP_ADMIN_APP_ID", "app");
        assert_eq!(settings.get("AZURE_TENANT_ID").as_deref(), Some("tenant"));
        let handler: Vec<_> = settings.from_file().collect();
        assert_eq!(
            handler,
            [
                ("SIGNUP_ADMIN_APP_ID", "app"),
                ("AZURE_TENANT_ID", "tenant")
            ]
        );
    }

    #[test]
    fn the_projects_example_file_loads() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../local.settings.json.example"
        ))
        .unwrap();
        let mut settings = HostSettings::default();
        settings.add_local_settings("example", &text).unwrap();
        assert_eq!(
            settings.get("FUNCTIONS_WORKER_RUNTIME").as_deref(),
            Some("custom")
        );
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let cases = [
            ("not JSON", "{", "local.settings.json"),
            (
                "encrypted",
                r#"{"IsEncrypted": true, "Values": {}}"#,
                "decrypt",
            ),
            ("object value", r#"{"Values": {"A": {"b": 1}}}"#, "Values.A"),
        ];
        for (description, text, expected) in cases {
            let error = HostSettings::default()
                .add_local_settings("local.settings.json", text)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{description}: {error}");
        }
    }

    #[test]
    fn debug_shows_names_not_values() {
        let settings = HostSettings::from_pairs([("SECRET", "hunter2")]);
        let debug = format!("{settings:?}");
        assert!(
            debug.contains("SECRET") && !debug.contains("hunter2"),
            "{debug}"
        );
    }
}
