//! The command line: `b2b-signup` with no arguments is the custom handler the Functions
//! host starts (host.json `defaultExecutablePath`); subcommands are tools for people. The
//! local stand-in for the Functions host is another program, `funchost`
//! (`crates/funchost`), never part of this binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{admin, app::Application, settings::Settings, site_config, telemetry};

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
    /// The sign-up page: `site config` writes its config.json from the policy, `site csp`
    /// prints its Content-Security-Policy.
    Site {
        #[command(subcommand)]
        command: site_config::SiteCommand,
    },
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
        Command::Site { command } => site_config::run(command),
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
