//! Where the sign-up page lives (`SIGNUP_SITE_URL`): read by [`crate::settings`], used by
//! the HTTP edge ([`crate::functions::html_redirect`]) for its redirects. Its own module so
//! the settings do not depend on the edge.

/// The setting that names the site's address.
pub const SITE_URL_SETTING: &str = "SIGNUP_SITE_URL";

/// Where the sign-up page's own pages live, always ending in `/`: an absolute `http(s)` URL
/// (`https://signup.contoso.example/`) or a path on the API's own origin (`/`, the default:
/// the local host runner serves the site beside the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteBase(String);

impl Default for SiteBase {
    fn default() -> Self {
        Self("/".to_owned())
    }
}

impl SiteBase {
    /// Parses the setting; empty means the default, `/`.
    pub fn parse(text: &str) -> Result<Self, SiteBaseError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        let with_slash = |s: &str| {
            if s.ends_with('/') {
                s.to_owned()
            } else {
                format!("{s}/")
            }
        };
        if text.starts_with('/') {
            // `//host` would be another origin (a scheme-relative URL), `\` is read as `/`
            // by browsers: neither is a path on this origin.
            if text.starts_with("//") || text.contains(['\\', '?', '#']) {
                return Err(SiteBaseError::Path);
            }
            return Ok(Self(with_slash(text)));
        }
        let url = url::Url::parse(text).map_err(|_| SiteBaseError::Neither)?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(SiteBaseError::Url);
        }
        Ok(Self(with_slash(url.as_str())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a `SIGNUP_SITE_URL` value is not a [`SiteBase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SiteBaseError {
    #[error("neither an http(s) URL nor a path starting with /")]
    Neither,
    #[error("a path such as /signup/ (no //, \\, query or fragment)")]
    Path,
    #[error("an http(s) URL without user, query or fragment")]
    Url,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_base_is_an_http_url_or_a_local_path() {
        let ok = |text| SiteBase::parse(text).unwrap().as_str().to_owned();
        assert_eq!(ok(""), "/");
        assert_eq!(ok("/signup"), "/signup/");
        assert_eq!(
            ok("https://signup.contoso.example"),
            "https://signup.contoso.example/"
        );
        assert_eq!(
            ok("http://127.0.0.1:7071/site/"),
            "http://127.0.0.1:7071/site/"
        );
        for bad in [
            "//evil.example/",
            "/a\\b",
            "/a?b",
            "javascript:alert(1)",
            "ftp://x.example/",
            "https://u:p@x.example/",
            "https://x.example/?a=1",
            "signup.contoso.example",
        ] {
            assert!(SiteBase::parse(bad).is_err(), "{bad}");
        }
    }
}
