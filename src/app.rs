//! The custom handler: binds 127.0.0.1:`FUNCTIONS_CUSTOMHANDLER_PORT` first, then serves.
//!
//! Building an [`Application`] reads the policy (a local file, milliseconds) and creates
//! clients without any network call, so the host's readiness probe (`GET /`) is answered
//! at once; tables and the queue are created in the background right after.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use warp::{Filter, http::HeaderValue, reply::Reply};

use crate::{
    abuse::{CaptchaVerifier, RateLimiter, Scope},
    auth::{APP_ID_SETTING, AdminAuthConfigError, Authenticator},
    clock::Clock,
    functions::{self, admin_api::AdminApi, signup_http::Gatekeeper},
    graph::{GraphClient, GraphConfigError},
    intake::Intake,
    lifecycle::{Lifecycle, MailedNotices, NoMail, RETENTION_BATCH},
    mail::{AcsMailer, MailConfigError},
    notify::ApprovalNotifier,
    outbox::Outbox,
    policy::{Policy, PolicyError},
    problem::{ErrorCode, Problem},
    reconcile::Reconciler,
    requests::Requests,
    settings::Settings,
    site_base::SiteBase,
    storage::{AzureStorage, StoreError, azure::StorageTimeouts},
    subjects::Subjects,
    verify::Verifier,
    worker::{Mode, Worker},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot set up storage clients: {0}")]
    Storage(#[from] StoreError),
    /// The HTTP client for `APPROVAL_WEBHOOK_URL` (the URL itself is a secret: not shown).
    #[error("cannot set up the approval webhook client: {0}")]
    Webhook(#[source] reqwest::Error),
    #[error("cannot set up the captcha client: {0}")]
    Captcha(#[source] reqwest::Error),
    #[error(
        "live mode (SIGNUP_DRY_RUN is not true) needs Microsoft Graph settings: set AZURE_TENANT_ID, \
         AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or run in Azure with a managed identity"
    )]
    LiveWithoutGraph,
    #[error("cannot set up the Graph client: {0}")]
    Graph(#[from] GraphConfigError),
    #[error("cannot set up the admin API's token validation: {0}")]
    AdminAuth(#[from] AdminAuthConfigError),
    #[error(
        "the policy asks for proof of address (verifyEmail, true by default) but no mail \
         endpoint is configured: set SIGNUP_MAIL_ENDPOINT, SIGNUP_MAIL_SENDER and \
         SIGNUP_ORG_NAME, or set \"verifyEmail\": false in the policy"
    )]
    VerifyWithoutMail,
    #[error(
        "the policy asks for proof of address, so SIGNUP_SITE_URL must be the site's absolute \
         address (https://, or http:// on localhost) for the link in the mail, not {0:?}"
    )]
    VerifyWithoutSite(String),
    #[error("cannot set up mail: {0}")]
    Mail(#[from] MailConfigError),
}

/// Rows Reconcile handles per category per run (one run every five minutes).
const RECONCILE_BATCH: usize = 200;

/// Requests Lifecycle notifies or ends per pass (once a day).
const LIFECYCLE_BATCH: usize = 1_000;

/// Time limit of one captcha verification (the partner is waiting).
const CAPTCHA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Time limit of one approval webhook call.
const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A bound, ready-to-run handler.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    intake: Arc<Intake>,
    gate: Arc<Gatekeeper>,
    worker: Arc<Worker>,
    admin: Arc<AdminApi>,
    reconciler: Arc<Reconciler>,
    verifier: Arc<Verifier>,
    lifecycle: Arc<Lifecycle>,
    subjects: Arc<Subjects>,
    storage: AzureStorage,
    /// Where plain HTML form posts are redirected (`SIGNUP_SITE_URL`).
    site: Arc<SiteBase>,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// As [`Application::build`], with the time source tests control.
    pub async fn build_with_clock(settings: &Settings, clock: Clock) -> Result<Self, StartupError> {
        let policy = Policy::load(&settings.policy_path)?;
        let listener = TcpListener::bind(("127.0.0.1", settings.port))
            .await
            .map_err(|source| StartupError::Bind {
                port: settings.port,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            port: settings.port,
            source,
        })?;
        let storage = AzureStorage::new(&settings.storage, StorageTimeouts::default())?;
        // Dry run is never a silent fallback: live mode without Graph settings stops here.
        let mode = match (&settings.graph, settings.dry_run) {
            (_, true) => Mode::DryRun,
            (Some(graph), false) => Mode::Live(Arc::new(GraphClient::new(graph)?)),
            (None, false) => return Err(StartupError::LiveWithoutGraph),
        };
        let notifier = match &settings.approval_webhook {
            Some(url) => Some(
                ApprovalNotifier::new(
                    url.clone(),
                    crate::notify::console_base(
                        &settings.site_url,
                        settings.public_base_url.as_deref(),
                    ),
                    WEBHOOK_TIMEOUT,
                )
                .map_err(StartupError::Webhook)?,
            ),
            None => None,
        };
        let auth = Authenticator::new(settings.admin_auth.clone(), clock.clone())?;
        if !auth.is_on() {
            tracing::info!(
                "admin API is off: {APP_ID_SETTING} is not set, so every call to it is answered 401"
            );
        }
        let policy = Arc::new(policy);
        let outbox = outbox(settings, &policy, &storage, &clock)?;
        let requests = Arc::new(Requests {
            store: Arc::new(storage.clone()),
            queue: Arc::new(storage.clone()),
            clock: clock.clone(),
            notifier,
            outbox: outbox.clone(),
        });
        // SIGNUP_TRUSTED_PROXY_HOPS=0 trusts no X-Forwarded-For entry, so no sign-up has a
        // client address: the IP limit is off by that setting (README, SECURITY.md), not
        // by what a request carries.
        let mut rate_limits = settings.rate_limits.clone();
        if settings.trusted_proxy_hops == 0 {
            rate_limits.limits.retain(|(scope, _)| *scope != Scope::Ip);
        }
        let gate = Arc::new(Gatekeeper {
            captcha: match &settings.captcha {
                Some(captcha) => Some(
                    CaptchaVerifier::new(captcha.clone(), CAPTCHA_TIMEOUT)
                        .map_err(StartupError::Captcha)?,
                ),
                None => None,
            },
            rate_limiter: (!rate_limits.limits.is_empty())
                .then(|| RateLimiter::new(rate_limits, Arc::new(storage.clone()))),
            trusted_proxy_hops: settings.trusted_proxy_hops,
        });
        let intake = Arc::new(Intake {
            policy: policy.clone(),
            requests: requests.clone(),
            dry_run: settings.dry_run,
            verify_for: time::Duration::hours(i64::from(settings.mail.verify_hours)),
            directory: match &mode {
                Mode::Live(directory) => Some(directory.clone()),
                Mode::DryRun => None,
            },
            resend_budget: crate::intake::INVITATION_RESEND_BUDGET,
        });
        let verifier = Arc::new(Verifier {
            requests: requests.clone(),
            policy: policy.clone(),
        });
        let lifecycle = Arc::new(Lifecycle {
            policy: policy.clone(),
            store: Arc::new(storage.clone()),
            housekeeping: Arc::new(storage.clone()),
            mode: mode.clone(),
            notices: match &outbox {
                Some(outbox) => Arc::new(MailedNotices {
                    outbox: outbox.clone(),
                }),
                None => Arc::new(NoMail),
            },
            clock: clock.clone(),
            retention: settings.retention,
            batch: LIFECYCLE_BATCH,
            retention_batch: RETENTION_BATCH,
        });
        let subjects = Arc::new(Subjects {
            store: Arc::new(storage.clone()),
            housekeeping: Arc::new(storage.clone()),
            clock: clock.clone(),
        });
        let worker = Arc::new(Worker {
            outbox,
            policy,
            store: Arc::new(storage.clone()),
            dead_letters: Arc::new(storage.clone()),
            mode,
            clock,
            lease: settings.stale_after,
        });
        Ok(Self {
            listener,
            address,
            intake,
            gate,
            worker,
            reconciler: Arc::new(Reconciler {
                requests: requests.clone(),
                lease: settings.stale_after,
                resend_accepted_after: settings.stale_after,
                batch: RECONCILE_BATCH,
            }),
            lifecycle,
            subjects,
            admin: Arc::new(AdminApi { requests, auth }),
            verifier,
            storage,
            site: Arc::new(settings.site_url.clone()),
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let storage = self.storage.clone();
        tokio::spawn(async move {
            if let Err(e) = storage.ensure_created().await {
                tracing::warn!(error = %e, "storage not ready yet; will retry on first use");
            }
        });
        tracing::info!(address = %self.address, "handler listening");
        warp::serve(routes(
            Partners {
                intake: self.intake,
                gate: self.gate,
                site: self.site,
                verifier: self.verifier,
            },
            self.worker,
            self.admin,
            Timers {
                reconciler: self.reconciler,
                lifecycle: self.lifecycle,
            },
            self.subjects,
        ))
        .incoming(self.listener)
        .graceful(shutdown)
        .run()
        .await;
    }
}

/// The mail client and what it sends, when mail is configured; refuses a policy that
/// asks for proof of address without mail, or without the site's absolute address.
fn outbox(
    settings: &Settings,
    policy: &Arc<Policy>,
    storage: &AzureStorage,
    clock: &Clock,
) -> Result<Option<Arc<Outbox>>, StartupError> {
    let Some(service) = &settings.mail.service else {
        if policy.verify_email() {
            return Err(StartupError::VerifyWithoutMail);
        }
        return Ok(None);
    };
    let site = settings.site_url.as_str();
    let absolute = url::Url::parse(site)
        .ok()
        .filter(crate::graph::is_https_or_loopback);
    if policy.verify_email() && absolute.is_none() {
        return Err(StartupError::VerifyWithoutSite(site.to_owned()));
    }
    let mailer = AcsMailer::new(service, settings.graph.as_ref())?;
    let console_base =
        crate::notify::console_base(&settings.site_url, settings.public_base_url.as_deref());
    Ok(Some(Arc::new(Outbox {
        mailer: Arc::new(mailer),
        store: Arc::new(storage.clone()),
        clock: clock.clone(),
        policy: policy.clone(),
        org_name: settings.mail.org_name.clone(),
        site: console_base.clone().unwrap_or_else(|| site.to_owned()),
        verify_for: time::Duration::hours(i64::from(settings.mail.verify_hours)),
        approvers: settings.mail.approvers.clone(),
        branding: settings.mail.branding.clone(),
        console_base,
    })))
}

/// What partners call: the sign-up (behind its gate: captcha, rate limits) and the proof
/// of address.
pub struct Partners {
    pub intake: Arc<Intake>,
    pub gate: Arc<Gatekeeper>,
    pub site: Arc<SiteBase>,
    pub verifier: Arc<Verifier>,
}

/// The timer functions' passes.
pub struct Timers {
    pub reconciler: Arc<Reconciler>,
    pub lifecycle: Arc<Lifecycle>,
}

/// Every route of the handler, with the headers every answer carries.
pub fn routes(
    partners: Partners,
    worker: Arc<Worker>,
    admin: Arc<AdminApi>,
    timers: Timers,
    subjects: Arc<Subjects>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let Partners {
        intake,
        gate,
        site,
        verifier,
    } = partners;
    // The host's readiness probe: any answer will do, at once.
    let probe = warp::path::end()
        .and(warp::get().or(warp::head()).unify())
        .map(|| warp::reply::with_status("ok", warp::http::StatusCode::OK).into_response());

    probe
        .or(functions::signup_http::route(intake, gate.clone(), site))
        .unify()
        .or(functions::verify::route(verifier, gate))
        .unify()
        .or(functions::invite_queue::route(worker.clone()))
        .unify()
        .or(functions::invite_poison::route(worker))
        .unify()
        .or(functions::requests::route(admin.clone()))
        .unify()
        .or(functions::request::route(admin.clone()))
        .unify()
        .or(functions::subjects::route(admin.clone(), subjects))
        .unify()
        .or(functions::approval::route(admin))
        .unify()
        .or(functions::reconcile::route(timers.reconciler))
        .unify()
        .or(functions::lifecycle::route(timers.lifecycle))
        .unify()
        .recover(|rejection| async move { Ok::<_, Infallible>(rejected(rejection)) })
        .unify()
        .map(|mut response: warp::reply::Response| {
            let headers = response.headers_mut();
            headers.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            headers.insert("cache-control", HeaderValue::from_static("no-store"));
            // API answers are data, never pages: nothing may load from or frame them.
            headers.insert(
                "content-security-policy",
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            );
            headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            response
        })
}

/// The `detail` of the 404 for a path no function serves (tests tell it from a function's
/// own 404, such as an unknown request id).
pub const NO_ROUTE: &str = "There is nothing at this address.";

/// Warp's rejections (no route, wrong method) as problem+json.
fn rejected(rejection: warp::Rejection) -> warp::reply::Response {
    let problem = if rejection.is_not_found() {
        Problem::new(ErrorCode::NotFound, NO_ROUTE)
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Problem::new(
            ErrorCode::MethodNotAllowed,
            "This address does not take that method.",
        )
    } else {
        Problem::new(
            ErrorCode::InvalidRequest,
            "The request could not be understood.",
        )
    };
    problem.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_up_errors_name_the_client_that_failed() {
        // Any reqwest error will do: the variant, not the cause, names the client.
        let cause = || {
            reqwest::Client::new()
                .get("not a url")
                .build()
                .expect_err("a relative URL is refused")
        };
        let webhook = StartupError::Webhook(cause()).to_string();
        let captcha = StartupError::Captcha(cause()).to_string();
        assert!(
            webhook.starts_with("cannot set up the approval webhook client: "),
            "{webhook}"
        );
        assert!(
            captcha.starts_with("cannot set up the captcha client: "),
            "{captcha}"
        );
    }
}
