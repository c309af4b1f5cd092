//! The whole portal as it runs locally: the real handler under the local Functions host
//! (`funchost`, built by `cargo build --workspace --bins`), a real Azurite, and Graph and
//! Entra ID mocked at the HTTP level through the settings an operator uses.

mod dev_identity;
mod end_to_end;
mod lifecycle;
mod site;
