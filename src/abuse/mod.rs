//! Abuse resistance for the public form: a captcha checked server-side, rate limits per
//! client IP, e-mail domain and address (shared by every instance through Table Storage),
//! and the client IP that both rely on. SECURITY.md has the threat model.

mod captcha;
mod client_ip;
mod rate_limit;

pub use captcha::{CaptchaError, CaptchaProvider, CaptchaSettings, CaptchaVerifier};
pub use client_ip::client_ip;
pub use rate_limit::{Limit, Limited, RateLimitSettings, RateLimiter, Scope};

pub use crate::secret::Secret;
