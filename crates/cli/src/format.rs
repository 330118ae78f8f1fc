//! Docker's ways of showing things: sizes in decimal units with three
//! significant digits, "2 hours ago", aligned tables, and a list command's
//! `--format` (its Go templates run by `berth_gotemplate`).

use berth_gotemplate::{go_type_name, Env, Error, Template};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// `docker images` sizes: 1.23MB, 45.6kB, 789B (decimal units).
pub fn human_size(bytes: u64) -> String {
    human_size_prec(bytes, 3)
}

pub use berth_engine::units::human_size_prec;

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

/// A list command's `--format`: the command's own table, `json` (one object
/// per line), or a template — with a `table` prefix, a header row and
/// columns aligned as Docker's tabwriter does.
pub enum ListFormat {
    Default,
    Json,
    Template { tmpl: Template, table: bool },
}

/// What a list command's rows are: Docker's Go type (for the error about a
/// field it lacks), and each field's column header.
pub struct Columns<'a> {
    pub type_name: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

impl ListFormat {
    pub fn parse(f: Option<&str>) -> Result<ListFormat, Error> {
        let Some(f) = f else {
            return Ok(ListFormat::Default);
        };
        if f == "json" {
            return Ok(ListFormat::Json);
        }
        let (table, rest) = match f.strip_prefix("table") {
            Some(r) => (true, r),
            None => (false, f),
        };
        let rest = rest.trim_matches(' ');
        if rest.is_empty() {
            return Ok(ListFormat::Default);
        }
        Ok(ListFormat::Template {
            tmpl: Template::parse_list(rest)?,
            table,
        })
    }

    /// Renders rows (JSON objects of the command's fields). `labels` gives a
    /// row's labels for `.Label "key"`, where the command has them.
    /// `Default` renders nothing: the command prints its own table.
    pub fn render(
        &self,
        rows: &[Value],
        cols: &Columns,
        labels: Option<&dyn Fn(usize) -> BTreeMap<String, String>>,
    ) -> Result<String, Error> {
        match self {
            ListFormat::Default => Ok(String::new()),
            ListFormat::Json => Ok(rows.iter().map(|r| format!("{r}\n")).collect()),
            ListFormat::Template { tmpl, table } => {
                let mut out = String::new();
                if *table {
                    let head: Map<String, Value> = cols
                        .headers
                        .iter()
                        .map(|(k, h)| ((*k).to_owned(), Value::String((*h).to_owned())))
                        .collect();
                    let head = Value::Object(head);
                    let label_head = |name: &str, _: &[Value]| -> Option<Result<Value, String>> {
                        (name == "Label" && labels.is_some()).then(|| Ok(Value::from("LABEL")))
                    };
                    let env = Env {
                        header: true,
                        method: Some(&label_head),
                        ..Env::default()
                    };
                    // As Docker: a header that fails to render stops where it failed.
                    let _ = tmpl.execute_into(&head, &env, &mut out);
                    out.push('\n');
                }
                for (i, r) in rows.iter().enumerate() {
                    let l = labels.map(|f| f(i));
                    let method = |name: &str, args: &[Value]| -> Option<Result<Value, String>> {
                        let l = l.as_ref().filter(|_| name == "Label")?;
                        Some(match args {
                            [Value::String(k)] => {
                                Ok(Value::String(l.get(k).cloned().unwrap_or_default()))
                            }
                            [other] => Err(format!(
                                "wrong type for value; expected string; got {}",
                                go_type_name(other)
                            )),
                            _ => Err(format!(
                                "wrong number of args for Label: want 1 got {}",
                                args.len()
                            )),
                        })
                    };
                    let env = Env {
                        root_type: Some(cols.type_name),
                        method: Some(&method),
                        ..Env::default()
                    };
                    tmpl.execute_into(r, &env, &mut out)?;
                    out.push('\n');
                }
                Ok(if *table { tabwriter(&out) } else { out })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    #[allow(clippy::unwrap_used)]
    fn list_formats() {
        let rows = vec![
            json!({"ID": "abc", "Names": "web", "Labels": "a=1"}),
            json!({"ID": "defghijklmnop", "Names": "db", "Labels": ""}),
        ];
        let cols = Columns {
            type_name: "*formatter.ContainerContext",
            headers: &[
                ("ID", "CONTAINER ID"),
                ("Names", "NAMES"),
                ("Labels", "LABELS"),
            ],
        };
        let labels = |i: usize| {
            let mut m = BTreeMap::new();
            if i == 0 {
                m.insert("a".to_owned(), "1".to_owned());
            }
            m
        };
        let render = |f: &str| {
            ListFormat::parse(Some(f))
                .unwrap()
                .render(&rows, &cols, Some(&labels))
                .unwrap()
        };
        assert_eq!(
            render("table {{.ID}}\\t{{.Names}}"),
            "CONTAINER ID    NAMES\nabc             web\ndefghijklmnop   db\n"
        );
        assert_eq!(
            render("table {{.Names | upper}}\\t{{json .Labels}}\\t{{.Label \"a\"}}"),
            "NAMES     LABELS    LABEL\nWEB       \"a=1\"     1\nDB        \"\"        \n"
        );
        assert_eq!(render("{{.Names}}"), "web\ndb\n");
        assert_eq!(
            render("{{.Names}}\\t{{.ID}}"),
            "web\tabc\ndb\tdefghijklmnop\n"
        );
        let j = render("json");
        let docs: Vec<Value> = j
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(docs, rows);
        assert!(matches!(
            ListFormat::parse(Some("table")),
            Ok(ListFormat::Default)
        ));
        assert!(matches!(ListFormat::parse(None), Ok(ListFormat::Default)));
        assert!(ListFormat::parse(Some("{{.ID")).is_err());
        let bad = ListFormat::parse(Some("{{.Nope}}"))
            .unwrap()
            .render(&rows, &cols, None);
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("can't evaluate field Nope"));
    }
}
