//! The whole portal as it runs locally: the real handler under the local Functions host
//! (`funchost`, built by `cargo build --workspace --bins`), a real Azurite, and Graph and
//! Entra ID mocked at the HTTP level through the settings an operator uses.

mod admin_cli;
mod dev_identity;
mod end_to_end;
mod lifecycle;
mod site;

/// A policy that invites contoso.com at once to the partner portal: what the portal tests
/// that need no approval use.
pub const CONTOSO_INVITE_POLICY: &str = r#"{
    "defaultAction": "deny", "verifyEmail": false,
    "accessOptions": {
        "partner-portal": { "displayName": "Partner portal", "groups": ["11111111-1111-1111-1111-111111111111"] }
    },
    "rules": [ { "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal"] } ]
}"#;
