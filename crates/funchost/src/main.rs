//! `funchost`: the local stand-in for the Azure Functions host (`func start`), for
//! development and tests on machines where Core Tools cannot be installed. Development
//! only: it is never packaged with the handler (see the crate map in `lib.rs`).

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use funchost::{HostError, HostOptions, handler::HandlerSource};

#[derive(Debug, Parser)]
#[command(
    name = "funchost",
    version,
    about = "Local Azure Functions host for a custom handler: HTTP routes, queue and timer \
             triggers, as `func start` runs them"
)]
struct Args {
    /// Port to listen on (127.0.0.1); 0 lets the OS choose. Default: local.settings.json
    /// Host.LocalHttpPort, else 7071.
    #[arg(long)]
    port: Option<u16>,
    /// Handler executable to start (default: host.json defaultExecutablePath in the app root;
    /// locally the binary is in target/, e.g. target/debug/b2b-signup).
    #[arg(long, value_name = "PATH", conflicts_with = "handler_url")]
    handler: Option<PathBuf>,
    /// Use a handler that is already running at this URL (http://127.0.0.1:PORT) instead of
    /// starting one: for a handler under a debugger, or a test double. local.settings.json
    /// does not reach such a handler.
    #[arg(long, value_name = "URL")]
    handler_url: Option<url::Url>,
    /// Folder with host.json, the function folders and local.settings.json.
    #[arg(long, value_name = "DIR", default_value = ".")]
    app_root: PathBuf,
    /// Serve the static files of this folder (a sign-up page) at every path no function
    /// takes, so the page and the API share one address.
    #[arg(long, value_name = "DIR")]
    site: Option<PathBuf>,
    /// The Content-Security-Policy sent with the site's files (default: this origin only).
    /// The app knows what its page loads: `b2b-signup site csp` prints its policy.
    #[arg(long, value_name = "POLICY", requires = "site")]
    site_csp: Option<String>,
    /// Run a development identity provider at /.dev-identity on this address: it issues
    /// admin API access tokens for a local administrator, and the handler is given
    /// AZURE_AUTHORITY_HOST, AZURE_TENANT_ID and SIGNUP_ADMIN_APP_ID to trust it unless
    /// the settings give them. Development only: Azure trusts Entra ID alone.
    #[arg(long)]
    dev_identity: bool,
    /// The development identity provider's HTTPS port (127.0.0.1), where a browser signs in
    /// through it (MSAL.js needs an HTTPS authority); 0 or none: any free port. Its
    /// certificate is self-signed and made at each start.
    #[arg(long, value_name = "PORT", requires = "dev_identity")]
    dev_identity_https_port: Option<u16>,
    /// Seconds the development identity provider's access tokens are valid (default 3600):
    /// short, to watch a page renew its token.
    #[arg(long, value_name = "SECONDS", requires = "dev_identity")]
    dev_identity_token_lifetime: Option<u32>,
    /// Catch the handler's mail at /.dev-mail on this address (a stand-in for Azure
    /// Communication Services Email that checks the signature), print each mail's subject
    /// and show them at /.dev-mail/; the handler is given SIGNUP_MAIL_ENDPOINT, a made-up
    /// SIGNUP_MAIL_ACCESS_KEY, SIGNUP_MAIL_SENDER, SIGNUP_ORG_NAME and SIGNUP_SITE_URL
    /// unless the settings give them. Development only.
    #[arg(long)]
    dev_mail: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("funchost: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    init_logs();
    let options = HostOptions {
        app_root: args.app_root,
        port: args.port,
        handler: match args.handler_url {
            Some(url) => HandlerSource::Url(url),
            None => HandlerSource::Spawn(args.handler),
        },
        site: args.site,
        site_csp: args.site_csp,
        dev_identity: args.dev_identity,
        dev_identity_https_port: args.dev_identity_https_port,
        dev_identity_token_lifetime: args.dev_identity_token_lifetime,
        dev_mail: args.dev_mail,
    };
    match funchost::run(options, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ HostError::HandlerExited(_)) => {
            tracing::error!("{e}");
            eprintln!("funchost: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("funchost: {e}");
            ExitCode::from(2)
        }
    }
}

/// Text logs on stderr-like stdout, `RUST_LOG` as given (default `info`), colour only at a
/// terminal. As in the handler (src/telemetry.rs), other crates log at `info` at most
/// whatever `RUST_LOG` says: below it azure_core dumps each queue request with its
/// `authorization: SharedKey …` header, and the handler started with the same `RUST_LOG`
/// keeps its own promise.
fn init_logs() {
    use std::io::IsTerminal;
    use tracing_subscriber::{
        filter::{LevelFilter, Targets},
        layer::SubscriberExt,
        util::SubscriberInitExt,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ceiling = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target(env!("CARGO_CRATE_NAME"), LevelFilter::TRACE);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .finish()
        .with(ceiling)
        .try_init();
}

/// Ctrl-C (SIGINT) or SIGTERM. funchost is a development tool for Linux and macOS, like
/// the handler it starts.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers the host runs until its handler exits.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {},
        _ = terminate.recv() => {},
    }
}
