//! Rate limits per client IP, per e-mail domain and per address, in fixed windows.
//!
//! Counters live in table `SignupRateLimits`, incremented with ETag-guarded updates, so
//! every instance of the app counts against the same numbers. Keys are stored as SHA-256
//! digests: the table never holds IP addresses or e-mail addresses in clear.

use std::{net::IpAddr, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    domain::EmailAddress,
    storage::{CounterStore, StoreError},
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

impl RateLimitSettings {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(Self { limits: Vec::new() });
        }
        let mut limits = Self::default().limits;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || format!("{part:?} is not scope=max/window such as ip=30/1h");
            let (scope, rule) = part.split_once('=').ok_or_else(bad)?;
            let scope = match scope.trim() {
                "ip" => Scope::Ip,
                "domain" => Scope::Domain,
                "address" => Scope::Address,
                _ => return Err(bad()),
            };
            let (max, window) = rule.split_once('/').ok_or_else(bad)?;
            let max: u32 = max.trim().parse().map_err(|_| bad())?;
            let window = parse_window(window.trim()).ok_or_else(bad)?;
            let limit = Limit { max, window };
            match limits.iter_mut().find(|(s, _)| *s == scope) {
                Some(entry) => entry.1 = limit,
                None => limits.push((scope, limit)),
            }
        }
        Ok(Self { limits })
    }
}

fn parse_window(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    Some(Duration::from_secs(
        n * match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        },
    ))
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
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, counters: Arc<dyn CounterStore>) -> Self {
        Self { settings, counters }
    }

    /// Counts one sign-up from `ip` (when known) for `email`; the first limit reached wins.
    /// The three counters are updated concurrently.
    pub async fn check(
        &self,
        ip: Option<IpAddr>,
        email: &EmailAddress,
        now: OffsetDateTime,
    ) -> Result<Result<(), Limited>, StoreError> {
        let ip = ip.map(|ip| ip.to_string());
        let address = format!("{}@{}", email.canonical_local(), email.domain());
        let checks = self.settings.limits.iter().filter_map(|(scope, limit)| {
            let key = match scope {
                Scope::Ip => ip.as_deref()?,
                Scope::Domain => email.domain().as_str(),
                Scope::Address => &address,
            };
            Some(self.hit(*scope, key, *limit, now))
        });
        for result in futures::future::join_all(checks).await {
            if let Err(limited) = result? {
                tracing::info!(scope = limited.scope.as_str(), domain = %email.domain(), "rate limit reached");
                return Ok(Err(limited));
            }
        }
        Ok(Ok(()))
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
            .counters
            .increment(scope.as_str(), &row, limit.max, probably_new)
            .await?;
        if allowed {
            Ok(Ok(()))
        } else {
            let retry_after =
                (start + window - now.unix_timestamp()).clamp(1, i64::from(u32::MAX)) as u32;
            Ok(Err(Limited { scope, retry_after }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
