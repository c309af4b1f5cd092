//! The approval notification: a message to an incoming webhook (Teams or Slack) when a
//! request starts waiting for a decision (`APPROVAL_WEBHOOK_URL`).
//!
//! Both accept `{"text": "..."}`. The message names the request id, the domain, the access
//! asked for, a link to the request in the administrators' console
//! (`{site}console/#/requests/{id}`, [`CONSOLE_PATH`]) and how to decide from the command
//! line — not the person's address or name: the channel is outside the tenant's audit
//! trail; administrators read the rest signed in, through the admin API.

use std::time::Duration;

use reqwest::Url;

use crate::{domain::SignupRequest, site_base::SiteBase};

/// Where a request is shown in the administrators' console, under the site's address. A
/// fragment: the console is a static page that reads the request through the admin API
/// with the administrator's own token, so the link itself grants nothing.
pub const CONSOLE_PATH: &str = "console/#/requests/";

/// The absolute address the console's links start with: the site's, when
/// `SIGNUP_SITE_URL` is absolute, else the site's path on `SIGNUP_PUBLIC_BASE_URL` (the
/// Function App serving the site beside the API). `None` when neither is absolute.
pub fn console_base(site: &SiteBase, public_base: Option<&str>) -> Option<String> {
    let site = site.as_str();
    if site.starts_with("http://") || site.starts_with("https://") {
        return Some(site.to_owned());
    }
    public_base.map(|base| format!("{}{site}", base.trim_end_matches('/')))
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("webhook unreachable or too slow")]
    Unreachable(#[source] reqwest::Error),
    #[error("webhook answered {0}")]
    Status(u16),
}

#[derive(Clone)]
pub struct ApprovalNotifier {
    http: reqwest::Client,
    url: Url,
    /// The site's absolute address ([`console_base`]), ending in `/`; without it the
    /// message names the command line only.
    console_base: Option<String>,
}

impl std::fmt::Debug for ApprovalNotifier {
    /// Webhook URLs carry their own secret: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApprovalNotifier(***)")
    }
}

impl ApprovalNotifier {
    pub fn new(
        url: Url,
        console_base: Option<String>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            url,
            console_base,
        })
    }

    pub async fn notify(&self, request: &SignupRequest) -> Result<(), NotifyError> {
        let response = self
            .http
            .post(self.url.clone())
            .json(&serde_json::json!({ "text": self.text(request) }))
            .send()
            .await
            .map_err(NotifyError::Unreachable)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(NotifyError::Status(response.status().as_u16()))
        }
    }

    fn text(&self, request: &SignupRequest) -> String {
        let id = request.id;
        let mut text = format!(
            "Sign-up request {id} from {} for \"{}\" is waiting for approval",
            request.email.domain(),
            request.access
        );
        if let Some(deadline) = request.decide_by {
            text.push_str(&format!(
                " (denied automatically after {})",
                deadline.date()
            ));
        }
        text.push_str(&format!(
            ".\nDecide with: b2b-signup requests approve {id}  |  b2b-signup requests deny {id} --reason \"...\""
        ));
        if let Some(base) = &self.console_base {
            text.push_str(&format!("\nor in the console: {base}{CONSOLE_PATH}{id}"));
        }
        text
    }
}
