//! Starting the custom handler the way the host does: run the executable from host.json
//! (or `--handler`) in the app root with the app's settings and
//! `FUNCTIONS_CUSTOMHANDLER_PORT=<free port>`, then probe `GET /` until any HTTP answer
//! arrives (`DefaultHttpWorkerService.IsWorkerReady`, about 30 s). With `--handler-url` the
//! runner uses a handler that is already running (under a debugger, say) instead.
//! <https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#application-structure>

use std::{
    path::{Path, PathBuf},
    process::ExitStatus,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};

use super::{config::HostConfig, settings::HostSettings};

/// The host waits about this long for the handler to answer its first request.
const READY_BUDGET: Duration = Duration::from_secs(30);
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// Where the handler comes from.
#[derive(Debug, Clone)]
pub enum HandlerSource {
    /// Start this executable, or host.json's `defaultExecutablePath` when `None`.
    Spawn(Option<PathBuf>),
    /// Use the handler already listening at this `http://host:port` URL.
    Url(url::Url),
}

/// Why the handler could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(
        "handler executable {0} not found (build it with `cargo build`, or pass --handler \
         target/debug/b2b-signup)"
    )]
    NotFound(PathBuf),
    #[error("cannot start the handler {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find a free port for the handler: {0}")]
    Port(std::io::Error),
    #[error("--handler-url must be http://host:port (no path), not {0}")]
    BadUrl(String),
    #[error("the handler exited ({0}) before answering GET /")]
    ExitedEarly(String),
    #[error("the handler did not answer GET {url} within {READY_BUDGET:?}")]
    NotReady { url: String },
    #[error("cannot set up the readiness probe: {0}")]
    Probe(String),
}

/// A handler that answered the readiness probe.
pub struct RunningHandler {
    /// `http://127.0.0.1:<port>` (or the `--handler-url`), without a trailing slash.
    pub base_url: String,
    /// `host:port`, for forwarding.
    pub authority: String,
    /// The process when the runner started it.
    child: Option<Child>,
}

impl RunningHandler {
    /// Starts (or finds) the handler and waits until it answers `GET /`.
    pub async fn start(
        source: &HandlerSource,
        app_root: &Path,
        host: &HostConfig,
        settings: &HostSettings,
    ) -> Result<Self, HandlerError> {
        let mut handler = match source {
            HandlerSource::Url(url) => {
                let authority = match (url.scheme(), url.host_str(), url.port_or_known_default()) {
                    ("http", Some(host), Some(port)) if matches!(url.path(), "" | "/") => {
                        format!("{host}:{port}")
                    }
                    _ => return Err(HandlerError::BadUrl(url.to_string())),
                };
                Self {
                    base_url: format!("http://{authority}"),
                    authority,
                    child: None,
                }
            }
            HandlerSource::Spawn(executable) => {
                let path = executable
                    .clone()
                    .unwrap_or_else(|| app_root.join(&host.executable));
                if !path.is_file() {
                    return Err(HandlerError::NotFound(path));
                }
                let port = free_port().map_err(HandlerError::Port)?;
                let child = Command::new(&path)
                    .args(&host.arguments)
                    .current_dir(app_root.join(&host.working_directory))
                    // The environment is inherited; local.settings.json adds what it lacks.
                    .envs(settings.from_file())
                    .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|source| HandlerError::Spawn {
                        path: path.clone(),
                        source,
                    })?;
                let authority = format!("127.0.0.1:{port}");
                Self {
                    base_url: format!("http://{authority}"),
                    authority,
                    child: Some(child),
                }
            }
        };
        handler.wait_until_ready().await?;
        Ok(handler)
    }

    async fn wait_until_ready(&mut self) -> Result<(), HandlerError> {
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| HandlerError::NotReady { url: e.to_string() })?;
        let url = format!("{}/", self.base_url);
        let deadline = Instant::now() + READY_BUDGET;
        loop {
            // Any HTTP answer, whatever its status, means the handler is listening.
            if probe.get(&url).send().await.is_ok() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(HandlerError::ExitedEarly(describe(status)));
            }
            if Instant::now() >= deadline {
                return Err(HandlerError::NotReady { url });
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// Completes when the handler process exits (never for `--handler-url`).
    pub async fn exited(&mut self) -> String {
        match &mut self.child {
            Some(child) => match child.wait().await {
                Ok(status) => describe(status),
                Err(e) => format!("unknown status: {e}"),
            },
            None => std::future::pending().await,
        }
    }

    /// Stops the handler if the runner started it.
    pub async fn stop(&mut self) {
        if let Some(child) = &mut self.child {
            if let Err(e) = child.kill().await {
                tracing::warn!(error = %e, "cannot stop the handler");
            }
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => status.to_string(),
    }
}

/// A port nobody listens on right now (the OS picks it; released for the handler).
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}
