//! `b2b-signup site config`: the sign-up page's `config.json`, generated from the policy so
//! the page offers exactly the policy's access options and terms, and the captcha the API
//! checks; `b2b-signup site csp`: the Content-Security-Policy the page needs.
//!
//! The page is public: the file says what a partner may ask for (access options by display
//! name, the terms to accept, the captcha's public site key) and nothing about who may ask
//! (no domains, rules or group ids) and no secret (`SIGNUP_CAPTCHA_SECRET` stays on the server).
//!
//! ```json
//! {"accessOptions": [{"key": "partner-portal", "displayName": "Partner portal"}],
//!  "terms": {"version": "2026-01", "url": "https://contoso.example/terms"},
//!  "captcha": {"provider": "turnstile", "siteKey": "0x4AAA…"},
//!  "retentionDays": 365, "verifyHours": 24}
//! ```
//! `terms` and `captcha` are `null` when there are none; `retentionDays` is
//! `SIGNUP_RETENTION_DAYS` (365 unless set), which the privacy notice states; `verifyHours`
//! is `SIGNUP_VERIFY_HOURS` (24 unless set), how long the verification link works, which the
//! thank-you text states.
//!
//! The admin console (`site/console/`) reads the same file's `console`: how it signs in
//! (the console's app registration, a public client: its id is no secret) and what it asks
//! for, from [`CONSOLE_CLIENT_ID_SETTING`], the tenant's authority and the admin API's app
//! id.
//!
//! ```json
//! {"console": {"clientId": "…", "authority": "https://login.microsoftonline.com/{tenant}",
//!  "knownAuthorities": ["login.microsoftonline.com"],
//!  "scopes": ["api://{admin app id}/user_impersonation"], "apiBase": ""}}
//! ```
//! (left out without a console client id).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use serde::Serialize;

use crate::abuse::CaptchaProvider;
use crate::policy::Policy;

/// The captcha provider the API checks tokens with (`turnstile`, `hcaptcha`, `recaptcha`).
pub const CAPTCHA_PROVIDER_SETTING: &str = "SIGNUP_CAPTCHA_PROVIDER";
/// The provider's public site key, which the page's widget needs.
pub const CAPTCHA_SITE_KEY_SETTING: &str = "SIGNUP_CAPTCHA_SITE_KEY";

/// The admin console's app registration (a single-page app, public client).
pub const CONSOLE_CLIENT_ID_SETTING: &str = "SIGNUP_CONSOLE_CLIENT_ID";
/// The console's authority, whole (`https://host/{tenant}`), when not Entra ID's at
/// `AZURE_AUTHORITY_HOST` + `AZURE_TENANT_ID` (locally: funchost's HTTPS sign-in).
pub const CONSOLE_AUTHORITY_SETTING: &str = "SIGNUP_CONSOLE_AUTHORITY";
const AUTHORITY_HOST_SETTING: &str = "AZURE_AUTHORITY_HOST";
const TENANT_SETTING: &str = "AZURE_TENANT_ID";
const ADMIN_APP_SETTING: &str = "SIGNUP_ADMIN_APP_ID";
/// The admin API's address when it is not the page's origin (the Function App's).
const ADMIN_API_URL_SETTING: &str = "SIGNUP_ADMIN_API_URL";
/// Entra ID's global authority host, as the Azure SDKs default to it.
const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The delegated scope the admin API's app registration exposes (infra/admin-api.bicep).
const ADMIN_API_SCOPE: &str = "user_impersonation";

/// Reads [`CAPTCHA_PROVIDER_SETTING`]: `None` when unset or empty. The same provider names
/// as the API's check ([`crate::abuse::CaptchaProvider`]).
pub fn captcha_provider(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<CaptchaProvider>, SiteConfigError> {
    let Some(value) = lookup(CAPTCHA_PROVIDER_SETTING).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match CaptchaProvider::parse(&value) {
        Some(provider) => Ok(Some(provider)),
        None => Err(SiteConfigError::UnknownProvider(value)),
    }
}

/// Why the page's configuration cannot be written: the captcha settings disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteConfigError {
    #[error(
        "{setting} must be turnstile, hcaptcha or recaptcha, not {0:?}",
        setting = CAPTCHA_PROVIDER_SETTING
    )]
    UnknownProvider(String),
    /// The value is not repeated: it may be the secret pasted into the wrong setting.
    #[error(
        "{} does not look like a site key (letters, digits, - and _)",
        CAPTCHA_SITE_KEY_SETTING
    )]
    NotASiteKey,
    #[error(
        "{} is set but {} is not",
        CAPTCHA_PROVIDER_SETTING,
        CAPTCHA_SITE_KEY_SETTING
    )]
    ProviderWithoutSiteKey,
    #[error(
        "{} is set but {} is not",
        CAPTCHA_SITE_KEY_SETTING,
        CAPTCHA_PROVIDER_SETTING
    )]
    SiteKeyWithoutProvider,
    /// A branding setting is not usable; the message names it.
    #[error(transparent)]
    Branding(#[from] crate::branding::BrandingError),
    /// A console setting is missing or not usable; the message names it.
    #[error("the admin console: {0}")]
    Console(String),
    /// `SIGNUP_RETENTION_DAYS` or `SIGNUP_VERIFY_HOURS` is not a number in range (the
    /// handler's own message, which names the setting).
    #[error("{0}")]
    Retention(String),
}

/// What `config.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteConfig {
    /// Who invites (`SIGNUP_ORG_NAME`): the page says so, as the mails do. Absent when the
    /// setting is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// `SIGNUP_LOGO_URL`, `SIGNUP_SUPPORT_CONTACT`, `SIGNUP_PRIVACY_URL` (`logoUrl`,
    /// `support: {email|url}`, `privacyUrl`), each absent when unset.
    #[serde(flatten)]
    pub branding: crate::branding::Branding,
    /// Every access option, in key order (the policy keeps them by key).
    pub access_options: Vec<AccessChoice>,
    pub terms: Option<TermsLink>,
    pub captcha: Option<CaptchaWidget>,
    /// Left out without a console client id (the console then says it is not set up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleSignIn>,
    /// `SIGNUP_RETENTION_DAYS`: the page's privacy notice states it.
    pub retention_days: u32,
    /// `SIGNUP_VERIFY_HOURS`: the thank-you text says how long the verification link works.
    pub verify_hours: u32,
}

/// How the admin console signs in and what it calls: all public (a public client's id,
/// the tenant's authority, a scope name, an address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleSignIn {
    pub client_id: String,
    /// `https://{host}/{tenant}` (MSAL.js takes HTTPS authorities only).
    pub authority: String,
    /// The authority's host: MSAL.js then trusts it without asking Entra ID's instance
    /// discovery endpoint, so the page calls no other origin.
    pub known_authorities: Vec<String>,
    pub scopes: Vec<String>,
    /// The admin API's base address, `""` for the page's own origin.
    pub api_base: String,
}

impl ConsoleSignIn {
    /// From the settings; `None` without [`CONSOLE_CLIENT_ID_SETTING`].
    pub fn from_settings(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, SiteConfigError> {
        let given = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(client_id) = given(CONSOLE_CLIENT_ID_SETTING) else {
            return Ok(None);
        };
        let missing = |name: &str| {
            SiteConfigError::Console(format!(
                "{CONSOLE_CLIENT_ID_SETTING} is set but {name} is not"
            ))
        };
        let authority = match given(CONSOLE_AUTHORITY_SETTING) {
            Some(authority) => authority,
            None => {
                let host = given(AUTHORITY_HOST_SETTING)
                    .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned());
                let tenant = given(TENANT_SETTING).ok_or_else(|| missing(TENANT_SETTING))?;
                format!("{}/{tenant}", host.trim_end_matches('/'))
            }
        };
        let authority = authority.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&authority).ok().filter(|url| {
            url.scheme() == "https" && url.query().is_none() && url.fragment().is_none()
        });
        let Some(host) = parsed.as_ref().and_then(|url| url.host_str()) else {
            return Err(SiteConfigError::Console(format!(
                "the authority must be an https:// address (MSAL.js refuses others), not \
                 {authority:?}; set {CONSOLE_AUTHORITY_SETTING} or {AUTHORITY_HOST_SETTING}"
            )));
        };
        let known = match parsed.as_ref().and_then(url::Url::port) {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let app = given(ADMIN_APP_SETTING).ok_or_else(|| missing(ADMIN_APP_SETTING))?;
        let api_base = given(ADMIN_API_URL_SETTING)
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_default();
        if !api_base.is_empty() && url::Url::parse(&api_base).is_err() {
            return Err(SiteConfigError::Console(format!(
                "{ADMIN_API_URL_SETTING} is not an address"
            )));
        }
        Ok(Some(Self {
            client_id,
            known_authorities: vec![known],
            authority,
            scopes: vec![format!("api://{app}/{ADMIN_API_SCOPE}")],
            api_base,
        }))
    }

    /// The origins the console's page calls besides its own: the authority's (the token
    /// endpoint, the OpenID configuration) and the admin API's when elsewhere.
    pub fn origins(&self) -> Vec<String> {
        [self.authority.as_str(), self.api_base.as_str()]
            .into_iter()
            .filter_map(|address| url::Url::parse(address).ok())
            .map(|url| url.origin().ascii_serialization())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessChoice {
    pub key: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermsLink {
    /// The page sends it back as `acceptTerms`.
    pub version: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptchaWidget {
    pub provider: CaptchaProvider,
    /// Public by design: it is in every page that shows the widget.
    pub site_key: String,
}

impl SiteConfig {
    /// The page's configuration for `policy`, with the captcha from the settings `lookup`
    /// reads (the environment in the CLI).
    pub fn build(
        policy: &Policy,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SiteConfigError> {
        let provider = captcha_provider(&lookup)?;
        let site_key = lookup(CAPTCHA_SITE_KEY_SETTING)
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty());
        let captcha = match (provider, site_key) {
            (None, None) => None,
            (Some(provider), Some(site_key)) => {
                // Site keys are short tokens (hCaptcha: a GUID; Turnstile: `0x4AAA…`); anything
                // else is a mistake, such as the secret pasted into the wrong setting.
                if site_key.len() > 100
                    || !site_key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                {
                    return Err(SiteConfigError::NotASiteKey);
                }
                Some(CaptchaWidget { provider, site_key })
            }
            (Some(_), None) => return Err(SiteConfigError::ProviderWithoutSiteKey),
            (None, Some(_)) => return Err(SiteConfigError::SiteKeyWithoutProvider),
        };
        let console = ConsoleSignIn::from_settings(&lookup)?;
        Ok(Self {
            console,
            branding: crate::branding::Branding::from_lookup(&lookup)?,
            organization: lookup(crate::mail::ORG_NAME_SETTING)
                .map(|name| name.trim().to_owned())
                .filter(|name| {
                    !name.is_empty()
                        && name.chars().count() <= 100
                        && !name.chars().any(char::is_control)
                }),
            access_options: policy
                .access_options()
                .map(|option| AccessChoice {
                    key: option.key.as_str().to_owned(),
                    display_name: option.display_name.clone(),
                })
                .collect(),
            terms: policy.terms().map(|terms| TermsLink {
                version: terms.version.clone(),
                url: terms.url.clone(),
            }),
            captcha,
            retention_days: crate::settings::retention_days(&lookup)
                .map_err(|e| SiteConfigError::Retention(e.to_string()))?,
            verify_hours: crate::mail::verify_hours(&lookup)
                .map_err(|e| SiteConfigError::Retention(e.to_string()))?,
        })
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        // Only strings, lists and options: serialization cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// `b2b-signup site …`
#[derive(Debug, clap::Subcommand)]
pub enum SiteCommand {
    /// Write the sign-up page's config.json (access options, terms, captcha site key) from
    /// the policy and SIGNUP_CAPTCHA_PROVIDER / SIGNUP_CAPTCHA_SITE_KEY. Never domain lists.
    Config {
        /// The policy file (default: $SIGNUP_POLICY_PATH or policy.json).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Where to write (default: standard output), e.g. site/config.json.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print the Content-Security-Policy the page needs: this origin, plus the origins of
    /// the captcha widget named by SIGNUP_CAPTCHA_PROVIDER. Send it with the page's files
    /// wherever they are hosted (`scripts/run` gives it to funchost's --site-csp).
    Csp,
}

/// Runs a `site` subcommand. Exit codes as the other tools: 0 done, 1 invalid policy,
/// 2 configuration or output problem.
pub fn run(command: SiteCommand) -> ExitCode {
    match command {
        SiteCommand::Config { policy, out } => write_config(policy, out),
        SiteCommand::Csp => {
            let env = |name: &str| std::env::var(name).ok();
            match captcha_provider(env).and_then(|captcha| {
                let console = ConsoleSignIn::from_settings(env)?;
                let branding = crate::branding::Branding::from_lookup(env)?;
                Ok((captcha, console, branding))
            }) {
                Ok((captcha, console, branding)) => {
                    let origins = console.map(|console| console.origins()).unwrap_or_default();
                    let policy = content_security_policy(captcha, &origins);
                    println!("{}", with_logo(&policy, branding.logo_origin().as_deref()));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("b2b-signup: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn write_config(policy: Option<PathBuf>, out: Option<PathBuf>) -> ExitCode {
    let path =
        policy.unwrap_or_else(|| crate::settings::policy_path(&|name| std::env::var(name).ok()));
    let policy = match Policy::load(&path) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("b2b-signup: {e}");
            return ExitCode::from(1);
        }
    };
    let config = match SiteConfig::build(&policy, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("b2b-signup: {e}");
            return ExitCode::from(2);
        }
    };
    let written = match &out {
        Some(file) => write_atomically(file, &config.to_json()),
        None => std::io::stdout()
            .lock()
            .write_all(config.to_json().as_bytes()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let target =
                out.map_or_else(|| "standard output".to_owned(), |p| p.display().to_string());
            eprintln!("b2b-signup: cannot write {target}: {e}");
            ExitCode::from(2)
        }
    }
}

/// The page's Content-Security-Policy: this origin only; a captcha provider adds the
/// origins its widget loads from, as each provider documents:
/// <https://developers.cloudflare.com/turnstile/reference/content-security-policy/>,
/// <https://docs.hcaptcha.com/#content-security-policy-settings>,
/// <https://developers.google.com/recaptcha/docs/faq#im-using-content-security-policy-csp-on-my-website.-how-can-i-configure-it-to-work-with-recaptcha>.
/// `console_origins`: what the admin console calls besides the page's origin (its
/// identity provider, the admin API), allowed to `connect-src` only: the sign-in itself is
/// a top-level navigation, which the policy does not govern.
pub fn content_security_policy(
    captcha: Option<CaptchaProvider>,
    console_origins: &[String],
) -> String {
    let (script, frame, style, connect) = match captcha {
        None => ("", "", "", ""),
        Some(CaptchaProvider::Turnstile) => (
            " https://challenges.cloudflare.com",
            " https://challenges.cloudflare.com",
            "",
            "",
        ),
        Some(CaptchaProvider::HCaptcha) => (
            " https://hcaptcha.com https://*.hcaptcha.com",
            " https://hcaptcha.com https://*.hcaptcha.com",
            " https://hcaptcha.com https://*.hcaptcha.com",
            " https://hcaptcha.com https://*.hcaptcha.com",
        ),
        Some(CaptchaProvider::ReCaptcha) => (
            " https://www.google.com/recaptcha/ https://www.gstatic.com/recaptcha/",
            " https://www.google.com/recaptcha/ https://recaptcha.google.com/recaptcha/",
            "",
            "",
        ),
    };
    let mut connect = connect.to_owned();
    for origin in console_origins {
        if !connect.split(' ').any(|known| known == origin) {
            connect.push(' ');
            connect.push_str(origin);
        }
    }
    let frame = if frame.is_empty() {
        " 'none'".to_owned()
    } else {
        frame.to_owned()
    };
    format!(
        "default-src 'self'; script-src 'self'{script}; style-src 'self'{style}; \
         connect-src 'self'{connect}; frame-src{frame}; img-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// `policy` with `logo` (the logo's origin, when it is on another site) allowed to
/// `img-src`, and to nothing else.
pub fn with_logo(policy: &str, logo: Option<&str>) -> String {
    match logo {
        Some(origin) => policy.replacen("img-src 'self'", &format!("img-src 'self' {origin}"), 1),
        None => policy.to_owned(),
    }
}

/// Writes beside the target and renames, so a server never sends half a file.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_opens_only_the_configured_captcha() {
        let plain = content_security_policy(None, &[]);
        assert!(plain.contains("script-src 'self';"), "{plain}");
        assert!(plain.contains("frame-src 'none';"), "{plain}");
        assert!(!plain.contains("https:"), "{plain}");
        let turnstile = content_security_policy(Some(CaptchaProvider::Turnstile), &[]);
        assert!(
            turnstile.contains("script-src 'self' https://challenges.cloudflare.com;"),
            "{turnstile}"
        );
        assert!(!turnstile.contains("hcaptcha") && !turnstile.contains("google"));
    }

    const POLICY: &str = r#"{
        "defaultAction": "deny",
        "terms": { "version": "2026-01", "url": "https://contoso.example/terms" },
        "accessOptions": {
            "sales-extranet": { "displayName": "Sales extranet", "groups": ["22222222-2222-2222-2222-222222222222"] },
            "partner-portal": { "displayName": "Partner portal", "groups": ["11111111-1111-1111-1111-111111111111"] }
        },
        "rules": [
            { "domains": ["secret-partner.example"], "action": "invite", "access": ["partner-portal"] }
        ]
    }"#;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_config_names_options_and_terms_and_never_domains_or_groups() {
        let policy = Policy::from_json(POLICY).unwrap();
        let json = SiteConfig::build(&policy, lookup(&[])).unwrap().to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "accessOptions": [
                    {"key": "partner-portal", "displayName": "Partner portal"},
                    {"key": "sales-extranet", "displayName": "Sales extranet"}
                ],
                "terms": {"version": "2026-01", "url": "https://contoso.example/terms"},
                "captcha": null,
                "retentionDays": 365,
                "verifyHours": 24
            })
        );
        let config = SiteConfig::build(&policy, lookup(&[("SIGNUP_RETENTION_DAYS", "30")]));
        assert_eq!(
            config.unwrap().retention_days,
            30,
            "the setting the handler reads"
        );
        let bad = SiteConfig::build(&policy, lookup(&[("SIGNUP_RETENTION_DAYS", "forever")]));
        assert!(
            bad.unwrap_err()
                .to_string()
                .starts_with("SIGNUP_RETENTION_DAYS must be")
        );
        let config = SiteConfig::build(&policy, lookup(&[("SIGNUP_VERIFY_HOURS", "48")]));
        assert_eq!(
            config.unwrap().verify_hours,
            48,
            "the setting the mail reads"
        );
        let bad = SiteConfig::build(&policy, lookup(&[("SIGNUP_VERIFY_HOURS", "0")]));
        assert_eq!(
            bad.unwrap_err().to_string(),
            "SIGNUP_VERIFY_HOURS must be a number of hours from 1 to 168, not \"0\""
        );
        for private in ["secret-partner", "1111", "2222", "invite", "deny"] {
            assert!(!json.contains(private), "{private} leaked: {json}");
        }
    }

    #[test]
    fn the_config_carries_the_branding_and_the_csp_allows_an_outside_logo_for_images_only() {
        let policy = Policy::from_json(POLICY).unwrap();
        let config = SiteConfig::build(
            &policy,
            lookup(&[
                ("SIGNUP_LOGO_URL", "https://cdn.contoso.example/logo.svg"),
                ("SIGNUP_SUPPORT_CONTACT", "help@contoso.example"),
                ("SIGNUP_PRIVACY_URL", "/privacy.html"),
            ]),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&config.to_json()).unwrap();
        assert_eq!(value["logoUrl"], "https://cdn.contoso.example/logo.svg");
        assert_eq!(
            value["support"],
            serde_json::json!({"email": "help@contoso.example"})
        );
        assert_eq!(value["privacyUrl"], "/privacy.html");
        let csp = with_logo(
            &content_security_policy(None, &[]),
            config.branding.logo_origin().as_deref(),
        );
        assert!(
            csp.contains("img-src 'self' https://cdn.contoso.example;"),
            "{csp}"
        );
        assert_eq!(csp.matches("cdn.contoso.example").count(), 1, "{csp}");
        assert_eq!(with_logo(&csp, None), csp);

        let unset = SiteConfig::build(&policy, lookup(&[])).unwrap().to_json();
        for key in ["logoUrl", "support", "privacyUrl"] {
            assert!(!unset.contains(key), "absent when unset: {unset}");
        }
        let bad = SiteConfig::build(
            &policy,
            lookup(&[("SIGNUP_LOGO_URL", "http://x.example/l.png")]),
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .starts_with("SIGNUP_LOGO_URL must be")
        );
    }

    #[test]
    fn the_config_names_the_organisation_when_it_is_set() {
        let policy = Policy::from_json(POLICY).unwrap();
        let with = SiteConfig::build(&policy, lookup(&[("SIGNUP_ORG_NAME", " Contoso Ltd ")]));
        assert_eq!(with.unwrap().organization.as_deref(), Some("Contoso Ltd"));
        let json = SiteConfig::build(&policy, lookup(&[])).unwrap().to_json();
        assert!(!json.contains("organization"), "absent when unset: {json}");
    }

    #[test]
    fn the_captcha_needs_a_provider_and_a_site_key_and_never_the_secret() {
        let policy = Policy::from_json(POLICY).unwrap();
        let config = SiteConfig::build(
            &policy,
            lookup(&[
                ("SIGNUP_CAPTCHA_PROVIDER", "Turnstile"),
                ("SIGNUP_CAPTCHA_SITE_KEY", " 0x4AAAAAAAB-c_d "),
                ("SIGNUP_CAPTCHA_SECRET", "0x4-the-secret"),
            ]),
        )
        .unwrap();
        let json = config.to_json();
        assert!(json.contains(r#""provider": "turnstile""#), "{json}");
        assert!(json.contains(r#""siteKey": "0x4AAAAAAAB-c_d""#), "{json}");
        assert!(!json.contains("the-secret"));

        type Settings = &'static [(&'static str, &'static str)];
        let cases: [(&str, Settings, SiteConfigError); 4] = [
            (
                "unknown provider",
                &[
                    ("SIGNUP_CAPTCHA_PROVIDER", "captchaly"),
                    ("SIGNUP_CAPTCHA_SITE_KEY", "k"),
                ],
                SiteConfigError::UnknownProvider("captchaly".into()),
            ),
            (
                "provider without key",
                &[("SIGNUP_CAPTCHA_PROVIDER", "hcaptcha")],
                SiteConfigError::ProviderWithoutSiteKey,
            ),
            (
                "key without provider",
                &[("SIGNUP_CAPTCHA_SITE_KEY", "k")],
                SiteConfigError::SiteKeyWithoutProvider,
            ),
            (
                "not a key",
                &[
                    ("SIGNUP_CAPTCHA_PROVIDER", "recaptcha"),
                    ("SIGNUP_CAPTCHA_SITE_KEY", "a b\"<"),
                ],
                SiteConfigError::NotASiteKey,
            ),
        ];
        for (description, pairs, expected) in cases {
            assert_eq!(
                SiteConfig::build(&policy, lookup(pairs)),
                Err(expected),
                "{description}"
            );
        }
    }

    #[test]
    fn the_console_signs_in_at_the_tenants_https_authority_and_the_policy_allows_only_it() {
        let console = ConsoleSignIn::from_settings(lookup(&[
            (
                "SIGNUP_CONSOLE_CLIENT_ID",
                "11111111-aaaa-4bbb-8ccc-000000000001",
            ),
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            (
                "SIGNUP_ADMIN_APP_ID",
                "22222222-aaaa-4bbb-8ccc-000000000002",
            ),
            ("SIGNUP_ADMIN_API_URL", "https://app.azurewebsites.net/"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            console.authority,
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"
        );
        assert_eq!(console.known_authorities, ["login.microsoftonline.com"]);
        assert_eq!(
            console.scopes,
            ["api://22222222-aaaa-4bbb-8ccc-000000000002/user_impersonation"]
        );
        assert_eq!(console.api_base, "https://app.azurewebsites.net");
        let policy = content_security_policy(None, &console.origins());
        assert!(
            policy.contains(
                "connect-src 'self' https://login.microsoftonline.com https://app.azurewebsites.net;"
            ),
            "{policy}"
        );
        assert!(policy.contains("script-src 'self';"), "{policy}");

        // Locally: funchost's HTTPS sign-in, with its port; no console without a client id.
        let local = ConsoleSignIn::from_settings(lookup(&[
            ("SIGNUP_CONSOLE_CLIENT_ID", "c"),
            (
                "SIGNUP_CONSOLE_AUTHORITY",
                "https://127.0.0.1:7443/.dev-identity/t/",
            ),
            ("SIGNUP_ADMIN_APP_ID", "a"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(local.authority, "https://127.0.0.1:7443/.dev-identity/t");
        assert_eq!(local.known_authorities, ["127.0.0.1:7443"]);
        assert_eq!(local.origins(), ["https://127.0.0.1:7443"]);
        assert_eq!(ConsoleSignIn::from_settings(lookup(&[])), Ok(None));

        for (pairs, named) in [
            (
                &[
                    ("SIGNUP_CONSOLE_CLIENT_ID", "c"),
                    ("SIGNUP_ADMIN_APP_ID", "a"),
                ][..],
                "AZURE_TENANT_ID",
            ),
            (
                &[
                    ("SIGNUP_CONSOLE_CLIENT_ID", "c"),
                    (
                        "SIGNUP_CONSOLE_AUTHORITY",
                        "http://127.0.0.1:7071/.dev-identity/t",
                    ),
                    ("SIGNUP_ADMIN_APP_ID", "a"),
                ][..],
                "https://",
            ),
            (
                &[("SIGNUP_CONSOLE_CLIENT_ID", "c"), ("AZURE_TENANT_ID", "t")][..],
                "SIGNUP_ADMIN_APP_ID",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = pairs;
            let error = ConsoleSignIn::from_settings(lookup(pairs)).unwrap_err();
            assert!(error.to_string().contains(named), "{error}");
        }
    }
}
