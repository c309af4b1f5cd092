//! The inviting organisation's rules: which e-mail domains may sign up, how (invite at
//! once, wait for approval, refuse), and which access options (Entra groups) follow.
//!
//! `document` is the JSON file as written; [`Policy`] is the validated form the rest of the
//! crate uses. A policy that does not validate never loads: start-up stops with an error
//! that names the place (`rules[2].domains[0]`). [`Policy::explain`] puts what it does with
//! one address in words, for administrators.

mod document;
mod explain;
mod matching;

use std::{collections::BTreeMap, path::Path};

use crate::domain::{AccessKey, EmailDomain, GroupId};

pub use explain::Explanation;
pub use matching::DomainPattern;

/// What a rule (or the default) says to do with a sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Invite at once.
    Invite,
    /// Store the request and wait for an administrator.
    Approve,
    /// Refuse.
    Deny,
}

/// An access option: what a partner asks for, and the Entra groups it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessOption {
    pub key: AccessKey,
    pub display_name: String,
    /// The Entra groups it grants, each once, in the policy's order.
    pub groups: Vec<GroupId>,
    /// How long the access lasts (`accessDays`); a rule's own setting wins.
    pub expiry: Option<Expiry>,
}

/// Access that ends (`accessDays`, `renewBeforeDays` on a rule or an access option): the
/// `Lifecycle` timer sends the renewal notice `renew_before` ahead, then removes the guest
/// from the option's groups when `access` has elapsed since the invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    pub access: time::Duration,
    /// Also when a new sign-up for the address may start (renewing is signing up again).
    pub renew_before: time::Duration,
}

impl Expiry {
    /// When access granted at `invited_at` ends, and when its renewal window opens.
    pub fn schedule(
        &self,
        invited_at: time::OffsetDateTime,
    ) -> (time::OffsetDateTime, time::OffsetDateTime) {
        let ends = invited_at + self.access;
        (ends, ends - self.renew_before)
    }
}

impl std::fmt::Display for Expiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "access ends {} days after the invitation (renewal notice and sign-up again {} days before)",
            self.access.whole_days(),
            self.renew_before.whole_days()
        )
    }
}

impl AccessOption {
    /// The group ids, comma-separated, for messages and the audit reason.
    pub fn group_list(&self) -> String {
        let ids: Vec<&str> = self.groups.iter().map(GroupId::as_str).collect();
        ids.join(", ")
    }
}

/// How the invitation is sent (Graph `POST /invitations` fields), after rule overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationSettings {
    pub redirect_url: String,
    pub send_invitation_message: bool,
    pub message: Option<String>,
    pub message_language: Option<String>,
}

/// Terms of use partners must accept: the form sends `acceptTerms` equal to `version`,
/// and the version accepted is recorded on the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// An opaque version label (`2026-01`); changing it requires a new acceptance.
    pub version: String,
    /// Where the page links to the terms.
    pub url: String,
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its position in the file, for "explain" and error messages.
    pub index: usize,
    pub domains: Vec<DomainPattern>,
    pub action: Action,
    /// Access options the rule allows, in the order written; the first is the default.
    pub access: Vec<AccessKey>,
    pub invitation: InvitationSettings,
    /// For `approve`: how long a request may wait for a decision before it is denied
    /// (`approvalTimeoutDays`, per rule or global; default 14 days).
    pub approval_timeout: time::Duration,
    /// `accessDays`/`renewBeforeDays` on the rule: overrides the access option's.
    pub expiry: Option<Expiry>,
}

/// A loaded, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    options: BTreeMap<AccessKey, AccessOption>,
    rules: Vec<Rule>,
    /// The rule for domains no rule matches (`index` is `usize::MAX`, no domains).
    default_rule: Rule,
    index: matching::DomainIndex,
    terms: Option<Terms>,
    /// `verifyEmail` (default `true`): a sign-up waits as `PendingVerification` until the
    /// partner opens the link mailed to the address (src/verify.rs).
    verify_email: bool,
}

/// The policy's answer for one domain.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    policy: &'a Policy,
    /// `None` when the default applied.
    pub rule: Option<&'a Rule>,
}

/// Why the policy refuses a sign-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("sign-up is not open to this e-mail domain")]
    DomainNotAllowed,
    #[error("this access option is not available for this e-mail domain")]
    AccessNotAllowed,
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("policy is not valid JSON of the expected shape: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("policy {place}: {message}")]
    Invalid { place: String, message: String },
}

impl Policy {
    /// Reads and validates the policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let document: document::PolicyDocument = serde_json::from_str(text)?;
        document.validate()
    }

    /// The rule that applies to `domain`: an exact match first, then the longest matching
    /// `*.` wildcard, else the default.
    pub fn decide(&self, domain: &EmailDomain) -> Decision<'_> {
        let rule = self.index.find(domain).map(|i| &self.rules[i]);
        Decision { policy: self, rule }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn access_option(&self, key: &AccessKey) -> Option<&AccessOption> {
        self.options.get(key)
    }

    pub fn access_options(&self) -> impl Iterator<Item = &AccessOption> {
        self.options.values()
    }

    /// The terms of use to accept, when the policy names them.
    pub fn terms(&self) -> Option<&Terms> {
        self.terms.as_ref()
    }

    /// Whether a sign-up must prove its address first (`verifyEmail`, default `true`).
    pub fn verify_email(&self) -> bool {
        self.verify_email
    }
}

impl<'a> Decision<'a> {
    fn effective_rule(&self) -> &'a Rule {
        self.rule.unwrap_or(&self.policy.default_rule)
    }

    pub fn action(&self) -> Action {
        self.effective_rule().action
    }

    pub fn invitation(&self) -> &'a InvitationSettings {
        &self.effective_rule().invitation
    }

    pub fn approval_timeout(&self) -> time::Duration {
        self.effective_rule().approval_timeout
    }

    /// When access through `option` ends: the rule's `accessDays` if it sets one (the rule
    /// knows the partner), else the option's; `None`: it does not end.
    pub fn expiry(&self, option: &AccessOption) -> Option<Expiry> {
        self.effective_rule().expiry.or(option.expiry)
    }

    /// The access option a sign-up gets: the requested one if the rule allows it, the
    /// rule's first option when none was requested. A deny rule allows nothing.
    pub fn access(&self, requested: Option<&AccessKey>) -> Result<&'a AccessOption, Refusal> {
        let rule = self.effective_rule();
        if rule.action == Action::Deny {
            return Err(Refusal::DomainNotAllowed);
        }
        let key = match requested {
            None => rule.access.first(),
            Some(wanted) => rule.access.iter().find(|key| *key == wanted),
        }
        .ok_or(Refusal::AccessNotAllowed)?;
        self.policy
            .options
            .get(key)
            .ok_or(Refusal::AccessNotAllowed)
    }
}

#[cfg(test)]
mod tests;
