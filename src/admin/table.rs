//! What `requests list` and `requests show` print for people: an aligned table, one request
//! per line, and one request's fields, one per line. Every value is printed
//! [`visible`]: stored text never steers the terminal.

use std::io::{self, Write};

use super::{
    view::{EntryView, SHOWN_APART, View},
    visible::{Breaks, visible},
};

/// Where a field's continuation lines start: after the widest name and a space.
const NAME_WIDTH: usize = 15;

/// Every field of one request, its name in a column of its own, then its history.
pub(super) fn write_fields(out: &mut impl Write, view: &View) -> io::Result<()> {
    let indent = format!("\n{:width$}", "", width = NAME_WIDTH + 1);
    for (name, value) in view.fields() {
        if SHOWN_APART.contains(&name) {
            continue;
        }
        writeln!(
            out,
            "{name:<width$} {}",
            visible(&value, Breaks::Keep).replace('\n', &indent),
            width = NAME_WIDTH
        )?;
    }
    write_history(out, view)
}

/// The history, one change per line: time, actor, action, `from → to`, reason. Actors and
/// reasons are stored text (an administrator's name and words), so they are printed
/// [`visible`] on the line they belong to.
fn write_history(out: &mut impl Write, view: &View) -> io::Result<()> {
    writeln!(out, "History")?;
    let entries = view.history();
    if entries.is_empty() {
        return writeln!(
            out,
            "  no history recorded (row written before history existed)"
        );
    }
    if view.predates_history {
        writeln!(
            out,
            "  (earlier changes not recorded: the row was written before history existed)"
        )?;
    }
    let actor_width = entries
        .iter()
        .map(|e| visible(&e.actor, Breaks::Escape).chars().count())
        .max()
        .unwrap_or(0);
    let action_width = entries.iter().map(|e| e.action.len()).max().unwrap_or(0);
    for (index, entry) in entries.iter().enumerate() {
        write_entry(out, entry, actor_width, action_width)?;
        if index == 0 && view.history_dropped() > 0 {
            writeln!(
                out,
                "  … {} older entries dropped to keep the row within Table Storage's size limit",
                view.history_dropped()
            )?;
        }
    }
    Ok(())
}

fn write_entry(
    out: &mut impl Write,
    entry: &EntryView,
    actor_width: usize,
    action_width: usize,
) -> io::Result<()> {
    let change = match &entry.from {
        Some(from) if *from == entry.to => entry.to.clone(),
        Some(from) => format!("{from} → {}", entry.to),
        None => format!("(new) → {}", entry.to),
    };
    let line = format!(
        "  {}  {:<actor_width$}  {:<action_width$}  {change}{}",
        entry.at,
        visible(&entry.actor, Breaks::Escape),
        entry.action,
        entry
            .reason
            .as_deref()
            .map(|reason| format!("  {}", visible(reason, Breaks::Escape)))
            .unwrap_or_default(),
    );
    writeln!(out, "{}", line.trim_end())
}

/// The requests, one per line, in columns as wide as their widest cell.
pub(super) fn write_table(out: &mut impl Write, rows: &[View]) -> io::Result<()> {
    let header = ["ID", "CREATED (UTC)", "STATUS", "DOMAIN", "ACCESS", "EMAIL"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|view| {
            let [id, created, status, domain, access, email] = view.summary();
            [
                id.to_owned(),
                created.get(..16).unwrap_or(created).replace('T', " "),
                status.to_owned(),
                domain.to_owned(),
                access.to_owned(),
                email.to_owned(),
            ]
        })
        .map(|row| row.map(|cell| visible(&cell, Breaks::Escape)))
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
    writeln!(out, "{}", line(&header))?;
    for row in &cells {
        writeln!(out, "{}", line(&row.each_ref().map(String::as_str)))?;
    }
    if rows.is_empty() {
        writeln!(out, "(no requests)")?;
    }
    Ok(())
}
