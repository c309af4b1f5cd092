//! `requests export --email` and `requests erase --email` straight through storage
//! ([`crate::subjects`]); the admin API's answers are printed the same way.

use std::{io::Write, sync::Arc};

use super::{Failure, io};
use crate::{
    clock::Clock,
    domain::{Decider, EmailAddress},
    storage::AzureStorage,
    subjects::{Erased, Subjects},
};

fn address(text: &str) -> Result<EmailAddress, Failure> {
    EmailAddress::parse(text).map_err(|e| Failure::Refused(format!("not a valid address: {e}")))
}

fn subjects(storage: AzureStorage) -> Subjects {
    Subjects {
        store: Arc::new(storage.clone()),
        housekeeping: Arc::new(storage),
        clock: Clock::system(),
    }
}

pub(super) async fn export(
    storage: AzureStorage,
    email: &str,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let export = subjects(storage).export(&address(email)?).await?;
    write_json(out, &export)
}

pub(super) async fn erase(
    storage: AzureStorage,
    email: &str,
    by: Decider,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let erased = subjects(storage).erase(&address(email)?, &by).await?;
    write_erased(out, &erased)
}

/// Pretty JSON, as stored: a JSON string escapes every control character, so stored text
/// cannot steer the terminal.
pub(super) fn write_json(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Unavailable(format!("the export could not be written: {e}")))?;
    writeln!(out, "{text}").map_err(io)
}

pub(super) fn write_erased(out: &mut impl Write, erased: &Erased) -> Result<(), Failure> {
    writeln!(
        out,
        "erased: {} requests (with their history), {} address claims, {} dead letters",
        erased.requests, erased.claims, erased.dead_letters
    )
    .map_err(io)
}
