//! b2b-signup: self-service, policy-based sign-up for Microsoft Entra ID B2B collaboration,
//! run as an Azure Functions custom handler.
//!
//! # Layout
//!
//! Follow a sign-up from the edge inwards:
//!
//! - [`functions`]: one module per Functions folder. `signup_http` is `POST /api/signup`:
//!   content type, size and field rules, and the answer (202 or problem+json);
//!   `invite_queue` and `invite_poison` are the queue triggers; `requests`, `request` and
//!   `approval` are the admin API (list, one request with its history, approve / deny /
//!   retry), each authorised first through `admin_api` (an Entra ID token, never a
//!   function key).
//! - [`intake`]: what happens to a valid sign-up: policy decision, one request per address,
//!   the row in `SignupRequests`, the message on `signup-requests`.
//! - [`worker`]: what happens to a queued request: the lease, the invitation, the group
//!   memberships, the end state (`Invited` / `Failed`), poisoned messages.
//! - [`invocation`]: the Functions host's payload for non-HTTP triggers (double-encoded
//!   Data/Metadata) and the answer it expects; no other module sees those shapes.
//! - [`policy`]: the organisation's rules (`policy.json`), validated at start-up, and domain
//!   matching.
//! - [`domain`]: e-mail addresses, names, request ids, access keys, directory object ids
//!   (`GroupId`, `UserId`) and statuses as types that cannot hold a bad value; a request's
//!   `History`, appended to by the one method that changes its status.
//! - [`storage`]: the request table and the queue behind small traits; the Azure crates stay
//!   inside it.
//! - [`graph`]: Microsoft Graph (invitations, group members) with a shared, single-flight
//!   token cache; errors sorted into transient (the host retries) and permanent.
//! - [`verify`]: proof of address (policy `verifyEmail`): the single-use token, stored as
//!   a digest, and `POST /api/verify`'s step to the rule's path.
//! - [`mail`]: Azure Communication Services Email behind the [`mail::Mailer`] trait (HMAC
//!   or Entra ID token, retries, idempotency keys) and the messages' templates (EN/FR);
//!   [`outbox`] sends what a request's row says it owes (`MailOwed`) and the approvers'
//!   notice.
//! - [`auth`]: who calls the admin API — Entra ID v2.0 access tokens (RS256, the tenant's
//!   keys cached and refreshed single-flight, `iss`/`aud`/`tid`/`exp`/`nbf`, app roles
//!   `Signup.Read` / `Signup.Approve`), giving the verified administrator who decided.
//! - [`problem`]: RFC 9457 errors with stable codes.
//! - [`app`]: binds the port first, then serves every route; [`settings`] reads every
//!   setting once; [`telemetry`] sets up logs; [`cli`] is the command line, [`admin`] its
//!   administrators' commands.
//! - [`requests`]: operations on existing rows shared by intake, approvals, [`reconcile`]
//!   and the command line (enqueue, decide, retry a failed request, expire, notify through
//!   [`notify`]).
//! - [`lifecycle`]: the daily `Lifecycle` timer: renewal notices, the end of access
//!   (group removals, `Expired`), retention of finished requests (`SIGNUP_RETENTION_DAYS`).
//! - [`site_config`]: the sign-up page's `config.json` (access options, terms, captcha site
//!   key) generated from the policy, and its Content-Security-Policy;
//!   `functions::html_redirect` answers the page's plain form posts with a 303 to its
//!   thank-you or error page.
//!
//! Not here, by design: the local Functions host (`crates/funchost`) and the tests' support
//! (`crates/test-support`) are other members of the workspace, so the deployed binary holds
//! the product alone. How the `AzureWebJobsStorage` setting is read lives in
//! `crates/webjobs-storage`, which the product and funchost share.

/// The allocator of the deployed (musl) binary; see Cargo.toml. In the library, so the
/// bench's hello-world (examples/hello.rs) is built the same way as the handler.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod abuse;
pub mod admin;
pub mod app;
pub mod auth;
pub mod branding;
pub mod cli;
pub mod clock;
pub mod domain;
pub mod functions;
pub mod graph;
pub mod intake;
pub mod invocation;
pub mod lifecycle;
pub mod mail;
pub mod notify;
pub mod outbox;
pub mod policy;
pub mod problem;
pub mod reconcile;
pub mod requests;
pub mod secret;
pub mod settings;
pub mod site_base;
pub mod site_config;
pub mod storage;
pub mod subjects;
pub mod telemetry;
pub mod verify;
pub mod worker;

#[cfg(test)]
mod fuzz_tests;
