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

/// Optional free text a partner or an administrator writes, with a length limit.
///
/// No control characters (C0, DEL, C1) except a line break where the text may be a
/// paragraph ([`FreeText::parse_paragraph`]): a carriage return, an escape sequence or a
/// backspace in a stored value would steer the terminal of the administrator who reads it
/// (`none\rAPPROVED BY SECURITY` overwrites its own label). Browsers submit a textarea's
/// line breaks as `\r\n` (the HTML form-submission rules), so a paragraph's `\r\n` is
/// accepted and stored as `\n`, the one line break stored text has; a lone `\r` is refused.
/// The limit counts the normalised text, as the textarea's own `maxlength` counter does.
/// Bidirectional overrides are accepted (right-to-left writing may need them); the admin
/// command line shows them escaped.
#[derive(Clone, PartialEq, Eq)]
pub struct FreeText(String);

/// Which line structure a [`FreeText`] may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    One,
    Many,
}

impl FreeText {
    /// One line (`company`); `None` for an absent or blank value.
    pub fn parse_line(input: Option<&str>, max_chars: usize) -> Result<Option<Self>, TextError> {
        Self::parse(input, max_chars, Lines::One)
    }

    /// Lines separated by `\n` or `\r\n` (`justification`, an administrator's reason);
    /// `None` for an absent or blank value.
    pub fn parse_paragraph(
        input: Option<&str>,
        max_chars: usize,
    ) -> Result<Option<Self>, TextError> {
        Self::parse(input, max_chars, Lines::Many)
    }

    fn parse(
        input: Option<&str>,
        max_chars: usize,
        lines: Lines,
    ) -> Result<Option<Self>, TextError> {
        let Some(trimmed) = input.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let text = match lines {
            Lines::One => trimmed.to_owned(),
            Lines::Many => trimmed.replace("\r\n", "\n"),
        };
        if text.chars().count() > max_chars {
            return Err(TextError::TooLong(max_chars));
        }
        if text
            .chars()
            .any(|c| c.is_control() && !(c == '\n' && lines == Lines::Many))
        {
            return Err(TextError::ControlCharacters);
        }
        Ok(Some(Self(text)))
    }

    /// Text read back from a stored row, as it is: rows written before the control-character
    /// rule can hold any character, and refusing to read them would hide the request from
    /// administrators (who see such characters escaped). `None` for a blank value.
    pub fn stored(text: Option<String>) -> Option<Self> {
        text.filter(|t| !t.trim().is_empty()).map(Self)
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
        let line = |text| FreeText::parse_line(Some(text), 5).map(|t| t.map(|t| t.0));
        let paragraph = |text| FreeText::parse_paragraph(Some(text), 5).map(|t| t.map(|t| t.0));
        let refused = || Err(TextError::ControlCharacters);
        let cases = [
            (
                "absent",
                FreeText::parse_line(None, 5).map(|t| t.map(|t| t.0)),
                Ok(None),
            ),
            ("blank", line("  "), Ok(None)),
            ("trimmed", line(" ab "), Ok(Some("ab".into()))),
            ("too long", line("abcdef"), Err(TextError::TooLong(5))),
            ("line break in a line", line("a\nb"), refused()),
            ("tab", line("a\tb"), refused()),
            ("bell", paragraph("a\u{7}"), refused()),
            ("escape", paragraph("a\u{1b}[2J"), refused()),
            ("carriage return", paragraph("a\rb"), refused()),
            ("tab in a paragraph", paragraph("a\tb"), refused()),
            ("DEL", paragraph("a\u{7f}"), refused()),
            ("C1 CSI", paragraph("a\u{9b}2J"), refused()),
            ("line break", paragraph("a\nb"), Ok(Some("a\nb".into()))),
            (
                "CRLF stored as LF",
                paragraph("a\r\nb"),
                Ok(Some("a\nb".into())),
            ),
            (
                "CRLF counts one",
                paragraph("ab\r\ncd"),
                Ok(Some("ab\ncd".into())),
            ),
            (
                "right-to-left mark",
                paragraph("\u{2067}ab\u{2069}"),
                Ok(Some("\u{2067}ab\u{2069}".into())),
            ),
        ];
        for (description, parsed, expected) in cases {
            assert_eq!(parsed, expected, "{description}");
        }
    }

    #[test]
    fn stored_text_is_read_as_it_is() {
        let text = "none\rAPPROVED\u{1b}[2J".to_owned();
        assert_eq!(
            FreeText::stored(Some(text.clone())).map(|t| t.0),
            Some(text)
        );
        assert_eq!(FreeText::stored(Some(" ".into())), None);
    }
}
