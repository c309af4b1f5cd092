//! The administrators' command line: read, decide, retry and export requests, check and explain
//! the policy, without the Azure portal. With `SIGNUP_ADMIN_API_URL` set, `list`, `show`,
//! `approve`, `deny` and `retry` go through the admin API as the signed-in administrator
//! ([`api`]); otherwise storage comes from `AzureWebJobsStorage` (or its identity-based
//! form), as for the handler, and decisions are recorded as `local:$USER`, unverified.
//!
//! Exit codes (the README's table): 0 done; 1 the thing asked for cannot be done (unknown
//! id, already decided, a policy file that is not a valid policy, an invalid address);
//! 2 usage or configuration error (a missing or unreadable policy file or storage
//! setting, no token, a token the API refuses); 3 storage or the admin API unavailable.
//!
//! Here: the commands and what they do. `view` is a request as administrators read it (its
//! columns named once), `table` and `csv` print it, `visible` keeps stored text from
//! steering the terminal; the policy explains itself ([`Policy::explain`]).

mod api;
mod csv;
mod subjects;
mod table;
pub(crate) mod view;
mod visible;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::{
    clock::{Clock, parse_period},
    domain::{Decider, EmailAddress, EmailDomain, RequestId, RequestStatus, SignupRequest},
    policy::{Policy, PolicyError},
    requests::{DecideError, Requests, Retried, RetryError, Verdict},
    settings::{self, POLICY_PATH_SETTING},
    storage::{
        AddressClaim, AzureStorage, RequestQuery, RequestStore, StorageAccount, StoreError,
        Versioned, azure::StorageTimeouts,
    },
};

use view::View;

/// Most rows `list` and `export` read before sorting (the table is read, not indexed, by
/// time across domains).
const MAX_SCAN: usize = 10_000;

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// List requests, newest first, as an aligned table (or JSON).
    List {
        #[command(flatten)]
        filter: Filter,
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per request, in a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show every recorded field of one request.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a request waiting for approval; it is sent to the invitation queue.
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Who decides, for the audit row (default: local:$USER; refused with the admin API).
        #[arg(long)]
        by: Option<String>,
    },
    /// Deny a request waiting for approval.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
        /// Who decides, for the audit row (default: local:$USER; refused with the admin API).
        #[arg(long)]
        by: Option<String>,
    },
    /// Send Failed requests through the invitation worker again: one by id, or every one
    /// matching `--status Failed` and the other filters (e.g. `--since 1d`).
    Retry {
        /// The request to retry; without it, `--status Failed` selects a batch.
        id: Option<String>,
        #[command(flatten)]
        filter: Filter,
        /// Who retries, for the audit row (default: local:$USER; refused with the admin API).
        #[arg(long)]
        by: Option<String>,
    },
    /// Export requests (oldest first) to standard output; with `--email`, everything
    /// stored about that address as JSON (a data-subject access request, PRIVACY.md).
    Export {
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        #[command(flatten)]
        filter: Filter,
        /// Everything stored about this address (requests with their history, the address
        /// claim, dead letters), as JSON; not with the filters.
        #[arg(long, conflicts_with_all = ["status", "domain", "since"])]
        email: Option<String>,
    },
    /// Delete everything stored about an address (a data-subject erasure request,
    /// PRIVACY.md); the log keeps a line without personal data.
    Erase {
        #[arg(long)]
        email: String,
        /// Who erases, for the log line (default: local:$USER; refused with the admin API).
        #[arg(long)]
        by: Option<String>,
    },
    /// Write the address claim of every live or successful request that has none. Run it
    /// once when upgrading from a version that kept claims in table SignupAddresses, before
    /// and again right after deploying; safe to repeat.
    RestoreClaims,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
}

#[derive(Debug, Args)]
pub struct Filter {
    /// Only requests with this status (Accepted, Queued, PendingApproval, Inviting, Invited, Denied, Failed).
    #[arg(long)]
    status: Option<String>,
    /// Only requests from this e-mail domain.
    #[arg(long)]
    domain: Option<String>,
    /// Only requests created within this period: 30m, 12h, 7d, 4w.
    #[arg(long)]
    since: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file (default: $SIGNUP_POLICY_PATH or policy.json).
    Check { file: Option<PathBuf> },
    /// Which rule applies to an address and why, and what access follows.
    Explain {
        email: String,
        /// The policy file (default: $SIGNUP_POLICY_PATH or policy.json).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
}

/// A failure, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// Exit 1.
    #[error("{0}")]
    Refused(String),
    /// Exit 2.
    #[error("{0}")]
    Usage(String),
    /// Exit 3.
    #[error("storage unavailable: {0}")]
    Storage(#[from] StoreError),
    /// Exit 3: the admin API did not answer, or answered 5xx.
    #[error("{0}")]
    Unavailable(String),
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("b2b-signup: {failure}");
            ExitCode::from(match failure {
                Failure::Refused(_) => 1,
                Failure::Usage(_) => 2,
                Failure::Storage(_) | Failure::Unavailable(_) => 3,
            })
        }
    }
}

pub async fn requests(command: RequestsCommand) -> ExitCode {
    let out = &mut std::io::stdout().lock();
    finish(match api::api_url() {
        Some(url) => api::run(&url, command, out).await,
        None => run_requests(command, out).await,
    })
}

pub fn policy(command: PolicyCommand) -> ExitCode {
    finish(run_policy(command, &mut std::io::stdout().lock()))
}

fn store() -> Result<AzureStorage, Failure> {
    let account = StorageAccount::from_settings(|name| std::env::var(name).ok())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(AzureStorage::new(&account, StorageTimeouts::default())?)
}

async fn run_requests(command: RequestsCommand, out: &mut impl Write) -> Result<(), Failure> {
    let storage = store()?;
    let now = OffsetDateTime::now_utc();
    match command {
        RequestsCommand::List {
            filter,
            limit,
            json,
        } => {
            let mut rows = read(&storage, &filter, now).await?;
            rows.sort_by_key(|r| std::cmp::Reverse(r.id));
            rows.truncate(limit);
            let views: Vec<View> = rows.iter().map(View::of).collect();
            write_list(out, &views, json)
        }
        RequestsCommand::Show { id, json } => {
            let request = find(&storage, &id).await?.value;
            write_one(out, &View::of(&request), json)
        }
        RequestsCommand::Approve { id, reason, by } => {
            decide(storage, &id, Verdict::Approve, reason, by, out).await
        }
        RequestsCommand::Deny { id, reason, by } => {
            decide(storage, &id, Verdict::Deny, Some(reason), by, out).await
        }
        RequestsCommand::Retry { id, filter, by } => {
            retry(storage, id, &filter, by, now, out).await
        }
        RequestsCommand::Export {
            email: Some(email), ..
        } => subjects::export(storage, &email, out).await,
        RequestsCommand::Erase { email, by } => {
            subjects::erase(storage, &email, actor(by), out).await
        }
        RequestsCommand::Export {
            format: Format::Csv,
            filter,
            email: None,
        } => {
            let mut rows = read(&storage, &filter, now).await?;
            rows.sort_by_key(|r| r.id);
            csv::write(out, &rows).map_err(io)
        }
        RequestsCommand::RestoreClaims => restore_claims(&storage, out).await,
    }
}

/// A batch retry's end: exit 0 when every request was retried, else 1 naming those that
/// were not.
fn not_retried(mut refused: Vec<String>) -> Result<(), Failure> {
    match refused.len() {
        0 => Ok(()),
        1 => Err(Failure::Refused(refused.remove(0))),
        n => Err(Failure::Refused(format!(
            "{n} not retried:\n{}",
            refused.join("\n")
        ))),
    }
}

/// Claims moved from table SignupAddresses into SignupRequests; without this, a repeat
/// sign-up for an address whose claim is still in the old table would start a second
/// request. The claims are rebuilt from the rows (newest live request per address wins),
/// so the old table is not read at all.
async fn restore_claims(storage: &AzureStorage, out: &mut impl Write) -> Result<(), Failure> {
    let mut rows = storage.query(&RequestQuery::default(), usize::MAX).await?;
    rows.sort_by_key(|row| std::cmp::Reverse(row.value.id));
    let (mut written, mut present) = (0, 0);
    for row in rows
        .iter()
        .filter(|row| row.value.status.blocks_new_request())
    {
        let claim = AddressClaim {
            request_id: row.value.id,
            claimed_at: row.value.created_at,
        };
        match storage.insert_claim(&row.value.email, &claim).await? {
            true => written += 1,
            false => present += 1,
        }
    }
    writeln!(
        out,
        "{} requests read; {written} claims written, {present} already present",
        rows.len()
    )
    .map_err(io)
}

async fn read(
    storage: &AzureStorage,
    filter: &Filter,
    now: OffsetDateTime,
) -> Result<Vec<SignupRequest>, Failure> {
    let rows = read_rows(storage, filter, now).await?;
    Ok(rows.into_iter().map(|row| row.value).collect())
}

/// `--status`, any case.
fn status(filter: &Filter) -> Result<Option<RequestStatus>, Failure> {
    filter
        .status
        .as_deref()
        .map(|s| {
            RequestStatus::ALL
                .into_iter()
                .find(|status| status.as_str().eq_ignore_ascii_case(s))
                .ok_or_else(|| Failure::Usage(format!("--status {s:?} is not a status")))
        })
        .transpose()
}

/// The rows `filter` selects, with their versions.
async fn read_rows(
    storage: &AzureStorage,
    filter: &Filter,
    now: OffsetDateTime,
) -> Result<Vec<Versioned<SignupRequest>>, Failure> {
    let status = status(filter)?;
    let domain = filter
        .domain
        .as_deref()
        .map(|d| {
            EmailDomain::parse(d)
                .map_err(|_| Failure::Usage(format!("--domain {d:?} is not a domain")))
        })
        .transpose()?;
    let created_since = filter
        .since
        .as_deref()
        .map(|text| since(text, now))
        .transpose()?;
    let query = RequestQuery {
        status,
        domain,
        created_since,
        ..Default::default()
    };
    let rows = storage.query(&query, MAX_SCAN).await?;
    if rows.len() == MAX_SCAN {
        eprintln!(
            "b2b-signup: read the first {MAX_SCAN} matching rows only; narrow with --since, --status or --domain"
        );
    }
    Ok(rows)
}

async fn find(storage: &AzureStorage, id: &str) -> Result<Versioned<SignupRequest>, Failure> {
    let unknown = || Failure::Refused(format!("no request has id {id}"));
    let id = RequestId::parse(id).ok_or_else(unknown)?;
    storage.find(&id).await?.ok_or_else(unknown)
}

/// Who acts, for the audit row: `--by` as given, else `local:$USER` (unverified: storage
/// was reached with a key, not as anyone).
fn actor(by: Option<String>) -> Decider {
    by.map_or_else(
        || Decider::Local(std::env::var("USER").unwrap_or_else(|_| "unknown".into())),
        Decider::Named,
    )
}

/// The shared operations on `storage`, as the handler has them (no approval webhook: the
/// command line never notifies).
fn operations(storage: AzureStorage) -> Requests {
    Requests {
        outbox: None,
        store: Arc::new(storage.clone()),
        queue: Arc::new(storage),
        clock: Clock::system(),
        notifier: None,
    }
}

/// `requests retry`: one request by id, or the batch `--status Failed` and the other
/// filters select. Exit 1 if any was refused (not `Failed`, or superseded), after trying
/// the rest; 3 at the first storage failure.
async fn retry(
    storage: AzureStorage,
    id: Option<String>,
    filter: &Filter,
    by: Option<String>,
    now: OffsetDateTime,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let filtered = filter.status.is_some() || filter.domain.is_some() || filter.since.is_some();
    let rows = match id {
        Some(id) if !filtered => vec![find(&storage, &id).await?],
        Some(_) => {
            return Err(Failure::Usage(
                "retry takes an id or filters (--status Failed --since 1d), not both".into(),
            ));
        }
        None if status(filter)? == Some(RequestStatus::Failed) => {
            read_rows(&storage, filter, now).await?
        }
        None => {
            return Err(Failure::Usage(
                "retry takes an id, or --status Failed (with --since, --domain) for a batch".into(),
            ));
        }
    };
    if rows.is_empty() {
        return writeln!(out, "no Failed requests match").map_err(io);
    }
    let by = actor(by);
    let requests = operations(storage);
    let mut refused = Vec::new();
    for row in rows {
        let id = row.value.id;
        match requests.retry(row, &by).await {
            Ok(Retried {
                request,
                enqueued: true,
            }) => writeln!(out, "{id}: retried, now {} (by {by})", request.status),
            Ok(Retried {
                request,
                enqueued: false,
            }) => writeln!(
                out,
                "{id}: retried, now {}; its message could not be sent, Reconcile sends it \
                 within a few minutes (by {by})",
                request.status
            ),
            Err(RetryError::NotFound) => {
                refused.push(format!("{id}: the request was deleted meanwhile"));
                Ok(())
            }
            Err(RetryError::NotFailed(request)) => {
                refused.push(format!(
                    "{id} is not Failed: it is {}; only Failed requests are retried",
                    request.status
                ));
                Ok(())
            }
            Err(RetryError::Superseded(newer)) => {
                refused.push(format!(
                    "{id}: the address has a newer request, {newer}; retry that one if it failed"
                ));
                Ok(())
            }
            Err(RetryError::Storage(e)) => return Err(e.into()),
        }
        .map_err(io)?;
    }
    not_retried(refused)
}

async fn decide(
    storage: AzureStorage,
    id: &str,
    verdict: Verdict,
    reason: Option<String>,
    by: Option<String>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let request_id =
        RequestId::parse(id).ok_or_else(|| Failure::Refused(format!("no request has id {id}")))?;
    let by = actor(by);
    let requests = operations(storage);
    match requests.decide(&request_id, verdict, &by, reason).await {
        Ok(decided) => {
            let what = if decided.changed {
                "decided"
            } else {
                "already decided"
            };
            writeln!(
                out,
                "{id}: {what}, now {} (by {})",
                decided.request.status,
                decided.request.decided_by.as_ref().map_or_else(
                    || "?".to_owned(),
                    |by| visible::visible(&by.to_string(), visible::Breaks::Escape)
                )
            )
            .map_err(io)
        }
        Err(DecideError::NotFound) => Err(Failure::Refused(format!("no request has id {id}"))),
        Err(DecideError::AlreadyDecided(request)) => Err(Failure::Refused(format!(
            "{id} was already decided: it is {}",
            request.status
        ))),
        Err(DecideError::NotPending(request)) => Err(Failure::Refused(format!(
            "{id} is not waiting for approval: it is {}",
            request.status
        ))),
        Err(DecideError::Storage(e)) => Err(e.into()),
    }
}

fn io(error: std::io::Error) -> Failure {
    Failure::Usage(format!("cannot write output: {error}"))
}

/// The start of `--since` (`30m`, `12h`, `7d`, `4w`: [`parse_period`]) counted back from `now`.
fn since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, Failure> {
    let period = parse_period(text).map_err(|e| Failure::Usage(format!("--since: {e}")))?;
    Duration::try_from(period)
        .ok()
        .and_then(|period| now.checked_sub(period))
        .ok_or_else(|| Failure::Usage(format!("--since {text:?} reaches before any date")))
}

/// `list`: a table, or with `--json` a JSON array.
fn write_list(out: &mut impl Write, views: &[View], json: bool) -> Result<(), Failure> {
    if json {
        write_json(out, &views)
    } else {
        table::write_table(out, views).map_err(io)
    }
}

/// `show`: every field and the history, or with `--json` the JSON object.
fn write_one(out: &mut impl Write, view: &View, json: bool) -> Result<(), Failure> {
    if json {
        write_json(out, view)
    } else {
        table::write_fields(out, view).map_err(io)
    }
}

fn write_json(out: &mut impl Write, value: &impl Serialize) -> Result<(), Failure> {
    let json = serde_json::to_string_pretty(value).map_err(|e| Failure::Usage(e.to_string()))?;
    writeln!(out, "{}", visible::visible_json(&json)).map_err(io)
}

/// The policy file the commands read: the argument, else `$SIGNUP_POLICY_PATH`, else
/// [`settings::DEFAULT_POLICY_FILE`], as for the handler. Never `policy.example.json` silently: an
/// administrator checking "the policy" must not be shown the example's rules.
fn policy_path(file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| settings::policy_path(&|name| std::env::var(name).ok()))
}

/// Reads the policy file. One that cannot be read is configuration (exit 2: the wrong
/// directory, a missing `SIGNUP_POLICY_PATH`); one that can be read but is not a valid
/// policy is refused (exit 1), as the README's exit codes say. Either error names the file.
fn load_policy(path: &Path) -> Result<Policy, Failure> {
    Policy::load(path).map_err(|error| match error {
        PolicyError::Read { .. } => Failure::Usage(format!(
            "{error} (pass the file, or set {POLICY_PATH_SETTING}; policy.example.json is one to start from)"
        )),
        PolicyError::Syntax(_) | PolicyError::Invalid { .. } => {
            Failure::Refused(format!("{}: {error}", path.display()))
        }
    })
}

fn run_policy(command: PolicyCommand, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        PolicyCommand::Check { file } => {
            let path = policy_path(file);
            let policy = load_policy(&path)?;
            writeln!(
                out,
                "{}: valid ({} rules, {} access options)",
                path.display(),
                policy.rules().len(),
                policy.access_options().count()
            )
            .map_err(io)?;
            let options = policy.access_options().filter_map(|option| {
                let expiry = option.expiry?;
                Some(format!("accessOptions.{}: {expiry}", option.key))
            });
            let rules = policy.rules().iter().filter_map(|rule| {
                let expiry = rule.expiry?;
                Some(format!("rules[{}]: {expiry}", rule.index))
            });
            let expiring: Vec<String> = options.chain(rules).collect();
            if expiring.is_empty() {
                writeln!(out, "expiry: access never ends (no accessDays)").map_err(io)?;
            }
            for line in expiring {
                writeln!(out, "expiry: {line}").map_err(io)?;
            }
            Ok(())
        }
        PolicyCommand::Explain { email, policy } => {
            let path = policy_path(policy);
            let policy = load_policy(&path)?;
            let email = EmailAddress::parse(&email)
                .map_err(|e| Failure::Refused(format!("not a valid address: {e}")))?;
            writeln!(out, "policy:   {}", path.display()).map_err(io)?;
            write!(out, "{}", policy.explain(&email)).map_err(io)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse() {
        let now = time::macros::datetime!(2026-11-24 10:00 UTC);
        let since = |text| since(text, now).map(|start| now - start);
        assert_eq!(since("30m").unwrap(), Duration::minutes(30));
        assert_eq!(since("7d").unwrap(), Duration::days(7));
        assert_eq!(since("2w").unwrap(), Duration::weeks(2));
        for bad in ["", "d", "7", "7y", "-", "9999999999w"] {
            assert!(matches!(since(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
    }
}
