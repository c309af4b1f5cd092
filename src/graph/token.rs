//! One Graph access token per process, shared by all concurrent invocations and refreshed
//! by a single caller shortly before it expires.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use azure_core::{
    HttpClient,
    auth::{Secret, TokenCredential},
};
use azure_identity::{
    AppServiceManagedIdentityCredential, ClientSecretCredential, TokenCredentialOptions,
};
use time::OffsetDateTime;
use tokio::{sync::Mutex, time::Instant};
use url::Url;

use super::{GraphConfigError, GraphCredential, GraphSettings, error_chain};

/// How long before expiry a token is replaced. Entra ID tokens live 60–90 minutes; a
/// token shorter than twice this margin is replaced at half its lifetime instead.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Why no token could be had. Worth retrying: the invocation fails and the host retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the token request failed")]
    Credential(#[source] Arc<azure_core::Error>),
    #[error("the token request took longer than {0:?}")]
    Timeout(Duration),
}

/// Caches the token for one scope in front of a [`TokenCredential`].
///
/// `azure_identity` 0.21 credentials cache tokens themselves, but refresh only 20 s before
/// expiry and let every waiting caller through to the token endpoint after a failure; this
/// cache refreshes earlier, once, and hands a failure to the callers that waited for it.
pub struct TokenCache {
    credential: Arc<dyn TokenCredential>,
    /// `{Graph origin}/.default`: the app's application permissions on that Graph.
    scope: String,
    timeout: Duration,
    /// Held across a refresh, so exactly one caller asks Entra ID while the others wait
    /// for its result: no stampede when the token runs out under load.
    state: Mutex<State>,
    /// Refreshes finished (successful or not). A caller reads it before waiting for
    /// `state`; if it moved meanwhile, the refresh it waited for is its answer.
    refreshes: AtomicU64,
}

#[derive(Default)]
struct State {
    token: Option<CachedToken>,
    /// The last refresh's error, handed to the callers that waited for it.
    last_error: Option<TokenError>,
}

struct CachedToken {
    secret: Secret,
    refresh_at: Instant,
}

impl TokenCache {
    /// A cache for `scope` (see [`TokenCache::scope_for`]); `timeout` bounds each refresh
    /// even if the credential's own HTTP client had no limit.
    pub fn new(credential: Arc<dyn TokenCredential>, scope: String, timeout: Duration) -> Self {
        Self {
            credential,
            scope,
            timeout,
            state: Mutex::default(),
            refreshes: AtomicU64::new(0),
        }
    }

    /// The `.default` scope of the Graph instance at `base_url`: its origin, so national
    /// clouds (`graph.microsoft.us`, `microsoftgraph.chinacloudapi.cn`) get their own audience.
    /// See <https://learn.microsoft.com/graph/deployments#app-registration-and-token-service-root-endpoints>.
    pub fn scope_for(base_url: &Url) -> String {
        format!("{}/.default", base_url.origin().ascii_serialization())
    }

    /// A valid bearer token: the cached one, or a new one if it is near expiry.
    pub async fn token(&self) -> Result<Secret, TokenError> {
        let refreshes_seen = self.refreshes.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some(token) = &state.token {
            if Instant::now() < token.refresh_at {
                return Ok(token.secret.clone());
            }
        }
        if self.refreshes.load(Ordering::Acquire) != refreshes_seen {
            if let Some(error) = &state.last_error {
                return Err(error.clone());
            }
        }

        let result = self.refresh().await;
        self.refreshes.fetch_add(1, Ordering::Release);
        match result {
            Ok(token) => {
                let secret = token.secret.clone();
                *state = State {
                    token: Some(token),
                    last_error: None,
                };
                Ok(secret)
            }
            Err(error) => {
                *state = State {
                    token: None,
                    last_error: Some(error.clone()),
                };
                Err(error)
            }
        }
    }

    /// Forgets `rejected` (Graph answered 401: revoked, or the app's permissions changed).
    /// Only that token: of many callers rejected together, the first one makes the next
    /// [`TokenCache::token`] refresh, the others then find the new token.
    pub async fn invalidate(&self, rejected: &Secret) {
        let mut state = self.state.lock().await;
        if state.token.as_ref().is_some_and(|t| &t.secret == rejected) {
            state.token = None;
        }
    }

    async fn refresh(&self) -> Result<CachedToken, TokenError> {
        // The credential's own cache would hand back the token being replaced (it only
        // refreshes 20 s before expiry): clear it so this really asks Entra ID.
        if let Err(error) = self.credential.clear_cache().await {
            tracing::debug!(%error, "could not clear the credential's token cache");
        }
        let started = Instant::now();
        let token = tokio::time::timeout(self.timeout, self.credential.get_token(&[&self.scope]))
            .await
            .map_err(|_| TokenError::Timeout(self.timeout))
            .and_then(|result| result.map_err(|e| TokenError::Credential(Arc::new(e))));
        let elapsed_ms = started.elapsed().as_millis();
        let token = match token {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), elapsed_ms, "Graph token request failed");
                return Err(error);
            }
        };
        let lifetime =
            Duration::try_from(token.expires_on - OffsetDateTime::now_utc()).unwrap_or_default();
        tracing::info!(
            lifetime_s = lifetime.as_secs(),
            elapsed_ms,
            "Graph token obtained"
        );
        Ok(CachedToken {
            secret: token.token,
            refresh_at: Instant::now() + refresh_after(lifetime),
        })
    }
}

/// How long a token of `lifetime` is used before it is replaced.
pub(super) fn refresh_after(lifetime: Duration) -> Duration {
    lifetime - REFRESH_MARGIN.min(lifetime / 2)
}

/// The credential the settings ask for, on `http` (so token requests get its timeouts).
pub(crate) fn credential(
    settings: &GraphSettings,
    http: reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, GraphConfigError> {
    let http: Arc<dyn HttpClient> = Arc::new(http);
    Ok(match &settings.credential {
        GraphCredential::ClientSecret {
            tenant_id,
            client_id,
            client_secret,
        } => Arc::new(ClientSecretCredential::new(
            http,
            settings.authority_host.clone(),
            tenant_id.clone(),
            client_id.clone(),
            client_secret.expose().to_owned(),
        )),
        GraphCredential::ManagedIdentity => Arc::new(
            AppServiceManagedIdentityCredential::create(TokenCredentialOptions::from(http))
                .map_err(GraphConfigError::Credential)?,
        ),
    })
}
