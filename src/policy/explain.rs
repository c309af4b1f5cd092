//! `b2b-signup policy explain`: what the policy does with one address, in words.

use std::fmt;

use super::{Action, Policy};
use crate::domain::EmailAddress;

/// The lines of [`Policy::explain`], one fact each (`address:`, `rule:`, `action:`,
/// `access:`, `invite:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation(Vec<String>);

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|line| writeln!(f, "{line}"))
    }
}

impl Policy {
    /// Which rule applies to `email` and why, and what follows: the action, the access
    /// options with their groups, the invitation. For administrators (`b2b-signup policy
    /// explain`), so it names groups and rules the sign-up page never shows.
    pub fn explain(&self, email: &EmailAddress) -> Explanation {
        let domain = email.domain();
        let decision = self.decide(domain);
        let mut lines = vec![format!("address:  {} (domain {domain})", email.as_str())];
        match decision.rule {
            Some(rule) => {
                let pattern = rule
                    .domains
                    .iter()
                    .find(|p| p.matches(domain))
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let how = if pattern.starts_with("*.") {
                    "the longest wildcard that matches (no rule lists the domain itself)"
                } else {
                    "an exact match"
                };
                lines.push(format!(
                    "rule:     rules[{}], pattern {pattern}: {how}",
                    rule.index
                ));
            }
            None => {
                lines.push("rule:     none matches; the default applies (defaultAction)".into())
            }
        }
        let action = decision.action();
        lines.push(format!(
            "action:   {}",
            match action {
                Action::Invite => "invite at once".to_owned(),
                Action::Approve => format!(
                    "wait for an administrator (denied after {} days)",
                    decision.approval_timeout().whole_days()
                ),
                Action::Deny => "refuse (403 domain_not_allowed)".to_owned(),
            }
        ));
        if action != Action::Deny {
            let default = decision.access(None).ok().map(|o| o.key.clone());
            let keys = decision
                .rule
                .map(|r| r.access.clone())
                .unwrap_or_else(|| default.iter().cloned().collect());
            for key in keys {
                if let Some(option) = self.access_option(&key) {
                    let mark = if Some(&key) == default.as_ref() {
                        " (default)"
                    } else {
                        ""
                    };
                    lines.push(format!(
                        "access:   {key}{mark} \"{}\" → groups {}",
                        option.display_name,
                        option.group_list()
                    ));
                    lines.push(match decision.expiry(option) {
                        Some(expiry) => format!("expiry:   {key}: {expiry}"),
                        None => format!("expiry:   {key}: access does not end"),
                    });
                }
            }
            let invitation = decision.invitation();
            lines.push(format!(
                "invite:   redirect {}, invitation e-mail {}{}",
                invitation.redirect_url,
                if invitation.send_invitation_message {
                    "yes"
                } else {
                    "no"
                },
                invitation
                    .message_language
                    .as_deref()
                    .map(|l| format!(", language {l}"))
                    .unwrap_or_default()
            ));
        }
        Explanation(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_names_the_rule_and_the_access() {
        let policy = Policy::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policy.example.json"
        )))
        .unwrap();
        let text = policy
            .explain(&EmailAddress::parse("grace@eu.fabrikam.com").unwrap())
            .to_string();
        assert!(text.contains("rules[1], pattern *.fabrikam.com"), "{text}");
        assert!(
            text.contains("wait for an administrator (denied after 14 days)"),
            "{text}"
        );
        assert!(
            text.contains("partner-portal (default) \"Partner portal\""),
            "{text}"
        );

        let text = policy
            .explain(&EmailAddress::parse("x@evilcontoso.com").unwrap())
            .to_string();
        assert!(
            text.contains("none matches") && text.contains("refuse"),
            "{text}"
        );
    }
}
