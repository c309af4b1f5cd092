//! Domain patterns and the index that finds the most specific one for a domain.
//!
//! `contoso.com` matches exactly that domain; `*.contoso.com` matches any subdomain and not
//! the domain itself. Matching compares whole labels, so `evilcontoso.com` and
//! `contoso.com.evil.example` never match `contoso.com`. Lookups cost one hash probe per
//! label of the domain, whatever the number of rules.

use std::{collections::HashMap, fmt};

use crate::domain::EmailDomain;

/// A domain or a `*.` wildcard, normalised like e-mail domains.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    Exact(EmailDomain),
    /// `*.suffix`: any domain strictly below `suffix`.
    Subdomains(EmailDomain),
}

impl DomainPattern {
    pub fn parse(input: &str) -> Option<Self> {
        match input.trim().strip_prefix("*.") {
            Some(suffix) => EmailDomain::parse_suffix(suffix).ok().map(Self::Subdomains),
            None => EmailDomain::parse(input).ok().map(Self::Exact),
        }
    }
}

impl DomainPattern {
    /// Whether this pattern covers `domain` (whole labels only).
    pub fn matches(&self, domain: &EmailDomain) -> bool {
        match self {
            Self::Exact(exact) => exact == domain,
            Self::Subdomains(suffix) => domain.ancestors().any(|a| a == suffix.as_str()),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(domain) => write!(f, "{domain}"),
            Self::Subdomains(domain) => write!(f, "*.{domain}"),
        }
    }
}

impl fmt::Debug for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainPattern({self})")
    }
}

/// Maps patterns to rule positions.
#[derive(Debug, Clone, Default)]
pub(super) struct DomainIndex {
    exact: HashMap<String, usize>,
    subdomains: HashMap<String, usize>,
}

impl DomainIndex {
    /// Adds a pattern; returns the rule that already had it, if any.
    pub(super) fn insert(&mut self, pattern: &DomainPattern, rule: usize) -> Option<usize> {
        let (map, domain) = match pattern {
            DomainPattern::Exact(domain) => (&mut self.exact, domain),
            DomainPattern::Subdomains(domain) => (&mut self.subdomains, domain),
        };
        match map.get(domain.as_str()) {
            Some(&existing) => Some(existing),
            None => {
                map.insert(domain.as_str().to_owned(), rule);
                None
            }
        }
    }

    /// The most specific rule for `domain`: exact, else the wildcard with the longest
    /// suffix (ancestors are visited nearest first).
    pub(super) fn find(&self, domain: &EmailDomain) -> Option<usize> {
        self.exact.get(domain.as_str()).copied().or_else(|| {
            domain
                .ancestors()
                .find_map(|suffix| self.subdomains.get(suffix).copied())
        })
    }
}
