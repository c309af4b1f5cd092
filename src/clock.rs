//! The current time, injectable so tests control it instead of sleeping.

use std::sync::{Arc, Mutex};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// RFC 3339 text of a time (`2026-11-24T10:00:00Z` for UTC): how rows, answers and the
/// command line write dates.
pub fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

/// A whole number and one unit: `45s`, `30m`, `12h`, `7d`, `4w`. The one syntax for
/// lengths of time people write: rate-limit windows (`SIGNUP_RATE_LIMITS`) and the command
/// line's `--since`. Zero is a length like any other; a caller that cannot use it says so.
pub fn parse_period(text: &str) -> Result<std::time::Duration, PeriodError> {
    let bad = || PeriodError(text.to_owned());
    let trimmed = text.trim();
    // By character, not byte: text ending in `é` must not split inside it.
    let unit = trimmed.chars().last().ok_or_else(bad)?;
    let number = &trimmed[..trimmed.len() - unit.len_utf8()];
    // Digits only: `u64::from_str` would also take a leading `+`.
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds_per_unit: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds_per_unit)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

/// Text that [`parse_period`] does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a length of time such as 30m, 12h, 7d or 4w")]
pub struct PeriodError(String);

#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(OffsetDateTime::now_utc))
    }

    /// A clock that stands still until moved with the returned handle.
    pub fn manual(start: OffsetDateTime) -> (Self, ManualTime) {
        let time = ManualTime(Arc::new(Mutex::new(start)));
        let handle = time.clone();
        (Self(Arc::new(move || handle.now())), time)
    }

    /// A clock that reads the time from `now`.
    pub fn from_fn(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// Moves a [`Clock::manual`] clock.
#[derive(Clone)]
pub struct ManualTime(Arc<Mutex<OffsetDateTime>>);

impl ManualTime {
    pub fn now(&self) -> OffsetDateTime {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn advance(&self, by: time::Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_a_whole_number_and_one_unit() {
        let cases = [
            ("seconds", "45s", 45),
            ("minutes", "30m", 1800),
            ("hours", "12h", 43_200),
            ("days", "7d", 604_800),
            ("weeks", "2w", 1_209_600),
            ("zero", "0d", 0),
            ("spaces around", " 1h ", 3600),
        ];
        for (description, text, seconds) in cases {
            assert_eq!(
                parse_period(text),
                Ok(std::time::Duration::from_secs(seconds)),
                "{description}"
            );
        }
        for bad in [
            "",
            "d",
            "7",
            "7y",
            "-",
            "-1d",
            "+1d",
            "1.5h",
            "1 h",
            "1H",
            "7é",
            "99999999999999999w",
        ] {
            assert_eq!(
                parse_period(bad),
                Err(PeriodError(bad.to_owned())),
                "{bad:?}"
            );
        }
    }
}
