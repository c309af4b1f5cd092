//! Table rows as they are stored, and their conversion to and from domain types.
//!
//! Dates are written as `Edm.DateTime` so Storage Explorer and OData filters
//! (`CreatedAt ge datetime'…'`) treat them as dates. A domain is `[a-z0-9.-]` and a request
//! id is Crockford base32, none of which Table Storage forbids (`/ \ # ?`, control
//! characters); a claim's key is escaped ([`claim_row_key`]); [`check_key`] asserts it at
//! the edge anyway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{AddressClaim, CLAIM_ROW_PREFIX, RequestKey, StoreError};
use crate::domain::{
    AccessKey, Decider, DisplayName, EmailAddress, EmailDomain, FreeText, History, Lang, MailKind,
    OwedMail, RequestId, SignupRequest, UserId, Verification,
};

const EDM_DATETIME: &str = "Edm.DateTime";

fn edm_datetime() -> &'static str {
    EDM_DATETIME
}

/// Refuses a key Table Storage would reject, so a bug shows up as a clear error instead of
/// a 400 from the service.
pub(super) fn check_key(key: &str) -> Result<&str, StoreError> {
    let forbidden = |c: char| matches!(c, '/' | '\\' | '#' | '?') || c.is_control();
    if key.is_empty() || key.len() > 1024 || key.contains(forbidden) {
        return Err(StoreError::Corrupt(format!(
            "{key:?} cannot be a table key"
        )));
    }
    Ok(key)
}

/// The RowKey of `email`'s claim: [`CLAIM_ROW_PREFIX`] and the lower-cased local part, every
/// character outside `[a-z0-9._-]` written as `~` and its UTF-8 bytes in hex. Only `'` can
/// occur today (`o'brien` → `o~27brien`): the SDKs put keys into entity URLs between
/// quotes without doubling them, and Table Storage forbids `/ \ # ?`; the escape is
/// one-to-one, since `~` itself is escaped.
pub(super) fn claim_row_key(email: &EmailAddress) -> String {
    let mut key = String::from(CLAIM_ROW_PREFIX);
    for c in email.canonical_local().chars() {
        if matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-') {
            key.push(c);
        } else {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                key.push_str(&format!("~{byte:02x}"));
            }
        }
    }
    key
}

pub(super) use crate::clock::rfc3339 as format_time;

fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| StoreError::Corrupt(format!("{field} is not a date")))
}

/// The `…ById` column of a decider: a verified administrator's object id, else nothing.
fn stored_id(decider: Option<&Decider>) -> Option<String> {
    decider
        .and_then(Decider::object_id)
        .map(ToString::to_string)
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

fn optional_time_of(field: &str, text: Option<&str>) -> Result<Option<OffsetDateTime>, StoreError> {
    text.map(|t| parse_time(field, t)).transpose()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RequestEntity {
    pub partition_key: String,
    pub row_key: String,
    pub email: String,
    pub display_name: String,
    pub access: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_attempted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_request_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// A verified administrator's object id (`oid`), beside `DecidedBy`; added with the
    /// admin API: rows without it were decided by the command line, a function key or
    /// the system, and versions before it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decide_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<String>,
    /// Added with `requests retry`; rows without it were never retried, and versions
    /// before it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_by: Option<String>,
    /// As `DecidedById`, for `RetriedBy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_by_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_version: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// Added with the request history, as the next three: rows without them were never
    /// decided with a reason or predate history, and versions before it ignore them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    /// [`History`]'s JSON array; absent on rows written before history existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    /// Entries the history's bound dropped; absent when none were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_dropped: u32,
    /// Added with mail and proof of address, as the seven after it: rows without them
    /// were signed up in English, never asked for proof and owe no mail, and versions
    /// before it ignore them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// SHA-256 (hex) of the verification token's secret; never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_token_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_mailed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_owed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_owed_since: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub share_reason: bool,
    /// Added with access expiry (`Lifecycle`), as the next two: rows without them never
    /// expire, and versions before it ignore them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_ends_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_opens_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_notice_at: Option<String>,
    /// Added with the invitation resend: older rows have none, older versions ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_resent_at: Option<String>,
    /// Present in query results (`odata=fullmetadata`), never written.
    #[serde(rename = "odata.etag", default, skip_serializing)]
    pub etag: Option<String>,
    /// `<Date>@odata.type: Edm.DateTime` for each date present, so the service stores
    /// dates as dates (OData filters like `DecideBy lt datetime'…'` compare them).
    #[serde(flatten, skip_deserializing)]
    date_types: BTreeMap<String, &'static str>,
}

impl RequestEntity {
    pub(super) fn from_request(request: &SignupRequest) -> Result<Self, StoreError> {
        Ok(Self {
            partition_key: check_key(request.email.domain().as_str())?.to_owned(),
            row_key: check_key(&request.id.to_string())?.to_owned(),
            email: request.email.as_str().to_owned(),
            display_name: request.display_name.as_str().to_owned(),
            access: request.access.as_str().to_owned(),
            company: request.company.as_ref().map(|t| t.as_str().to_owned()),
            justification: request
                .justification
                .as_ref()
                .map(|t| t.as_str().to_owned()),
            status: request.status.as_str().to_owned(),
            reason: request.reason.clone(),
            attempts: request.attempts,
            invited_user_id: request.invited_user_id.as_ref().map(UserId::to_string),
            invitation_attempted_at: request.invitation_attempted_at.map(format_time),
            graph_request_id: request.graph_request_id.clone(),
            created_at: format_time(request.created_at),
            updated_at: format_time(request.updated_at),
            decided_by: request.decided_by.as_ref().map(Decider::to_string),
            decided_by_id: stored_id(request.decided_by.as_ref()),
            decided_at: request.decided_at.map(format_time),
            decide_by: request.decide_by.map(format_time),
            notified_at: request.notified_at.map(format_time),
            retried_by: request.retried_by.as_ref().map(Decider::to_string),
            retried_by_id: stored_id(request.retried_by.as_ref()),
            retried_at: request.retried_at.map(format_time),
            terms_version: request.terms_version.clone(),
            dry_run: request.dry_run,
            decision_reason: request.decision_reason.clone(),
            history: request.history.to_json().map_err(|e| {
                StoreError::Corrupt(format!(
                    "the history of row {} cannot be written: {e}",
                    request.id
                ))
            })?,
            history_dropped: request.history.dropped(),
            language: (request.language != Lang::En).then(|| request.language.as_str().to_owned()),
            verify_token_hash: request.verification.as_ref().map(|v| v.token_hash.clone()),
            verify_expires_at: request
                .verification
                .as_ref()
                .map(|v| format_time(v.expires_at)),
            verified_at: request
                .verification
                .as_ref()
                .and_then(|v| v.verified_at)
                .map(format_time),
            verify_mailed_at: request
                .verification
                .as_ref()
                .and_then(|v| v.mailed_at)
                .map(format_time),
            mail_owed: request.mail_owed.map(|m| m.kind.as_str().to_owned()),
            mail_owed_since: request.mail_owed.map(|m| format_time(m.since)),
            share_reason: request.share_reason,
            access_ends_at: request.access_ends_at.map(format_time),
            renewal_opens_at: request.renewal_opens_at.map(format_time),
            renewal_notice_at: request.renewal_notice_at.map(format_time),
            invitation_resent_at: request.invitation_resent_at.map(format_time),
            etag: None,
            date_types: BTreeMap::new(),
        }
        .with_date_types())
    }

    fn with_date_types(mut self) -> Self {
        let present = [
            ("CreatedAt", true),
            ("UpdatedAt", true),
            ("DecidedAt", self.decided_at.is_some()),
            ("DecideBy", self.decide_by.is_some()),
            ("NotifiedAt", self.notified_at.is_some()),
            ("RetriedAt", self.retried_at.is_some()),
            (
                "InvitationAttemptedAt",
                self.invitation_attempted_at.is_some(),
            ),
            ("VerifyExpiresAt", self.verify_expires_at.is_some()),
            ("VerifiedAt", self.verified_at.is_some()),
            ("VerifyMailedAt", self.verify_mailed_at.is_some()),
            ("MailOwedSince", self.mail_owed_since.is_some()),
            ("AccessEndsAt", self.access_ends_at.is_some()),
            ("RenewalOpensAt", self.renewal_opens_at.is_some()),
            ("RenewalNoticeAt", self.renewal_notice_at.is_some()),
            ("InvitationResentAt", self.invitation_resent_at.is_some()),
        ];
        self.date_types = present
            .into_iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| (format!("{name}@odata.type"), EDM_DATETIME))
            .collect();
        self
    }

    pub(super) fn into_request(self) -> Result<SignupRequest, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!("{what} of row {} is not valid", self.row_key))
        };
        let email = EmailAddress::parse(&self.email).map_err(|_| corrupt("Email"))?;
        if email.domain().as_str() != self.partition_key {
            return Err(corrupt("PartitionKey"));
        }
        let verification = match (&self.verify_token_hash, &self.verify_expires_at) {
            (Some(hash), Some(expires)) => Some(Verification {
                token_hash: hash.clone(),
                expires_at: parse_time("VerifyExpiresAt", expires)?,
                verified_at: optional_time_of("VerifiedAt", self.verified_at.as_deref())?,
                mailed_at: optional_time_of("VerifyMailedAt", self.verify_mailed_at.as_deref())?,
            }),
            (None, None) => None,
            _ => return Err(corrupt("VerifyTokenHash")),
        };
        let mail_owed = match (&self.mail_owed, &self.mail_owed_since) {
            (Some(kind), Some(since)) => Some(OwedMail {
                kind: MailKind::parse(kind).ok_or_else(|| corrupt("MailOwed"))?,
                since: parse_time("MailOwedSince", since)?,
            }),
            (None, None) => None,
            _ => return Err(corrupt("MailOwed")),
        };
        Ok(SignupRequest {
            language: self.language.as_deref().map_or(Lang::En, Lang::from_tag),
            verification,
            mail_owed,
            share_reason: self.share_reason,
            id: RequestId::parse(&self.row_key).ok_or_else(|| corrupt("RowKey"))?,
            display_name: DisplayName::parse(&self.display_name)
                .map_err(|_| corrupt("DisplayName"))?,
            access: AccessKey::parse(&self.access).ok_or_else(|| corrupt("Access"))?,
            company: FreeText::stored(self.company),
            justification: FreeText::stored(self.justification),
            status: self.status.parse().map_err(|()| corrupt("Status"))?,
            created_at: parse_time("CreatedAt", &self.created_at)?,
            updated_at: parse_time("UpdatedAt", &self.updated_at)?,
            email,
            reason: self.reason,
            attempts: self.attempts,
            invited_user_id: self
                .invited_user_id
                .as_deref()
                .map(|id| UserId::parse(id).ok_or_else(|| corrupt("InvitedUserId")))
                .transpose()?,
            invitation_attempted_at: optional_time_of(
                "InvitationAttemptedAt",
                self.invitation_attempted_at.as_deref(),
            )?,
            graph_request_id: self.graph_request_id,
            decided_by: self
                .decided_by
                .as_deref()
                .map(|by| Decider::from_stored(by, self.decided_by_id.as_deref())),
            decided_at: optional_time_of("DecidedAt", self.decided_at.as_deref())?,
            decide_by: optional_time_of("DecideBy", self.decide_by.as_deref())?,
            notified_at: optional_time_of("NotifiedAt", self.notified_at.as_deref())?,
            retried_by: self
                .retried_by
                .as_deref()
                .map(|by| Decider::from_stored(by, self.retried_by_id.as_deref())),
            retried_at: optional_time_of("RetriedAt", self.retried_at.as_deref())?,
            terms_version: self.terms_version,
            dry_run: self.dry_run,
            decision_reason: self.decision_reason,
            access_ends_at: optional_time_of("AccessEndsAt", self.access_ends_at.as_deref())?,
            renewal_opens_at: optional_time_of("RenewalOpensAt", self.renewal_opens_at.as_deref())?,
            renewal_notice_at: optional_time_of(
                "RenewalNoticeAt",
                self.renewal_notice_at.as_deref(),
            )?,
            invitation_resent_at: optional_time_of(
                "InvitationResentAt",
                self.invitation_resent_at.as_deref(),
            )?,
            history: History::from_json(self.history.as_deref(), self.history_dropped).map_err(
                |e| {
                    StoreError::Corrupt(format!(
                        "History of row {} is not valid: {e}",
                        self.row_key
                    ))
                },
            )?,
        })
    }
}

/// A request row's keys only (`$select=PartitionKey,RowKey`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyEntity {
    pub partition_key: String,
    pub row_key: String,
}

impl KeyEntity {
    pub(super) fn into_key(self) -> Result<RequestKey, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!("{what} of row {} is not valid", self.row_key))
        };
        let domain = EmailDomain::parse(&self.partition_key)
            .ok()
            .filter(|d| d.as_str() == self.partition_key)
            .ok_or_else(|| corrupt("PartitionKey"))?;
        let id = RequestId::parse(&self.row_key).ok_or_else(|| corrupt("RowKey"))?;
        Ok(RequestKey { domain, id })
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ClaimEntity {
    pub partition_key: String,
    pub row_key: String,
    pub request_id: String,
    pub claimed_at: String,
    #[serde(
        rename = "ClaimedAt@odata.type",
        skip_deserializing,
        default = "edm_datetime"
    )]
    claimed_at_type: &'static str,
}

impl ClaimEntity {
    pub(super) fn new(email: &EmailAddress, claim: &AddressClaim) -> Result<Self, StoreError> {
        Ok(Self {
            partition_key: check_key(email.domain().as_str())?.to_owned(),
            row_key: check_key(&claim_row_key(email))?.to_owned(),
            request_id: claim.request_id.to_string(),
            claimed_at: format_time(claim.claimed_at),
            claimed_at_type: EDM_DATETIME,
        })
    }

    pub(super) fn into_claim(self) -> Result<AddressClaim, StoreError> {
        Ok(AddressClaim {
            request_id: RequestId::parse(&self.request_id)
                .ok_or_else(|| StoreError::Corrupt("RequestId of an address claim".into()))?,
            claimed_at: parse_time("ClaimedAt", &self.claimed_at)?,
        })
    }
}

/// Longest text kept in a dead letter: a table string property holds 32 K UTF-16 units.
const MAX_DEAD_LETTER_CHARS: usize = 16_000;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DeadLetterEntity {
    pub partition_key: String,
    pub row_key: String,
    pub message_id: Option<String>,
    pub dequeue_count: u32,
    pub error: String,
    pub text: String,
    pub received_at: String,
    #[serde(rename = "ReceivedAt@odata.type")]
    received_at_type: &'static str,
}

impl DeadLetterEntity {
    pub(super) fn new(letter: &super::DeadLetter) -> Self {
        Self {
            partition_key: letter.queue.to_owned(),
            // Time-ordered and unique, like request ids.
            row_key: RequestId::new().to_string(),
            message_id: letter.message_id.clone(),
            dequeue_count: letter.dequeue_count,
            error: letter.error.clone(),
            text: letter.text.chars().take(MAX_DEAD_LETTER_CHARS).collect(),
            received_at: format_time(letter.received_at),
            received_at_type: EDM_DATETIME,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_forbidden_characters_are_refused() {
        for key in ["a/b", "a\\b", "a#b", "a?b", "a\u{1}b", ""] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
        assert!(check_key("contoso.com").is_ok());
        assert!(check_key("o'brien-x_y.z").is_ok());
    }

    #[test]
    fn dates_are_typed_for_odata() {
        let claim = AddressClaim {
            request_id: RequestId::new(),
            claimed_at: time::macros::datetime!(2026-11-24 01:02:03.5 UTC),
        };
        let email = EmailAddress::parse("Ada@Contoso.com").unwrap();
        let json = serde_json::to_value(ClaimEntity::new(&email, &claim).unwrap()).unwrap();
        assert_eq!(json["ClaimedAt"], "2026-11-24T01:02:03.5Z");
        assert_eq!(json["ClaimedAt@odata.type"], "Edm.DateTime");
        assert_eq!(
            json["RowKey"], "address:ada",
            "claims compare addresses case-insensitively"
        );
    }

    #[test]
    fn claim_keys_are_escaped_and_sort_after_every_request_id() {
        let key = |address: &str| claim_row_key(&EmailAddress::parse(address).unwrap());
        assert_eq!(key("O'Brien-X_y.z@contoso.com"), "address:o~27brien-x_y.z");
        assert!(check_key(&key("o'brien@contoso.com")).is_ok());
        // The request queries' `RowKey lt 'address:'` must hold every request id.
        for c in "0123456789ABCDEFGHJKMNPQRSTVWXYZ".chars() {
            assert!(c.to_string().as_str() < CLAIM_ROW_PREFIX, "{c}");
        }
        assert!(RequestId::new().to_string().as_str() < CLAIM_ROW_PREFIX);
        assert!(key("0@contoso.com").as_str() >= CLAIM_ROW_PREFIX);
    }
}
