//! The sign-up vocabulary as types that cannot hold a bad value.
//!
//! Everything that crosses an edge (HTTP form, table row, policy file) is parsed into these
//! once; the rest of the crate never re-checks a string.

mod decider;
mod directory;
mod email;
mod history;
mod lang;
mod request;
mod text;

pub use decider::{Administrator, AdministratorName, Decider};
pub use directory::{
    AppId, Application, Group, GroupId, ObjectId, ObjectKind, PrincipalId, SecurityPrincipal,
    Tenant, TenantId, User, UserId,
};
pub use email::{EmailAddress, EmailDomain, EmailError};
pub use history::{
    Actor, History, HistoryAction, HistoryEntry, HistoryError, MAX_ACTOR_CHARS, MAX_ENTRIES,
    MAX_REASON_CHARS, MAX_STORED_UNITS, StoredEntry,
};
pub use lang::Lang;
#[cfg(test)]
pub(crate) use request::sample as test_request;
pub use request::{
    AccessKey, MailKind, OwedMail, RequestId, RequestStatus, SignupRequest, Verification,
};
pub use text::{DisplayName, FreeText, TextError};
