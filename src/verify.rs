//! Proof of address before any guest exists (policy `verifyEmail`).
//!
//! A sign-up is stored as `PendingVerification` with the digest of a single-use token
//! ([`Token`]); the token itself only travels in the mail, inside the link's fragment
//! (`{SIGNUP_SITE_URL}verify.html#t=<token>`), so it never reaches a server log. The page
//! asks for one click, which posts it to `POST /api/verify`; then the request goes on as
//! its rule says (`Accepted` and the queue, or `PendingApproval` and the approvers'
//! notice), in one ETag-guarded write with its `verified` history entry.
//!
//! The token is `<request id>.<secret>.<domain>`: the id and domain locate the row with
//! one point read (no scan, no lookup entity: the digest lives in the row itself, written
//! by the same transaction as the request), the secret is 256 random bits from the
//! operating system, stored only as its SHA-256. A new link (a repeat sign-up, `Reconcile`
//! after a mail outage) replaces the digest, so only the newest link works.
//!
//! Answers: a token that does not parse, names no row, or does not match the row's digest
//! is `400 invalid_token`; a matching token past `VerifyExpiresAt` is
//! `410 verification_expired`; the matching token of a request verified earlier is
//! `200` with `changed: false` (a link opened twice says it is already done).

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::{
    domain::{
        Actor, EmailDomain, HistoryAction, MailKind, RequestId, RequestStatus, SignupRequest,
        Verification,
    },
    policy::{Action, Policy},
    requests::Requests,
    storage::{InviteMessage, StoreError, Versioned},
};

/// A repeat sign-up while `PendingVerification` mails a new link at most this often.
pub const RESEND_AFTER: Duration = Duration::minutes(10);
/// How long a link works unless `SIGNUP_VERIFY_HOURS` says otherwise.
pub const DEFAULT_VALID_HOURS: u32 = 24;
/// Random bytes in a token's secret (256 bits; the contract asks for at least 128).
const SECRET_BYTES: usize = 32;
/// Lost ETag races tolerated before answering "busy".
const MAX_RACES: usize = 4;

/// A verification token: which request, and the secret that proves the mail was read.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    id: RequestId,
    domain: EmailDomain,
    secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, ***)", self.id)
    }
}

impl Token {
    /// A new token for `request`, from the operating system's random source.
    pub fn issue(request: &SignupRequest) -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::getrandom(&mut bytes)?;
        Ok(Self {
            id: request.id,
            domain: request.email.domain().clone(),
            secret: URL_SAFE_NO_PAD.encode(bytes),
        })
    }

    /// Reads a token as the page posts it; `None` for anything that is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().splitn(3, '.');
        let id = RequestId::parse(parts.next()?)?;
        let secret = parts.next()?;
        let domain = EmailDomain::parse(parts.next()?).ok()?;
        let decoded = URL_SAFE_NO_PAD.decode(secret).ok()?;
        (decoded.len() == SECRET_BYTES).then(|| Self {
            id,
            domain,
            secret: secret.to_owned(),
        })
    }

    /// The text the link carries.
    pub fn text(&self) -> String {
        format!("{}.{}.{}", self.id, self.secret, self.domain)
    }

    /// What the row stores: SHA-256 of the secret, lower-case hex.
    pub fn digest(&self) -> String {
        Sha256::digest(self.secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn request_id(&self) -> RequestId {
        self.id
    }
}

/// Gives `request` a new token valid `valid_for` from `now` (replacing any earlier one)
/// and records the verification mail as owed.
pub fn issue(
    request: &mut SignupRequest,
    now: OffsetDateTime,
    valid_for: Duration,
) -> Result<Token, getrandom::Error> {
    let token = Token::issue(request)?;
    request.verification = Some(Verification {
        token_hash: token.digest(),
        expires_at: now + valid_for,
        verified_at: None,
        mailed_at: Some(now),
    });
    request.mail_owed = Some(crate::domain::OwedMail {
        kind: MailKind::Verify,
        since: now,
    });
    Ok(token)
}

/// What `POST /api/verify` did.
#[derive(Debug, Clone)]
pub struct Verified {
    pub request: SignupRequest,
    /// `false`: the request had been verified earlier with this link.
    pub changed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a valid verification token")]
    InvalidToken,
    #[error("the verification link expired")]
    Expired,
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// Verifies addresses: shared by every `POST /api/verify`.
pub struct Verifier {
    pub requests: Arc<Requests>,
    pub policy: Arc<Policy>,
}

impl Verifier {
    pub async fn verify(&self, text: &str) -> Result<Verified, VerifyError> {
        let token = Token::parse(text).ok_or(VerifyError::InvalidToken)?;
        let digest = token.digest();
        for _ in 0..MAX_RACES {
            let row = self
                .requests
                .store
                .get(&token.domain, &token.id)
                .await?
                .ok_or(VerifyError::InvalidToken)?;
            let Some(verification) = row.value.verification.clone() else {
                return Err(VerifyError::InvalidToken);
            };
            // Both sides are digests of secrets: comparing them leaks nothing usable.
            if verification.token_hash != digest {
                return Err(VerifyError::InvalidToken);
            }
            if row.value.status != RequestStatus::PendingVerification {
                return match verification.verified_at {
                    Some(_) => Ok(Verified {
                        request: row.value,
                        changed: false,
                    }),
                    None => Err(VerifyError::InvalidToken),
                };
            }
            let now = self.requests.clock.now();
            if now >= verification.expires_at {
                return Err(VerifyError::Expired);
            }
            match self.advance(row, now).await {
                Ok(verified) => return Ok(verified),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// `PendingVerification` → what the rule says now, recorded as `verified`.
    async fn advance(
        &self,
        row: Versioned<SignupRequest>,
        now: OffsetDateTime,
    ) -> Result<Verified, StoreError> {
        let mut request = row.value;
        let decision = self.policy.decide(request.email.domain());
        let allowed = decision.access(Some(&request.access)).is_ok();
        let (to, reason) = match decision.action() {
            Action::Invite if allowed => (RequestStatus::Accepted, None),
            Action::Approve if allowed => (RequestStatus::PendingApproval, None),
            _ => (
                RequestStatus::Failed,
                Some("the policy no longer allows this sign-up".to_owned()),
            ),
        };
        request.transition(
            to,
            Actor::Partner,
            HistoryAction::Verified,
            reason.clone(),
            now,
        );
        request.reason = reason;
        if let Some(v) = request.verification.as_mut() {
            v.verified_at = Some(now);
        }
        request.mail_owed = None;
        if to == RequestStatus::PendingApproval {
            request.decide_by = Some(now + decision.approval_timeout());
            self.requests.owe(&mut request, MailKind::Pending, now);
        }
        let etag = self.requests.store.replace(&request, &row.etag).await?;
        tracing::info!(
            request_id = %request.id,
            domain = %request.email.domain(),
            status = %request.status,
            "address verified"
        );
        let stored = Versioned {
            value: request.clone(),
            etag,
        };
        match to {
            RequestStatus::Accepted => {
                // As intake: the row stays `Accepted` and Reconcile re-sends a lost message.
                if let Err(e) = self
                    .requests
                    .queue
                    .send(&InviteMessage::new(&request))
                    .await
                {
                    tracing::warn!(request_id = %request.id, error = %e, "verified, not yet enqueued");
                }
            }
            RequestStatus::PendingApproval => self.requests.after_pending(stored),
            _ => {}
        }
        Ok(Verified {
            request,
            changed: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SignupRequest {
        crate::domain::test_request("ada@contoso.com")
    }

    #[test]
    fn tokens_read_back_and_only_their_digest_is_stored() {
        let mut request = request();
        let now = OffsetDateTime::now_utc();
        let token = issue(&mut request, now, Duration::hours(24)).unwrap();
        let text = token.text();
        assert_eq!(Token::parse(&text), Some(token.clone()));
        let stored = request.verification.clone().unwrap();
        assert_eq!(stored.token_hash, token.digest());
        assert!(!stored.token_hash.contains(&token.secret));
        assert_eq!(stored.expires_at, now + Duration::hours(24));
        assert_eq!(request.mail_owed.unwrap().kind, MailKind::Verify);
        // 256 bits of randomness: two tokens never repeat.
        assert_ne!(Token::issue(&request).unwrap().secret, token.secret);
        assert_eq!(token.secret.len(), 43);
    }

    #[test]
    fn anything_else_is_not_a_token() {
        let good = Token::issue(&request()).unwrap().text();
        let (id, rest) = good.split_once('.').unwrap();
        let (secret, domain) = rest.split_once('.').unwrap();
        for (description, text) in [
            ("empty", String::new()),
            ("no domain", format!("{id}.{secret}")),
            ("bad id", format!("nope.{secret}.{domain}")),
            ("short secret", format!("{id}.{}.{domain}", &secret[..20])),
            ("not base64url", format!("{id}.{}+.{domain}", &secret[..42])),
            ("bad domain", format!("{id}.{secret}.not a domain")),
        ] {
            assert_eq!(Token::parse(&text), None, "{description}");
        }
    }
}
