//! Server-side captcha checks (Turnstile, hCaptcha, reCAPTCHA): the token from the form is
//! sent with the secret and the client IP to the provider's verify endpoint, which answers
//! `{"success": true|false, ...}`. Missing or failed tokens are the caller's problem (400);
//! an unreachable provider fails closed (503): a broken captcha never lets everyone in.

use std::{net::IpAddr, time::Duration};

use reqwest::Url;
use serde::Deserialize;

use super::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptchaProvider {
    Turnstile,
    HCaptcha,
    ReCaptcha,
}

impl CaptchaProvider {
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "turnstile" => Some(Self::Turnstile),
            "hcaptcha" => Some(Self::HCaptcha),
            "recaptcha" => Some(Self::ReCaptcha),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::HCaptcha => "hcaptcha",
            Self::ReCaptcha => "recaptcha",
        }
    }

    /// The provider's documented verify endpoint.
    pub fn default_verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Self::HCaptcha => "https://api.hcaptcha.com/siteverify",
            Self::ReCaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }

    /// The form field the provider's widget fills.
    pub fn form_field(self) -> &'static str {
        match self {
            Self::Turnstile => "cf-turnstile-response",
            Self::HCaptcha => "h-captcha-response",
            Self::ReCaptcha => "g-recaptcha-response",
        }
    }
}

/// `SIGNUP_CAPTCHA_PROVIDER`, `SIGNUP_CAPTCHA_SECRET`, `SIGNUP_CAPTCHA_VERIFY_URL`.
#[derive(Debug, Clone)]
pub struct CaptchaSettings {
    pub provider: CaptchaProvider,
    pub secret: Secret,
    pub verify_url: Url,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptchaError {
    /// No token, or the provider said no.
    #[error("captcha missing or not passed")]
    Failed,
    /// The provider could not be asked (down, slow, odd answer).
    #[error("captcha provider unavailable")]
    Unavailable,
}

/// Longest token accepted (Turnstile documents 2048 characters).
const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone)]
pub struct CaptchaVerifier {
    http: reqwest::Client,
    settings: CaptchaSettings,
}

#[derive(Deserialize)]
struct VerifyAnswer {
    success: bool,
}

impl CaptchaVerifier {
    pub fn new(settings: CaptchaSettings, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, settings })
    }

    pub fn provider(&self) -> CaptchaProvider {
        self.settings.provider
    }

    pub async fn verify(
        &self,
        token: Option<&str>,
        remote_ip: Option<IpAddr>,
    ) -> Result<(), CaptchaError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
            .ok_or(CaptchaError::Failed)?;
        let remote_ip = remote_ip.map(|ip| ip.to_string());
        let mut form = vec![
            ("secret", self.settings.secret.expose()),
            ("response", token),
        ];
        if let Some(ip) = remote_ip.as_deref() {
            form.push(("remoteip", ip));
        }
        let response = self
            .http
            .post(self.settings.verify_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(
                    provider = self.settings.provider.name(),
                    timeout = e.is_timeout(),
                    "captcha provider unreachable"
                );
                CaptchaError::Unavailable
            })?;
        if !response.status().is_success() {
            tracing::warn!(
                provider = self.settings.provider.name(),
                status = response.status().as_u16(),
                "captcha provider error"
            );
            return Err(CaptchaError::Unavailable);
        }
        let answer: VerifyAnswer = response
            .json()
            .await
            .map_err(|_| CaptchaError::Unavailable)?;
        if answer.success {
            Ok(())
        } else {
            Err(CaptchaError::Failed)
        }
    }
}
