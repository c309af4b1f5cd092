//! The current time, injectable so tests control it instead of sleeping.

use std::sync::{Arc, Mutex};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// RFC 3339 text of a time (`2026-11-24T10:00:00Z` for UTC): how rows, answers and the
/// command line write dates.
pub fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

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
