//! Sends invocation payloads to the handler (`POST /<FunctionName>`) and judges the answer
//! as the host does (`DefaultHttpWorkerService.ProcessDefaultInvocationRequest`): a non-2xx
//! status, or a body that is not a JSON object (`{"Outputs":…,"Logs":…,"ReturnValue":…}`),
//! fails the invocation; so do a timeout (`functionTimeout`) and a connection error.
//! The handler's `Logs` are written to the runner's log, as the host writes them to its own.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::http::HOST_VERSION;

/// Why an invocation failed (the host retries a queue message after any of these).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("the handler answered {0}")]
    Status(u16),
    #[error("the handler's answer is not a JSON object ({0})")]
    NotJson(String),
    #[error("the handler did not answer within {0:?} (functionTimeout)")]
    Timeout(Duration),
    #[error("cannot reach the handler: {0}")]
    Unreachable(String),
}

/// The handler's answer to an invocation (`HttpScriptInvocationResult`); only `Logs` is used
/// (the runner has no output bindings).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InvocationResult {
    #[serde(default)]
    logs: Option<Vec<Value>>,
}

/// Posts invocations to one handler.
#[derive(Clone)]
pub struct Invoker {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`
    base: String,
    timeout: Duration,
}

impl Invoker {
    /// An invoker for the handler at `base` (`http://127.0.0.1:<port>`), giving up after
    /// `timeout` (the host's `functionTimeout`).
    pub fn new(base: String, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("Azure-Functions-Host/{HOST_VERSION}"))
            .build()?;
        Ok(Self {
            http,
            base,
            timeout,
        })
    }

    /// Invokes `function` with `payload`; `Ok` when the handler succeeded.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<(), InvocationError> {
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let response = self
            .http
            .post(format!("{}/{function}", self.base))
            .header("x-azure-functions-invocationid", &invocation_id)
            .header("x-azure-functions-hostversion", HOST_VERSION)
            .json(payload)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(InvocationError::Status(status.as_u16()));
        }
        let result: InvocationResult = match serde_json::from_slice::<Value>(&body) {
            Ok(value @ Value::Object(_)) => serde_json::from_value(value)
                .map_err(|e| InvocationError::NotJson(e.to_string()))?,
            Ok(_) => return Err(InvocationError::NotJson("not an object".into())),
            Err(e) => return Err(InvocationError::NotJson(e.to_string())),
        };
        for line in result.logs.into_iter().flatten() {
            match line {
                Value::String(text) => tracing::info!(function, invocation_id, "{text}"),
                other => tracing::info!(function, invocation_id, "{other}"),
            }
        }
        Ok(())
    }

    fn transport_error(&self, error: &reqwest::Error) -> InvocationError {
        if error.is_timeout() {
            InvocationError::Timeout(self.timeout)
        } else {
            InvocationError::Unreachable(error.to_string())
        }
    }
}
