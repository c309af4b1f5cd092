//! Who approved, denied or retried a request, as the row's `DecidedBy` and `RetriedBy`
//! columns record it.

use std::fmt;

/// Who decided (or retried) a request. Its text ([`fmt::Display`], the one place that writes it) is what
/// rows, answers and the command line show, and what the Python interop tests read:
/// `system`, `cli:<user>`, `key:<name>`, `function key`, or a name as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// Reconcile, denying a request whose decision deadline passed.
    System,
    /// The command line, run by this operating-system user (`$USER`).
    Cli(String),
    /// An HTTP caller whose function key has this name (`x-functions-key-name`).
    FunctionKey(String),
    /// An HTTP caller with a function key whose name the host did not pass on.
    UnnamedKey,
    /// A person or tool named verbatim: the App Service authentication principal
    /// (`x-ms-client-principal-name`) or the command line's `--by`.
    Named(String),
}

const SYSTEM: &str = "system";
const CLI_PREFIX: &str = "cli:";
const KEY_PREFIX: &str = "key:";
const UNNAMED_KEY: &str = "function key";

impl Decider {
    /// Reads a row's `DecidedBy` back. Any text is some decider (a `--by` name can look like
    /// anything), and reading then writing gives the same text.
    pub fn from_text(text: &str) -> Self {
        if text == SYSTEM {
            Self::System
        } else if text == UNNAMED_KEY {
            Self::UnnamedKey
        } else if let Some(user) = text.strip_prefix(CLI_PREFIX) {
            Self::Cli(user.to_owned())
        } else if let Some(key) = text.strip_prefix(KEY_PREFIX) {
            Self::FunctionKey(key.to_owned())
        } else {
            Self::Named(text.to_owned())
        }
    }
}

impl fmt::Display for Decider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str(SYSTEM),
            Self::Cli(user) => write!(f, "{CLI_PREFIX}{user}"),
            Self::FunctionKey(key) => write!(f, "{KEY_PREFIX}{key}"),
            Self::UnnamedKey => f.write_str(UNNAMED_KEY),
            Self::Named(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciders_are_written_as_rows_have_always_held_them() {
        let cases = [
            ("expired deadline", Decider::System, "system"),
            ("command line", Decider::Cli("alice".into()), "cli:alice"),
            (
                "named key",
                Decider::FunctionKey("default".into()),
                "key:default",
            ),
            ("unnamed key", Decider::UnnamedKey, "function key"),
            (
                "principal",
                Decider::Named("admin@contoso.com".into()),
                "admin@contoso.com",
            ),
        ];
        for (description, decider, text) in cases {
            assert_eq!(decider.to_string(), text, "{description}");
            assert_eq!(Decider::from_text(text), decider, "{description}");
        }
    }

    #[test]
    fn any_text_reads_back_as_itself() {
        for text in [
            "",
            "cli:",
            "key:",
            "Key:x",
            "System",
            "ops team",
            "cli:bob:key:x",
        ] {
            assert_eq!(Decider::from_text(text).to_string(), text, "{text:?}");
        }
    }
}
