//! The approval notification: a message to an incoming webhook (Teams or Slack) when a
//! request starts waiting for a decision (`APPROVAL_WEBHOOK_URL`).
//!
//! Both accept `{"text": "..."}`. The message names the request id, the domain, the access
//! asked for and how to decide, not the person's address or name: the channel is outside
//! the tenant's audit trail; administrators read the rest with `b2b-signup requests show`.

use std::time::Duration;

use reqwest::Url;

use crate::domain::SignupRequest;

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
    /// Where administrators decide, e.g. `https://signup-func.azurewebsites.net`
    /// (`SIGNUP_PUBLIC_BASE_URL`); without it the message names the command line only.
    public_base: Option<String>,
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
        public_base: Option<String>,
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
            public_base,
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
        if let Some(base) = &self.public_base {
            let base = base.trim_end_matches('/');
            text.push_str(&format!(
                "\nor POST {base}/api/requests/{id}/approve (or /deny) with a function key."
            ));
        }
        text
    }
}
