//! What the tests of the workspace share (a dev-dependency only; nothing here is built into
//! the handler or funchost):
//!
//! - [`azurite`]: one Azurite per test, in memory, on OS-chosen loopback ports, telemetry off;
//! - [`funchost`]: the local Functions host as a process (`funchost`), an app root for it,
//!   and the queues it polls;
//! - [`entra`]: the Microsoft Entra ID token endpoint and Graph invitation answers as mocks
//!   (wiremock), reached through the settings an operator uses (`AZURE_AUTHORITY_HOST`,
//!   `GRAPH_BASE_URL`);
//! - [`identity`]: Entra ID as the admin API sees it — OpenID configuration, JWKS, and
//!   access tokens signed with test-only keys;
//! - [`logs`]: an in-memory log writer, for what must never be logged;
//! - [`workspace_root`] and [`funchost_bin`]: where the project's files and the local
//!   Functions host's binary are, for tests of another package than the one that builds it.

pub mod azurite;
pub mod entra;
pub mod funchost;
pub mod identity;
pub mod logs;

use std::path::PathBuf;

pub use azurite::Azurite;

/// The workspace's root folder (host.json, the function folders, node_modules).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// The `funchost` binary of the same build profile as the running test. Cargo builds a
/// package's own binaries for its integration tests, not another package's: `scripts/test`
/// builds the workspace's binaries first (`cargo build --workspace --bins`).
pub fn funchost_bin() -> PathBuf {
    // A test binary lives in target/<profile>/deps/; the binaries one folder up.
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(PathBuf::from))
        .unwrap_or_else(|| workspace_root().join("target/debug"));
    let bin = profile_dir.join("funchost");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p funchost` (scripts/test does)",
        bin.display()
    );
    bin
}
