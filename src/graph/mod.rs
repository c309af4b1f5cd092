//! Microsoft Graph: the calls an invitation (and its end) needs, a shared token, and errors sorted by
//! how the caller reacts (retry later, or record a permanent failure).
//!
//! - `POST /invitations`: <https://learn.microsoft.com/graph/api/invitation-post>
//! - `POST /groups/{id}/members/$ref`: <https://learn.microsoft.com/graph/api/group-post-members>
//! - `DELETE /groups/{id}/members/{userId}/$ref`: <https://learn.microsoft.com/graph/api/group-delete-members>
//! - throttling: <https://learn.microsoft.com/graph/throttling>
//!
//! [`GraphClient`] is cheap to clone; build one per process and share it.

mod client;
mod settings;
mod token;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use client::GraphClient;
pub use settings::{GraphConfigError, GraphCredential, GraphSettings};
pub(crate) use settings::{authority_host, is_https_or_loopback};
pub(crate) use token::credential;
pub use token::{TokenCache, TokenError};

use crate::{
    domain::{DisplayName, EmailAddress, UserId},
    policy::InvitationSettings,
};

/// One invitation to send: who, and what the policy rule says about the invitation.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub email: EmailAddress,
    pub display_name: DisplayName,
    /// Where the guest lands after redeeming (`inviteRedirectUrl`, required by Graph).
    pub redirect_url: String,
    /// Whether Graph e-mails the invitation; without it the guest redeems on first sign-in.
    pub send_invitation_message: bool,
    /// `invitedUserMessageInfo.customizedMessageBody`, sent only when set.
    pub message: Option<String>,
    /// `invitedUserMessageInfo.messageLanguage` (e.g. `de-DE`), sent only when set.
    pub message_language: Option<String>,
}

impl Invitation {
    /// The invitation for `email` as the matching policy rule describes it.
    pub fn new(
        email: EmailAddress,
        display_name: DisplayName,
        settings: &InvitationSettings,
    ) -> Self {
        Self {
            email,
            display_name,
            redirect_url: settings.redirect_url.clone(),
            send_invitation_message: settings.send_invitation_message,
            message: settings.message.clone(),
            message_language: settings.message_language.clone(),
        }
    }
}

/// A sent invitation. Graph's `inviteRedeemUrl` is deliberately not kept: it lets whoever
/// holds it redeem the invitation, so it never reaches a row, a log line or the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invited {
    /// The guest user's object id (`invitedUser.id`), for group membership.
    pub user_id: UserId,
    /// Graph's `request-id` header, for the audit row and Microsoft support.
    pub request_id: Option<String>,
}

/// The outcome of adding a member; both are success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Added,
    /// The user was in the group already (a repeated delivery, or added by hand).
    AlreadyMember,
}

/// The outcome of removing a member; both are success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// The user was not in the group (a repeated pass, removed by hand, or gone).
    NotMember,
}

/// Whether an invited guest has redeemed: the user's `externalUserState`
/// (<https://learn.microsoft.com/graph/api/resources/user>, values `PendingAcceptance` and
/// `Accepted`; `null` for users who were not invited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestState {
    /// Invited, not redeemed yet: Microsoft's invitation may be sent again.
    PendingAcceptance,
    /// Redeemed.
    Accepted,
    /// Anything else (`null`, or a value Graph adds later): nothing is sent.
    Other,
}

/// Why a Graph call did not succeed, grouped by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// 429 or 503 with a `Retry-After` longer than the inline limit (or still throttled
    /// after the inline retries): fail the invocation; the host retries later.
    #[error("Graph is throttling ({status}); retry after {retry_after:?}")]
    Throttled {
        /// 429, or 503 (which may also come from a gateway after the call took effect).
        status: u16,
        retry_after: Duration,
        request_id: Option<String>,
    },
    /// Other 5xx, a timeout or a connection failure (`status` is `None` when no answer
    /// arrived): fail the invocation; the host retries.
    #[error("Graph is unavailable (status {status:?})")]
    Transient {
        status: Option<u16>,
        request_id: Option<String>,
    },
    /// A 4xx other than 429: retrying the same call will not help. Record `code` and
    /// `request_id` on the row. `message` is Graph's text (truncated) and may quote the
    /// request: store it, don't log it.
    #[error("Graph refused the call with {status} {code}")]
    Permanent {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// A success status with a body that is not what the API documents. Retrying repeats a
    /// call that is safe to repeat (a re-invitation is harmless), so it counts as transient.
    #[error("Graph answered {status} with an unexpected body")]
    UnexpectedResponse {
        status: u16,
        request_id: Option<String>,
    },
    /// No access token: Entra ID unreachable or refusing; worth retrying.
    #[error("no access token for Graph")]
    Token(#[from] TokenError),
}

/// What a failed call means for the caller: the one classification of [`GraphError`]
/// ([`GraphError::kind`]); callers map it onto their own outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Worth retrying later, and the call may have taken effect at Graph: a 5xx (a 503 may
    /// come from a gateway after Graph acted), a timeout, a dropped connection, an
    /// unexpected success body.
    Uncertain,
    /// Worth retrying later, and known not to have taken effect: Graph throttled the call
    /// (429, refused before its logic ran) or no token could be had (nothing was sent).
    NotApplied,
    /// Graph refused for good (a 4xx other than 429): retrying the same call will not help.
    Refused,
}

impl GraphError {
    /// How the caller reacts; see [`FailureKind`].
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Permanent { .. } => FailureKind::Refused,
            Self::Throttled { status: 429, .. } | Self::Token(_) => FailureKind::NotApplied,
            Self::Throttled { .. } | Self::Transient { .. } | Self::UnexpectedResponse { .. } => {
                FailureKind::Uncertain
            }
        }
    }

    /// Whether the caller should fail the invocation so the host retries it later.
    pub fn is_transient(&self) -> bool {
        self.kind() != FailureKind::Refused
    }

    /// Graph's error `code` when it refused the call (`Authorization_RequestDenied`, …),
    /// for the row and the log.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Permanent { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Graph's `request-id` for the failed call, when Graph answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Throttled { request_id, .. }
            | Self::Transient { request_id, .. }
            | Self::Permanent { request_id, .. }
            | Self::UnexpectedResponse { request_id, .. } => request_id.as_deref(),
            Self::Token(_) => None,
        }
    }
}

/// `error: cause: cause …` for one log field (reqwest and azure_core keep the useful part in
/// the sources).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
