//! Mail to partners and approvers through Azure Communication Services Email, behind the
//! small [`Mailer`] trait ("send this message to this address"), so any part of the product
//! can send a [`Mail`] that [`templates`] wrote.
//!
//! - `POST {endpoint}/emails:send?api-version=2023-03-31`, the generally available version:
//!   <https://learn.microsoft.com/rest/api/communication/email/send>
//! - authentication: the app's Entra ID token (scope
//!   `https://communication.azure.com/.default`; the managed identity in Azure), or
//!   HMAC-SHA256 with the resource's access key ([`sign`]):
//!   <https://learn.microsoft.com/azure/communication-services/tutorials/hmac-header-tutorial>
//! - idempotency: `Repeatability-Request-Id` / `Repeatability-First-Sent`, which the Email
//!   Send API honours for 5 minutes, and `Operation-Id`, both derived from what is owed, so
//!   a retried send is not a second mail:
//!   <https://learn.microsoft.com/rest/api/communication/repeatable-requests>
//!
//! A mail that cannot be sent never blocks or loses a sign-up: callers record what is owed
//! on the row first (`MailOwed`) and `Reconcile` sends it later ([`crate::requests`]).

mod acs;
mod settings;
pub mod sign;
pub mod templates;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use acs::AcsMailer;
pub use settings::{
    AccessKey, ENDPOINT_SETTING, MailConfigError, MailOptions, MailSettings, ORG_NAME_SETTING,
    verify_hours,
};

use crate::domain::EmailAddress;

/// The API version of every call (the generally available one).
pub const API_VERSION: &str = "2023-03-31";

/// One message to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: EmailAddress,
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part (every inserted value escaped).
    pub html: String,
    pub key: MailKey,
}

impl Mail {
    /// `message` to `to`, sent under `key`.
    pub fn of(to: EmailAddress, message: templates::Message, key: MailKey) -> Self {
        Self {
            to,
            subject: message.subject,
            text: message.text,
            html: message.html,
            key,
        }
    }
}

/// What makes two sends of one message one mail at Communication Services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailKey {
    /// `Operation-Id` and `Repeatability-Request-Id`: a UUID derived from what is owed.
    pub id: uuid::Uuid,
    /// `Repeatability-First-Sent`: when the mail was first owed, while that is inside the
    /// service's 5-minute window; otherwise the first try of this send.
    pub first_sent: OffsetDateTime,
}

impl MailKey {
    /// The key of the mail that `purpose` names (a request id, a kind, the time it became
    /// owed): the same text always gives the same id, so retries repeat one request.
    pub fn derive(purpose: &str, owed_since: OffsetDateTime) -> Self {
        let digest = Sha256::digest(purpose.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self {
            id: uuid::Builder::from_random_bytes(bytes).into_uuid(),
            first_sent: owed_since,
        }
    }
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth trying again later (timeouts, 429, 5xx, no token): the mail stays owed.
    #[error("mail service unavailable: {0}")]
    Transient(String),
    /// The service refused the message itself (4xx): trying again gives the same answer.
    #[error("mail refused by the service: {0}")]
    Refused(String),
}

/// Sends one [`Mail`]. Implementations retry briefly themselves and use [`Mail::key`] so
/// that a repeated send is one mail.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn keys_are_stable_for_one_purpose_and_differ_between_purposes() {
        let at = datetime!(2026-11-29 08:30:00 UTC);
        let a = MailKey::derive("01J/verify/2026-11-29T08:30:00Z", at);
        assert_eq!(a, MailKey::derive("01J/verify/2026-11-29T08:30:00Z", at));
        assert_ne!(
            a.id,
            MailKey::derive("01J/approved/2026-11-29T08:30:00Z", at).id
        );
        assert_eq!(
            a.id.get_version_num(),
            4,
            "a well-formed UUID, as the API asks"
        );
    }
}
