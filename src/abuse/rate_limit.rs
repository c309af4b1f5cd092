//! Rate limits per client IP, per e-mail domain and per address, in fixed windows.
//!
//! Counters live in table `SignupRateLimits`, incremented with ETag-guarded updates, so
//! every instance of the app counts against the same numbers. Keys are stored as SHA-256
//! digests: the table never holds IP addresses or e-mail addresses in clear.

use std::{collections::HashMap, future::Future, net::IpAddr, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    clock::{PeriodError, parse_period},
    domain::EmailAddress,
    storage::{CounterStore, Increment, StoreError},
};

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Ip,
    Domain,
    Address,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Domain => "domain",
            Self::Address => "address",
        }
    }
}

/// At most `max` sign-ups per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

/// `SIGNUP_RATE_LIMITS`, e.g. `ip=30/1h,domain=300/1h,address=5/1d`; `off` disables them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub limits: Vec<(Scope, Limit)>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let hour = Duration::from_secs(3600);
        Self {
            limits: vec![
                (
                    Scope::Ip,
                    Limit {
                        max: 30,
                        window: hour,
                    },
                ),
                (
                    Scope::Domain,
                    Limit {
                        max: 300,
                        window: hour,
                    },
                ),
                (
                    Scope::Address,
                    Limit {
                        max: 5,
                        window: hour * 24,
                    },
                ),
            ],
        }
    }
}

/// What is wrong with a `SIGNUP_RATE_LIMITS` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitsError {
    #[error("{part:?} is not scope=max/window such as ip=30/1h")]
    Shape { part: String },
    #[error("{part:?}: the scope is ip, domain or address")]
    Scope { part: String },
    #[error("{part:?}: the window: {source}")]
    Window { part: String, source: PeriodError },
    #[error("{part:?}: the window cannot be zero")]
    ZeroWindow { part: String },
}

impl RateLimitSettings {
    pub fn parse(text: &str) -> Result<Self, RateLimitsError> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(Self { limits: Vec::new() });
        }
        let mut limits = Self::default().limits;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let shape = || RateLimitsError::Shape {
                part: part.to_owned(),
            };
            let (scope, rule) = part.split_once('=').ok_or_else(shape)?;
            let scope = match scope.trim() {
                "ip" => Scope::Ip,
                "domain" => Scope::Domain,
                "address" => Scope::Address,
                _ => {
                    return Err(RateLimitsError::Scope {
                        part: part.to_owned(),
                    });
                }
            };
            let (max, window) = rule.split_once('/').ok_or_else(shape)?;
            let max: u32 = max.trim().parse().map_err(|_| shape())?;
            let window = parse_period(window).map_err(|source| RateLimitsError::Window {
                part: part.to_owned(),
                source,
            })?;
            // A zero window would have no start to count from.
            if window.is_zero() {
                return Err(RateLimitsError::ZeroWindow {
                    part: part.to_owned(),
                });
            }
            let limit = Limit { max, window };
            match limits.iter_mut().find(|(s, _)| *s == scope) {
                Some(entry) => entry.1 = limit,
                None => limits.push((scope, limit)),
            }
        }
        Ok(Self { limits })
    }
}

/// A limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    /// Seconds until the window ends.
    pub retry_after: u32,
}

#[derive(Clone)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    counters: Arc<dyn CounterStore>,
    turns: Arc<Turns>,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, counters: Arc<dyn CounterStore>) -> Self {
        Self {
            settings,
            counters,
            turns: Arc::default(),
        }
    }

    /// Counts one sign-up from `ip` for `email` against every limit; the first limit
    /// reached wins. The counters are updated concurrently.
    ///
    /// A sign-up whose client address is not known (`None`: the trusted
    /// `X-Forwarded-For` entries are missing or unreadable) counts against one bucket
    /// shared by all such sign-ups: the IP limit fails closed, it is never skipped.
    pub async fn check(
        &self,
        ip: Option<IpAddr>,
        email: &EmailAddress,
        now: OffsetDateTime,
    ) -> Result<Result<(), Limited>, StoreError> {
        let ip = match ip {
            Some(ip) => ip.to_string(),
            None => {
                if self.counts(Scope::Ip) {
                    tracing::warn!(
                        domain = %email.domain(),
                        "client address unknown (fewer readable X-Forwarded-For entries than SIGNUP_TRUSTED_PROXY_HOPS): counted in the shared unknown bucket"
                    );
                }
                UNKNOWN_CLIENT.to_owned()
            }
        };
        let address = format!("{}@{}", email.canonical_local(), email.domain());
        let checks = self.settings.limits.iter().map(|(scope, limit)| {
            let key = match scope {
                Scope::Ip => ip.as_str(),
                Scope::Domain => email.domain().as_str(),
                Scope::Address => &address,
            };
            self.hit(*scope, key, *limit, now)
        });
        for result in futures::future::join_all(checks).await {
            if let Err(limited) = result? {
                tracing::info!(scope = limited.scope.as_str(), domain = %email.domain(), "rate limit reached");
                return Ok(Err(limited));
            }
        }
        Ok(Ok(()))
    }

    /// Counts one use of a verification link from `ip` against the IP limit: the same
    /// number per window as sign-ups (`POST /api/verify` is as anonymous as a sign-up, and a
    /// guessing client is held back the same way), in a bucket of its own, so partners
    /// clicking their links never use up their office's sign-ups.
    pub async fn check_ip(
        &self,
        ip: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Result<(), Limited>, StoreError> {
        let ip = format!(
            "verify:{}",
            ip.map_or_else(|| UNKNOWN_CLIENT.to_owned(), |ip| ip.to_string())
        );
        for (scope, limit) in &self.settings.limits {
            if *scope == Scope::Ip
                && let Err(limited) = self.hit(Scope::Ip, &ip, *limit, now).await?
            {
                return Ok(Err(limited));
            }
        }
        Ok(Ok(()))
    }

    fn counts(&self, scope: Scope) -> bool {
        self.settings.limits.iter().any(|(s, _)| *s == scope)
    }

    async fn hit(
        &self,
        scope: Scope,
        key: &str,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<Result<(), Limited>, StoreError> {
        let window = limit.window.as_secs().max(1) as i64;
        let start = now.unix_timestamp().div_euclid(window) * window;
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let row = format!("{hex}-{start}");
        // An address or a client IP signs up a few times per window at most, so its counter
        // usually does not exist yet; a domain's counter usually does.
        let probably_new = scope != Scope::Domain;
        let allowed = self
            .turns
            .one_at_a_time(
                (scope, row.clone()),
                self.count(scope, &row, limit.max, probably_new),
            )
            .await?;
        if allowed {
            Ok(Ok(()))
        } else {
            let retry_after =
                (start + window - now.unix_timestamp()).clamp(1, i64::from(u32::MAX)) as u32;
            Ok(Err(Limited { scope, retry_after }))
        }
    }

    /// Counts one against `row`, trying again after a lost race: `true` when allowed.
    async fn count(
        &self,
        scope: Scope,
        row: &str,
        max: u32,
        probably_new: bool,
    ) -> Result<bool, StoreError> {
        let mut create_first = probably_new;
        for attempt in 0..MAX_COUNTER_RACES {
            match self
                .counters
                .try_increment(scope.as_str(), row, max, create_first)
                .await?
            {
                Increment::Counted => return Ok(true),
                Increment::Full => return Ok(false),
                // Another instance counted first: read again after a short, spread-out pause.
                Increment::Raced => tokio::time::sleep(race_pause(attempt)).await,
            }
            // It exists now (we lost a race on it): read before writing.
            create_first = false;
        }
        // Sustained contention on one key is itself a burst: count it as limited.
        Ok(false)
    }
}

/// The per-IP key of every sign-up whose client address is not known. Not an address, so
/// no client's own bucket is this one.
const UNKNOWN_CLIENT: &str = "unknown";

/// Lost races on one counter before the caller is told to slow down.
const MAX_COUNTER_RACES: u32 = 10;

/// The pause after the `attempt`-th lost race (from 0): 2 ms, growing by 3 ms per attempt,
/// plus 0-7 ms of jitter so racing writers do not meet again.
fn race_pause(attempt: u32) -> Duration {
    Duration::from_millis(2 + 3 * u64::from(attempt) + u64::from(jitter()))
}

/// 0-7 ms, from the clock's low bits: enough to spread retries, no RNG crate needed.
fn jitter() -> u8 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        % 8) as u8
}

/// One increment at a time per counter in this process. Concurrent sign-ups for one domain
/// (a partner's team signing up together) would otherwise race on the counter's ETag: each
/// lost race costs a read and a write, and ten lost races count as limited, so 50 at once
/// refused 32–43 % of them far below the limit (docs/PERFORMANCE.md, fix 11). In turn,
/// each increment is one read and one write. Instances still race with each other, rarely.
#[derive(Default)]
struct Turns {
    /// A lock per counter someone is incrementing or waiting for; removed by the last one.
    locks: std::sync::Mutex<HashMap<CounterKey, Arc<tokio::sync::Mutex<()>>>>,
}

type CounterKey = (Scope, String);

impl Turns {
    async fn one_at_a_time<T>(&self, key: CounterKey, work: impl Future<Output = T>) -> T {
        let place = Place::take(self, key);
        let _turn = place.lock.lock().await;
        work.await
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<CounterKey, Arc<tokio::sync::Mutex<()>>>> {
        // A panic while holding it cannot leave the map inconsistent: keep using it.
        self.locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A place in a counter's queue; leaving it (done, or the sign-up dropped) removes the
/// counter's lock once nobody else holds or waits for it.
struct Place<'a> {
    turns: &'a Turns,
    key: CounterKey,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Place<'a> {
    fn take(turns: &'a Turns, key: CounterKey) -> Self {
        let lock = turns.table().entry(key.clone()).or_default().clone();
        Self { turns, key, lock }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut locks = self.turns.table();
        // Ours and the table's only.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counters_take_turns_and_leave_no_lock_behind() {
        let turns = Turns::default();
        let running = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        let key = || (Scope::Domain, "contoso.com-0".to_owned());
        let increments = (0..20).map(|_| {
            turns.one_at_a_time(key(), async {
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            })
        });
        // Another counter does not wait for this one.
        let other = turns.one_at_a_time((Scope::Ip, "203.0.113.1-0".to_owned()), async {
            running.load(std::sync::atomic::Ordering::SeqCst)
        });
        let (_, alongside) = futures::join!(futures::future::join_all(increments), other);
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(alongside, 1, "ran while the domain counter was busy");
        assert!(turns.table().is_empty());

        // A sign-up dropped while waiting leaves nothing behind either.
        let held = Place::take(&turns, key());
        let guard = held.lock.clone().lock_owned().await;
        let mut waiting = Box::pin(turns.one_at_a_time(key(), async {}));
        assert!(futures::poll!(&mut waiting).is_pending());
        drop(waiting);
        drop(guard);
        drop(held);
        assert!(turns.table().is_empty());
    }

    /// Answers each `try_increment` from a script, recording the `create_first` hints.
    struct Scripted {
        answers: std::sync::Mutex<Vec<Increment>>,
        hints: std::sync::Mutex<Vec<bool>>,
    }

    #[async_trait::async_trait]
    impl CounterStore for Scripted {
        async fn try_increment(
            &self,
            _partition: &str,
            _row: &str,
            _max: u32,
            create_first: bool,
        ) -> Result<Increment, StoreError> {
            self.hints.lock().unwrap().push(create_first);
            Ok(self.answers.lock().unwrap().remove(0))
        }
    }

    fn scripted(answers: Vec<Increment>) -> (RateLimiter, Arc<Scripted>) {
        let store = Arc::new(Scripted {
            answers: std::sync::Mutex::new(answers),
            hints: std::sync::Mutex::default(),
        });
        (
            RateLimiter::new(RateLimitSettings::default(), store.clone()),
            store,
        )
    }

    #[tokio::test]
    async fn a_lost_race_is_tried_again_reading_first() {
        let (limiter, store) =
            scripted(vec![Increment::Raced, Increment::Raced, Increment::Counted]);
        assert!(limiter.count(Scope::Address, "row", 5, true).await.unwrap());
        assert_eq!(*store.hints.lock().unwrap(), [true, false, false]);

        let (limiter, store) = scripted(vec![Increment::Full]);
        assert!(!limiter.count(Scope::Domain, "row", 5, false).await.unwrap());
        assert_eq!(
            store.hints.lock().unwrap().len(),
            1,
            "a full counter is final"
        );
    }

    #[tokio::test]
    async fn sustained_races_on_one_counter_count_as_limited() {
        let races = MAX_COUNTER_RACES as usize;
        let (limiter, store) = scripted(vec![Increment::Raced; races + 1]);
        assert!(!limiter.count(Scope::Domain, "row", 5, false).await.unwrap());
        assert_eq!(store.hints.lock().unwrap().len(), races);
    }

    #[test]
    fn race_pauses_grow_and_stay_short() {
        for attempt in 0..MAX_COUNTER_RACES {
            let pause = race_pause(attempt).as_millis() as u64;
            let floor = 2 + 3 * u64::from(attempt);
            assert!((floor..floor + 8).contains(&pause), "{attempt}: {pause}");
        }
    }

    #[test]
    fn settings_errors_name_the_part_and_what_is_wrong() {
        let cases = [
            ("no window", "ip=10", "\"ip=10\" is not scope=max/window"),
            (
                "unknown scope",
                "user=1/1h",
                "the scope is ip, domain or address",
            ),
            (
                "bad unit",
                "ip=10/1y",
                "the window: \"1y\" is not a length of time",
            ),
            ("zero window", "ip=10/0h", "the window cannot be zero"),
        ];
        for (description, text, expected) in cases {
            let error = RateLimitSettings::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{description}: {error}");
        }
    }

    #[test]
    fn settings_parse_and_override_defaults() {
        let parsed = RateLimitSettings::parse("ip=10/15m, address=2/1d").unwrap();
        assert!(parsed.limits.contains(&(
            Scope::Ip,
            Limit {
                max: 10,
                window: Duration::from_secs(900)
            }
        )));
        assert!(parsed.limits.contains(&(
            Scope::Address,
            Limit {
                max: 2,
                window: Duration::from_secs(86_400)
            }
        )));
        assert!(parsed.limits.contains(&(
            Scope::Domain,
            Limit {
                max: 300,
                window: Duration::from_secs(3600)
            }
        )));
        assert!(RateLimitSettings::parse("off").unwrap().limits.is_empty());
        // The one period syntax (crate::clock::parse_period) also takes weeks.
        assert!(
            RateLimitSettings::parse("domain=1000/1w")
                .unwrap()
                .limits
                .contains(&(
                    Scope::Domain,
                    Limit {
                        max: 1000,
                        window: Duration::from_secs(604_800)
                    }
                ))
        );
        for bad in [
            "ip",
            "ip=10",
            "ip=x/1h",
            "ip=10/1y",
            "ip=10/0h",
            "user=1/1h",
        ] {
            assert!(RateLimitSettings::parse(bad).is_err(), "{bad}");
        }
    }
}
