//! Where Graph is, how to get a token for it, and how long to wait: read once at start-up.
//!
//! The credential names are the ones `azure_identity` and the Azure SDKs use everywhere
//! (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_AUTHORITY_HOST`), and
//! `IDENTITY_ENDPOINT` is set by App Service / Functions when a managed identity is enabled
//! (<https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference>).

use crate::secret::Secret;
use std::time::Duration;

use url::Url;

const DEFAULT_BASE_URL: &str = "https://graph.microsoft.com/v1.0";
const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_INLINE_RETRY: Duration = Duration::from_secs(5);
/// The three settings of a client secret credential, in the order they are reported.
const CLIENT_SECRET_SETTINGS: [&str; 3] =
    ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"];

/// Everything the Graph client needs; pure data, built by [`GraphSettings::from_lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSettings {
    /// `GRAPH_BASE_URL`, default `https://graph.microsoft.com/v1.0`. Its origin also names
    /// the token audience (`{origin}/.default`), so national clouds need only this setting.
    pub base_url: Url,
    /// How tokens are obtained.
    pub credential: GraphCredential,
    /// `AZURE_AUTHORITY_HOST`, default `https://login.microsoftonline.com`; used by the
    /// client secret credential (the managed identity endpoint is given by the platform).
    pub authority_host: Url,
    /// `GRAPH_TIMEOUT_SECONDS`, default 10: the limit for one HTTP call to Graph or to the
    /// token endpoint, connection included.
    pub timeout: Duration,
    /// `GRAPH_MAX_INLINE_RETRY_SECONDS`, default 5: the longest `Retry-After` waited out
    /// inside an invocation; longer ones fail the invocation so the host retries later.
    pub max_inline_retry: Duration,
}

/// The app's identity towards Entra ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphCredential {
    /// An app registration's client secret (local runs, or hosting without managed identity).
    ClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
    },
    /// The Function App's system-assigned managed identity (`IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER`, which `azure_identity` reads from the process environment itself).
    ManagedIdentity,
}

/// A Graph setting that is missing, incomplete or unusable, or a client that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum GraphConfigError {
    #[error(
        "{missing} not set, but {present} is: a client secret credential needs \
         AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (only the system-assigned \
         managed identity is supported otherwise)"
    )]
    PartialClientSecret { missing: String, present: String },
    #[error("{name} must be {expected}, not {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error("could not build the HTTP client for Graph")]
    HttpClient(#[source] reqwest::Error),
    #[error("could not set up the managed identity credential")]
    Credential(#[source] azure_core::Error),
}

impl GraphSettings {
    /// Reads the settings through `lookup` (the environment in production). `Ok(None)` when
    /// no credential is configured: the caller decides whether it needs Graph at all (a dry
    /// run does not).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<GraphSettings>, GraphConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let [tenant, client, secret] = CLIENT_SECRET_SETTINGS.map(get);
        let credential = match (tenant, client, secret) {
            (Some(tenant_id), Some(client_id), Some(client_secret)) => {
                GraphCredential::ClientSecret {
                    tenant_id: tenant_id.trim().to_owned(),
                    client_id: client_id.trim().to_owned(),
                    client_secret: Secret::new(client_secret),
                }
            }
            // A tenant alone is no half client secret: it also names the tenant whose
            // tokens the admin API accepts (`src/auth`), beside a managed identity.
            (_, None, None) if get("IDENTITY_ENDPOINT").is_some() => {
                GraphCredential::ManagedIdentity
            }
            (_, None, None) => return Ok(None),
            (tenant, client, secret) => {
                let set = [tenant.is_some(), client.is_some(), secret.is_some()];
                let names = |wanted: bool| {
                    CLIENT_SECRET_SETTINGS
                        .iter()
                        .zip(set)
                        .filter(|(_, is_set)| *is_set == wanted)
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(" and ")
                };
                return Err(GraphConfigError::PartialClientSecret {
                    missing: names(false),
                    present: names(true),
                });
            }
        };

        Ok(Some(GraphSettings {
            base_url: parse_url(&get, "GRAPH_BASE_URL", DEFAULT_BASE_URL)?,
            credential,
            authority_host: authority_host(&get)?,
            timeout: parse_seconds(
                &get,
                "GRAPH_TIMEOUT_SECONDS",
                DEFAULT_TIMEOUT,
                (0.001..=300.0, "a number of seconds above 0, at most 300"),
            )?,
            max_inline_retry: parse_seconds(
                &get,
                "GRAPH_MAX_INLINE_RETRY_SECONDS",
                DEFAULT_MAX_INLINE_RETRY,
                (0.0..=60.0, "a number of seconds from 0 to 60"),
            )?,
        }))
    }
}

/// `AZURE_AUTHORITY_HOST`, default `https://login.microsoftonline.com`: where Entra ID is
/// (another host in national clouds). Read the same way for the Graph credential and for the
/// admin API's token validation (`src/auth`).
pub(crate) fn authority_host(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Url, GraphConfigError> {
    parse_url(get, "AZURE_AUTHORITY_HOST", DEFAULT_AUTHORITY_HOST)
}

/// Whether secrets, tokens or signing keys may travel to or come from `url`: `https://`,
/// or `http://` on loopback (mock servers in tests).
pub(crate) fn is_https_or_loopback(url: &Url) -> bool {
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => loopback,
        _ => false,
    }
}

/// An absolute `https://` URL; `http://` only for loopback (mock servers), because a bearer
/// token or a client secret travels to it.
fn parse_url(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<Url, GraphConfigError> {
    let value = get(name).unwrap_or_else(|| default.to_owned());
    let invalid = || GraphConfigError::Invalid {
        name,
        expected: "an https:// URL (http:// only for localhost)",
        value: value.clone(),
    };
    let url = Url::parse(value.trim()).map_err(|_| invalid())?;
    if is_https_or_loopback(&url) {
        Ok(url)
    } else {
        Err(invalid())
    }
}

/// Seconds as a decimal number (`0.5` is fine) within `range`, which `expected` describes.
fn parse_seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
    (range, expected): (std::ops::RangeInclusive<f64>, &'static str),
) -> Result<Duration, GraphConfigError> {
    let Some(value) = get(name) else {
        return Ok(default);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| range.contains(seconds))
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or(GraphConfigError::Invalid {
            name,
            expected,
            value,
        })
}
