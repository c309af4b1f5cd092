//! One module per Functions folder; each exposes the warp filter for its route.
//!
//! Forwarded HTTP functions (`SignupHttp`, and the admin API's `Requests`, `Request` and
//! `Approval`, which share [`admin_api`]) are served at their public path (`/api/<route>`);
//! other triggers arrive as `POST /<FunctionName>` with the invocation payload
//! ([`crate::invocation`]). The folder name, the module and the route agree; a test checks
//! every `*/function.json` against [`FUNCTIONS`].

pub(crate) mod admin_api;
pub mod approval;
pub(crate) mod body;
pub mod html_redirect;
pub mod invite_poison;
pub mod invite_queue;
pub mod lifecycle;
mod queue_trigger;
pub mod reconcile;
pub mod request;
pub mod requests;
pub mod signup_http;
pub mod subjects;
mod timer_trigger;
pub mod verify;

/// Every function folder the handler serves.
pub const FUNCTIONS: [&str; 10] = [
    "SignupHttp",
    "InviteQueue",
    "InvitePoison",
    "Requests",
    "Request",
    "Approval",
    "Reconcile",
    "Verify",
    "Lifecycle",
    "Subjects",
];
