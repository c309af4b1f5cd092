//! The app's Functions configuration, read the way the host reads it: `host.json` and every
//! `*/function.json` in the app root, parsed once into types the runner acts on.
//!
//! Only the fields the runner uses are read; anything else (logging, extension bundle) is
//! ignored, as the host ignores what its extensions do not know. A file that does not parse,
//! or asks for something the runner cannot do faithfully, is an error naming the file.
//!
//! - host.json reference: <https://learn.microsoft.com/azure/azure-functions/functions-host-json>
//! - custom handler section: <https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#hostjson>

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::{ncrontab::Schedule, settings::HostSettings};

/// The storage setting a queue trigger uses when its `connection` is empty.
pub const DEFAULT_CONNECTION: &str = "AzureWebJobsStorage";

/// A configuration file that cannot be read or asks for what the runner cannot do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file (or the app root) cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file does not parse, or names something unsupported.
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ConfigError {
    fn invalid(path: &Path, message: impl fmt::Display) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Everything the runner needs from host.json and the function folders.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub host: HostConfig,
    /// Enabled functions, sorted by name.
    pub functions: Vec<Function>,
}

impl AppConfig {
    /// Reads `host.json` and every `<folder>/function.json` directly under `app_root`.
    /// `settings` resolves `%Name%` references (queue names, schedules) and the
    /// `AzureWebJobs.<Function>.Disabled` switches, as the host does.
    pub fn load(app_root: &Path, settings: &HostSettings) -> Result<Self, ConfigError> {
        let host = HostConfig::load(&app_root.join("host.json"))?;
        let mut functions = Vec::new();
        let entries = std::fs::read_dir(app_root).map_err(|source| ConfigError::Read {
            path: app_root.to_owned(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| ConfigError::Read {
                path: app_root.to_owned(),
                source,
            })?;
            let path = entry.path().join("function.json");
            if !path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(function) = Function::load(&name, &path, &host, settings)? {
                functions.push(function);
            }
        }
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self { host, functions })
    }
}

/// host.json, as far as the runner uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// `customHandler.description.defaultExecutablePath`, relative to the app root.
    pub executable: PathBuf,
    /// `customHandler.description.workingDirectory`, relative to the app root (default: it).
    pub working_directory: PathBuf,
    /// `customHandler.description.arguments`.
    pub arguments: Vec<String>,
    /// `customHandler.enableForwardingHttpRequest`.
    pub forward_http: bool,
    /// `extensions.http.routePrefix` (default `api`), without slashes.
    pub route_prefix: String,
    /// `functionTimeout` (default 5 minutes, the Consumption plan's).
    pub function_timeout: Duration,
    pub queues: QueueOptions,
}

/// `extensions.queues`, with the host's defaults.
/// <https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json>
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// Messages fetched per batch (1–32; Get Messages returns at most 32).
    pub batch_size: u8,
    /// A new batch is fetched when the invocations in flight drop to this number.
    pub new_batch_threshold: u32,
    /// Failed deliveries before a message moves to `<queue>-poison`.
    pub max_dequeue_count: u64,
    /// How long a failed message stays invisible before its retry (0 = at once).
    pub visibility_timeout: Duration,
    /// The longest wait between polls of an empty queue.
    pub max_polling_interval: Duration,
    pub message_encoding: MessageEncoding,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            batch_size: 16,
            new_batch_threshold: 8,
            max_dequeue_count: 5,
            visibility_timeout: Duration::ZERO,
            max_polling_interval: Duration::from_secs(60),
            message_encoding: MessageEncoding::Base64,
        }
    }
}

/// `extensions.queues.messageEncoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEncoding {
    /// The host's default: message text is base64 of the UTF-8 payload.
    Base64,
    /// Message text is the payload itself.
    None,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHost {
    version: Option<String>,
    custom_handler: Option<RawCustomHandler>,
    #[serde(default)]
    extensions: RawExtensions,
    function_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCustomHandler {
    description: RawDescription,
    #[serde(default)]
    enable_forwarding_http_request: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescription {
    default_executable_path: String,
    #[serde(default)]
    working_directory: String,
    #[serde(default)]
    arguments: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawExtensions {
    http: Option<RawHttpExtension>,
    queues: Option<RawQueues>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHttpExtension {
    route_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQueues {
    batch_size: Option<u32>,
    new_batch_threshold: Option<u32>,
    max_dequeue_count: Option<u64>,
    visibility_timeout: Option<String>,
    max_polling_interval: Option<String>,
    message_encoding: Option<String>,
}

impl HostConfig {
    /// Reads host.json at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses host.json text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawHost = serde_json::from_str(text).map_err(|e| ConfigError::invalid(path, e))?;
        if raw.version.as_deref() != Some("2.0") {
            return Err(ConfigError::invalid(
                path,
                "\"version\" must be \"2.0\" (the only version Functions 4.x reads)",
            ));
        }
        let handler = raw.custom_handler.ok_or_else(|| {
            ConfigError::invalid(
                path,
                "no \"customHandler\" section: this runner only hosts custom handlers",
            )
        })?;
        if handler
            .description
            .default_executable_path
            .trim()
            .is_empty()
        {
            return Err(ConfigError::invalid(
                path,
                "customHandler.description.defaultExecutablePath is empty",
            ));
        }
        let timespan = |field: &str, value: &Option<String>, default: Duration| match value {
            None => Ok(default),
            Some(text) => parse_timespan(text).ok_or_else(|| {
                ConfigError::invalid(
                    path,
                    format!("{field} {text:?} is not a TimeSpan like \"00:05:00\""),
                )
            }),
        };
        let function_timeout = timespan(
            "functionTimeout",
            &raw.function_timeout,
            Duration::from_secs(5 * 60),
        )?;
        if function_timeout.is_zero() {
            return Err(ConfigError::invalid(
                path,
                "functionTimeout must be positive",
            ));
        }
        let queues = match &raw.extensions.queues {
            None => QueueOptions::default(),
            Some(q) => {
                let defaults = QueueOptions::default();
                let batch_size = q.batch_size.unwrap_or(u32::from(defaults.batch_size));
                let batch_size = u8::try_from(batch_size)
                    .ok()
                    .filter(|n| (1..=32).contains(n))
                    .ok_or_else(|| {
                        ConfigError::invalid(path, "extensions.queues.batchSize must be 1 to 32")
                    })?;
                let max_dequeue_count = q.max_dequeue_count.unwrap_or(defaults.max_dequeue_count);
                if max_dequeue_count == 0 {
                    return Err(ConfigError::invalid(
                        path,
                        "extensions.queues.maxDequeueCount must be at least 1",
                    ));
                }
                let max_polling_interval = timespan(
                    "extensions.queues.maxPollingInterval",
                    &q.max_polling_interval,
                    defaults.max_polling_interval,
                )?;
                if max_polling_interval < Duration::from_millis(100) {
                    return Err(ConfigError::invalid(
                        path,
                        "extensions.queues.maxPollingInterval must be at least 00:00:00.100",
                    ));
                }
                QueueOptions {
                    batch_size,
                    new_batch_threshold: q.new_batch_threshold.unwrap_or(u32::from(batch_size) / 2),
                    max_dequeue_count,
                    visibility_timeout: timespan(
                        "extensions.queues.visibilityTimeout",
                        &q.visibility_timeout,
                        defaults.visibility_timeout,
                    )?,
                    max_polling_interval,
                    message_encoding: match q
                        .message_encoding
                        .as_deref()
                        .map(str::to_ascii_lowercase)
                        .as_deref()
                    {
                        None | Some("base64") => MessageEncoding::Base64,
                        Some("none") => MessageEncoding::None,
                        Some(_) => {
                            return Err(ConfigError::invalid(
                                path,
                                "extensions.queues.messageEncoding must be \"base64\" or \"none\"",
                            ));
                        }
                    },
                }
            }
        };
        let description = handler.description;
        Ok(Self {
            executable: PathBuf::from(description.default_executable_path),
            working_directory: PathBuf::from(description.working_directory),
            arguments: description.arguments,
            forward_http: handler.enable_forwarding_http_request,
            route_prefix: raw
                .extensions
                .http
                .and_then(|h| h.route_prefix)
                .map_or_else(|| "api".to_owned(), |p| p.trim_matches('/').to_owned()),
            function_timeout,
            queues,
        })
    }
}

/// A .NET `TimeSpan` as host.json writes it: `[d.]hh:mm:ss[.fffffff]`.
pub fn parse_timespan(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (days, rest) = match text.split_once('.') {
        // A dot before the first colon separates days; after it, a fraction of seconds.
        Some((days, rest)) if !days.contains(':') => (days.parse::<u64>().ok()?, rest),
        _ => (0, text),
    };
    let mut parts = rest.split(':');
    let (hours, minutes, seconds) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (seconds, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let number = |s: &str, max: u64| s.parse::<u64>().ok().filter(|n| *n <= max);
    let (hours, minutes, seconds) = (
        number(hours, 23)?,
        number(minutes, 59)?,
        number(seconds, 59)?,
    );
    let nanos = if fraction.is_empty() {
        0
    } else {
        if fraction.len() > 7 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{fraction:0<9}").parse::<u32>().ok()?
    };
    let secs = ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
    Some(Duration::new(secs, nanos))
}

/// One function folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// The folder name: the function's name, and the handler path for invocations.
    pub name: String,
    pub trigger: Trigger,
}

/// What starts a function: the one trigger binding of its function.json.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// `httpTrigger` + `http` output, forwarded to the handler as is.
    Http(HttpTrigger),
    /// `queueTrigger`: invoked per message.
    Queue(QueueTrigger),
    /// `timerTrigger`: invoked on a schedule.
    Timer(TimerTrigger),
}

/// An `httpTrigger` binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    /// `route` (default: the function name), without leading or trailing slashes.
    pub route: String,
    /// Upper-case method names; empty means every method.
    pub methods: Vec<String>,
    pub auth_level: AuthLevel,
}

/// `authLevel`: who may call an HTTP function.
/// <https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#http-auth>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLevel {
    /// Anyone.
    Anonymous,
    /// A function key (the default).
    Function,
    /// The master key in Azure; locally any key from the keys setting.
    Admin,
}

/// A `queueTrigger` binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTrigger {
    /// The binding's `name`: the key of the message in the invocation's `Data`.
    pub binding: String,
    pub queue_name: String,
    /// The name of the storage setting (not the connection string itself).
    pub connection: String,
}

/// A `timerTrigger` binding.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerTrigger {
    /// The binding's `name`: the key of the timer info in the invocation's `Data`.
    pub binding: String,
    pub schedule: Schedule,
    /// The schedule text as written (after `%setting%` resolution), for logs.
    pub schedule_text: String,
    /// `useMonitor`; when absent the host monitors schedules of a minute or longer.
    pub use_monitor: bool,
    pub run_on_startup: bool,
}

#[derive(Deserialize)]
struct RawFunction {
    #[serde(default)]
    disabled: Option<bool>,
    bindings: Vec<RawBinding>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBinding {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    direction: Option<String>,
    name: String,
    auth_level: Option<String>,
    methods: Option<Vec<String>>,
    route: Option<String>,
    queue_name: Option<String>,
    connection: Option<String>,
    schedule: Option<String>,
    use_monitor: Option<bool>,
    #[serde(default)]
    run_on_startup: bool,
}

impl Function {
    /// Reads one function.json; `None` when the function is disabled.
    fn load(
        name: &str,
        path: &Path,
        host: &HostConfig,
        settings: &HostSettings,
    ) -> Result<Option<Self>, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(name, path, &text, host, settings)
    }

    /// Parses function.json text for the function folder `name`.
    pub fn parse(
        name: &str,
        path: &Path,
        text: &str,
        host: &HostConfig,
        settings: &HostSettings,
    ) -> Result<Option<Self>, ConfigError> {
        let raw: RawFunction =
            serde_json::from_str(text).map_err(|e| ConfigError::invalid(path, e))?;
        // Either switch disables a function, as in the host:
        // https://learn.microsoft.com/azure/azure-functions/disable-function
        let disabled_setting = settings
            .get(&format!("AzureWebJobs.{name}.Disabled"))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1");
        if raw.disabled == Some(true) || disabled_setting {
            return Ok(None);
        }
        let mut trigger = None;
        let mut http_outputs = 0;
        for binding in &raw.bindings {
            let direction = binding.direction.as_deref().unwrap_or("in");
            let found = match binding.kind.as_str() {
                "http" if direction.eq_ignore_ascii_case("out") => {
                    http_outputs += 1;
                    continue;
                }
                "httpTrigger" => Trigger::Http(http_trigger(name, path, binding)?),
                "queueTrigger" => Trigger::Queue(queue_trigger(path, binding, settings)?),
                "timerTrigger" => Trigger::Timer(timer_trigger(path, binding, settings)?),
                other => {
                    return Err(ConfigError::invalid(
                        path,
                        format!(
                            "binding {:?} has type {other:?} (direction {direction:?}), which the \
                             local host runner does not support; supported: httpTrigger + http \
                             (out), queueTrigger, timerTrigger",
                            binding.name
                        ),
                    ));
                }
            };
            if trigger.replace(found).is_some() {
                return Err(ConfigError::invalid(
                    path,
                    "a function has exactly one trigger",
                ));
            }
        }
        let trigger = trigger.ok_or_else(|| ConfigError::invalid(path, "no trigger binding"))?;
        match (&trigger, http_outputs) {
            (Trigger::Http(_), 1) if host.forward_http => {}
            (Trigger::Http(_), 1) => {
                return Err(ConfigError::invalid(
                    path,
                    "HTTP functions are only supported forwarded: set \
                     customHandler.enableForwardingHttpRequest to true in host.json",
                ));
            }
            (Trigger::Http(_), _) => {
                return Err(ConfigError::invalid(
                    path,
                    "an httpTrigger needs exactly one \"http\" output binding to be forwarded",
                ));
            }
            (_, 0) => {}
            (_, _) => {
                return Err(ConfigError::invalid(
                    path,
                    "an \"http\" output binding needs an httpTrigger",
                ));
            }
        }
        Ok(Some(Self {
            name: name.to_owned(),
            trigger,
        }))
    }
}

fn http_trigger(name: &str, path: &Path, binding: &RawBinding) -> Result<HttpTrigger, ConfigError> {
    let auth_level = match binding
        .auth_level
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        // The host's default for a function.json without authLevel is "function".
        None | Some("function") => AuthLevel::Function,
        Some("anonymous") => AuthLevel::Anonymous,
        Some("admin") => AuthLevel::Admin,
        Some(other) => {
            return Err(ConfigError::invalid(
                path,
                format!("authLevel {other:?} is not anonymous, function or admin"),
            ));
        }
    };
    let route = binding
        .route
        .as_deref()
        .map(|r| r.trim_matches('/').to_owned())
        .unwrap_or_else(|| name.to_owned());
    super::http::RouteTemplate::parse(&route).map_err(|e| ConfigError::invalid(path, e))?;
    let methods = binding
        .methods
        .iter()
        .flatten()
        .map(|m| m.trim().to_ascii_uppercase())
        .collect();
    Ok(HttpTrigger {
        route,
        methods,
        auth_level,
    })
}

fn queue_trigger(
    path: &Path,
    binding: &RawBinding,
    settings: &HostSettings,
) -> Result<QueueTrigger, ConfigError> {
    let queue_name = binding
        .queue_name
        .as_deref()
        .ok_or_else(|| ConfigError::invalid(path, "queueTrigger needs \"queueName\""))?;
    let queue_name = resolve(path, queue_name, settings)?;
    if !valid_queue_name(&queue_name) {
        return Err(ConfigError::invalid(
            path,
            format!(
                "queue name {queue_name:?} is not valid (3-63 lower-case letters, digits and \
                 single hyphens, not starting or ending with a hyphen)"
            ),
        ));
    }
    let connection = binding
        .connection
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(DEFAULT_CONNECTION)
        .to_owned();
    Ok(QueueTrigger {
        binding: binding.name.clone(),
        queue_name,
        connection,
    })
}

fn timer_trigger(
    path: &Path,
    binding: &RawBinding,
    settings: &HostSettings,
) -> Result<TimerTrigger, ConfigError> {
    let text = binding
        .schedule
        .as_deref()
        .ok_or_else(|| ConfigError::invalid(path, "timerTrigger needs \"schedule\""))?;
    let text = resolve(path, text, settings)?;
    let schedule = Schedule::parse(&text)
        .map_err(|e| ConfigError::invalid(path, format!("schedule {text:?}: {e}")))?;
    Ok(TimerTrigger {
        binding: binding.name.clone(),
        // The host monitors (keeps schedule status for) schedules of a minute or more.
        use_monitor: binding
            .use_monitor
            .unwrap_or_else(|| schedule.interval_at_least(Duration::from_secs(60))),
        run_on_startup: binding.run_on_startup,
        schedule,
        schedule_text: text,
    })
}

/// `%Name%` takes the value of the app setting `Name` (binding expressions).
/// <https://learn.microsoft.com/azure/azure-functions/functions-bindings-expressions-patterns#binding-expressions---app-settings>
fn resolve(path: &Path, value: &str, settings: &HostSettings) -> Result<String, ConfigError> {
    let trimmed = value.trim();
    match trimmed
        .strip_prefix('%')
        .and_then(|rest| rest.strip_suffix('%'))
    {
        Some(name) if !name.is_empty() => settings
            .get(name)
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| ConfigError::invalid(path, format!("app setting {name:?} is not set"))),
        _ => Ok(trimmed.to_owned()),
    }
}

/// Azure's queue naming rule.
/// <https://learn.microsoft.com/rest/api/storageservices/naming-queues-and-metadata>
fn valid_queue_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_JSON: &str = r#"{
        "version": "2.0",
        "logging": { "logLevel": { "default": "Information" } },
        "customHandler": {
            "description": { "defaultExecutablePath": "b2b-signup", "workingDirectory": "", "arguments": [] },
            "enableForwardingHttpRequest": true
        },
        "extensions": {
            "http": { "routePrefix": "api" },
            "queues": {
                "batchSize": 16, "newBatchThreshold": 8, "maxDequeueCount": 5,
                "visibilityTimeout": "00:00:30", "maxPollingInterval": "00:00:02",
                "messageEncoding": "base64"
            }
        }
    }"#;

    fn host() -> HostConfig {
        HostConfig::parse(Path::new("host.json"), HOST_JSON).unwrap()
    }

    fn function(name: &str, text: &str) -> Result<Option<Function>, ConfigError> {
        let settings = HostSettings::from_pairs([
            ("QUEUE_SETTING", "from-setting"),
            ("AzureWebJobs.Off.Disabled", "true"),
        ]);
        Function::parse(name, Path::new("X/function.json"), text, &host(), &settings)
    }

    #[test]
    fn the_projects_host_json_is_read_with_its_values() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../host.json"))
            .unwrap();
        let host = HostConfig::parse(Path::new("host.json"), &text).unwrap();
        assert_eq!(host.executable, PathBuf::from("b2b-signup"));
        assert!(host.forward_http);
        assert_eq!(host.route_prefix, "api");
        assert_eq!(host.function_timeout, Duration::from_secs(300));
        assert_eq!(
            host.queues,
            QueueOptions {
                batch_size: 16,
                new_batch_threshold: 8,
                max_dequeue_count: 5,
                visibility_timeout: Duration::from_secs(30),
                max_polling_interval: Duration::from_secs(2),
                message_encoding: MessageEncoding::Base64,
            }
        );
    }

    #[test]
    fn queue_defaults_follow_the_host() {
        let host = HostConfig::parse(
            Path::new("host.json"),
            r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"h"}},
                "extensions":{"queues":{"batchSize":10}}}"#,
        )
        .unwrap();
        assert_eq!(host.queues.new_batch_threshold, 5);
        assert_eq!(host.queues.max_dequeue_count, 5);
        assert_eq!(host.queues.visibility_timeout, Duration::ZERO);
        assert_eq!(host.queues.max_polling_interval, Duration::from_secs(60));
        assert_eq!(host.route_prefix, "api");
        assert!(!host.forward_http);
    }

    #[test]
    fn bad_host_json_names_the_file_and_the_problem() {
        let cases = [
            ("not JSON", "{", "EOF while parsing"),
            ("wrong version", r#"{"version":"1.0"}"#, "version"),
            ("no custom handler", r#"{"version":"2.0"}"#, "customHandler"),
            (
                "batch too big",
                r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"h"}},"extensions":{"queues":{"batchSize":64}}}"#,
                "batchSize",
            ),
            (
                "bad timespan",
                r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"h"}},"extensions":{"queues":{"visibilityTimeout":"30s"}}}"#,
                "visibilityTimeout",
            ),
            (
                "bad encoding",
                r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"h"}},"extensions":{"queues":{"messageEncoding":"utf8"}}}"#,
                "messageEncoding",
            ),
        ];
        for (description, text, expected) in cases {
            let error = HostConfig::parse(Path::new("app/host.json"), text)
                .unwrap_err()
                .to_string();
            assert!(error.contains("app/host.json"), "{description}: {error}");
            assert!(error.contains(expected), "{description}: {error}");
        }
    }

    #[test]
    fn timespans_parse_like_dotnet() {
        let cases = [
            ("00:00:00", Some(Duration::ZERO)),
            ("00:00:30", Some(Duration::from_secs(30))),
            ("01:02:03", Some(Duration::from_secs(3723))),
            ("1.00:00:00", Some(Duration::from_secs(86_400))),
            ("00:00:00.5", Some(Duration::from_millis(500))),
            ("00:00:00.100", Some(Duration::from_millis(100))),
            ("30", None),
            ("00:60:00", None),
            ("00:00:00.12345678", None),
            ("a:b:c", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_timespan(text), expected, "{text}");
        }
    }

    #[test]
    fn the_projects_function_json_is_a_forwarded_http_function() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../SignupHttp/function.json"
        ))
        .unwrap();
        let f = function("SignupHttp", &text).unwrap().unwrap();
        assert_eq!(
            f.trigger,
            Trigger::Http(HttpTrigger {
                route: "signup".into(),
                methods: vec!["POST".into()],
                auth_level: AuthLevel::Anonymous,
            })
        );
    }

    #[test]
    fn http_defaults_are_the_function_name_every_method_and_function_keys() {
        let f = function(
            "Approval",
            r#"{"bindings":[{"type":"httpTrigger","name":"req"},{"type":"http","direction":"out","name":"res"}]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            f.trigger,
            Trigger::Http(HttpTrigger {
                route: "Approval".into(),
                methods: vec![],
                auth_level: AuthLevel::Function,
            })
        );
    }

    #[test]
    fn queue_and_timer_triggers_are_read_with_settings_resolved() {
        let queue = function(
            "InviteQueue",
            r#"{"bindings":[{"type":"queueTrigger","direction":"in","name":"msg","queueName":"%QUEUE_SETTING%"}]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            queue.trigger,
            Trigger::Queue(QueueTrigger {
                binding: "msg".into(),
                queue_name: "from-setting".into(),
                connection: "AzureWebJobsStorage".into(),
            })
        );

        let timer = function(
            "Reconcile",
            r#"{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 */5 * * * *","runOnStartup":true}]}"#,
        )
        .unwrap()
        .unwrap();
        let Trigger::Timer(timer) = timer.trigger else {
            panic!("a timer")
        };
        assert_eq!(timer.binding, "timer");
        assert!(timer.run_on_startup);
        assert!(timer.use_monitor, "5-minute schedules are monitored");

        let fast = function(
            "Tick",
            r#"{"bindings":[{"type":"timerTrigger","name":"t","schedule":"*/1 * * * * *"}]}"#,
        )
        .unwrap()
        .unwrap();
        let Trigger::Timer(fast) = fast.trigger else {
            panic!("a timer")
        };
        assert!(!fast.use_monitor, "sub-minute schedules are not monitored");
    }

    #[test]
    fn disabled_functions_are_skipped() {
        let json = r#"{"bindings":[{"type":"queueTrigger","name":"m","queueName":"abc"}]}"#;
        assert!(function("Off", json).unwrap().is_none());
        let disabled = r#"{"disabled":true,"bindings":[{"type":"queueTrigger","name":"m","queueName":"abc"}]}"#;
        assert!(function("On", disabled).unwrap().is_none());
    }

    #[test]
    fn bad_function_json_is_a_clear_error() {
        let cases = [
            ("not JSON", "{\"bindings\": [", "X/function.json"),
            (
                "unknown binding",
                r#"{"bindings":[{"type":"serviceBusTrigger","name":"m"}]}"#,
                "serviceBusTrigger",
            ),
            (
                "no trigger",
                r#"{"bindings":[{"type":"http","direction":"out","name":"res"}]}"#,
                "no trigger",
            ),
            (
                "two triggers",
                r#"{"bindings":[{"type":"queueTrigger","name":"a","queueName":"abc"},{"type":"timerTrigger","name":"t","schedule":"* * * * * *"}]}"#,
                "exactly one trigger",
            ),
            (
                "http without output",
                r#"{"bindings":[{"type":"httpTrigger","name":"req"}]}"#,
                "output",
            ),
            (
                "bad queue name",
                r#"{"bindings":[{"type":"queueTrigger","name":"m","queueName":"Bad_Name"}]}"#,
                "Bad_Name",
            ),
            (
                "missing setting",
                r#"{"bindings":[{"type":"queueTrigger","name":"m","queueName":"%NOPE%"}]}"#,
                "NOPE",
            ),
            (
                "bad schedule",
                r#"{"bindings":[{"type":"timerTrigger","name":"t","schedule":"* * * * *"}]}"#,
                "six fields",
            ),
            (
                "bad auth level",
                r#"{"bindings":[{"type":"httpTrigger","name":"r","authLevel":"user"},{"type":"http","direction":"out","name":"res"}]}"#,
                "authLevel",
            ),
        ];
        for (description, text, expected) in cases {
            let error = function("X", text).unwrap_err().to_string();
            assert!(error.contains("X/function.json"), "{description}: {error}");
            assert!(error.contains(expected), "{description}: {error}");
        }
    }

    #[test]
    fn an_app_root_is_loaded_with_every_function_folder() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("host.json"), HOST_JSON).unwrap();
        for (folder, json) in [
            (
                "SignupHttp",
                r#"{"bindings":[{"type":"httpTrigger","name":"req","authLevel":"anonymous","route":"signup"},{"type":"http","direction":"out","name":"res"}]}"#,
            ),
            (
                "InviteQueue",
                r#"{"bindings":[{"type":"queueTrigger","name":"msg","queueName":"signup-requests"}]}"#,
            ),
        ] {
            std::fs::create_dir(root.path().join(folder)).unwrap();
            std::fs::write(root.path().join(folder).join("function.json"), json).unwrap();
        }
        std::fs::create_dir(root.path().join("src")).unwrap(); // no function.json: ignored
        let app = AppConfig::load(root.path(), &HostSettings::default()).unwrap();
        let names: Vec<_> = app.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["InviteQueue", "SignupHttp"]);

        std::fs::write(root.path().join("InviteQueue/function.json"), "{").unwrap();
        let error = AppConfig::load(root.path(), &HostSettings::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("InviteQueue/function.json"), "{error}");
    }
}
