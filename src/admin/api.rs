//! `requests list|show|approve|deny|retry` through the admin API (`SIGNUP_ADMIN_API_URL`), as
//! the administrator who runs them: an Entra ID access token for the admin API's app
//! registration, from a client secret in the environment (automation) or from the Azure
//! CLI's sign-in (`az login`, a person). No storage key and no function key: the API is
//! the one place that authorises a decision and records who made it, from the token.

use std::{io::Write, sync::Arc, time::Duration};

use azure_core::auth::TokenCredential;
use azure_identity::AzureCliCredential;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use super::{
    Failure, Filter, RequestsCommand, io, status, view::View, visible, write_list, write_one,
};
use crate::{
    domain::{AppId, RequestId, RequestStatus},
    graph::{self, GraphCredential, GraphSettings},
};

/// The admin API's base URL (the Function App's), e.g. `https://app.azurewebsites.net`.
pub(super) const API_URL_SETTING: &str = "SIGNUP_ADMIN_API_URL";
/// The admin API's app registration: the token is asked for `api://{id}/.default`.
const APP_ID_SETTING: &str = "SIGNUP_ADMIN_APP_ID";
/// The limit for one call to the API or for getting a token (the Azure CLI included).
const TIMEOUT: Duration = Duration::from_secs(30);
/// The API's largest page (DESIGN: `limit` ≤ 200).
const MAX_PAGE: usize = 200;

/// `SIGNUP_ADMIN_API_URL`, when set: the command line then goes through the API.
pub(super) fn api_url() -> Option<String> {
    std::env::var(API_URL_SETTING)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// The admin API, reached with a token for it.
struct Api {
    base: Url,
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    scope: String,
}

/// A problem+json answer, as far as it is shown.
#[derive(Debug, Default, Deserialize)]
struct ApiProblem {
    title: Option<String>,
    detail: Option<String>,
    code: Option<String>,
}

/// The answer of approve, deny and retry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Decided {
    status: String,
    changed: bool,
    decided_by: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<View>,
    continuation: Option<String>,
}

pub(super) async fn run(
    url: &str,
    command: RequestsCommand,
    out: &mut impl Write,
) -> Result<(), Failure> {
    // `--by` would be a name nobody checks; the API records the token's identity instead.
    if let RequestsCommand::Approve { by: Some(_), .. }
    | RequestsCommand::Deny { by: Some(_), .. }
    | RequestsCommand::Retry { by: Some(_), .. }
    | RequestsCommand::Erase { by: Some(_), .. } = &command
    {
        return Err(Failure::Usage(format!(
            "--by is refused with {API_URL_SETTING}: the API records who you are, from your sign-in"
        )));
    }
    let api = Api::from_env(url)?;
    match command {
        RequestsCommand::List {
            filter,
            limit,
            json,
        } => {
            let rows = api.list(&filter, limit).await?;
            write_list(out, &rows, json)
        }
        RequestsCommand::Show { id, json } => {
            let view: View = api.call(Method::GET, &path(&id, None)?, None).await?;
            write_one(out, &view, json)
        }
        RequestsCommand::Approve { id, reason, .. } => {
            api.decide(&id, "approve", reason, out).await
        }
        RequestsCommand::Deny { id, reason, .. } => {
            api.decide(&id, "deny", Some(reason), out).await
        }
        RequestsCommand::Retry { id, filter, .. } => api.retry(id, &filter, out).await,
        RequestsCommand::Export {
            email: Some(email), ..
        } => {
            let export: serde_json::Value = api.subject("export", email).await?;
            super::subjects::write_json(out, &export)
        }
        RequestsCommand::Erase { email, .. } => {
            let erased: crate::subjects::Erased = api.subject("erase", email).await?;
            super::subjects::write_erased(out, &erased)
        }
        RequestsCommand::Export { .. } | RequestsCommand::RestoreClaims => {
            Err(Failure::Usage(format!(
                "this command reads storage: unset {API_URL_SETTING} and set AzureWebJobsStorage"
            )))
        }
    }
}

/// `api/requests/{id}[/{action}]`; text that is not a request id names no request (exit 1,
/// as without the API), and never reaches a URL.
fn path(id: &str, action: Option<&str>) -> Result<Vec<String>, Failure> {
    let id =
        RequestId::parse(id).ok_or_else(|| Failure::Refused(format!("no request has id {id}")))?;
    let mut segments = vec!["api".to_owned(), "requests".to_owned(), id.to_string()];
    segments.extend(action.map(str::to_owned));
    Ok(segments)
}

impl Api {
    fn from_env(url: &str) -> Result<Self, Failure> {
        let base = Url::parse(url.trim())
            .ok()
            .filter(|url| graph::is_https_or_loopback(url) && !url.cannot_be_a_base())
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "{API_URL_SETTING} must be an https:// URL (http:// on loopback only), not {url:?}"
                ))
            })?;
        let app = std::env::var(APP_ID_SETTING)
            .ok()
            .and_then(|id| AppId::parse(id.trim()))
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "{APP_ID_SETTING} must be the admin API's application (client) id, a GUID"
                ))
            })?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .map_err(|e| Failure::Usage(format!("cannot build the HTTP client: {e}")))?;
        let settings = GraphSettings::from_lookup(|name| std::env::var(name).ok())
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let credential: Arc<dyn TokenCredential> = match &settings {
            Some(
                settings @ GraphSettings {
                    credential:
                        GraphCredential::ClientSecret {
                            tenant_id,
                            client_id,
                            ..
                        },
                    ..
                },
            ) => {
                eprintln!(
                    "b2b-signup: signing in to {base} as application {client_id} \
                     (client secret, tenant {tenant_id})"
                );
                graph::credential(settings, http.clone())
                    .map_err(|e| Failure::Usage(e.to_string()))?
            }
            // A person: whoever `az login` signed in. (A managed identity is the Function
            // App's, not an administrator's.)
            _ => {
                eprintln!("b2b-signup: signing in to {base} as the Azure CLI's account (az login)");
                Arc::new(AzureCliCredential::new())
            }
        };
        Ok(Self {
            base,
            http,
            credential,
            scope: format!("api://{app}/.default"),
        })
    }

    async fn list(&self, filter: &Filter, limit: usize) -> Result<Vec<View>, Failure> {
        let status = status(filter)?;
        let mut rows: Vec<View> = Vec::new();
        let mut continuation: Option<String> = None;
        while rows.len() < limit {
            let mut query = vec![("limit", (limit - rows.len()).min(MAX_PAGE).to_string())];
            query.extend(status.map(|s| ("status", s.as_str().to_owned())));
            query.extend(filter.domain.clone().map(|d| ("domain", d)));
            query.extend(filter.since.clone().map(|s| ("since", s)));
            query.extend(continuation.take().map(|c| ("continuation", c)));
            let page: Page = self
                .call_with(
                    Method::GET,
                    &["api".into(), "requests".into()],
                    &query,
                    None,
                )
                .await?;
            rows.extend(page.items);
            match page.continuation {
                Some(next) => continuation = Some(next),
                None => break,
            }
        }
        rows.truncate(limit);
        Ok(rows)
    }

    async fn decide(
        &self,
        id: &str,
        action: &str,
        reason: Option<String>,
        out: &mut impl Write,
    ) -> Result<(), Failure> {
        let body = reason.map(|reason| serde_json::json!({ "reason": reason }));
        let decided: Decided = self
            .call(Method::POST, &path(id, Some(action))?, body)
            .await?;
        let what = match (action, decided.changed) {
            ("retry", _) => "retried",
            (_, true) => "decided",
            (_, false) => "already decided",
        };
        let by = decided.decided_by.unwrap_or_else(|| "?".to_owned());
        writeln!(
            out,
            "{id}: {what}, now {} (by {})",
            visible::visible(&decided.status, visible::Breaks::Escape),
            visible::visible(&by, visible::Breaks::Escape)
        )
        .map_err(io)
    }

    /// `requests retry`: one id, or every `Failed` request the filters select (listed
    /// through the API, then retried one by one, as without it).
    async fn retry(
        &self,
        id: Option<String>,
        filter: &Filter,
        out: &mut impl Write,
    ) -> Result<(), Failure> {
        let filtered = filter.status.is_some() || filter.domain.is_some() || filter.since.is_some();
        match id {
            Some(id) if !filtered => return self.decide(&id, "retry", None, out).await,
            Some(_) => {
                return Err(Failure::Usage(
                    "retry takes an id or filters (--status Failed --since 1d), not both".into(),
                ));
            }
            None if status(filter)? == Some(RequestStatus::Failed) => {}
            None => {
                return Err(Failure::Usage(
                    "retry takes an id, or --status Failed (with --since, --domain) for a batch"
                        .into(),
                ));
            }
        }
        let rows = self.list(filter, super::MAX_SCAN).await?;
        if rows.is_empty() {
            return writeln!(out, "no Failed requests match").map_err(io);
        }
        let mut refused = Vec::new();
        for row in rows {
            match self.decide(&row.request_id, "retry", None, out).await {
                Ok(()) => {}
                Err(Failure::Refused(why)) => refused.push(format!("{}: {why}", row.request_id)),
                Err(e) => return Err(e),
            }
        }
        super::not_retried(refused)
    }

    /// `POST api/subjects/{action}` for `email`: the address goes in the body, never in a
    /// URL (URLs reach logs).
    async fn subject<T: serde::de::DeserializeOwned>(
        &self,
        action: &str,
        email: String,
    ) -> Result<T, Failure> {
        let path = ["api".to_owned(), "subjects".to_owned(), action.to_owned()];
        let body = serde_json::json!({ "email": email });
        self.call(Method::POST, &path, Some(body)).await
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        segments: &[String],
        body: Option<serde_json::Value>,
    ) -> Result<T, Failure> {
        self.call_with(method, segments, &[], body).await
    }

    async fn call_with<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        segments: &[String],
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<T, Failure> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Failure::Usage(format!("{API_URL_SETTING} cannot be a base URL")))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let token = self.token().await?;
        let mut request = self.http.request(method, url).bearer_auth(token.secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            Failure::Unavailable(format!(
                "the admin API at {} did not answer: {}",
                self.base,
                graph::error_chain(&e)
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return response.json::<T>().await.map_err(|e| {
                Failure::Unavailable(format!("the admin API's answer could not be read: {e}"))
            });
        }
        // The body is the API's problem+json; anything else (a proxy's page) shows as the status.
        let problem = response.json::<ApiProblem>().await.unwrap_or_default();
        Err(failure(status, &problem))
    }

    async fn token(&self) -> Result<azure_core::auth::Secret, Failure> {
        match tokio::time::timeout(TIMEOUT, self.credential.get_token(&[&self.scope])).await {
            Ok(Ok(token)) => Ok(token.token),
            Ok(Err(e)) if unreachable(&e) => Err(Failure::Unavailable(format!(
                "no token for {}: the token endpoint did not answer: {}",
                self.scope,
                graph::error_chain(&e)
            ))),
            Ok(Err(e)) => Err(Failure::Usage(format!(
                "no token for {}: {} (sign in with `az login`, or set AZURE_TENANT_ID, \
                 AZURE_CLIENT_ID and AZURE_CLIENT_SECRET)",
                self.scope,
                graph::error_chain(&e)
            ))),
            Err(_) => Err(Failure::Unavailable(format!(
                "no token for {} within {TIMEOUT:?}",
                self.scope
            ))),
        }
    }
}

/// Whether a token request failed for want of an answer (a connection refused, a timeout),
/// not for what was asked: worth trying later (exit 3) rather than a setting to fix (2).
fn unreachable(error: &azure_core::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(e) = cause.downcast_ref::<reqwest::Error>() {
            if e.is_connect() || e.is_timeout() {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

/// The README's exit codes for an API error: 404 and 409 refused (1), the caller's or the
/// configuration's fault usage (2), the service's unavailable (3).
fn failure(status: StatusCode, problem: &ApiProblem) -> Failure {
    let text = [&problem.title, &problem.detail]
        .into_iter()
        .flatten()
        .map(|t| visible::visible(t, visible::Breaks::Escape))
        .collect::<Vec<_>>()
        .join(": ");
    let code = problem
        .code
        .as_deref()
        .map(|c| format!(" [{}]", visible::visible(c, visible::Breaks::Escape)))
        .unwrap_or_default();
    let message = format!("the admin API answered {status}: {text}{code}");
    match status.as_u16() {
        404 | 409 => Failure::Refused(message),
        500.. => Failure::Unavailable(message),
        _ => Failure::Usage(message),
    }
}
