//! Stored text made safe to print on an administrator's terminal: every character that
//! can steer the terminal is written as a visible escape (`\r`, `\u{1b}`).
//!
//! Partners write `Company` and `Justification`, and rows written before intake refused
//! control characters can hold any of them: a raw `\r` moves the cursor back and overwrites
//! the line's own label (`none\rAPPROVED BY SECURITY`), ESC starts a sequence that can
//! recolour, clear or retitle the terminal. The escape makes them visible, not reversible:
//! a backslash a partner typed stays as typed, which shows text and steers nothing.

use std::fmt::Write;

/// Whether printing `c` as it is could change what a terminal shows elsewhere on the line
/// or screen. Control characters: C0 (including `\r`, backspace, ESC), DEL and C1 (U+009B
/// is an 8-bit CSI to some terminals). Bidirectional embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069): they reorder the rest of a line as it is displayed, so
/// `approved by` can be made to read as something else (the "Trojan Source" characters,
/// CVE-2021-42574). The marks U+200E/U+200F are not listed: they only affect neutral
/// characters next to them and cannot reverse a run of text.
pub(super) fn steers(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `\n` stays a line break (a field of `show`, whose continuation lines are
/// indented) or is escaped too (a cell of the one-line-per-request table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Breaks {
    Keep,
    Escape,
}

/// `text` with every character that [`steers`] the terminal written as an escape: `\r`,
/// `\t`, `\n` (unless kept), and `\u{1b}` for the others.
pub(super) fn visible(text: &str, breaks: Breaks) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' if breaks == Breaks::Keep => out.push(c),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if steers(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "{}", c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

/// JSON text with the characters that [`steers`] the terminal escaped as `\uXXXX`.
/// serde_json already escapes C0; DEL, C1 and the bidirectional controls it writes raw.
/// They can only occur inside JSON strings (the rest of the document is ASCII), where
/// `\uXXXX` means the same character, so the document's value does not change.
pub(super) fn visible_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if steers(c) && c != '\n' {
            // `\n` here is the pretty printer's own line break: serde_json escapes it in strings.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_written_visibly() {
        let cases = [
            ("plain", "Contoso, Ltd", "Contoso, Ltd"),
            ("unicode", "Zoë 李 שלום", "Zoë 李 שלום"),
            ("carriage return", "none\rAPPROVED", "none\\rAPPROVED"),
            ("escape sequence", "a\u{1b}[2Jb", "a\\u{1b}[2Jb"),
            ("backspace", "ok\u{8}\u{8}no", "ok\\u{8}\\u{8}no"),
            ("tab", "a\tb", "a\\tb"),
            ("nul", "a\0", "a\\u{0}"),
            ("DEL", "a\u{7f}", "a\\u{7f}"),
            ("C1 CSI", "a\u{9b}31m", "a\\u{9b}31m"),
            (
                "right-to-left override",
                "\u{202e}devorppa",
                "\\u{202e}devorppa",
            ),
            ("isolates", "\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
            ("a typed backslash stays", "C:\\r", "C:\\r"),
        ];
        for (description, input, expected) in cases {
            assert_eq!(visible(input, Breaks::Keep), expected, "{description}");
            assert_eq!(visible(input, Breaks::Escape), expected, "{description}");
        }
        assert_eq!(visible("a\nb", Breaks::Keep), "a\nb");
        assert_eq!(visible("a\nb", Breaks::Escape), "a\\nb");
    }

    #[test]
    fn json_keeps_its_value_and_shows_no_raw_controls() {
        let value = "none\r\u{1b}[2J\u{7f}\u{9b}\u{202e}x\u{2069}";
        let json = visible_json(&serde_json::to_string_pretty(&[value]).unwrap());
        assert!(!json.chars().any(|c| steers(c) && c != '\n'), "{json}");
        let back: Vec<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [value]);
    }
}
