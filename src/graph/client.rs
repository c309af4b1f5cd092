//! [`GraphClient`]: typed calls over one shared `reqwest::Client`. Throttling, timeouts and
//! a rejected token are handled once, in [`GraphClient::post`].

use std::{sync::Arc, time::Duration};

use azure_core::auth::TokenCredential;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use crate::domain::{EmailAddress, GroupId, UserId};

use super::{
    GraphConfigError, GraphError, GraphSettings, GuestState, Invitation, Invited, Membership,
    Removal, TokenCache, error_chain, token,
};

/// Inline waits for one call, at most; a call still throttled after them fails.
const MAX_THROTTLE_RETRIES: u32 = 3;
/// The wait assumed when a 429 or 503 carries no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Longer `Retry-After` values are treated as this (and so never waited out inline).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Graph's message when a member is added twice; an existing membership is success.
/// <https://learn.microsoft.com/graph/api/group-post-members#response>
const ALREADY_MEMBER: &str = "one or more added object references already exist";
/// Enough of Graph's error message for a table row.
const MAX_MESSAGE_CHARS: usize = 300;

/// Microsoft Graph for invitations and group membership. Cheap to clone; build one per
/// process (building makes no network call) and share it.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// One connection pool, with connect and overall timeouts, also used for tokens.
    http: reqwest::Client,
    base_url: Url,
    tokens: TokenCache,
    max_inline_retry: Duration,
}

/// A 2xx answer.
struct Answer {
    status: u16,
    request_id: Option<String>,
    body: Bytes,
}

impl GraphClient {
    /// A client with the credential the settings name.
    pub fn new(settings: &GraphSettings) -> Result<Self, GraphConfigError> {
        let http = http_client(settings)?;
        let credential = token::credential(settings, http.clone())?;
        Ok(Self::build(settings, http, credential))
    }

    /// A client with any other credential (a developer credential, or a fake in tests).
    pub fn with_credential(
        settings: &GraphSettings,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, GraphConfigError> {
        Ok(Self::build(settings, http_client(settings)?, credential))
    }

    fn build(
        settings: &GraphSettings,
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
    ) -> Self {
        let scope = TokenCache::scope_for(&settings.base_url);
        Self {
            inner: Arc::new(Inner {
                http,
                base_url: settings.base_url.clone(),
                tokens: TokenCache::new(credential, scope, settings.timeout),
                max_inline_retry: settings.max_inline_retry,
            }),
        }
    }

    /// Invites a guest: `POST /invitations`
    /// (<https://learn.microsoft.com/graph/api/invitation-post>). Inviting an existing guest
    /// again is harmless, so a retried delivery may call this twice.
    #[tracing::instrument(name = "graph_invite", skip_all, fields(domain = %invitation.email.domain()))]
    pub async fn invite(&self, invitation: &Invitation) -> Result<Invited, GraphError> {
        let url = self.url(&["invitations"]);
        let answer = self
            .post("invite", url, &InvitationBody::from(invitation))
            .await?;
        // Only the id is read: `inviteRedeemUrl` is never parsed, kept or logged.
        let user_id = serde_json::from_slice::<InvitationResponse>(&answer.body)
            .ok()
            .and_then(|response| UserId::parse(&response.invited_user.id));
        match user_id {
            Some(user_id) => Ok(Invited {
                user_id,
                request_id: answer.request_id,
            }),
            None => Err(GraphError::UnexpectedResponse {
                status: answer.status,
                request_id: answer.request_id,
            }),
        }
    }

    /// Adds a user to a group: `POST /groups/{id}/members/$ref`
    /// (<https://learn.microsoft.com/graph/api/group-post-members>). Graph answers 400 when
    /// the user is a member already; that is [`Membership::AlreadyMember`], a success.
    #[tracing::instrument(name = "graph_add_member", skip_all, fields(group_id = %group_id))]
    pub async fn add_member(
        &self,
        group_id: &GroupId,
        user_id: &UserId,
    ) -> Result<Membership, GraphError> {
        let url = self.url(&["groups", group_id.as_str(), "members", "$ref"]);
        let body = MemberReference {
            odata_id: self.url(&["directoryObjects", user_id.as_str()]).into(),
        };
        match self.post("add_member", url, &body).await {
            Ok(_) => Ok(Membership::Added),
            Err(GraphError::Permanent {
                status: 400,
                message,
                ..
            }) if message.to_lowercase().contains(ALREADY_MEMBER) => {
                tracing::info!("already a member");
                Ok(Membership::AlreadyMember)
            }
            Err(error) => Err(error),
        }
    }

    /// Removes a user from a group: `DELETE /groups/{id}/members/{userId}/$ref`
    /// (<https://learn.microsoft.com/graph/api/group-delete-members>, 204 No Content). Graph
    /// answers 404 when the user is not a member (removed already, by a repeated pass or by
    /// hand, or the group or the user is gone): that is [`Removal::NotMember`], a success.
    #[tracing::instrument(name = "graph_remove_member", skip_all, fields(group_id = %group_id))]
    pub async fn remove_member(
        &self,
        group_id: &GroupId,
        user_id: &UserId,
    ) -> Result<Removal, GraphError> {
        let url = self.url(&[
            "groups",
            group_id.as_str(),
            "members",
            user_id.as_str(),
            "$ref",
        ]);
        match self
            .call("remove_member", reqwest::Method::DELETE, url, None::<&()>)
            .await
        {
            Ok(_) => Ok(Removal::Removed),
            Err(GraphError::Permanent { status: 404, .. }) => {
                tracing::info!("not a member (already removed)");
                Ok(Removal::NotMember)
            }
            Err(error) => Err(error),
        }
    }

    /// Looks for an existing user with this e-mail address, the way Microsoft documents
    /// for "determine if a user was already invited"
    /// (<https://learn.microsoft.com/entra/external-id/customize-invitation-api>):
    /// `GET /users?$filter=userPrincipalName eq '…' or mail eq '…' or proxyAddresses/any(…)
    /// or otherMails/any(…)&$select=id`. Needs `User.Read.All`; without it Graph answers 403
    /// (a [`GraphError::Permanent`]).
    #[tracing::instrument(name = "graph_find_user", skip_all, fields(domain = %email.domain()))]
    pub async fn find_user(&self, email: &EmailAddress) -> Result<Option<UserId>, GraphError> {
        let mut url = self.url(&["users"]);
        url.query_pairs_mut()
            .append_pair("$filter", &user_filter(email))
            .append_pair("$select", "id")
            .append_pair("$top", "1");
        let answer = self
            .call("find_user", reqwest::Method::GET, url, None::<&()>)
            .await?;
        // A user whose id is not an object id would be a Graph bug: not a guest to rely on.
        let found = serde_json::from_slice::<UserList>(&answer.body)
            .ok()
            .and_then(|list| match list.value.into_iter().next() {
                None => Some(None),
                Some(user) => UserId::parse(&user.id).map(Some),
            });
        match found {
            Some(found) => Ok(found),
            None => Err(GraphError::UnexpectedResponse {
                status: answer.status,
                request_id: answer.request_id,
            }),
        }
    }

    /// Whether an invited guest has redeemed: `GET /users/{id}?$select=externalUserState`
    /// (<https://learn.microsoft.com/graph/api/user-get>; the property:
    /// <https://learn.microsoft.com/graph/api/resources/user>). Needs `User.Read.All`, which
    /// [`Self::find_user`] needs too; without it Graph answers 403 ([`GraphError::Permanent`]).
    #[tracing::instrument(name = "graph_guest_state", skip_all)]
    pub async fn guest_state(&self, user_id: &UserId) -> Result<GuestState, GraphError> {
        let mut url = self.url(&["users", user_id.as_str()]);
        url.query_pairs_mut()
            .append_pair("$select", "externalUserState");
        let answer = self
            .call("guest_state", reqwest::Method::GET, url, None::<&()>)
            .await?;
        // An object (a struct would also take a JSON array); the property may be null.
        type User = serde_json::Map<String, serde_json::Value>;
        match serde_json::from_slice::<User>(&answer.body) {
            Ok(user) => Ok(
                match user.get("externalUserState").and_then(|v| v.as_str()) {
                    Some("PendingAcceptance") => GuestState::PendingAcceptance,
                    Some("Accepted") => GuestState::Accepted,
                    _ => GuestState::Other,
                },
            ),
            Err(_) => Err(GraphError::UnexpectedResponse {
                status: answer.status,
                request_id: answer.request_id,
            }),
        }
    }

    /// `{base}/{segments…}`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base_url.clone();
        // Cannot fail: the settings only accept http(s) URLs, which have a path.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// POSTs `body` as JSON with a bearer token and sorts the answer:
    /// - 2xx → the body;
    /// - 401 → the token is forgotten and the call made once more with a new one;
    /// - 429/503 → a short `Retry-After` is waited out here (at most
    ///   [`MAX_THROTTLE_RETRIES`] times), a long one is [`GraphError::Throttled`]
    ///   (<https://learn.microsoft.com/graph/throttling#best-practices-to-handle-throttling>);
    /// - other 5xx, timeouts, connection errors → [`GraphError::Transient`] (a GET, which
    ///   is safe to repeat, is first tried once more at once after a 5xx answer; not after a
    ///   timeout, which has spent the call's time budget);
    /// - other 4xx → [`GraphError::Permanent`] with Graph's error code.
    async fn post(
        &self,
        operation: &'static str,
        url: Url,
        body: &impl Serialize,
    ) -> Result<Answer, GraphError> {
        self.call(operation, reqwest::Method::POST, url, Some(body))
            .await
    }

    /// [`Self::post`]'s rules for any method; `body`, when given, is sent as JSON.
    async fn call(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        url: Url,
        body: Option<&impl Serialize>,
    ) -> Result<Answer, GraphError> {
        let mut throttle_retries = 0;
        let mut token_renewed = false;
        let mut read_retried = false;
        loop {
            let token = self.inner.tokens.token().await?;
            let started = Instant::now();
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.secret());
            if let Some(body) = body {
                request = request.json(body);
            }
            let sent = request.send().await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    tracing::warn!(
                        operation,
                        elapsed_ms = started.elapsed().as_millis(),
                        timeout = error.is_timeout(),
                        error = %error_chain(&error),
                        "Graph call failed without an answer"
                    );
                    return Err(GraphError::Transient {
                        status: None,
                        request_id: None,
                    });
                }
            };
            let status = response.status().as_u16();
            let request_id = header(&response, "request-id");
            let retry_after = header(&response, "retry-after").and_then(|v| parse_retry_after(&v));
            let body = match response.bytes().await {
                Ok(body) => body,
                Err(error) => {
                    tracing::warn!(
                        operation,
                        status,
                        graph_request_id = request_id,
                        timeout = error.is_timeout(),
                        error = %error_chain(&error),
                        "Graph answer could not be read"
                    );
                    return Err(GraphError::Transient {
                        status: Some(status),
                        request_id,
                    });
                }
            };
            // `graph_request_id`: `request_id` names this app's request (the span's field).
            tracing::info!(
                operation,
                status,
                graph_request_id = request_id,
                elapsed_ms = started.elapsed().as_millis(),
                "Graph answered"
            );

            match status {
                200..=299 => {
                    return Ok(Answer {
                        status,
                        request_id,
                        body,
                    });
                }
                401 if !token_renewed => {
                    token_renewed = true;
                    self.inner.tokens.invalidate(&token).await;
                }
                429 | 503 => {
                    let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                    if wait > self.inner.max_inline_retry
                        || throttle_retries == MAX_THROTTLE_RETRIES
                    {
                        return Err(GraphError::Throttled {
                            status,
                            retry_after: wait,
                            request_id,
                        });
                    }
                    throttle_retries += 1;
                    tracing::info!(
                        operation,
                        wait_ms = wait.as_millis(),
                        "Graph throttled; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                500..=599 if method == reqwest::Method::GET && !read_retried => {
                    read_retried = true;
                }
                500..=599 => {
                    return Err(GraphError::Transient {
                        status: Some(status),
                        request_id,
                    });
                }
                _ => return Err(permanent(status, request_id, &body)),
            }
        }
    }
}

/// The OData filter for [`GraphClient::find_user`]. A local part may hold `'` (the public
/// API's address rules allow it), which OData strings escape by doubling.
fn user_filter(email: &EmailAddress) -> String {
    let e = email.as_str().replace('\'', "''");
    format!(
        "userPrincipalName eq '{e}' or mail eq '{e}' or proxyAddresses/any(x:x eq 'SMTP:{e}') or otherMails/any(x:x eq '{e}')"
    )
}

fn http_client(settings: &GraphSettings) -> Result<reqwest::Client, GraphConfigError> {
    reqwest::Client::builder()
        .connect_timeout(settings.timeout.min(MAX_CONNECT_TIMEOUT))
        .timeout(settings.timeout)
        // Graph does not redirect these calls; never carry a bearer token elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("b2b-signup/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(GraphConfigError::HttpClient)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `Retry-After` in seconds; Graph may send fractions (`1.5`). An HTTP date (which Graph
/// does not send) or garbage counts as absent.
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds = value.trim().parse::<f64>().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        seconds.min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

/// A 4xx answer as [`GraphError::Permanent`]. Graph's error body:
/// `{"error":{"code","message","innerError":{"request-id","date"}}}`
/// (<https://learn.microsoft.com/graph/errors#error-resource-type>).
fn permanent(status: u16, request_id: Option<String>, body: &[u8]) -> GraphError {
    let error = serde_json::from_slice::<ErrorBody>(body)
        .map(|body| body.error)
        .unwrap_or_default();
    tracing::warn!(status, code = %error.code, graph_request_id = request_id, "Graph refused the call");
    let mut message: String = error.message.chars().take(MAX_MESSAGE_CHARS).collect();
    if message.len() < error.message.len() {
        message.push('…');
    }
    GraphError::Permanent {
        status,
        code: if error.code.is_empty() {
            "Unknown".to_owned()
        } else {
            error.code
        },
        message,
        request_id: request_id.or(error.inner_error.request_id),
    }
}

/// The invitation resource, with only the properties the app sets.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InvitationBody<'a> {
    invited_user_email_address: &'a str,
    invited_user_display_name: &'a str,
    invite_redirect_url: &'a str,
    send_invitation_message: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_user_message_info: Option<MessageInfo<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    customized_message_body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_language: Option<&'a str>,
}

impl<'a> From<&'a Invitation> for InvitationBody<'a> {
    fn from(invitation: &'a Invitation) -> Self {
        let message = invitation.message.as_deref();
        let language = invitation.message_language.as_deref();
        Self {
            invited_user_email_address: invitation.email.as_str(),
            invited_user_display_name: invitation.display_name.as_str(),
            invite_redirect_url: &invitation.redirect_url,
            send_invitation_message: invitation.send_invitation_message,
            invited_user_message_info: (message.is_some() || language.is_some()).then_some(
                MessageInfo {
                    customized_message_body: message,
                    message_language: language,
                },
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvitationResponse {
    invited_user: InvitedUser,
}

#[derive(Deserialize)]
struct InvitedUser {
    id: String,
}

/// `GET /users` answers `{"value": [{"id": …}, …]}`.
#[derive(Deserialize)]
struct UserList {
    value: Vec<InvitedUser>,
}

#[derive(Serialize)]
struct MemberReference {
    #[serde(rename = "@odata.id")]
    odata_id: String,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    inner_error: InnerError,
}

#[derive(Deserialize, Default)]
struct InnerError {
    #[serde(rename = "request-id")]
    request_id: Option<String>,
}
