//! Integration tests of the local host runner: the real `b2b-signup host` process against a
//! fake handler in the test process (`--handler-url`) or the real handler binary, and a real
//! Azurite for queues. Azurite comes from `npm ci` (package.json pins it).

mod end_to_end;
mod helpers;
mod http;
mod lifecycle;
mod queues;
mod site;
mod timers;
