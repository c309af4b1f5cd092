//! `funchost`: the local host runner. It plays the Azure Functions host's part for
//! development and tests, where Core Tools (`func`) cannot be installed.
//!
//! It knows of the app only what `func start` knows: host.json, the `*/function.json`
//! files, the settings (the environment and local.settings.json) and its command-line flags.
//! It is a member of the workspace, never a dependency of the handler, so nothing here
//! reaches the deployed binary. It reads the same files as the host and behaves as the host
//! does towards the handler:
//!
//! - [`config`]: `host.json` and every `*/function.json`; [`settings`]: the environment plus
//!   `local.settings.json`, as `func start` reads them.
//! - [`handler`]: starts the handler with `FUNCTIONS_CUSTOMHANDLER_PORT` and waits for `GET /`
//!   (or uses one already running, `--handler-url`).
//! - [`http`]: forwards `/<routePrefix>/<route>` requests unchanged, with `authLevel` keys,
//!   over connections (`upload`) on which an answer given before the body was all sent counts.
//! - [`queues`] (on [`queue_store`]) and [`timers`] (on [`ncrontab`]): trigger functions with
//!   the exact invocation payloads of [`payload`], sent by [`invoke`].
//! - [`site`]: with `--site DIR`, a static site's files at every other path, with the
//!   Content-Security-Policy given by `--site-csp` (not something the Functions host does:
//!   it puts the page and the API on one local address).
//! - [`identity`]: with `--dev-identity`, a development identity provider under
//!   `/.dev-identity/...` that issues admin API tokens for a local administrator, and the
//!   settings that make the handler trust it; over HTTPS on a port of its own, the
//!   interactive sign-in a browser needs (not something the Functions host does: Entra
//!   ID plays this part in Azure).
//!
//! - [`mail`]: with `--dev-mail`, a stand-in for Azure Communication Services Email under
//!   `/.dev-mail/...` that checks the handler's signature and shows the mails at
//!   `/.dev-mail/` (development only).
//!
//! What it does not do: other bindings, output bindings, the admin API, keys in storage,
//! timer schedule state across runs. A function that needs more is refused at start-up.

pub mod config;
pub mod cors;
pub mod handler;
pub mod http;
pub mod identity;
pub mod invoke;
pub mod mail;
pub mod ncrontab;
pub mod payload;
pub mod queue_store;
pub mod queues;
pub mod settings;
pub mod site;
pub mod timers;
mod upload;

use std::{
    collections::BTreeMap, future::Future, io::Write, path::PathBuf, sync::Arc, time::Duration,
};

use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use webjobs_storage::{ConnectionError, StorageAccount};

use self::{
    config::{AppConfig, AuthLevel, ConfigError, Trigger},
    handler::{HandlerError, HandlerSource, RunningHandler},
    http::{Forwarder, FunctionKeys, HttpFrontDoor, KeysError, RouteTable, RouteTableError},
    invoke::Invoker,
    queue_store::{AzureQueueStore, QueueStore, QueueStoreError},
    queues::QueueListener,
    settings::{FUNCTION_KEYS_SETTING, HostSettings, SettingsError},
    timers::TimerListener,
};

/// `func start`'s default port.
pub const DEFAULT_PORT: u16 = 7071;

/// How the runner is asked to run.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The folder with host.json and the function folders.
    pub app_root: PathBuf,
    /// `None`: local.settings.json `Host.LocalHttpPort`, else [`DEFAULT_PORT`]; 0: any port.
    pub port: Option<u16>,
    /// Start the handler, or use one that is running.
    pub handler: HandlerSource,
    /// A folder of static files (the sign-up page) to serve at paths no function takes.
    pub site: Option<PathBuf>,
    /// The site's Content-Security-Policy; `None`: this origin only.
    pub site_csp: Option<String>,
    /// `--dev-identity`: run the development identity provider and point the handler at it.
    pub dev_identity: bool,
    /// `--dev-identity-https-port`: the provider's HTTPS port (`None` or 0: any free port).
    pub dev_identity_https_port: Option<u16>,
    /// `--dev-identity-token-lifetime`: seconds an access token is valid (`None`: an hour).
    pub dev_identity_token_lifetime: Option<u32>,
    /// `--dev-mail`: catch the handler's mail on this address ([`mail`]).
    pub dev_mail: bool,
}

/// Why the runner could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{FUNCTION_KEYS_SETTING}: {0}")]
    Keys(#[from] KeysError),
    #[error("HTTP routes: {0}")]
    Routes(#[from] RouteTableError),
    #[error(transparent)]
    Site(#[from] site::SiteError),
    #[error("storage for {function} (connection setting {setting:?}): {source}")]
    Storage {
        function: String,
        setting: String,
        source: ConnectionError,
    },
    #[error("cannot set up the HTTP client that invokes the handler: {0}")]
    InvokerClient(#[source] reqwest::Error),
    #[error("cannot set up the queue client for {setting:?}: {source}")]
    QueueClient {
        setting: String,
        source: QueueStoreError,
    },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    Handler(#[from] HandlerError),
    /// The handler process ended while the runner was serving (exit status 1).
    #[error("the handler exited ({0}); the runner stops too")]
    HandlerExited(String),
}

/// Runs until `shutdown` completes (Ctrl-C, SIGTERM) or the handler exits.
///
/// Prints `funchost listening on http://127.0.0.1:<port>` on stdout once the handler
/// is ready and every trigger has started.
pub async fn run(
    options: HostOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HostError> {
    let mut settings = HostSettings::load(&options.app_root)?;
    let app = AppConfig::load(&options.app_root, &settings)?;
    let keys = FunctionKeys::parse(settings.get(FUNCTION_KEYS_SETTING).as_deref())?;
    let routes = RouteTable::new(&app.host.route_prefix, &app.functions)?;
    let stores = queue_stores(&app, &settings)?;
    let site = match &options.site {
        Some(dir) => Some(site::StaticSite::new(dir, options.site_csp.as_deref())?),
        None => None,
    };

    // Bind first: a taken port fails before the handler is started.
    let port = options
        .port
        .or(settings.local_http_port())
        .unwrap_or(DEFAULT_PORT);
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| HostError::Bind { port, source })?;
    let address = listener
        .local_addr()
        .map_err(|source| HostError::Bind { port, source })?;

    // The provider's address is the host's: known only now. Its settings reach the handler
    // with local.settings.json's.
    let mut secure_identity = None;
    let dev_identity = if options.dev_identity {
        let mut plan = identity::IdentityPlan::new(&address.to_string(), &settings);
        let https_port = options.dev_identity_https_port.unwrap_or(0);
        let https = TcpListener::bind(("127.0.0.1", https_port))
            .await
            .and_then(|listener| Ok((listener.local_addr()?, listener)))
            .map_err(|source| identity::IdentityError::Bind {
                port: https_port,
                source,
            })?;
        plan.secure_authority = Some(format!("https://{}{}", https.0, identity::PATH_PREFIX));
        if let Some(seconds) = options.dev_identity_token_lifetime {
            plan.token_lifetime = i64::from(seconds.max(1));
        }
        for (name, value) in &plan.provided {
            settings.provide(name, value);
        }
        // RSA key generation takes a moment of CPU: not on the async threads.
        let provider = tokio::task::spawn_blocking(move || identity::DevIdentity::generate(plan))
            .await
            .map_err(|e| identity::IdentityError::KeyGeneration(e.to_string()))??;
        if matches!(options.handler, HandlerSource::Url(_)) && !provider.plan().provided.is_empty()
        {
            tracing::warn!(
                "--handler-url: the handler was started elsewhere and does not get the \
                 development identity settings; start it with those printed below"
            );
        }
        let provider = Arc::new(provider);
        secure_identity = Some((https.1, identity::tls::self_signed()?, provider.clone()));
        Some(provider)
    } else {
        None
    };

    let dev_mail = options.dev_mail.then(|| {
        mail::provide(&address.to_string(), &mut settings);
        Arc::new(mail::DevMail::default())
    });

    let mut handler =
        RunningHandler::start(&options.handler, &options.app_root, &app.host, &settings).await?;
    let invoker = Invoker::new(handler.base_url.clone(), app.host.function_timeout)
        .map_err(HostError::InvokerClient)?;

    let needs_keys = app
        .functions
        .iter()
        .any(|f| matches!(&f.trigger, Trigger::Http(h) if h.auth_level != AuthLevel::Anonymous));
    if needs_keys && keys.is_empty() {
        tracing::warn!(
            "functions with authLevel function/admin will answer 401 to everyone: set \
             {FUNCTION_KEYS_SETTING}=name=key"
        );
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let front_door = HttpFrontDoor {
        routes,
        keys,
        forwarder: Forwarder::new(handler.authority.clone(), app.host.function_timeout),
        cors: settings
            .cors()
            .map(|(origins, credentials)| cors::Cors::new(origins, credentials))
            .unwrap_or_default(),
        site,
        dev_identity: dev_identity.clone(),
        dev_mail,
    };
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(http::serve(listener, front_door, async move {
        stopped(&mut http_stop).await;
    }));

    let mut triggers = JoinSet::new();
    if let Some((listener, tls, provider)) = secure_identity {
        triggers.spawn(identity::tls::serve(
            listener,
            tls,
            provider,
            stop_rx.clone(),
        ));
    }
    // A fetched message stays locked for longer than any invocation may take.
    let lock = app.host.function_timeout + Duration::from_secs(60);
    for function in &app.functions {
        match &function.trigger {
            Trigger::Http(_) => {}
            Trigger::Queue(trigger) => {
                let Some(store) = stores.get(&trigger.connection) else {
                    continue;
                };
                let listener = Arc::new(QueueListener {
                    function: function.name.clone(),
                    trigger: trigger.clone(),
                    options: app.host.queues.clone(),
                    store: store.clone(),
                    invoker: invoker.clone(),
                    lock,
                });
                triggers.spawn(listener.run(stop_rx.clone()));
            }
            Trigger::Timer(trigger) => {
                let listener = TimerListener {
                    function: function.name.clone(),
                    trigger: trigger.clone(),
                    invoker: invoker.clone(),
                };
                triggers.spawn(listener.run(stop_rx.clone()));
            }
        }
    }

    print_functions(&app, &address.to_string(), dev_identity.as_deref());
    let outcome = tokio::select! {
        () = shutdown => {
            tracing::info!("stopping");
            Ok(())
        }
        status = handler.exited() => Err(HostError::HandlerExited(status)),
    };

    // Triggers first (their invocations still need the handler), then HTTP, then the handler.
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(35), async {
        while triggers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        triggers.abort_all();
    }
    if tokio::time::timeout(Duration::from_secs(5), http_task)
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests still running at shutdown were dropped");
    }
    handler.stop().await;
    outcome
}

/// One queue client per storage setting that queue triggers name.
fn queue_stores(
    app: &AppConfig,
    settings: &HostSettings,
) -> Result<BTreeMap<String, Arc<dyn QueueStore>>, HostError> {
    let mut stores: BTreeMap<String, Arc<dyn QueueStore>> = BTreeMap::new();
    for function in &app.functions {
        let Trigger::Queue(trigger) = &function.trigger else {
            continue;
        };
        if stores.contains_key(&trigger.connection) {
            continue;
        }
        // The connection names a setting read like AzureWebJobsStorage: a connection string
        // or its identity-based `<name>__accountName` / `__queueServiceUri` form.
        let account = StorageAccount::from_settings(|name| {
            settings.get(&name.replacen(config::DEFAULT_CONNECTION, &trigger.connection, 1))
        })
        .map_err(|source| HostError::Storage {
            function: function.name.clone(),
            setting: trigger.connection.clone(),
            source,
        })?;
        let store = AzureQueueStore::new(&account).map_err(|source| HostError::QueueClient {
            setting: trigger.connection.clone(),
            source,
        })?;
        stores.insert(trigger.connection.clone(), Arc::new(store));
    }
    Ok(stores)
}

/// The function list `func start` prints, then the line tests wait for.
fn print_functions(app: &AppConfig, address: &str, dev_identity: Option<&identity::DevIdentity>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nFunctions:\n");
    for function in &app.functions {
        let line = match &function.trigger {
            Trigger::Http(h) => {
                let methods = if h.methods.is_empty() {
                    "*".to_owned()
                } else {
                    h.methods.join(",")
                };
                let prefix = if app.host.route_prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{}", app.host.route_prefix)
                };
                format!("[{methods}] http://{address}{prefix}/{}", h.route)
            }
            Trigger::Queue(q) => format!("queueTrigger ({})", q.queue_name),
            Trigger::Timer(t) => format!("timerTrigger ({})", t.schedule_text),
        };
        let _ = writeln!(out, "\t{}: {line}", function.name);
    }
    if let Some(provider) = dev_identity {
        let _ = write!(out, "{}", provider.plan().describe());
    }
    let _ = writeln!(out, "\nfunchost listening on http://{address}");
    let _ = out.flush();
}

/// Completes once the stop flag is set (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
