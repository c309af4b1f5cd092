//! `requests export --format csv`: RFC 4180, CRLF line ends, a header of [`View`]'s columns.

use std::io::{self, Write};

use super::view::View;
use crate::domain::SignupRequest;

/// The header, then one line per request.
pub(super) fn write(out: &mut impl Write, rows: &[SignupRequest]) -> io::Result<()> {
    write_line(out, View::names().map(cell))?;
    for row in rows {
        write_line(out, View::of(row).fields().map(|(_, value)| cell(&value)))?;
    }
    Ok(())
}

fn write_line(out: &mut impl Write, cells: impl Iterator<Item = String>) -> io::Result<()> {
    write!(out, "{}\r\n", cells.collect::<Vec<_>>().join(","))
}

/// One RFC 4180 cell. Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
/// carriage return first: partners write `Company` themselves) is prefixed with `'`.
fn cell(value: &str) -> String {
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
            assert_eq!(cell(input), expected, "{description}");
        }
    }

    #[test]
    fn an_empty_export_is_the_header_alone() {
        let mut out = Vec::new();
        write(&mut out, &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "RequestId,Status,Email,DisplayName,Domain,Access,Company,Justification,Reason,\
             Attempts,InvitedUserId,GraphRequestId,CreatedAt,UpdatedAt,DecidedBy,DecidedAt,\
             DecideBy,NotifiedAt,DryRun,RetriedBy,RetriedAt,DecisionReason,History,\
             HistoryDropped,AccessEndsAt,RenewalNoticeAt\r\n"
        );
    }
}
