//! The command line: `b2b-signup` with no arguments is the custom handler the Functions
//! host starts (host.json `defaultExecutablePath`); subcommands are tools for people, and
//! `host` is the local stand-in for the Functions host (see [`crate::host`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{
    admin,
    app::Application,
    host::{HostError, HostOptions, handler::HandlerSource},
    settings::{LogFormat, Settings},
    site_config, telemetry,
};

#[derive(Debug, Parser)]
#[command(
    name = "b2b-signup",
    version,
    about = "Self-service Entra ID B2B sign-up: Azure Functions custom handler and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the custom handler (the default): listens on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT.
    Serve,
    /// Read, approve, deny and export sign-up requests (uses AzureWebJobsStorage).
    Requests {
        #[command(subcommand)]
        command: admin::RequestsCommand,
    },
    /// Check the policy file, or explain what it does with an address.
    Policy {
        #[command(subcommand)]
        command: admin::PolicyCommand,
    },
    /// Run the local host runner: the Azure Functions host's part (HTTP routes, queue and
    /// timer triggers) around the handler, for development and tests where `func` is missing.
    Host(HostArgs),
    /// The sign-up page: `site config` writes its config.json from the policy.
    Site {
        #[command(subcommand)]
        command: site_config::SiteCommand,
    },
}

#[derive(Debug, clap::Args)]
struct HostArgs {
    /// Port to listen on (127.0.0.1); 0 lets the OS choose. Default: local.settings.json
    /// Host.LocalHttpPort, else 7071.
    #[arg(long)]
    port: Option<u16>,
    /// Handler executable to start (default: host.json defaultExecutablePath in the app root;
    /// locally the binary is in target/, e.g. target/debug/b2b-signup).
    #[arg(long, value_name = "PATH", conflicts_with = "handler_url")]
    handler: Option<std::path::PathBuf>,
    /// Use a handler that is already running at this URL (http://127.0.0.1:PORT) instead of
    /// starting one: for a handler under a debugger, or a test double. local.settings.json
    /// does not reach such a handler.
    #[arg(long, value_name = "URL")]
    handler_url: Option<url::Url>,
    /// Folder with host.json, the function folders and local.settings.json.
    #[arg(long, value_name = "DIR", default_value = ".")]
    app_root: std::path::PathBuf,
    /// Serve the static files of this folder (the sign-up page, `site/`) at every path no
    /// function takes, so the page and the API share one address.
    #[arg(long, value_name = "DIR")]
    site: Option<std::path::PathBuf>,
}

/// The async runtime for [`run`], sized by `SIGNUP_WORKER_THREADS`
/// ([`crate::settings::worker_threads`]).
pub fn runtime() -> Result<tokio::runtime::Runtime, RuntimeError> {
    let threads = crate::settings::worker_threads(|name| std::env::var(name).ok())?;
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut pool = tokio::runtime::Builder::new_multi_thread();
        pool.worker_threads(threads);
        pool
    };
    builder.enable_all().build().map_err(RuntimeError::Start)
}

/// Why [`runtime`] has no runtime to give.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `SIGNUP_WORKER_THREADS` is not a number of threads.
    #[error(transparent)]
    Threads(#[from] crate::settings::SettingsError),
    /// The operating system refused (threads, the I/O driver).
    #[error("cannot start the async runtime: {0}")]
    Start(#[source] std::io::Error),
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Requests { command } => admin::requests(command).await,
        Command::Policy { command } => admin::policy(command),
        Command::Host(args) => host(args).await,
        Command::Site { command } => site_config::run(command),
    }
}

async fn host(args: HostArgs) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let options = HostOptions {
        app_root: args.app_root,
        port: args.port,
        handler: match args.handler_url {
            Some(url) => HandlerSource::Url(url),
            None => HandlerSource::Spawn(args.handler),
        },
        site: args.site,
    };
    match crate::host::run(options, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ HostError::HandlerExited(_)) => {
            tracing::error!("{e}");
            eprintln!("b2b-signup host: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("b2b-signup host: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("b2b-signup: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let app = match Application::build(&settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            eprintln!("b2b-signup: start-up failed: {e}");
            return ExitCode::from(2);
        }
    };
    app.run_until_stopped(shutdown_signal()).await;
    ExitCode::SUCCESS
}

/// Ctrl-C or SIGTERM (what the host and App Service send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
