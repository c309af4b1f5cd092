//! E-mail addresses and domains, normalised the way the public API says (docs/openapi.yaml).
//!
//! The local part is restricted to what Microsoft Graph's `POST /invitations` accepts
//! (letters, digits, `. - _ '`), so a request we accept is one Graph will not refuse for
//! its shape. Domains are IDNA-mapped to lower-case ASCII (punycode) with any trailing dot
//! removed, so `Contoso.COM.`, `contoso.com` and their Unicode forms compare equal.

use std::fmt;

/// Longest local part RFC 5321 allows.
const MAX_LOCAL_LEN: usize = 64;
/// Longest domain name DNS allows (without the trailing dot).
const MAX_DOMAIN_LEN: usize = 253;
/// Longest address RFC 5321 allows in a path.
const MAX_ADDRESS_LEN: usize = 254;

/// Why an address or domain was refused. The `Display` text is safe to show a caller: it
/// never repeats the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("an e-mail address is required")]
    Missing,
    #[error("give exactly one e-mail address, in the form name@example.com")]
    NotOneAddress,
    #[error("the part before @ must be 1 to 64 characters")]
    LocalLength,
    #[error("the part before @ may only contain letters, digits and . - _ '")]
    LocalCharacters,
    #[error("the part before @ may not start or end with a dot or contain two dots in a row")]
    LocalDots,
    #[error("the domain is not a valid internet domain name")]
    Domain,
    #[error("the address is longer than 254 characters")]
    TooLong,
}

/// A normalised, lower-case ASCII domain name with at least two labels, such as
/// `contoso.com` or `xn--mnchen-3ya.de`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailDomain(String);

impl EmailDomain {
    /// Normalises and validates a domain: trims, removes one trailing dot, maps IDNA
    /// (Unicode to punycode, upper to lower case) and checks DNS label rules.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        Self::parse_with_min_labels(input, 2)
    }

    /// A domain used as a wildcard suffix in the policy (`*.gov`): one label is enough.
    pub fn parse_suffix(input: &str) -> Result<Self, EmailError> {
        Self::parse_with_min_labels(input, 1)
    }

    fn parse_with_min_labels(input: &str, min_labels: usize) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        let without_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if without_dot.is_empty() || without_dot.contains(|c: char| c.is_whitespace()) {
            return Err(EmailError::Domain);
        }
        let ascii = idna::domain_to_ascii_strict(without_dot).map_err(|_| EmailError::Domain)?;
        if ascii.len() > MAX_DOMAIN_LEN || !ascii.is_ascii() {
            return Err(EmailError::Domain);
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < min_labels || !labels.iter().all(|label| is_dns_label(label)) {
            return Err(EmailError::Domain);
        }
        // A numeric top-level label means an IP literal or a typo, never a mail domain.
        let tld = labels[labels.len() - 1];
        if tld.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmailError::Domain);
        }
        Ok(Self(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent domains from the nearest to the farthest: `a.b.contoso.com` gives
    /// `b.contoso.com`, `contoso.com`, `com`. Used for wildcard matching.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0
            .match_indices('.')
            .map(move |(dot, _)| &self.0[dot + 1..])
    }
}

impl fmt::Display for EmailDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailDomain({})", self.0)
    }
}

fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// One normalised address. The local part keeps its case (mail servers may care); use
/// [`EmailAddress::canonical_key`] to compare addresses case-insensitively.
///
/// `Debug` shows only the domain, so an address cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress {
    local: String,
    domain: EmailDomain,
    /// `local@domain`, kept so `as_str` borrows instead of allocating.
    full: String,
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Missing);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailError::NotOneAddress)?;
        if local.contains('@') || trimmed.contains(|c: char| c.is_whitespace() || c == ',') {
            return Err(EmailError::NotOneAddress);
        }
        if local.is_empty() || local.len() > MAX_LOCAL_LEN {
            return Err(EmailError::LocalLength);
        }
        if !local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'\''))
        {
            return Err(EmailError::LocalCharacters);
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(EmailError::LocalDots);
        }
        let domain = EmailDomain::parse(domain)?;
        let full = format!("{local}@{}", domain.as_str());
        if full.len() > MAX_ADDRESS_LEN {
            return Err(EmailError::TooLong);
        }
        Ok(Self {
            local: local.to_owned(),
            domain,
            full,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    pub fn domain(&self) -> &EmailDomain {
        &self.domain
    }

    /// The local part lower-cased: with the domain, the key under which two spellings of
    /// one mailbox are the same sign-up.
    pub fn canonical_local(&self) -> String {
        self.local.to_ascii_lowercase()
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress(***@{})", self.domain.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_valid_addresses() {
        let cases = [
            ("plain", "ada@contoso.com", "ada@contoso.com"),
            ("trimmed", "  ada@contoso.com \t", "ada@contoso.com"),
            (
                "domain lower-cased, local kept",
                "Ada.Lovelace@CONTOSO.Com",
                "Ada.Lovelace@contoso.com",
            ),
            (
                "trailing dot removed",
                "ada@contoso.com.",
                "ada@contoso.com",
            ),
            (
                "unicode domain to punycode",
                "ada@münchen.de",
                "ada@xn--mnchen-3ya.de",
            ),
            (
                "upper-case unicode domain",
                "ada@MÜNCHEN.DE",
                "ada@xn--mnchen-3ya.de",
            ),
            (
                "punycode kept",
                "ada@xn--mnchen-3ya.de",
                "ada@xn--mnchen-3ya.de",
            ),
            (
                "allowed punctuation",
                "o'brien-x_y.z@contoso.com",
                "o'brien-x_y.z@contoso.com",
            ),
            (
                "subdomain",
                "ada@eu.sales.contoso.com",
                "ada@eu.sales.contoso.com",
            ),
            (
                "64-char local part",
                &format!("{}@contoso.com", "a".repeat(64)),
                &format!("{}@contoso.com", "a".repeat(64)),
            ),
        ];
        for (description, input, expected) in cases {
            let parsed =
                EmailAddress::parse(input).unwrap_or_else(|e| panic!("{description}: {e}"));
            assert_eq!(parsed.as_str(), expected, "{description}");
        }
    }

    #[test]
    fn refuses_invalid_addresses() {
        let long_local = format!("{}@contoso.com", "a".repeat(65));
        let long_domain = format!("a@{}.com", ["abcdefghij"; 25].join("."));
        let cases: [(&str, &str, EmailError); 22] = [
            ("empty", "", EmailError::Missing),
            ("blank", "   ", EmailError::Missing),
            ("no at sign", "ada.contoso.com", EmailError::NotOneAddress),
            (
                "two at signs",
                "ada@lovelace@contoso.com",
                EmailError::NotOneAddress,
            ),
            (
                "two addresses",
                "ada@contoso.com,bob@contoso.com",
                EmailError::NotOneAddress,
            ),
            (
                "inner space",
                "ada lovelace@contoso.com",
                EmailError::NotOneAddress,
            ),
            ("empty local", "@contoso.com", EmailError::LocalLength),
            ("65-char local", &long_local, EmailError::LocalLength),
            (
                "plus tag (Graph refuses +)",
                "ada+x@contoso.com",
                EmailError::LocalCharacters,
            ),
            (
                "angle brackets",
                "<ada>@contoso.com",
                EmailError::LocalCharacters,
            ),
            (
                "quoted local",
                "\"ada\"@contoso.com",
                EmailError::LocalCharacters,
            ),
            (
                "non-ascii local",
                "adä@contoso.com",
                EmailError::LocalCharacters,
            ),
            ("leading dot", ".ada@contoso.com", EmailError::LocalDots),
            ("trailing dot", "ada.@contoso.com", EmailError::LocalDots),
            ("double dot", "a..da@contoso.com", EmailError::LocalDots),
            ("single label domain", "ada@localhost", EmailError::Domain),
            ("ip literal", "ada@[127.0.0.1]", EmailError::Domain),
            ("numeric tld", "ada@127.0.0.1", EmailError::Domain),
            (
                "underscore in domain",
                "ada@con_toso.com",
                EmailError::Domain,
            ),
            (
                "leading hyphen label",
                "ada@-contoso.com",
                EmailError::Domain,
            ),
            ("empty label", "ada@contoso..com", EmailError::Domain),
            ("domain too long", &long_domain, EmailError::Domain),
        ];
        for (description, input, expected) in cases {
            assert_eq!(
                EmailAddress::parse(input).err(),
                Some(expected),
                "{description}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_mailbox() {
        let email = EmailAddress::parse("ada@contoso.com").unwrap();
        assert_eq!(format!("{email:?}"), "EmailAddress(***@contoso.com)");
    }

    #[test]
    fn ancestors_go_from_nearest_to_farthest() {
        let domain = EmailDomain::parse("a.b.contoso.com").unwrap();
        assert_eq!(
            domain.ancestors().collect::<Vec<_>>(),
            ["b.contoso.com", "contoso.com", "com"]
        );
    }
}
