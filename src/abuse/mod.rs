//! Abuse resistance for the public form: a captcha checked server-side, rate limits per
//! client IP, e-mail domain and address (shared by every instance through Table Storage),
//! and the client IP that both rely on. SECURITY.md has the threat model.

mod captcha;
mod client_ip;
mod rate_limit;

pub use captcha::{CaptchaError, CaptchaProvider, CaptchaSettings, CaptchaVerifier};
pub use client_ip::client_ip;
pub use rate_limit::{Limit, Limited, RateLimitSettings, RateLimiter, Scope};

use std::fmt;

/// A secret setting (captcha secret, …): `Debug` prints `***`, and there is no `Display`,
/// so it cannot reach a log line or an error text by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
