//! Free-text fields: a person's display name and the optional company and justification.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is required")]
    Missing,
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("contains control characters")]
    ControlCharacters,
}

/// The guest's display name in the directory: trimmed, 1–256 characters, no control
/// characters (Graph stores it as `displayName` on the guest user).
#[derive(Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(TextError::Missing);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(TextError::TooLong(Self::MAX_CHARS));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(TextError::ControlCharacters);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Personal data: kept out of `Debug` output so it never reaches a log line.
impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DisplayName(..)")
    }
}

/// Optional free text with a length limit. Line breaks and tabs are allowed (a
/// justification may be a paragraph); other control characters are not.
#[derive(Clone, PartialEq, Eq)]
pub struct FreeText(String);

impl FreeText {
    /// `None` for an absent or blank value.
    pub fn parse_optional(
        input: Option<&str>,
        max_chars: usize,
    ) -> Result<Option<Self>, TextError> {
        let Some(trimmed) = input.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        if trimmed.chars().count() > max_chars {
            return Err(TextError::TooLong(max_chars));
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(TextError::ControlCharacters);
        }
        Ok(Some(Self(trimmed.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FreeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FreeText({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_rules() {
        let cases = [
            ("trimmed", "  Ada Lovelace ", Ok("Ada Lovelace")),
            ("unicode", "Zoë Ångström 李", Ok("Zoë Ångström 李")),
            ("256 chars", &"é".repeat(256), Ok(&*"é".repeat(256))),
            ("empty", "", Err(TextError::Missing)),
            ("blank", " \t ", Err(TextError::Missing)),
            ("257 chars", &"é".repeat(257), Err(TextError::TooLong(256))),
            (
                "newline inside",
                "Ada\nLovelace",
                Err(TextError::ControlCharacters),
            ),
            ("nul inside", "Ada\0", Err(TextError::ControlCharacters)),
        ];
        for (description, input, expected) in cases {
            let parsed = DisplayName::parse(input);
            assert_eq!(
                parsed.as_ref().map(DisplayName::as_str).map_err(|e| *e),
                expected,
                "{description}"
            );
        }
    }

    #[test]
    fn free_text_rules() {
        assert_eq!(FreeText::parse_optional(None, 5), Ok(None));
        assert_eq!(FreeText::parse_optional(Some("  "), 5), Ok(None));
        assert_eq!(
            FreeText::parse_optional(Some("a\nb"), 5)
                .unwrap()
                .unwrap()
                .as_str(),
            "a\nb"
        );
        assert_eq!(
            FreeText::parse_optional(Some("abcdef"), 5),
            Err(TextError::TooLong(5))
        );
        assert_eq!(
            FreeText::parse_optional(Some("a\u{7}"), 5),
            Err(TextError::ControlCharacters)
        );
    }
}
