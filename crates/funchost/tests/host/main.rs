//! Integration tests of the local Functions host: the real `funchost` process against a
//! fake handler in the test process (`--handler-url`) or a script standing in for one, and
//! a real Azurite for queues. Azurite comes from `npm ci` (package.json pins it). The
//! product's handler under funchost is tested with the product (`tests/portal/`).

mod helpers;
mod http;
mod identity;
mod lifecycle;
mod queues;
mod signin;
mod site;
mod timers;
