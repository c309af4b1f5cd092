//! What the page and the mails say about the inviting organisation besides its name
//! (`SIGNUP_ORG_NAME`): its logo (`SIGNUP_LOGO_URL`), where partners ask for help
//! (`SIGNUP_SUPPORT_CONTACT`, an address or an https:// page) and its privacy notice
//! (`SIGNUP_PRIVACY_URL`). All optional and public: `b2b-signup site config` writes them to
//! `config.json` (the page shows the logo in its header, the contact and the notice in its
//! footer), and every partner mail ends with the contact and the notice.
//!
//! A link is an `https://` address or a path on the sign-up site (`/privacy.html`); never
//! `http:`, `javascript:`, credentials, or a `//host` that leaves the site unannounced.

use serde::Serialize;

use crate::domain::EmailAddress;

pub const LOGO_URL_SETTING: &str = "SIGNUP_LOGO_URL";
pub const SUPPORT_CONTACT_SETTING: &str = "SIGNUP_SUPPORT_CONTACT";
pub const PRIVACY_URL_SETTING: &str = "SIGNUP_PRIVACY_URL";

/// Longer than any real link; a guard against a pasted document.
const MAX_LINK: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} must be {expected}, not {value:?}")]
pub struct BrandingError {
    pub name: &'static str,
    pub expected: &'static str,
    pub value: String,
}

/// Where partners ask for help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SupportContact {
    Email(String),
    Url(String),
}

impl SupportContact {
    /// The text shown (the address, or the page's address).
    pub fn text(&self) -> &str {
        match self {
            Self::Email(address) | Self::Url(address) => address,
        }
    }

    /// The link target (`mailto:` for an address).
    pub fn href(&self) -> String {
        match self {
            Self::Email(address) => format!("mailto:{address}"),
            Self::Url(url) => url.clone(),
        }
    }
}

/// The three settings, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Branding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support: Option<SupportContact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy_url: Option<String>,
}

impl Branding {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, BrandingError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let link = |name: &'static str| -> Result<Option<String>, BrandingError> {
            get(name)
                .map(|value| {
                    site_link(&value).ok_or(BrandingError {
                        name,
                        expected: "an https:// address or a path on the sign-up site such as /privacy.html",
                        value,
                    })
                })
                .transpose()
        };
        let support = get(SUPPORT_CONTACT_SETTING)
            .map(|value| {
                if let Ok(address) = EmailAddress::parse(&value) {
                    return Ok(SupportContact::Email(address.as_str().to_owned()));
                }
                https_url(&value)
                    .map(SupportContact::Url)
                    .ok_or(BrandingError {
                        name: SUPPORT_CONTACT_SETTING,
                        expected: "an e-mail address or an https:// address",
                        value,
                    })
            })
            .transpose()?;
        Ok(Self {
            logo_url: link(LOGO_URL_SETTING)?,
            support,
            privacy_url: link(PRIVACY_URL_SETTING)?,
        })
    }

    /// The logo's origin when it is on another site (for the page's `img-src`).
    pub fn logo_origin(&self) -> Option<String> {
        let url = url::Url::parse(self.logo_url.as_deref()?).ok()?;
        Some(url.origin().ascii_serialization())
    }
}

/// `value` as an https:// address without credentials, or `None`.
fn https_url(value: &str) -> Option<String> {
    if value.len() > MAX_LINK || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let url = url::Url::parse(value).ok()?;
    (url.scheme() == "https"
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none())
    .then(|| url.to_string())
}

/// An https:// address, or a path on the site (`/…`, not `//host`), or `None`.
fn site_link(value: &str) -> Option<String> {
    if value.starts_with('/') {
        let plain = value.len() <= MAX_LINK
            && !value.starts_with("//")
            && !value.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '\\' | '"' | '<' | '>')
            });
        return plain.then(|| value.to_owned());
    }
    https_url(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(pairs: &[(&str, &str)]) -> Result<Branding, BrandingError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Branding::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn nothing_set_is_nothing_shown() {
        assert_eq!(build(&[]).unwrap(), Branding::default());
        assert_eq!(
            build(&[(LOGO_URL_SETTING, "  ")]).unwrap(),
            Branding::default()
        );
    }

    #[test]
    fn links_are_https_or_paths_on_the_site_and_contacts_an_address_or_https() {
        let branding = build(&[
            (LOGO_URL_SETTING, "https://cdn.contoso.example/logo.svg"),
            (SUPPORT_CONTACT_SETTING, " help@contoso.example "),
            (PRIVACY_URL_SETTING, "/privacy.html"),
        ])
        .unwrap();
        assert_eq!(
            branding.logo_url.as_deref(),
            Some("https://cdn.contoso.example/logo.svg")
        );
        assert_eq!(
            branding.support,
            Some(SupportContact::Email("help@contoso.example".into()))
        );
        assert_eq!(branding.privacy_url.as_deref(), Some("/privacy.html"));
        assert_eq!(
            branding.logo_origin().as_deref(),
            Some("https://cdn.contoso.example")
        );

        let on_site = build(&[
            (LOGO_URL_SETTING, "/assets/logo.png"),
            (SUPPORT_CONTACT_SETTING, "https://contoso.example/help"),
        ])
        .unwrap();
        assert_eq!(on_site.logo_origin(), None, "the page's own origin");
        assert_eq!(
            on_site.support.unwrap().href(),
            "https://contoso.example/help"
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting() {
        let cases = [
            (LOGO_URL_SETTING, "http://contoso.example/logo.png"),
            (LOGO_URL_SETTING, "javascript:alert(1)"),
            (LOGO_URL_SETTING, "//evil.example/logo.png"),
            (LOGO_URL_SETTING, "logo.png"),
            (
                PRIVACY_URL_SETTING,
                "https://user:pw@contoso.example/privacy",
            ),
            (PRIVACY_URL_SETTING, "/privacy\".html"),
            (PRIVACY_URL_SETTING, "ftp://contoso.example/privacy"),
            (SUPPORT_CONTACT_SETTING, "call us"),
            (SUPPORT_CONTACT_SETTING, "http://contoso.example/help"),
            (SUPPORT_CONTACT_SETTING, "/help"),
        ];
        for (name, value) in cases {
            let error = build(&[(name, value)]).unwrap_err();
            assert_eq!(error.name, name, "{value}");
            assert!(
                error.to_string().starts_with(&format!("{name} must be")),
                "{error}"
            );
        }
    }
}
