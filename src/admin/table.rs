//! What `requests list` and `requests show` print for people: an aligned table, one request
//! per line, and one request's fields, one per line. Every value is printed
//! [`visible`]: stored text never steers the terminal.

use std::io::{self, Write};

use super::{
    view::View,
    visible::{Breaks, visible},
};
use crate::{clock::rfc3339, domain::SignupRequest};

/// Where a field's continuation lines start: after the widest name and a space.
const NAME_WIDTH: usize = 15;

/// Every field of one request, its name in a column of its own.
pub(super) fn write_fields(out: &mut impl Write, view: &View) -> io::Result<()> {
    let indent = format!("\n{:width$}", "", width = NAME_WIDTH + 1);
    for (name, value) in view.fields() {
        writeln!(
            out,
            "{name:<width$} {}",
            visible(&value, Breaks::Keep).replace('\n', &indent),
            width = NAME_WIDTH
        )?;
    }
    Ok(())
}

/// The requests, one per line, in columns as wide as their widest cell.
pub(super) fn write_table(out: &mut impl Write, rows: &[SignupRequest]) -> io::Result<()> {
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
