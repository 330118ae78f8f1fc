//! Docker's ways of showing things: sizes in decimal units with three
//! significant digits, "2 hours ago", and aligned tables.

use std::time::{Duration, SystemTime};

/// `docker images` sizes: 1.23MB, 45.6kB, 789B (decimal units).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    // Three significant digits, trailing zeros dropped, as Go's %.3g.
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// Go's `%.{prec}g` of a size in decimal units, as Docker's
/// units.HumanSizeWithPrecision (HumanSize is precision 4).
pub fn human_size_prec(bytes: u64, prec: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let s = format!("{v:.*}", prec.saturating_sub(int_digits));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// "About a minute ago", "2 hours ago" … as Docker's units.HumanDuration.
pub fn ago(then: SystemTime) -> String {
    let d = SystemTime::now()
        .duration_since(then)
        .unwrap_or(Duration::ZERO);
    format!("{} ago", human_duration(d))
}

pub use berth_engine::human_duration;

/// `--since`/`--until`: RFC 3339, Unix seconds (fractions too), or a
/// duration ago such as 10m.
pub fn parse_when(s: &str) -> berth_engine::Result<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs >= 0.0 {
            return Ok(std::time::UNIX_EPOCH + Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(s)
        .map(|d| SystemTime::now() - d)
        .map_err(|_| {
            berth_engine::EngineError::Invalid(format!(
                "invalid time {s:?}: use RFC 3339, Unix seconds or a duration like 10m"
            ))
        })
}

/// A table as Docker prints its default ones: the cells go through Go's
/// tabwriter as `--format 'table …'` does, so both agree to the space.
/// A tab or newline inside a cell becomes a space, as Docker's history does.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut text = header.join("\t");
    text.push('\n');
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    tabwriter(&text)
}

/// Go's text/tabwriter as Docker's tables use it (minimum cell width 10,
/// padding 3, spaces): cells end at tabs, and a column is as wide as its
/// widest cell plus the padding over each run of lines that have that
/// cell. The text after a line's last tab is not aligned.
pub fn tabwriter(text: &str) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let lines: Vec<(Vec<&str>, bool)> = text
        .split_inclusive('\n')
        .map(|l| match l.strip_suffix('\n') {
            Some(body) => (body.split('\t').collect(), true),
            None => (l.split('\t').collect(), false),
        })
        .collect();
    fn write(lines: &[(Vec<&str>, bool)], widths: &[usize], out: &mut String) {
        for (cells, newline) in lines {
            for (j, c) in cells.iter().enumerate() {
                out.push_str(c);
                if let Some(w) = widths.get(j) {
                    out.push_str(&" ".repeat(w.saturating_sub(c.chars().count())));
                }
            }
            if *newline {
                out.push('\n');
            }
        }
    }
    fn format(lines: &[(Vec<&str>, bool)], widths: &mut Vec<usize>, out: &mut String) {
        let column = widths.len();
        let has = |l: &(Vec<&str>, bool)| column + 1 < l.0.len();
        let mut start = 0;
        let mut this = 0;
        while this < lines.len() {
            if !has(&lines[this]) {
                this += 1;
                continue;
            }
            write(&lines[start..this], widths, out);
            start = this;
            let mut width = MIN_WIDTH;
            while this < lines.len() && has(&lines[this]) {
                width = width.max(lines[this].0[column].chars().count() + PADDING);
                this += 1;
            }
            widths.push(width);
            format(&lines[start..this], widths, out);
            widths.pop();
            start = this;
        }
        write(&lines[start..], widths, out);
    }
    let mut out = String::with_capacity(text.len() * 2);
    format(&lines, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(4_261_412), "4.26MB");
        assert_eq!(human_size(72_800_000), "72.8MB");
        assert_eq!(human_size(128_000_000), "128MB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 hours");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }

    #[test]
    fn tabwriter_like_go() {
        // Columns at least 10 wide, 3 spaces past the widest cell; the text
        // after the last tab is not padded.
        assert_eq!(
            tabwriter("CONTAINER ID\tNAMES\nabc\tweb\n"),
            "CONTAINER ID   NAMES\nabc            web\n"
        );
        assert_eq!(tabwriter("A\tB\nxyz\t1\n"), "A         B\nxyz       1\n");
        // A line without the cell ends the column's block.
        assert_eq!(
            tabwriter("a\tb\nno tabs here at all\nlonger cell\tc\n"),
            "a         b\nno tabs here at all\nlonger cell   c\n"
        );
        // Nested columns: the second column's block is only the lines with it.
        assert_eq!(
            tabwriter("a\tb\tc\nd\te\n"),
            "a         b         c\nd         e\n"
        );
        assert_eq!(tabwriter("é\tx"), "é         x");
        assert_eq!(tabwriter(""), "");
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A         BB\nxyz       1\n");
        let t = table(
            &["NAME", "LONGER HEADER"],
            &[vec!["a-long-name".into(), "x".into()]],
        );
        assert_eq!(t, "NAME          LONGER HEADER\na-long-name   x\n");
        let t = table(&["A", "B"], &[vec!["x\ty".into(), "z".into()]]);
        assert_eq!(t, "A         B\nx y       z\n");
    }
}
