//! NCRONTAB schedules, as `timerTrigger` reads them: six fields
//! `{second} {minute} {hour} {day} {month} {day-of-week}`.
//!
//! Each field is `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a list of
//! those (`1,5-7`). Months and weekdays also take English names (`jan`, `mon`); day-of-week
//! is 0–6 with Sunday 0. As in NCrontab, day-of-month and day-of-week must *both* match
//! (Vixie cron matches either). Times are UTC: the host's default (`WEBSITE_TIME_ZONE`
//! unset). <https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions>

use std::time::Duration;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

/// A parsed schedule; each field is a bit set of the values it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Schedules with no occurrence in this many years are refused rather than waited on.
const SEARCH_YEARS: i32 = 5;

impl Schedule {
    /// Parses six-field NCRONTAB text; refuses schedules that never fire.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [second, minute, hour, day, month, weekday] = fields[..] else {
            return Err(ScheduleError(format!(
                "expected six fields {{second}} {{minute}} {{hour}} {{day}} {{month}} \
                 {{day-of-week}}, found {}",
                fields.len()
            )));
        };
        let schedule = Self {
            seconds: field("second", second, 0, 59, &[])?,
            minutes: field("minute", minute, 0, 59, &[])?,
            hours: field("hour", hour, 0, 23, &[])?,
            days: field("day", day, 1, 31, &[])?,
            months: field("month", month, 1, 12, &MONTHS)?,
            weekdays: field("day-of-week", weekday, 0, 6, &WEEKDAYS)?,
        };
        let probe = Date::from_calendar_date(2024, Month::January, 1)
            .map_err(|e| ScheduleError(e.to_string()))?
            .midnight()
            .assume_utc();
        if schedule.next_after(probe).is_none() {
            return Err(ScheduleError(format!(
                "the schedule never fires (no occurrence within {SEARCH_YEARS} years)"
            )));
        }
        Ok(schedule)
    }

    /// The first occurrence strictly after `after` (whole seconds, UTC).
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        let start = PrimitiveDateTime::new(after.date(), after.time().replace_nanosecond(0).ok()?);
        let mut t = start.checked_add(time::Duration::SECOND)?;
        let limit = start.checked_add(time::Duration::days(i64::from(SEARCH_YEARS) * 366))?;
        while t <= limit {
            let date = t.date();
            if !has(self.months, u8::from(date.month())) {
                let (year, month) = match date.month() {
                    Month::December => (date.year() + 1, Month::January),
                    m => (date.year(), m.next()),
                };
                t = Date::from_calendar_date(year, month, 1).ok()?.midnight();
                continue;
            }
            if !has(self.days, date.day())
                || !has(self.weekdays, date.weekday().number_days_from_sunday())
            {
                t = date.next_day()?.midnight();
                continue;
            }
            if !has(self.hours, t.hour()) {
                t = PrimitiveDateTime::new(date, Time::from_hms(t.hour(), 0, 0).ok()?)
                    .checked_add(time::Duration::HOUR)?;
                continue;
            }
            if !has(self.minutes, t.minute()) {
                t = PrimitiveDateTime::new(date, Time::from_hms(t.hour(), t.minute(), 0).ok()?)
                    .checked_add(time::Duration::MINUTE)?;
                continue;
            }
            if !has(self.seconds, t.second()) {
                t = t.checked_add(time::Duration::SECOND)?;
                continue;
            }
            return Some(t.assume_utc());
        }
        None
    }

    /// Whether consecutive occurrences are at least `interval` apart (sampled from a fixed
    /// date, as the host samples the next few occurrences to decide `useMonitor`).
    pub fn interval_at_least(&self, interval: Duration) -> bool {
        let Ok(start) = Date::from_calendar_date(2024, Month::January, 1) else {
            return true;
        };
        let mut previous = start.midnight().assume_utc();
        let mut gaps = Vec::new();
        for _ in 0..6 {
            let Some(next) = self.next_after(previous) else {
                break;
            };
            gaps.push(next - previous);
            previous = next;
        }
        // The first gap runs from the arbitrary start, not from an occurrence.
        gaps.iter().skip(1).all(|gap| *gap >= interval)
    }
}

fn has(set: u64, value: u8) -> bool {
    value < 64 && set & (1 << value) != 0
}

fn field(name: &str, text: &str, min: u8, max: u8, names: &[&str]) -> Result<u64, ScheduleError> {
    let error = |why: &str| ScheduleError(format!("{name} field {text:?}: {why}"));
    let value = |part: &str| -> Result<u8, ScheduleError> {
        let named = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(part))
            .and_then(|i| u8::try_from(i).ok())
            .map(|i| i + min);
        let number = named.or_else(|| part.parse::<u8>().ok());
        number
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| error(&format!("{part:?} is not a value from {min} to {max}")))
    };
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step = step
                    .parse::<u8>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| error(&format!("step {step:?} is not a positive number")))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(error(&format!("range {range:?} runs backwards")));
            }
            (a, b)
        } else {
            let a = value(range)?;
            // `a/n` means from a to the end in steps of n; a lone `a` is just a.
            (a, if part.contains('/') { max } else { a })
        };
        let mut v = from;
        while v <= to {
            set |= 1 << v;
            v = match v.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn next_occurrences_follow_the_schedule() {
        // (schedule, after, expected next) — 2024-05-01 is a Wednesday.
        let cases = [
            (
                "every second",
                "* * * * * *",
                datetime!(2024-05-01 12:00:00.5 UTC),
                datetime!(2024-05-01 12:00:01 UTC),
            ),
            (
                "every second, strictly after",
                "*/1 * * * * *",
                datetime!(2024-05-01 12:00:00 UTC),
                datetime!(2024-05-01 12:00:01 UTC),
            ),
            (
                "every 5 minutes",
                "0 */5 * * * *",
                datetime!(2024-05-01 12:01:00 UTC),
                datetime!(2024-05-01 12:05:00 UTC),
            ),
            (
                "range with step",
                "0-30/10 * * * * *",
                datetime!(2024-05-01 12:00:31 UTC),
                datetime!(2024-05-01 12:01:00 UTC),
            ),
            (
                "list",
                "0 0 9,17 * * *",
                datetime!(2024-05-01 09:00:00 UTC),
                datetime!(2024-05-01 17:00:00 UTC),
            ),
            (
                "range",
                "0 0 9-10 * * *",
                datetime!(2024-05-01 10:00:00 UTC),
                datetime!(2024-05-02 09:00:00 UTC),
            ),
            (
                "daily at 02:30",
                "0 30 2 * * *",
                datetime!(2024-12-31 03:00:00 UTC),
                datetime!(2025-01-01 02:30:00 UTC),
            ),
            (
                "weekdays at 9",
                "0 0 9 * * 1-5",
                datetime!(2024-05-03 10:00:00 UTC),
                datetime!(2024-05-06 09:00:00 UTC),
            ),
            (
                "sunday is 0",
                "0 0 0 * * 0",
                datetime!(2024-05-01 00:00:00 UTC),
                datetime!(2024-05-05 00:00:00 UTC),
            ),
            (
                "weekday names",
                "0 0 0 * * sat",
                datetime!(2024-05-01 00:00:00 UTC),
                datetime!(2024-05-04 00:00:00 UTC),
            ),
            (
                "month names",
                "0 0 0 1 feb *",
                datetime!(2024-05-01 00:00:00 UTC),
                datetime!(2025-02-01 00:00:00 UTC),
            ),
            (
                "leap day",
                "0 0 0 29 2 *",
                datetime!(2024-03-01 00:00:00 UTC),
                datetime!(2028-02-29 00:00:00 UTC),
            ),
            (
                "day and weekday both match",
                "0 0 0 13 * 5",
                datetime!(2024-01-01 00:00:00 UTC),
                datetime!(2024-09-13 00:00:00 UTC),
            ),
            (
                "31st skips short months",
                "0 0 0 31 * *",
                datetime!(2024-04-01 00:00:00 UTC),
                datetime!(2024-05-31 00:00:00 UTC),
            ),
            (
                "step from a value",
                "0 10/20 * * * *",
                datetime!(2024-05-01 12:31:00 UTC),
                datetime!(2024-05-01 12:50:00 UTC),
            ),
        ];
        for (description, text, after, expected) in cases {
            let schedule = Schedule::parse(text).unwrap_or_else(|e| panic!("{description}: {e}"));
            assert_eq!(schedule.next_after(after), Some(expected), "{description}");
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        let cases = [
            ("five fields", "* * * * *", "six fields"),
            ("seven fields", "* * * * * * *", "six fields"),
            ("second out of range", "60 * * * * *", "second"),
            ("hour out of range", "0 0 24 * * *", "hour"),
            ("day zero", "0 0 0 0 * *", "day"),
            ("weekday seven", "0 0 0 * * 7", "day-of-week"),
            ("zero step", "*/0 * * * * *", "step"),
            ("backwards range", "0 30-10 * * * *", "backwards"),
            ("not a number", "0 x * * * *", "minute"),
            ("never fires", "0 0 0 30 2 *", "never fires"),
        ];
        for (description, text, expected) in cases {
            let error = Schedule::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{description}: {error}");
        }
    }

    #[test]
    fn the_monitor_default_depends_on_the_interval() {
        let minute = Duration::from_secs(60);
        assert!(
            !Schedule::parse("*/1 * * * * *")
                .unwrap()
                .interval_at_least(minute)
        );
        assert!(
            !Schedule::parse("*/30 * * * * *")
                .unwrap()
                .interval_at_least(minute)
        );
        assert!(
            Schedule::parse("0 * * * * *")
                .unwrap()
                .interval_at_least(minute)
        );
        assert!(
            Schedule::parse("0 */5 * * * *")
                .unwrap()
                .interval_at_least(minute)
        );
    }
}
