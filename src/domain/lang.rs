//! The languages the site and the mails speak.

/// English pages at the site's root, French under `fr/`; mails follow the sign-up's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    /// `fr`, `fr-CA`, `FR` are French; anything else (or nothing) is English.
    pub fn from_tag(tag: &str) -> Self {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("fr") {
            Self::Fr
        } else {
            Self::En
        }
    }

    /// The site's folder for this language, under `SIGNUP_SITE_URL`.
    pub fn folder(self) -> &'static str {
        match self {
            Self::En => "",
            Self::Fr => "fr/",
        }
    }

    /// As stored in the row's `Language` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
        }
    }
}
