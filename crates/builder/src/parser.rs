//! The Dockerfile parser: directives (`# escape=`, `# syntax=`), comments,
//! line continuations, heredocs, then one typed [`Command`] per instruction.
//! Pure: no file system, no variables (substitution happens when a step
//! runs, with the variables in scope then; see [`crate::shell`]).

use crate::shell::split_words;

/// A parse error, always naming the line it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        msg: msg.into(),
    })
}

/// A heredoc (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The lines up to the terminator, each with its newline, as written.
    pub content: String,
    /// `<<-EOF`: leading tabs are stripped from the lines.
    pub strip_tabs: bool,
    /// The delimiter was unquoted: variables are expanded in the content.
    pub expand: bool,
}

impl Heredoc {
    /// The content with `<<-`'s tab stripping applied.
    pub fn text(&self) -> String {
        if !self.strip_tabs {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// One instruction as written (continuations joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The line it starts on (1-based).
    pub line: usize,
    /// Upper case: `RUN`.
    pub keyword: String,
    /// Everything after the keyword, trimmed.
    pub rest: String,
    /// The instruction as Docker prints it in `Step N/M : …`.
    pub original: String,
    pub heredocs: Vec<Heredoc>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    /// `# syntax=`: recorded, not acted on (there is one frontend here).
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// The shell form (run by the stage's SHELL) or the exec form (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellOrExec {
    Shell(String),
    Exec(Vec<String>),
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Sources as written (unexpanded words); heredoc names for heredocs.
    pub srcs: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthArgs {
    pub test: ShellOrExec,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

/// What a BuildKit `RUN --mount=type=...` mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// Files of the context (`from` None) or of a stage or image, read-only
    /// unless `rw` (whose writes are then thrown away).
    Bind { from: Option<String>, rw: bool },
    /// A directory kept between builds, by `id` (the target by default).
    Cache { id: String, ro: bool },
    /// An empty tmpfs.
    Tmpfs,
    /// A `--secret`'s file (at /run/secrets/ID by default).
    Secret { id: String, required: bool },
    /// An ssh agent's socket given with `--ssh` (SSH_AUTH_SOCK points to it).
    Ssh { id: String, required: bool },
}

/// One `RUN --mount=` flag, parsed (words unexpanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    /// Where it goes; empty: the kind's default (secret and ssh).
    pub target: String,
    /// bind and cache: the path in the source.
    pub source: String,
    /// secret: the file's mode (0400 by default), uid and gid.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs: its size (`64m`).
    pub size: Option<String>,
}

impl RunMount {
    /// BuildKit's `type=cache,target=/root/.cache,id=x,...`.
    pub fn parse(spec: &str) -> Result<RunMount, String> {
        let mut typ = "bind".to_owned();
        let (mut target, mut source) = (String::new(), String::new());
        let (mut id, mut from) = (None, None);
        let (mut ro, mut rw, mut required) = (None::<bool>, None::<bool>, false);
        let (mut mode, mut uid, mut gid) = (None, None, None);
        let (mut size, mut env) = (None, false);
        let boolean = |k: &str, v: Option<&str>| -> Result<bool, String> {
            match v.map(str::to_ascii_lowercase).as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(o) => Err(format!("invalid value {o:?} for {k}: true or false")),
            }
        };
        let number = |k: &str, v: &str, radix: u32| {
            u32::from_str_radix(v, radix).map_err(|_| format!("invalid value {v:?} for {k}"))
        };
        for field in spec.split(',').filter(|f| !f.is_empty()) {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
                None => (field.trim().to_ascii_lowercase(), None),
            };
            let val = || {
                v.map(str::to_owned)
                    .ok_or_else(|| format!("{k} needs a value"))
            };
            match k.as_str() {
                "type" => typ = val()?,
                "target" | "dst" | "destination" => target = val()?,
                "source" | "src" => source = val()?,
                "id" => id = Some(val()?),
                "from" => from = Some(val()?),
                "readonly" | "ro" => ro = Some(boolean(&k, v)?),
                "readwrite" | "rw" => rw = Some(boolean(&k, v)?),
                "required" => required = boolean(&k, v)?,
                "mode" => mode = Some(number(&k, &val()?, 8)?),
                "uid" => uid = Some(number(&k, &val()?, 10)?),
                "gid" => gid = Some(number(&k, &val()?, 10)?),
                // Accepted, and what berth does anyway (one build at a time
                // per cache is not enforced) or has no use for.
                "size" => size = Some(val()?),
                "env" => env = true,
                "sharing" => {}
                _ => return Err(format!("unexpected key '{k}' in '{field}'")),
            }
        }
        let writable = match (ro, rw) {
            (Some(r), _) => !r,
            (None, Some(w)) => w,
            (None, None) => typ != "bind",
        };
        let need_target = |t: &str| {
            if t.is_empty() {
                Err(format!("mount type {typ} needs a target"))
            } else {
                Ok(())
            }
        };
        let kind = match typ.as_str() {
            "bind" => {
                need_target(&target)?;
                MountKind::Bind { from, rw: writable }
            }
            "cache" => {
                need_target(&target)?;
                if from.is_some() {
                    return Err("cache mounts with from= are not supported by berth".into());
                }
                MountKind::Cache {
                    id: id.unwrap_or_else(|| target.clone()),
                    ro: !writable,
                }
            }
            "tmpfs" => {
                need_target(&target)?;
                MountKind::Tmpfs
            }
            // The value in an environment variable would be in the step's
            // container record: berth gives secrets as files only.
            "secret" if env => return Err(
                "env= is not supported by berth: read the secret from its file (/run/secrets/ID)"
                    .into(),
            ),
            "secret" => {
                let id = match id {
                    Some(id) => id,
                    None => std::path::Path::new(&target)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .ok_or("secret mount needs an id or a target")?,
                };
                MountKind::Secret { id, required }
            }
            "ssh" => MountKind::Ssh {
                id: id.unwrap_or_else(|| "default".into()),
                required,
            },
            t => {
                return Err(format!(
                    "unsupported mount type {t:?}: bind, cache, tmpfs, secret or ssh"
                ))
            }
        };
        if target.is_empty() {
            if let MountKind::Secret { id, .. } = &kind {
                target = format!("/run/secrets/{id}");
            }
        }
        if size.is_some() && kind != MountKind::Tmpfs {
            return Err("size= is for type=tmpfs".into());
        }
        if env && !matches!(kind, MountKind::Secret { .. }) {
            return Err("env= is for type=secret".into());
        }
        Ok(RunMount {
            kind,
            target,
            source,
            mode,
            uid,
            gid,
            size,
        })
    }
}

/// One instruction, typed. Words are kept unexpanded: variables are
/// substituted when the step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    From {
        image: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Run {
        cmd: ShellOrExec,
        network: Option<String>,
        /// BuildKit's `--mount=...` flags, in order.
        mounts: Vec<RunMount>,
    },
    Cmd(ShellOrExec),
    Entrypoint(ShellOrExec),
    Copy(CopyArgs),
    Add(CopyArgs),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    /// Names with their default values (`ARG A=1 B`).
    Arg(Vec<(String, Option<String>)>),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    /// None: `HEALTHCHECK NONE`.
    Healthcheck(Option<HealthArgs>),
    Shell(Vec<String>),
    /// The trigger instruction as written.
    Onbuild(String),
    Maintainer(String),
}

const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "LABEL",
    "VOLUME",
    "HEALTHCHECK",
    "SHELL",
    "STOPSIGNAL",
    "ONBUILD",
    "MAINTAINER",
];

/// A parser directive line: `# name=value`.
fn directive(line: &str) -> Option<(String, String)> {
    let t = line.trim_start().strip_prefix('#')?;
    let (k, v) = t.split_once('=')?;
    let k = k.trim();
    if k.is_empty()
        || !k.starts_with(|c: char| c.is_ascii_alphabetic())
        || !k.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_owned()))
}

/// `line` without its continuation marker, if it has one: the escape
/// character followed only by blanks.
fn continuation(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    t.strip_suffix(escape)
}

/// Heredoc markers in `rest`: `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`,
/// outside quotes.
fn heredoc_markers(rest: &str) -> Vec<(String, bool, bool)> {
    let b: Vec<char> = rest.chars().collect();
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            i += 1;
            continue;
        }
        if c == '<' && b.get(i + 1) == Some(&'<') && b.get(i + 2) == Some(&'<') {
            // A here-string (`<<<word`): not a heredoc.
            while b.get(i) == Some(&'<') {
                i += 1;
            }
            continue;
        }
        if c == '<' && b.get(i + 1) == Some(&'<') {
            let mut j = i + 2;
            let strip = b.get(j) == Some(&'-');
            if strip {
                j += 1;
            }
            let q = match b.get(j) {
                Some(&c @ ('"' | '\'')) => {
                    j += 1;
                    Some(c)
                }
                _ => None,
            };
            let start = j;
            while j < b.len()
                && !b[j].is_whitespace()
                && !matches!(b[j], '"' | '\'' | '<' | '>' | '|' | '&' | ';' | '(' | ')')
            {
                j += 1;
            }
            if j > start {
                let name: String = b[start..j].iter().collect();
                if let Some(q) = q {
                    if b.get(j) == Some(&q) {
                        j += 1;
                    }
                }
                out.push((name, strip, q.is_none()));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Parses a Dockerfile's text into instructions.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    // Directives: only at the very top, until the first other line.
    let mut seen = std::collections::HashSet::new();
    while i < lines.len() {
        let Some((k, v)) = directive(lines[i]) else {
            break;
        };
        if !seen.insert(k.clone()) {
            return err(i + 1, format!("only one {k} parser directive can be used"));
        }
        match k.as_str() {
            "escape" => {
                escape = match v.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return err(
                            i + 1,
                            format!("invalid escape token '{v}' does not validate"),
                        )
                    }
                }
            }
            "syntax" => syntax = Some(v),
            _ => {}
        }
        i += 1;
    }
    let mut instructions = Vec::new();
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_start();
        i += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let mut joined = String::new();
        let mut cur = first;
        loop {
            match continuation(cur, escape) {
                Some(body) => {
                    joined.push_str(body);
                    // Comments and blank lines inside a continuation are skipped.
                    loop {
                        if i >= lines.len() {
                            cur = "";
                            break;
                        }
                        let l = lines[i].trim_start();
                        i += 1;
                        if l.is_empty() || l.starts_with('#') {
                            continue;
                        }
                        cur = l;
                        break;
                    }
                    if i >= lines.len() && cur.is_empty() {
                        break;
                    }
                }
                None => {
                    joined.push_str(cur);
                    break;
                }
            }
        }
        let joined = joined.trim().to_owned();
        let (kw, rest) = match joined.find(char::is_whitespace) {
            Some(n) => (&joined[..n], joined[n..].trim()),
            None => (joined.as_str(), ""),
        };
        let keyword = kw.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return err(start + 1, format!("unknown instruction: {kw}"));
        }
        let mut heredocs = Vec::new();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, strip_tabs, expand) in heredoc_markers(rest) {
                let mut content = String::new();
                loop {
                    if i >= lines.len() {
                        return err(
                            start + 1,
                            format!("unterminated heredoc {name}: no line '{name}' follows"),
                        );
                    }
                    let l = lines[i];
                    i += 1;
                    let cmp = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if cmp == name {
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    strip_tabs,
                    expand,
                });
            }
        }
        instructions.push(Instruction {
            line: start + 1,
            original: format!("{keyword} {rest}").trim_end().to_owned(),
            keyword,
            rest: rest.to_owned(),
            heredocs,
        });
    }
    Ok(Dockerfile {
        escape,
        syntax,
        instructions,
    })
}

/// `["a", "b"]` as a list, or None for the shell form.
fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(rest).ok()?;
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_owned))
        .collect()
}

fn shell_or_exec(rest: &str) -> ShellOrExec {
    match json_array(rest) {
        Some(v) => ShellOrExec::Exec(v),
        None => ShellOrExec::Shell(rest.to_owned()),
    }
}

/// An instruction's `--name[=value]` flags, in order.
type Flags = Vec<(String, Option<String>)>;

/// Leading `--name=value` flags; unknown ones are refused.
fn take_flags<'a>(
    line: usize,
    keyword: &str,
    rest: &'a str,
    allowed: &[&str],
) -> Result<(Flags, &'a str), ParseError> {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    while let Some(f) = rest.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        if word.is_empty() {
            break;
        }
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (word, None),
        };
        if !allowed.contains(&name) {
            return err(line, format!("unknown flag: --{name} (for {keyword})"));
        }
        flags.push((name.to_owned(), value));
        rest = f[end..].trim_start();
    }
    Ok((flags, rest))
}

fn flag(flags: &[(String, Option<String>)], name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone().unwrap_or_default())
}

/// `ENV`/`LABEL`: `k=v k2="v 2"`, or the old `k v w` form.
fn name_values(
    line: usize,
    keyword: &str,
    rest: &str,
    escape: char,
) -> Result<Vec<(String, String)>, ParseError> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        return err(line, format!("{keyword} requires at least one argument"));
    };
    if !first.contains('=') {
        let (k, v) = match rest.find(char::is_whitespace) {
            Some(n) => (&rest[..n], rest[n..].trim()),
            None => (rest, ""),
        };
        if v.is_empty() && keyword == "ENV" {
            return err(line, "ENV must have two arguments");
        }
        return Ok(vec![(k.to_owned(), v.to_owned())]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => err(line, format!("{keyword} names can not be blank")),
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => err(
                line,
                format!("Syntax error - can't find = in \"{w}\". Must be of the form: name=value"),
            ),
        })
        .collect()
}

impl Instruction {
    /// The typed command, or an error naming this instruction's line.
    pub fn command(&self, escape: char) -> Result<Command, ParseError> {
        let line = self.line;
        let kw = self.keyword.as_str();
        let rest = self.rest.as_str();
        let need = |ok: bool, what: &str| -> Result<(), ParseError> {
            if ok {
                Ok(())
            } else {
                err(line, format!("{kw} requires {what}"))
            }
        };
        Ok(match kw {
            "FROM" => {
                let (flags, rest) = take_flags(line, kw, rest, &["platform"])?;
                let words: Vec<&str> = rest.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_] => None,
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        let ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
                            && name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                        if !ok {
                            return err(line, format!("invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"));
                        }
                        Some(name.to_ascii_lowercase())
                    }
                    _ => return err(line, "FROM requires either one or three arguments"),
                };
                Command::From {
                    image: words[0].to_owned(),
                    name,
                    platform: flag(&flags, "platform"),
                }
            }
            "RUN" => {
                let (flags, rest) = take_flags(line, kw, rest, &["network", "mount", "security"])?;
                let mut mounts = Vec::new();
                for (n, v) in &flags {
                    if n == "mount" {
                        let v = v.as_deref().unwrap_or_default();
                        mounts.push(RunMount::parse(v).map_err(|m| ParseError {
                            line,
                            msg: format!("RUN --mount={v}: {m}"),
                        })?);
                    }
                }
                if flag(&flags, "security").is_some_and(|s| s != "sandbox") {
                    return err(
                        line,
                        "RUN --security=insecure is not supported by this builder",
                    );
                }
                need(!rest.is_empty(), "at least one argument")?;
                let cmd = if self.heredocs.is_empty() {
                    shell_or_exec(rest)
                } else {
                    ShellOrExec::Shell(run_heredoc_script(rest, &self.heredocs))
                };
                Command::Run {
                    cmd,
                    network: flag(&flags, "network"),
                    mounts,
                }
            }
            "CMD" | "ENTRYPOINT" => {
                let c = shell_or_exec(rest);
                if kw == "CMD" {
                    Command::Cmd(c)
                } else {
                    Command::Entrypoint(c)
                }
            }
            "COPY" | "ADD" => {
                let allowed: &[&str] = if kw == "COPY" {
                    &["from", "chown", "chmod", "link", "parents", "exclude"]
                } else {
                    &[
                        "chown",
                        "chmod",
                        "link",
                        "checksum",
                        "keep-git-dir",
                        "exclude",
                    ]
                };
                let (flags, rest) = take_flags(line, kw, rest, allowed)?;
                for unsupported in ["parents", "exclude", "checksum", "keep-git-dir"] {
                    if flag(&flags, unsupported).is_some() {
                        return err(
                            line,
                            format!("{kw} --{unsupported} is not supported by this builder"),
                        );
                    }
                }
                let words = match json_array(rest) {
                    Some(v) => v,
                    None => split_words(rest, escape),
                };
                if words.len() < 2 {
                    return err(
                        line,
                        format!(
                            "{kw} requires at least two arguments, but only {} provided",
                            words.len()
                        ),
                    );
                }
                let (dest, srcs) = words.split_last().unwrap_or((&words[0], &[]));
                let args = CopyArgs {
                    srcs: srcs.to_vec(),
                    dest: dest.clone(),
                    from: flag(&flags, "from"),
                    chown: flag(&flags, "chown"),
                    chmod: flag(&flags, "chmod"),
                    heredocs: self.heredocs.clone(),
                };
                if kw == "COPY" {
                    Command::Copy(args)
                } else {
                    Command::Add(args)
                }
            }
            "ENV" => Command::Env(name_values(line, kw, rest, escape)?),
            "LABEL" => Command::Label(name_values(line, kw, rest, escape)?),
            "ARG" => {
                let words = split_words(rest, escape);
                need(!words.is_empty(), "at least one argument")?;
                let mut out = Vec::new();
                for w in words {
                    let (k, v) = match w.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (w, None),
                    };
                    if k.is_empty() {
                        return err(line, "ARG names can not be blank");
                    }
                    out.push((k, v));
                }
                Command::Arg(out)
            }
            "WORKDIR" => {
                need(!rest.is_empty(), "exactly one argument")?;
                Command::Workdir(rest.to_owned())
            }
            "USER" => {
                need(!rest.is_empty(), "exactly one argument")?;
                Command::User(rest.to_owned())
            }
            "STOPSIGNAL" => {
                need(rest.split_whitespace().count() == 1, "exactly one argument")?;
                Command::StopSignal(rest.to_owned())
            }
            "MAINTAINER" => {
                need(!rest.is_empty(), "exactly one argument")?;
                Command::Maintainer(rest.to_owned())
            }
            "EXPOSE" => {
                let w = split_words(rest, escape);
                need(!w.is_empty(), "at least one argument")?;
                Command::Expose(w)
            }
            "VOLUME" => {
                let w = match json_array(rest) {
                    Some(v) => v,
                    None => split_words(rest, escape),
                };
                need(!w.is_empty(), "at least one argument")?;
                if w.iter().any(|v| v.trim().is_empty()) {
                    return err(line, "VOLUME specified can not be an empty string");
                }
                Command::Volume(w)
            }
            "SHELL" => match json_array(rest) {
                Some(v) if !v.is_empty() => Command::Shell(v),
                _ => return err(line, "SHELL requires the arguments to be in JSON form"),
            },
            "HEALTHCHECK" => {
                let (flags, rest) = take_flags(
                    line,
                    kw,
                    rest,
                    &[
                        "interval",
                        "timeout",
                        "start-period",
                        "start-interval",
                        "retries",
                    ],
                )?;
                let (typ, cmd) = match rest.find(char::is_whitespace) {
                    Some(n) => (&rest[..n], rest[n..].trim()),
                    None => (rest, ""),
                };
                match typ.to_ascii_uppercase().as_str() {
                    "NONE" => {
                        if !cmd.is_empty() || !flags.is_empty() {
                            return err(line, "HEALTHCHECK NONE takes no arguments");
                        }
                        Command::Healthcheck(None)
                    }
                    "CMD" => {
                        need(!cmd.is_empty(), "a command after CMD")?;
                        Command::Healthcheck(Some(HealthArgs {
                            test: shell_or_exec(cmd),
                            interval: flag(&flags, "interval"),
                            timeout: flag(&flags, "timeout"),
                            start_period: flag(&flags, "start-period"),
                            start_interval: flag(&flags, "start-interval"),
                            retries: flag(&flags, "retries"),
                        }))
                    }
                    _ => {
                        return err(
                            line,
                            format!("Unknown type \"{typ}\" in HEALTHCHECK (try CMD)"),
                        )
                    }
                }
            }
            "ONBUILD" => {
                need(!rest.is_empty(), "at least one argument")?;
                let inner = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                match inner.as_str() {
                    "ONBUILD" => {
                        return err(line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
                    }
                    "FROM" | "MAINTAINER" => {
                        return err(line, format!("{inner} isn't allowed as an ONBUILD trigger"))
                    }
                    k if !KEYWORDS.contains(&k) => {
                        return err(line, format!("unknown instruction: {inner}"))
                    }
                    _ => {}
                }
                // The trigger must itself parse.
                let sub = parse(rest).map_err(|e| ParseError { line, msg: e.msg })?;
                for ins in &sub.instructions {
                    ins.command(escape)
                        .map_err(|e| ParseError { line, msg: e.msg })?;
                }
                Command::Onbuild(rest.to_owned())
            }
            _ => return err(line, format!("unknown instruction: {kw}")),
        })
    }
}

/// The script a RUN with heredocs runs: a lone heredoc is the script
/// itself; otherwise the shell gets the command line followed by the
/// heredocs, and handles them (redirections, quoting, `<<-`) itself.
fn run_heredoc_script(rest: &str, docs: &[Heredoc]) -> String {
    if let [doc] = docs {
        let lone = rest
            .trim()
            .strip_prefix("<<")
            .map(|t| t.strip_prefix('-').unwrap_or(t))
            .map(|t| t.trim_matches(|c| c == '"' || c == '\''));
        if lone == Some(doc.name.as_str()) {
            let text = doc.text();
            if text.starts_with("#!") {
                return shebang_script(&text);
            }
            return text;
        }
    }
    let mut s = rest.to_owned();
    s.push('\n');
    for d in docs {
        s.push_str(&d.content);
        s.push_str(&d.name);
        s.push('\n');
    }
    s
}

/// A heredoc script with its own interpreter (`#!/usr/bin/env python3`):
/// the shell writes it to a temporary file, runs it and removes it.
fn shebang_script(text: &str) -> String {
    let mut delim = "BERTH_SCRIPT_EOF".to_owned();
    while text.lines().any(|l| l == delim) {
        delim.push('_');
    }
    format!(
        "f=$(mktemp) && cat > \"$f\" <<'{delim}' && chmod 700 \"$f\" && {{ \"$f\"; rc=$?; rm -f \"$f\"; exit $rc; }}\n{text}{delim}\n"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cmds(text: &str) -> Vec<Command> {
        let df = parse(text).unwrap();
        df.instructions
            .iter()
            .map(|i| i.command(df.escape).unwrap())
            .collect()
    }

    fn parse_err(text: &str) -> ParseError {
        match parse(text) {
            Err(e) => e,
            Ok(df) => df
                .instructions
                .iter()
                .find_map(|i| i.command(df.escape).err())
                .expect("an error"),
        }
    }

    #[test]
    fn basic_instructions_and_lines() {
        let df = parse("# comment\nFROM busybox AS Build\n\nrun echo hi\n  CMD [\"sh\", \"-c\"]\n")
            .unwrap();
        assert_eq!(df.instructions.len(), 3);
        assert_eq!(df.instructions[0].line, 2);
        assert_eq!(df.instructions[1].line, 4);
        assert_eq!(df.instructions[1].original, "RUN echo hi");
        let c = cmds("FROM busybox AS Build\nrun echo hi\nCMD [\"sh\", \"-c\"]\nCMD echo [x");
        assert_eq!(
            c[0],
            Command::From {
                image: "busybox".into(),
                name: Some("build".into()),
                platform: None
            }
        );
        assert_eq!(
            c[1],
            Command::Run {
                cmd: ShellOrExec::Shell("echo hi".into()),
                network: None,
                mounts: Vec::new()
            }
        );
        assert_eq!(
            c[2],
            Command::Cmd(ShellOrExec::Exec(vec!["sh".into(), "-c".into()]))
        );
        assert_eq!(c[3], Command::Cmd(ShellOrExec::Shell("echo [x".into())));
    }

    #[test]
    fn continuations_skip_comments_and_blank_lines() {
        let df = parse("FROM x\nRUN echo a \\\n# inner comment\n\n   b \\  \n c\nUSER me").unwrap();
        assert_eq!(df.instructions[1].rest, "echo a b c");
        assert_eq!(df.instructions[1].line, 2);
        assert_eq!(df.instructions[2].line, 7);
        // A continuation at the end of the file ends the instruction.
        let df = parse("FROM x\nRUN a \\").unwrap();
        assert_eq!(df.instructions[1].rest, "a");
    }

    #[test]
    fn escape_directive() {
        let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].rest, "dir c:\\ && echo");
        // A directive after the first instruction is a comment.
        let df = parse("FROM x\n# escape=`\nRUN a `\nUSER b").unwrap();
        assert_eq!(df.escape, '\\');
        assert_eq!(df.instructions.len(), 3);
        // After a blank line, directives are no longer looked for.
        let df = parse("\n# escape=`\nFROM x").unwrap();
        assert_eq!(df.escape, '\\');
        let df = parse("# syntax=docker/dockerfile:1\n# escape=\\\nFROM x").unwrap();
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(parse_err("# escape=x\nFROM a").line, 1);
        assert_eq!(parse_err("# escape=`\n# escape=`\nFROM a").line, 2);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_err("FROM busybox\n\n# c\nRUNN echo\n");
        assert_eq!((e.line, e.msg.as_str()), (4, "unknown instruction: RUNN"));
        assert_eq!(
            parse_err("FROM\n").msg,
            "FROM requires either one or three arguments"
        );
        assert_eq!(parse_err("FROM a\nCOPY x\n").line, 2);
        assert_eq!(
            parse_err("FROM a\nENV A\n").msg,
            "ENV must have two arguments"
        );
        assert_eq!(parse_err("FROM a\nSHELL sh -c\n").line, 2);
        assert_eq!(
            parse_err("FROM a\nRUN --bogus=1 x\n").msg,
            "unknown flag: --bogus (for RUN)"
        );
        assert_eq!(parse_err("FROM a\nHEALTHCHECK FOO x\n").line, 2);
        assert_eq!(parse_err("FROM a\nONBUILD ONBUILD RUN x\n").line, 2);
        assert_eq!(parse_err("FROM a\nONBUILD FROM x\n").line, 2);
        assert_eq!(parse_err("FROM a\nLABEL a=b c\n").line, 2);
        assert_eq!(parse_err("FROM a AS 1x\n").line, 1);
        assert_eq!(parse_err("FROM a\nRUN <<EOF\nno end\n").line, 2);
        assert_eq!(
            parse_err("FROM a\nWORKDIR\n").msg,
            "WORKDIR requires exactly one argument"
        );
    }

    #[test]
    fn env_label_arg_forms() {
        let c = cmds("ENV A=1 B=\"two words\" C=x\\ y\nENV OLD some value here\nLABEL a.b=c \"d\"=e\nARG X Y=2 Z=");
        assert_eq!(
            c[0],
            Command::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into()),
                ("C".into(), "x\\ y".into())
            ])
        );
        assert_eq!(
            c[1],
            Command::Env(vec![("OLD".into(), "some value here".into())])
        );
        assert_eq!(
            c[2],
            Command::Label(vec![
                ("a.b".into(), "c".into()),
                ("\"d\"".into(), "e".into())
            ])
        );
        assert_eq!(
            c[3],
            Command::Arg(vec![
                ("X".into(), None),
                ("Y".into(), Some("2".into())),
                ("Z".into(), Some(String::new()))
            ])
        );
    }

    #[test]
    fn copy_flags_and_json() {
        let c = cmds("COPY --from=build --chown=1:2 --chmod=644 a b* /dst/\nCOPY [\"a b\", \"/c d\"]\nADD x.tar /");
        assert_eq!(
            c[0],
            Command::Copy(CopyArgs {
                srcs: vec!["a".into(), "b*".into()],
                dest: "/dst/".into(),
                from: Some("build".into()),
                chown: Some("1:2".into()),
                chmod: Some("644".into()),
                heredocs: vec![],
            })
        );
        match &c[1] {
            Command::Copy(a) => assert_eq!(
                (a.srcs.clone(), a.dest.as_str()),
                (vec!["a b".into()], "/c d")
            ),
            x => panic!("{x:?}"),
        }
        assert!(matches!(&c[2], Command::Add(a) if a.dest == "/"));
        assert_eq!(
            parse_err("ADD --from=x a b").msg,
            "unknown flag: --from (for ADD)"
        );
    }

    #[test]
    fn heredocs() {
        let df = parse("FROM a\nRUN <<EOF\necho one\n  echo two\nEOF\nRUN cat <<-'END' > /f && cat <<X >> /f\n\tliteral $A\n\tEND\nx\nX\nUSER me\n").unwrap();
        assert_eq!(df.instructions.len(), 4);
        assert_eq!(df.instructions[3].line, 11);
        let c: Vec<Command> = df
            .instructions
            .iter()
            .map(|i| i.command('\\').unwrap())
            .collect();
        assert_eq!(
            c[1],
            Command::Run {
                cmd: ShellOrExec::Shell("echo one\n  echo two\n".into()),
                network: None,
                mounts: Vec::new()
            }
        );
        assert_eq!(
            c[2],
            Command::Run {
                cmd: ShellOrExec::Shell(
                    "cat <<-'END' > /f && cat <<X >> /f\n\tliteral $A\nEND\nx\nX\n".into()
                ),
                network: None,
                mounts: Vec::new()
            }
        );
        let h = &df.instructions[2].heredocs;
        assert_eq!(
            (h[0].name.as_str(), h[0].strip_tabs, h[0].expand),
            ("END", true, false)
        );
        assert_eq!(h[0].text(), "literal $A\n");
        assert_eq!((h[1].name.as_str(), h[1].expand), ("X", true));
        // A script with its own interpreter is run as a file.
        let df = parse("FROM a\nRUN <<EOF\n#!/bin/awk -f\nBEGIN { print 1 }\nEOF\n").unwrap();
        match df.instructions[1].command('\\').unwrap() {
            Command::Run {
                cmd: ShellOrExec::Shell(s),
                ..
            } => {
                assert!(
                    s.starts_with("f=$(mktemp) && cat > \"$f\" <<'BERTH_SCRIPT_EOF'"),
                    "{s}"
                );
                assert!(
                    s.ends_with("\n#!/bin/awk -f\nBEGIN { print 1 }\nBERTH_SCRIPT_EOF\n"),
                    "{s}"
                );
            }
            x => panic!("{x:?}"),
        }
        // Quoted << is not a heredoc; <<< is a here-string.
        let df = parse("FROM a\nRUN echo '<<EOF' \"<<X\" && cat <<<word\nUSER b").unwrap();
        assert!(df.instructions[1].heredocs.is_empty());
        assert_eq!(df.instructions.len(), 3);
        // COPY from a heredoc.
        let c = cmds("COPY <<EOF /etc/conf\nk=v\nEOF\n");
        match &c[0] {
            Command::Copy(a) => {
                assert_eq!(a.srcs, vec!["<<EOF".to_owned()]);
                assert_eq!(a.heredocs[0].content, "k=v\n");
            }
            x => panic!("{x:?}"),
        }
    }

    #[test]
    fn healthcheck_onbuild_and_others() {
        let c = cmds("HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost\nHEALTHCHECK NONE\nONBUILD RUN echo hi\nEXPOSE 80 443/udp\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-c\"]");
        match &c[0] {
            Command::Healthcheck(Some(h)) => {
                assert_eq!(h.interval.as_deref(), Some("5s"));
                assert_eq!(h.retries.as_deref(), Some("3"));
                assert_eq!(h.test, ShellOrExec::Shell("wget -q localhost".into()));
            }
            x => panic!("{x:?}"),
        }
        assert_eq!(c[1], Command::Healthcheck(None));
        assert_eq!(c[2], Command::Onbuild("RUN echo hi".into()));
        assert_eq!(c[3], Command::Expose(vec!["80".into(), "443/udp".into()]));
        assert_eq!(c[4], Command::Volume(vec!["/a".into(), "/b".into()]));
        assert_eq!(c[5], Command::Volume(vec!["/c".into(), "/d".into()]));
        assert_eq!(c[6], Command::StopSignal("SIGINT".into()));
        assert_eq!(c[7], Command::Shell(vec!["/bin/bash".into(), "-c".into()]));
    }

    #[test]
    fn crlf_line_endings() {
        let df = parse("FROM a\r\nRUN x \\\r\n y\r\n").unwrap();
        assert_eq!(df.instructions[1].rest, "x y");
    }

    #[test]
    fn run_mounts() {
        let m = RunMount::parse("type=cache,target=/root/.cache,sharing=locked").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Cache {
                id: "/root/.cache".into(),
                ro: false
            }
        );
        // bind is the default type, read-only unless rw.
        let m = RunMount::parse("target=/src,source=app").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Bind {
                from: None,
                rw: false
            }
        );
        assert_eq!(m.source, "app");
        let m = RunMount::parse("type=bind,dst=/s,from=build,rw").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Bind {
                from: Some("build".into()),
                rw: true
            }
        );
        let m = RunMount::parse("type=secret,id=npm,mode=0440,uid=1").unwrap();
        assert_eq!(m.target, "/run/secrets/npm");
        assert_eq!((m.mode, m.uid), (Some(0o440), Some(1)));
        let m = RunMount::parse("type=secret,target=/root/.npmrc").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Secret {
                id: ".npmrc".into(),
                required: false
            }
        );
        let m = RunMount::parse("type=ssh,required").unwrap();
        assert_eq!(
            m.kind,
            MountKind::Ssh {
                id: "default".into(),
                required: true
            }
        );
        for bad in [
            "type=nfs,target=/x",
            "type=cache",
            "type=bind,target=/x,colour=red",
            "type=bind,target=/x,ro=maybe",
            "type=secret,id=x,uid=root",
            "type=secret,id=x,env=X",
            "type=cache,target=/x,size=1m",
        ] {
            assert!(RunMount::parse(bad).is_err(), "{bad}");
        }
    }
}
