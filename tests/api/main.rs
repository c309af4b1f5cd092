//! Integration tests: the real handler over HTTP against a real Azurite per test.
//! Azurite comes from `npm ci` (package.json pins it); the helpers say so if it is missing.

mod abuse;
mod admin;
mod admin_api;
mod approval;
mod graph_live;
mod helpers;
mod history;
mod html_form;
mod layout;
mod lifecycle;
mod logs;
mod mail;
mod resend;
mod signup;
mod startup;
mod storage;
mod subjects;
mod validation;
mod worker;
