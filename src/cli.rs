//! The command line: `b2b-signup` with no arguments is the custom handler the Functions
//! host starts (host.json `defaultExecutablePath`); subcommands are tools for people.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{admin, app::Application, settings::Settings, telemetry};

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
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Requests { command } => admin::requests(command).await,
        Command::Policy { command } => admin::policy(command),
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
