//! The administrators' command line: read, decide and export requests, check and explain
//! the policy, without the Azure portal. Storage comes from `AzureWebJobsStorage` (or its
//! identity-based form), as for the handler.
//!
//! Exit codes: 0 done; 1 the thing asked for cannot be done (unknown id, already decided,
//! invalid policy or address); 2 usage or configuration error; 3 storage unavailable.

use std::{io::Write, path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::{
    clock::{Clock, rfc3339},
    domain::{EmailAddress, EmailDomain, RequestId, RequestStatus, SignupRequest},
    policy::{Action, Policy},
    requests::{DecideError, Requests, Verdict},
    storage::{
        AddressClaim, AzureStorage, RequestQuery, RequestStore, StorageAccount, StoreError,
        azure::StorageTimeouts,
    },
};

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
        /// Who decides, for the audit row (default: cli:$USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Deny a request waiting for approval.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
        /// Who decides, for the audit row (default: cli:$USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Export requests (oldest first) to standard output.
    Export {
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        #[command(flatten)]
        filter: Filter,
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
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("b2b-signup: {failure}");
            ExitCode::from(match failure {
                Failure::Refused(_) => 1,
                Failure::Usage(_) => 2,
                Failure::Storage(_) => 3,
            })
        }
    }
}

pub async fn requests(command: RequestsCommand) -> ExitCode {
    finish(run_requests(command, &mut std::io::stdout().lock()).await)
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
            if json {
                let views: Vec<View> = rows.iter().map(View::of).collect();
                write_json(out, &views)
            } else {
                write_table(out, &rows)
            }
        }
        RequestsCommand::Show { id, json } => {
            let request = find(&storage, &id).await?;
            if json {
                write_json(out, &View::of(&request))
            } else {
                write_fields(out, &View::of(&request))
            }
        }
        RequestsCommand::Approve { id, reason, by } => {
            decide(storage, &id, Verdict::Approve, reason, by, out).await
        }
        RequestsCommand::Deny { id, reason, by } => {
            decide(storage, &id, Verdict::Deny, Some(reason), by, out).await
        }
        RequestsCommand::Export {
            format: Format::Csv,
            filter,
        } => {
            let mut rows = read(&storage, &filter, now).await?;
            rows.sort_by_key(|r| r.id);
            write_csv(out, &rows)
        }
        RequestsCommand::RestoreClaims => restore_claims(&storage, out).await,
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
    let status = filter
        .status
        .as_deref()
        .map(|s| {
            RequestStatus::ALL
                .into_iter()
                .find(|status| status.as_str().eq_ignore_ascii_case(s))
                .ok_or_else(|| Failure::Usage(format!("--status {s:?} is not a status")))
        })
        .transpose()?;
    let domain = filter
        .domain
        .as_deref()
        .map(|d| {
            EmailDomain::parse(d)
                .map_err(|_| Failure::Usage(format!("--domain {d:?} is not a domain")))
        })
        .transpose()?;
    let since = filter.since.as_deref().map(parse_period).transpose()?;
    let query = RequestQuery {
        status,
        domain,
        created_since: since.map(|period| now - period),
        ..Default::default()
    };
    let rows = storage.query(&query, MAX_SCAN).await?;
    if rows.len() == MAX_SCAN {
        eprintln!(
            "b2b-signup: read the first {MAX_SCAN} matching rows only; narrow with --since, --status or --domain"
        );
    }
    Ok(rows.into_iter().map(|row| row.value).collect())
}

async fn find(storage: &AzureStorage, id: &str) -> Result<SignupRequest, Failure> {
    let unknown = || Failure::Refused(format!("no request has id {id}"));
    let id = RequestId::parse(id).ok_or_else(unknown)?;
    Ok(storage.find(&id).await?.ok_or_else(unknown)?.value)
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
    let by = by.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let requests = Requests {
        store: Arc::new(storage.clone()),
        queue: Arc::new(storage),
        clock: Clock::system(),
        notifier: None,
    };
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
                decided.request.decided_by.as_deref().unwrap_or("?")
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

/// `30m`, `12h`, `7d`, `4w`.
fn parse_period(text: &str) -> Result<Duration, Failure> {
    let bad = || {
        Failure::Usage(format!(
            "--since {text:?} is not a period such as 30m, 12h, 7d or 4w"
        ))
    };
    let (number, unit) = text.trim().split_at(text.trim().len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    match unit {
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        "w" => Ok(Duration::weeks(n)),
        _ => Err(bad()),
    }
}

/// A request as administrators read it (JSON and `show`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct View {
    request_id: String,
    status: &'static str,
    email: String,
    display_name: String,
    domain: String,
    access: String,
    company: Option<String>,
    justification: Option<String>,
    reason: Option<String>,
    attempts: u32,
    invited_user_id: Option<String>,
    graph_request_id: Option<String>,
    created_at: String,
    updated_at: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    decide_by: Option<String>,
    notified_at: Option<String>,
    dry_run: bool,
}

impl View {
    fn of(r: &SignupRequest) -> Self {
        Self {
            request_id: r.id.to_string(),
            status: r.status.as_str(),
            email: r.email.as_str().to_owned(),
            display_name: r.display_name.as_str().to_owned(),
            domain: r.email.domain().to_string(),
            access: r.access.to_string(),
            company: r.company.as_ref().map(|t| t.as_str().to_owned()),
            justification: r.justification.as_ref().map(|t| t.as_str().to_owned()),
            reason: r.reason.clone(),
            attempts: r.attempts,
            invited_user_id: r.invited_user_id.as_ref().map(ToString::to_string),
            graph_request_id: r.graph_request_id.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at.map(rfc3339),
            decide_by: r.decide_by.map(rfc3339),
            notified_at: r.notified_at.map(rfc3339),
            dry_run: r.dry_run,
        }
    }

    /// Field name and text, in `show` and CSV order.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            ("RequestId", self.request_id.clone()),
            ("Status", self.status.to_owned()),
            ("Email", self.email.clone()),
            ("DisplayName", self.display_name.clone()),
            ("Domain", self.domain.clone()),
            ("Access", self.access.clone()),
            ("Company", opt(&self.company)),
            ("Justification", opt(&self.justification)),
            ("Reason", opt(&self.reason)),
            ("Attempts", self.attempts.to_string()),
            ("InvitedUserId", opt(&self.invited_user_id)),
            ("GraphRequestId", opt(&self.graph_request_id)),
            ("CreatedAt", self.created_at.clone()),
            ("UpdatedAt", self.updated_at.clone()),
            ("DecidedBy", opt(&self.decided_by)),
            ("DecidedAt", opt(&self.decided_at)),
            ("DecideBy", opt(&self.decide_by)),
            ("NotifiedAt", opt(&self.notified_at)),
            ("DryRun", self.dry_run.to_string()),
        ]
    }
}

fn write_json(out: &mut impl Write, value: &impl Serialize) -> Result<(), Failure> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(|e| Failure::Usage(e.to_string()))?;
    writeln!(out).map_err(io)
}

fn write_fields(out: &mut impl Write, view: &View) -> Result<(), Failure> {
    for (name, value) in view.fields() {
        writeln!(
            out,
            "{name:<15} {}",
            value.replace('\n', "\n                ")
        )
        .map_err(io)?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, rows: &[SignupRequest]) -> Result<(), Failure> {
    let header = ["ID", "CREATED (UTC)", "STATUS", "DOMAIN", "ACCESS", "EMAIL"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let created = rfc3339(r.created_at);
            [
                r.id.to_string(),
                created.get(..16).unwrap_or(&created).replace('T', " "),
                r.status.to_string(),
                r.email.domain().to_string(),
                r.access.to_string(),
                r.email.as_str().to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&header)).map_err(io)?;
    for row in &cells {
        writeln!(out, "{}", line(&row.each_ref().map(String::as_str))).map_err(io)?;
    }
    if rows.is_empty() {
        writeln!(out, "(no requests)").map_err(io)?;
    }
    Ok(())
}

fn write_csv(out: &mut impl Write, rows: &[SignupRequest]) -> Result<(), Failure> {
    let views: Vec<View> = rows.iter().map(View::of).collect();
    let names: Vec<String> = match views.first() {
        Some(view) => view
            .fields()
            .into_iter()
            .map(|(name, _)| name.to_owned())
            .collect(),
        None => View::of_header(),
    };
    write!(
        out,
        "{}\r\n",
        names
            .iter()
            .map(|n| csv_cell(n))
            .collect::<Vec<_>>()
            .join(",")
    )
    .map_err(io)?;
    for view in views {
        let line: Vec<String> = view
            .fields()
            .into_iter()
            .map(|(_, value)| csv_cell(&value))
            .collect();
        write!(out, "{}\r\n", line.join(",")).map_err(io)?;
    }
    Ok(())
}

impl View {
    fn of_header() -> Vec<String> {
        [
            "RequestId",
            "Status",
            "Email",
            "DisplayName",
            "Domain",
            "Access",
            "Company",
            "Justification",
            "Reason",
            "Attempts",
            "InvitedUserId",
            "GraphRequestId",
            "CreatedAt",
            "UpdatedAt",
            "DecidedBy",
            "DecidedAt",
            "DecideBy",
            "NotifiedAt",
            "DryRun",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// One RFC 4180 cell. Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
/// carriage return first: partners write `Company` themselves) is prefixed with `'`.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn policy_path(file: Option<PathBuf>) -> PathBuf {
    file.or_else(|| std::env::var_os("SIGNUP_POLICY_PATH").map(Into::into))
        .unwrap_or_else(|| "policy.json".into())
}

fn run_policy(command: PolicyCommand, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        PolicyCommand::Check { file } => {
            let path = policy_path(file);
            let policy = Policy::load(&path)
                .map_err(|e| Failure::Refused(format!("{}: {e}", path.display())))?;
            writeln!(
                out,
                "{}: valid ({} rules, {} access options)",
                path.display(),
                policy.rules().len(),
                policy.access_options().count()
            )
            .map_err(io)
        }
        PolicyCommand::Explain { email, policy } => {
            let path = policy_path(policy);
            let policy = Policy::load(&path)
                .map_err(|e| Failure::Refused(format!("{}: {e}", path.display())))?;
            let email = EmailAddress::parse(&email)
                .map_err(|e| Failure::Refused(format!("not a valid address: {e}")))?;
            explain(&policy, &email, out)
        }
    }
}

fn explain(policy: &Policy, email: &EmailAddress, out: &mut impl Write) -> Result<(), Failure> {
    let domain = email.domain();
    let decision = policy.decide(domain);
    let mut lines = vec![format!("address:  {} (domain {domain})", email.as_str())];
    match decision.rule {
        Some(rule) => {
            let pattern = rule
                .domains
                .iter()
                .find(|p| p.matches(domain))
                .map(ToString::to_string)
                .unwrap_or_default();
            let how = if pattern.starts_with("*.") {
                "the longest wildcard that matches (no rule lists the domain itself)"
            } else {
                "an exact match"
            };
            lines.push(format!(
                "rule:     rules[{}], pattern {pattern}: {how}",
                rule.index
            ));
        }
        None => lines.push("rule:     none matches; the default applies (defaultAction)".into()),
    }
    let action = decision.action();
    lines.push(format!(
        "action:   {}",
        match action {
            Action::Invite => "invite at once".to_owned(),
            Action::Approve => format!(
                "wait for an administrator (denied after {} days)",
                decision.approval_timeout().whole_days()
            ),
            Action::Deny => "refuse (403 domain_not_allowed)".to_owned(),
        }
    ));
    if action != Action::Deny {
        let default = decision.access(None).ok().map(|o| o.key.clone());
        let keys = decision
            .rule
            .map(|r| r.access.clone())
            .unwrap_or_else(|| default.iter().cloned().collect());
        for key in keys {
            if let Some(option) = policy.access_option(&key) {
                let mark = if Some(&key) == default.as_ref() {
                    " (default)"
                } else {
                    ""
                };
                lines.push(format!(
                    "access:   {key}{mark} \"{}\" → groups {}",
                    option.display_name,
                    option.group_list()
                ));
            }
        }
        let invitation = decision.invitation();
        lines.push(format!(
            "invite:   redirect {}, invitation e-mail {}{}",
            invitation.redirect_url,
            if invitation.send_invitation_message {
                "yes"
            } else {
                "no"
            },
            invitation
                .message_language
                .as_deref()
                .map(|l| format!(", language {l}"))
                .unwrap_or_default()
        ));
    }
    for line in lines {
        writeln!(out, "{line}").map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        let cases = [
            ("plain", "Contoso", "Contoso"),
            ("comma", "Contoso, Ltd", "\"Contoso, Ltd\""),
            ("quotes", "the \"best\"", "\"the \"\"best\"\"\""),
            ("newline", "a\nb", "\"a\nb\""),
            ("unicode", "Zoë 李", "Zoë 李"),
            ("formula", "=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("plus", "+1", "'+1"),
            ("at", "@SUM(A1)", "'@SUM(A1)"),
        ];
        for (description, input, expected) in cases {
            assert_eq!(csv_cell(input), expected, "{description}");
        }
    }

    #[test]
    fn periods_parse() {
        assert_eq!(parse_period("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_period("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_period("2w").unwrap(), Duration::weeks(2));
        for bad in ["", "d", "7", "7y", "-"] {
            assert!(parse_period(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn explain_names_the_rule_and_the_access() {
        let policy = Policy::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policy.example.json"
        )))
        .unwrap();
        let mut out = Vec::new();
        explain(
            &policy,
            &EmailAddress::parse("grace@eu.fabrikam.com").unwrap(),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("rules[1], pattern *.fabrikam.com"), "{text}");
        assert!(
            text.contains("wait for an administrator (denied after 14 days)"),
            "{text}"
        );
        assert!(
            text.contains("partner-portal (default) \"Partner portal\""),
            "{text}"
        );

        let mut out = Vec::new();
        explain(
            &policy,
            &EmailAddress::parse("x@evilcontoso.com").unwrap(),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("none matches") && text.contains("refuse"),
            "{text}"
        );
    }
}
