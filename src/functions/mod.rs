//! One module per Functions folder; each exposes the warp filter for its route.
//!
//! Forwarded HTTP functions (`SignupHttp`) are served at their public path (`/api/<route>`);
//! other triggers arrive as `POST /<FunctionName>` with the invocation payload.

pub mod signup_http;
