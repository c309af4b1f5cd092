//! The partner's mail that a request is owed, and the approvers' notice: composed from
//! [`crate::mail::templates`], sent through any [`Mailer`], and recorded on the row.
//!
//! The order makes an outage harmless: the change that makes a mail owed writes
//! `MailOwed` with the change itself (one ETag-guarded write); the mail goes after it; a
//! successful (or permanently refused) send clears `MailOwed` with another ETag-guarded
//! write. A send that fails leaves the row owing, and `Reconcile` tries again; a clear that
//! fails after a send means one more try whose idempotency key is the same
//! ([`crate::mail::MailKey`]). A verification link cannot be rebuilt from the row (only its
//! digest is kept), so a retried verification mail carries a new link.

use std::sync::Arc;

use time::Duration;

use crate::{
    clock::{Clock, rfc3339},
    domain::{EmailAddress, MailKind, OwedMail, RequestStatus, SignupRequest},
    mail::{Mail, MailError, MailKey, Mailer, templates},
    policy::Policy,
    storage::{RequestStore, StoreError, Versioned},
    verify::{self, Token},
};

/// Lost ETag races tolerated when clearing what was sent.
const MAX_RACES: usize = 4;

/// Everything mail needs; one per process, shared.
pub struct Outbox {
    pub mailer: Arc<dyn Mailer>,
    pub store: Arc<dyn RequestStore>,
    pub clock: Clock,
    pub policy: Arc<Policy>,
    /// `SIGNUP_ORG_NAME`: who invites, in every subject.
    pub org_name: String,
    /// The site's absolute address, ending in `/` (`SIGNUP_SITE_URL`).
    pub site: String,
    /// How long a verification link works (`SIGNUP_VERIFY_HOURS`).
    pub verify_for: Duration,
    /// `SIGNUP_APPROVER_EMAILS`: who gets the notice of a request waiting for approval.
    pub approvers: Vec<EmailAddress>,
    /// The support contact and privacy notice that end every partner mail.
    pub branding: crate::branding::Branding,
    /// The console's absolute address, when known ([`crate::notify::console_base`]).
    pub console_base: Option<String>,
}

/// What [`Outbox::deliver`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Nothing was owed (or no longer: another delivery sent it).
    Nothing,
    Sent(MailKind),
    /// The service refused the message for good (a bad address): no longer owed.
    Refused(MailKind),
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error("no randomness for a verification token: {0}")]
    Random(getrandom::Error),
}

impl Outbox {
    /// The verification link for `token` in `request`'s language.
    pub fn verify_link(&self, request: &SignupRequest, token: &Token) -> String {
        format!(
            "{}{}verify.html#t={}",
            self.site,
            request.language.folder(),
            token.text()
        )
    }

    /// Sends what `row` owes, then clears it. `token` is the verification link's token
    /// when the caller just issued it; without it a new one replaces the stored digest.
    pub async fn deliver(
        &self,
        row: Versioned<SignupRequest>,
        token: Option<Token>,
    ) -> Result<Delivered, OutboxError> {
        let Some(owed) = row.value.mail_owed else {
            return Ok(Delivered::Nothing);
        };
        let (row, owed, token) = match (owed.kind, token) {
            (MailKind::Verify, None) => {
                if row.value.status != RequestStatus::PendingVerification {
                    self.clear(row, owed).await?;
                    return Ok(Delivered::Nothing);
                }
                let mut request = row.value;
                let now = self.clock.now();
                let token = verify::issue(&mut request, now, self.verify_for)
                    .map_err(OutboxError::Random)?;
                let etag = self.store.replace(&request, &row.etag).await?;
                let owed = request.mail_owed.unwrap_or(owed);
                (
                    Versioned {
                        value: request,
                        etag,
                    },
                    owed,
                    Some(token),
                )
            }
            (_, token) => (row, owed, token),
        };
        let mail = self.compose(&row.value, owed, token.as_ref());
        let outcome = match self.mailer.send(&mail).await {
            Ok(()) => Delivered::Sent(owed.kind),
            Err(MailError::Refused(why)) => {
                tracing::warn!(request_id = %row.value.id, kind = owed.kind.as_str(), why, "mail refused for good; no longer owed");
                Delivered::Refused(owed.kind)
            }
            Err(e) => return Err(e.into()),
        };
        self.clear(row, owed).await?;
        Ok(outcome)
    }

    /// Sends what `row` owes in the background: the caller's answer does not wait for the
    /// mail service, and `Reconcile` retries a failure.
    pub fn spawn_deliver(self: &Arc<Self>, row: Versioned<SignupRequest>, token: Option<Token>) {
        let outbox = self.clone();
        tokio::spawn(async move {
            let id = row.value.id;
            if let Err(e) = outbox.deliver(row, token).await {
                tracing::warn!(request_id = %id, error = %e, "mail not sent yet; Reconcile will retry");
            }
        });
    }

    /// The message `owed` stands for.
    fn compose(&self, request: &SignupRequest, owed: OwedMail, token: Option<&Token>) -> Mail {
        let org = &self.org_name;
        let lang = request.language;
        let reference = request.id.to_string();
        let message = match owed.kind {
            MailKind::Verify => {
                let link = token.map_or_else(String::new, |t| self.verify_link(request, t));
                let hours = u32::try_from(self.verify_for.whole_hours()).unwrap_or(u32::MAX);
                templates::verify(lang, org, &link, hours)
            }
            MailKind::Pending => templates::pending(lang, org, &reference, request.decide_by),
            MailKind::Approved => {
                let destination = self
                    .policy
                    .decide(request.email.domain())
                    .invitation()
                    .redirect_url
                    .clone();
                templates::approved(lang, org, &reference, &destination)
            }
            MailKind::Denied => templates::denied(
                lang,
                org,
                &reference,
                request
                    .decision_reason
                    .as_deref()
                    .filter(|_| request.share_reason),
            ),
        };
        let message = templates::with_footer(message, lang, &self.branding, &self.site);
        let key = MailKey::derive(
            &format!(
                "{}/{}/{}",
                request.id,
                owed.kind.as_str(),
                rfc3339(owed.since)
            ),
            owed.since,
        );
        Mail::of(request.email.clone(), message, key)
    }

    /// The renewal notice: access ends at `ends_at`; signing up again (the page in the
    /// partner's language) renews it. One key per request and end, taken from when the
    /// notice became owed, so a notice sent again after a crash (the send landed, its
    /// recording did not) is one mail while the service remembers the key.
    pub async fn send_renewal(
        &self,
        request: &SignupRequest,
        ends_at: time::OffsetDateTime,
    ) -> Result<(), MailError> {
        let (lang, reference) = (request.language, request.id.to_string());
        let signup = format!("{}{}", self.site, lang.folder());
        let message = templates::renewal(lang, &self.org_name, &reference, ends_at, &signup);
        let message = templates::with_footer(message, lang, &self.branding, &self.site);
        let key = MailKey::derive(
            &format!("{reference}/renewal/{ends_at}"),
            request.renewal_opens_at.unwrap_or(ends_at),
        );
        self.mailer
            .send(&Mail::of(request.email.clone(), message, key))
            .await
    }

    /// Clears `owed` from the row unless a newer mail replaced it meanwhile.
    async fn clear(&self, row: Versioned<SignupRequest>, owed: OwedMail) -> Result<(), StoreError> {
        let mut row = row;
        for _ in 0..MAX_RACES {
            if row.value.mail_owed != Some(owed) {
                return Ok(());
            }
            row.value.mail_owed = None;
            match self.store.replace(&row.value, &row.etag).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => {
                    match self
                        .store
                        .get(row.value.email.domain(), &row.value.id)
                        .await?
                    {
                        Some(fresh) => row = fresh,
                        None => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Tells each approver that `request` waits for a decision. Returns the first failure
    /// after trying every approver; each approver's mail has its own idempotency key.
    pub async fn notify_approvers(&self, request: &SignupRequest) -> Result<(), MailError> {
        let console = self
            .console_base
            .as_ref()
            .map(|base| format!("{base}{}{}", crate::notify::CONSOLE_PATH, request.id));
        let message = templates::approver_pending(
            &self.org_name,
            &request.id.to_string(),
            request.email.domain().as_str(),
            request.access.as_str(),
            request.decide_by,
            console.as_deref(),
        );
        let mut failure = None;
        for approver in &self.approvers {
            let key = MailKey::derive(
                &format!("{}/approver/{}", request.id, approver.as_str()),
                request.updated_at,
            );
            let mail = Mail::of(approver.clone(), message.clone(), key);
            if let Err(e) = self.mailer.send(&mail).await {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }
}
