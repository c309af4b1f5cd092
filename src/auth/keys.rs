//! The tenant's signing keys and issuer, fetched on first use and kept until replaced.
//!
//! Entra ID rolls its signing keys over periodically, and at once in an emergency; a token
//! signed with a key this process has not seen is the sign to fetch the keys again
//! (<https://learn.microsoft.com/entra/identity-platform/signing-key-rollover>). Anyone can
//! send a token with a made-up `kid`, so that refresh happens at most once a minute, and one
//! caller fetches while the others wait for its result (as `graph::TokenCache` does).

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use url::Url;

use super::AdminAuthSettings;
use crate::clock::Clock;

/// The least time between two refreshes of keys already cached: what an unknown `kid` may
/// cost the identity provider.
pub(super) const MIN_REFRESH_INTERVAL: time::Duration = time::Duration::minutes(1);

/// The keys of one successful fetch, with the issuer the configuration named.
pub(super) struct KeySet {
    /// The configuration's `issuer`: `https://login.microsoftonline.com/{tenant}/v2.0`
    /// for v2.0 tokens.
    pub(super) issuer: String,
    keys: HashMap<String, DecodingKey>,
}

impl KeySet {
    pub(super) fn key(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }
}

/// Why a token's key could not be had.
#[derive(Debug, Clone)]
pub(super) enum KeyError {
    /// Keys are cached (or were just fetched) and none has this `kid`: the token is not
    /// the tenant's, or its key is too new and the keys were refreshed less than a minute ago.
    Unknown,
    /// No key is cached and the identity provider cannot be reached (the error is logged
    /// once, by the caller that fetched).
    Unavailable,
}

/// Why a fetch of the configuration or of the keys failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error("{what}: the request failed")]
    Request {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status}")]
    Status { what: &'static str, status: u16 },
    #[error("the configuration's jwks_uri {0:?} is not an https:// URL")]
    InsecureKeysUrl(String),
    #[error("the key set holds no RSA signing key")]
    NoUsableKey,
}

/// The cache, shared by every clone of the authenticator.
pub(super) struct KeyStore {
    http: reqwest::Client,
    configuration_url: Url,
    clock: Clock,
    /// The keys in use, read without waiting on a refresh in progress; replaced whole.
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held across a refresh, so exactly one caller fetches while the others wait for
    /// its result: 24 first calls at once make one fetch of each document.
    refresh: Mutex<RefreshState>,
    /// Refreshes finished (successful or not). A caller reads it before waiting for
    /// `refresh`; if it moved meanwhile, the refresh it waited for is its answer.
    refreshes: AtomicU64,
}

#[derive(Default)]
struct RefreshState {
    /// `jwks_uri` and `issuer` once read: the configuration is fetched again only if
    /// reading it failed.
    discovery: Option<Discovery>,
    /// When the last refresh started, successful or not.
    last_attempt: Option<OffsetDateTime>,
    /// Whether the last refresh failed: the answer of the callers that waited for it.
    last_failed: bool,
}

/// What the tenant's OpenID configuration says that matters here.
/// <https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#sample-response>
#[derive(Deserialize)]
struct Configuration {
    issuer: String,
    jwks_uri: String,
}

#[derive(Clone)]
struct Discovery {
    issuer: String,
    jwks_uri: Url,
}

/// A JSON Web Key Set; only what an RSA signing key needs is read, other keys are skipped.
#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl KeyStore {
    pub(super) fn new(
        settings: &AdminAuthSettings,
        clock: Clock,
    ) -> Result<Self, super::AdminAuthConfigError> {
        let http = reqwest::Client::builder()
            .timeout(settings.fetch_timeout())
            .connect_timeout(settings.fetch_timeout())
            .build()
            .map_err(super::AdminAuthConfigError::HttpClient)?;
        Ok(Self {
            http,
            configuration_url: settings.configuration_url().clone(),
            clock,
            current: RwLock::default(),
            refresh: Mutex::default(),
            refreshes: AtomicU64::new(0),
        })
    }

    /// The key set that holds `kid`: the cached one, or a fresh one if `kid` is unknown
    /// and a refresh is allowed.
    pub(super) async fn key_set_for(&self, kid: &str) -> Result<Arc<KeySet>, KeyError> {
        if let Some(keys) = self.cached().filter(|keys| keys.key(kid).is_some()) {
            return Ok(keys);
        }
        let refreshes_seen = self.refreshes.load(Ordering::Acquire);
        let mut state = self.refresh.lock().await;
        let cached = self.cached();
        if let Some(keys) = cached.as_ref().filter(|keys| keys.key(kid).is_some()) {
            return Ok(Arc::clone(keys));
        }
        let now = self.clock.now();
        if self.refreshes.load(Ordering::Acquire) != refreshes_seen {
            // The refresh this caller waited for did not bring the key: its answer is ours.
            return Err(match cached {
                None if state.last_failed => KeyError::Unavailable,
                _ => KeyError::Unknown,
            });
        }
        let recently = state
            .last_attempt
            .is_some_and(|at| now - at < MIN_REFRESH_INTERVAL);
        if cached.is_some() && recently {
            return Err(KeyError::Unknown);
        }

        state.last_attempt = Some(now);
        let result = self.fetch(&mut state).await;
        self.refreshes.fetch_add(1, Ordering::Release);
        match result {
            Ok(keys) => {
                state.last_failed = false;
                self.replace(Arc::clone(&keys));
                match keys.key(kid) {
                    Some(_) => Ok(keys),
                    None => Err(KeyError::Unknown),
                }
            }
            Err(error) => {
                tracing::warn!(error = %crate::graph::error_chain(&error), "admin API: could not fetch the identity provider's signing keys");
                state.last_failed = true;
                match cached {
                    Some(_) => Err(KeyError::Unknown),
                    None => Err(KeyError::Unavailable),
                }
            }
        }
    }

    fn cached(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, keys: Arc<KeySet>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(keys);
    }

    /// The configuration (unless already read), then the keys it names.
    async fn fetch(&self, state: &mut RefreshState) -> Result<Arc<KeySet>, FetchError> {
        let discovery = match &state.discovery {
            Some(discovery) => discovery.clone(),
            None => {
                let configuration: Configuration = self
                    .get_json("OpenID configuration", self.configuration_url.clone())
                    .await?;
                // The keys vouch for every token: they come over TLS like the
                // configuration, whatever the document says.
                let jwks_uri = Url::parse(&configuration.jwks_uri)
                    .ok()
                    .filter(crate::graph::is_https_or_loopback)
                    .ok_or(FetchError::InsecureKeysUrl(configuration.jwks_uri))?;
                let discovery = Discovery {
                    issuer: configuration.issuer,
                    jwks_uri,
                };
                state.discovery = Some(discovery.clone());
                discovery
            }
        };
        let jwks: Jwks = self.get_json("JWKS", discovery.jwks_uri).await?;
        let keys: HashMap<String, DecodingKey> =
            jwks.keys.into_iter().filter_map(signing_key).collect();
        if keys.is_empty() {
            // Not a replacement: the cached keys, if any, stay in use.
            return Err(FetchError::NoUsableKey);
        }
        tracing::info!(
            keys = keys.len(),
            "admin API: identity provider's signing keys fetched"
        );
        Ok(Arc::new(KeySet {
            issuer: discovery.issuer,
            keys,
        }))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        url: Url,
    ) -> Result<T, FetchError> {
        let request = |source| FetchError::Request { what, source };
        let response = self.http.get(url).send().await.map_err(request)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                what,
                status: status.as_u16(),
            });
        }
        response.json().await.map_err(request)
    }
}

/// An RSA key meant for signatures, by its `kid`; other keys (encryption, other types, no
/// id) are no use to an RS256 token and are skipped rather than failing the whole set.
fn signing_key(jwk: Jwk) -> Option<(String, DecodingKey)> {
    let signing = jwk.usage.as_deref().is_none_or(|usage| usage == "sig");
    if jwk.kty != "RSA" || !signing {
        return None;
    }
    let key = DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?;
    Some((jwk.kid?, key))
}
