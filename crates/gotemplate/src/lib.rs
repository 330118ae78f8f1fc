//! Go's text/template, the language of Docker's `--format` and `inspect -f`,
//! over `serde_json` values.
//!
//! A template is parsed once into a tree ([`Template::parse`]) and executed
//! against each value. The data is JSON, so a few things follow Go's
//! `map[string]interface{}` rather than Docker's typed structs: a missing key
//! prints `<no value>`, a JSON null prints `<nil>` (Docker's nil pointer) and
//! a field of a null is Go's "nil pointer evaluating" error. Values print as
//! Go's `%v` does: `map[k:v]` with sorted keys, `[a b]`, integers without a
//! fraction. The functions are Go's builtins (`and or not len index slice
//! print printf println eq ne lt le gt ge`) and Docker's (`json split join
//! title lower upper pad truncate`). Errors read as Go's, with Docker's
//! "template parsing error:" in front of a parse error.
//!
//! Not supported: `define`, `template`, `block` and `call` (Docker's CLI
//! defines no templates to call), complex numbers.
//!
//! The whole surface: [`Template`] (parse, then execute as often as needed),
//! [`Env`] (what runs beside the data: a Go type for the top level, its
//! methods, table-header mode), [`Error`], and [`go_type_name`] for a
//! method's own errors.
//!
//! ```
//! use berth_gotemplate::{Env, Template};
//! let t = Template::parse("{{.Name}} {{join .Cmd \" \"}} {{json .State}}")?;
//! let doc = serde_json::json!({"Name": "/web", "Cmd": ["sleep", "60"], "State": {"Pid": 42}});
//! assert_eq!(t.execute(&doc, &Env::default())?, r#"/web sleep 60 {"Pid":42}"#);
//! # Ok::<(), berth_gotemplate::Error>(())
//! ```

use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;

/// Why a template could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The template does not parse: `template: :1: unclosed action`.
    #[error("template parsing error: {0}")]
    Parse(String),
    /// Executing it failed: `template: :1:8: executing "" at <.X.Y>: …`.
    #[error("{0}")]
    Exec(String),
}

// ------------------------------------------------------------------ lexer

#[derive(Debug, Clone, PartialEq)]
enum T {
    Text(String),
    Left,
    Right,
    Field(String),
    Var(String),
    Ident(String),
    Kw(Kw),
    Str(String),
    Num(Value),
    Bool(bool),
    Nil,
    Dot,
    Pipe,
    LParen,
    RParen,
    Comma,
    Declare,
    Assign,
    /// Any other character inside an action: the parser says where it is
    /// unexpected.
    Char(char),
    Error(String),
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kw {
    If,
    Else,
    End,
    Range,
    With,
    Break,
    Continue,
    Define,
    Template,
    Block,
}

impl Kw {
    fn name(self) -> &'static str {
        match self {
            Kw::If => "if",
            Kw::Else => "else",
            Kw::End => "end",
            Kw::Range => "range",
            Kw::With => "with",
            Kw::Break => "break",
            Kw::Continue => "continue",
            Kw::Define => "define",
            Kw::Template => "template",
            Kw::Block => "block",
        }
    }
}

#[derive(Debug, Clone)]
struct Tok {
    t: T,
    /// Byte offset in the source.
    pos: usize,
    /// Whether white space comes right before it (inside an action).
    space: bool,
}

impl fmt::Display for Tok {
    /// As Go's parser names a token in "unexpected X in Y".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.t {
            T::Eof => f.write_str("EOF"),
            T::Error(e) => f.write_str(e),
            T::Kw(k) => write!(f, "<{}>", k.name()),
            T::Left => f.write_str("\"{{\""),
            T::Right => f.write_str("\"}}\""),
            T::Char(c) => write!(f, "{:?}", c.to_string()),
            T::Pipe => f.write_str("\"|\""),
            T::LParen => f.write_str("\"(\""),
            T::RParen => f.write_str("\")\""),
            T::Comma => f.write_str("\",\""),
            T::Declare => f.write_str("\":=\""),
            T::Assign => f.write_str("\"=\""),
            T::Dot => f.write_str("\".\""),
            T::Nil => f.write_str("\"nil\""),
            T::Bool(b) => write!(f, "\"{b}\""),
            T::Field(s) => write!(f, "\".{s}\""),
            T::Var(s) | T::Ident(s) => write!(f, "{s:?}"),
            T::Str(s) | T::Text(s) => write!(f, "{s:?}"),
            T::Num(n) => write!(f, "\"{n}\""),
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// `s` starts with Go's right trim marker and delimiter: ` -}}`.
fn right_trim_at(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(is_space) && c.as_str().starts_with("-}}")
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    toks: Vec<Tok>,
    /// Docker's list commands turn `\t` and `\n` in the text into a tab
    /// and a newline.
    text_escapes: bool,
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn push(&mut self, t: T, pos: usize, space: bool) {
        self.toks.push(Tok { t, pos, space });
    }

    fn error(&mut self, msg: impl Into<String>) {
        let pos = self.pos;
        self.push(T::Error(msg.into()), pos, false);
    }

    fn run(mut self) -> Vec<Tok> {
        let mut trim_next = false;
        loop {
            let start = self.pos;
            let end = self.rest().find("{{").map_or(self.src.len(), |i| start + i);
            let left_trim = end < self.src.len() && {
                let mut c = self.src[end + 2..].chars();
                c.next() == Some('-') && c.next().is_some_and(is_space)
            };
            let mut text = &self.src[start..end];
            if trim_next {
                text = text.trim_start_matches(is_space);
            }
            if left_trim {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                let t = if self.text_escapes {
                    text.replace("\\t", "\t").replace("\\n", "\n")
                } else {
                    text.to_owned()
                };
                self.push(T::Text(t), start, false);
            }
            if end == self.src.len() {
                self.pos = end;
                self.push(T::Eof, end, false);
                return self.toks;
            }
            self.pos = end + 2 + if left_trim { 2 } else { 0 };
            if self.rest().starts_with("/*") {
                match self.comment() {
                    Ok(t) => {
                        trim_next = t;
                        continue;
                    }
                    Err(m) => {
                        self.error(m);
                        return self.toks;
                    }
                }
            }
            self.push(T::Left, end, false);
            match self.action() {
                Some(t) => trim_next = t,
                None => return self.toks,
            }
        }
    }

    /// A comment, up to its closing delimiter; whether it ends in ` -}}`.
    fn comment(&mut self) -> Result<bool, &'static str> {
        let Some(close) = self.rest().find("*/") else {
            return Err("unclosed comment");
        };
        self.pos += close + 2;
        if right_trim_at(self.rest()) {
            self.pos += 4;
            Ok(true)
        } else if self.rest().starts_with("}}") {
            self.pos += 2;
            Ok(false)
        } else {
            Err("comment ends before closing delimiter")
        }
    }

    /// The tokens of one action; whether it ends in ` -}}` (None: an error).
    fn action(&mut self) -> Option<bool> {
        let mut space = false;
        loop {
            let rest = self.rest();
            let at = self.pos;
            if rest.starts_with("}}") {
                self.push(T::Right, at, space);
                self.pos += 2;
                return Some(false);
            }
            if right_trim_at(rest) {
                self.push(T::Right, at, true);
                self.pos += 4;
                return Some(true);
            }
            let Some(c) = rest.chars().next() else {
                self.error("unclosed action");
                return None;
            };
            if is_space(c) {
                self.pos += c.len_utf8();
                space = true;
                continue;
            }
            let t = match c {
                '|' => self.one(T::Pipe),
                '(' => self.one(T::LParen),
                ')' => self.one(T::RParen),
                ',' => self.one(T::Comma),
                '=' => self.one(T::Assign),
                ':' if rest.starts_with(":=") => {
                    self.pos += 2;
                    T::Declare
                }
                '"' => match self.quoted() {
                    Ok(s) => T::Str(s),
                    Err(m) => T::Error(m),
                },
                '`' => match rest[1..].find('`') {
                    Some(i) => {
                        self.pos += i + 2;
                        T::Str(rest[1..1 + i].to_owned())
                    }
                    None => T::Error("unterminated raw quoted string".into()),
                },
                '\'' => match self.char_constant() {
                    Ok(c) => T::Num(Value::from(c as u32)),
                    Err(m) => T::Error(m),
                },
                '$' => {
                    let n = self.word(1);
                    T::Var(n)
                }
                '.' if rest[1..].starts_with(|c: char| c.is_ascii_digit()) => self.number(),
                '.' if rest[1..].starts_with(is_alnum) => {
                    let n = self.word(1);
                    T::Field(n[1..].to_owned())
                }
                '.' => self.one(T::Dot),
                '0'..='9' => self.number(),
                '+' | '-' if rest[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.') => {
                    self.number()
                }
                c if is_alnum(c) => {
                    let w = self.word(0);
                    match w.as_str() {
                        "true" => T::Bool(true),
                        "false" => T::Bool(false),
                        "nil" => T::Nil,
                        "if" => T::Kw(Kw::If),
                        "else" => T::Kw(Kw::Else),
                        "end" => T::Kw(Kw::End),
                        "range" => T::Kw(Kw::Range),
                        "with" => T::Kw(Kw::With),
                        "break" => T::Kw(Kw::Break),
                        "continue" => T::Kw(Kw::Continue),
                        "define" => T::Kw(Kw::Define),
                        "template" => T::Kw(Kw::Template),
                        "block" => T::Kw(Kw::Block),
                        _ => T::Ident(w),
                    }
                }
                c => {
                    self.pos += c.len_utf8();
                    T::Char(c)
                }
            };
            let err = matches!(t, T::Error(_));
            self.push(t, at, space);
            if err {
                return None;
            }
            space = false;
        }
    }

    fn one(&mut self, t: T) -> T {
        self.pos += 1;
        t
    }

    /// `skip` characters, then letters, digits and underscores.
    fn word(&mut self, skip: usize) -> String {
        let rest = self.rest();
        let n = rest[skip..]
            .find(|c: char| !is_alnum(c))
            .map_or(rest.len(), |i| i + skip);
        self.pos += n;
        rest[..n].to_owned()
    }

    fn number(&mut self) -> T {
        let rest = self.rest();
        let mut n = 0;
        let mut prev = ' ';
        for c in rest.chars() {
            let sign_ok = n == 0 || matches!(prev, 'e' | 'E' | 'p' | 'P');
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || (sign_ok && "+-".contains(c)) {
                n += c.len_utf8();
                prev = c;
            } else {
                break;
            }
        }
        let text = &rest[..n];
        self.pos += n;
        match parse_number(text) {
            Some(v) => T::Num(v),
            None => T::Error(format!("bad number syntax: {text:?}")),
        }
    }

    /// A double-quoted string with Go's escapes.
    fn quoted(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let mut chars = rest.char_indices().skip(1);
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\n' => break,
                '\\' => match unescape(&mut chars.by_ref().map(|(_, c)| c), '"') {
                    Some(c) => out.push(c),
                    None => return Err(format!("invalid syntax in {:?}", &rest[..i + 1])),
                },
                c => out.push(c),
            }
        }
        Err("unterminated quoted string".into())
    }

    fn char_constant(&mut self) -> Result<char, String> {
        let rest = self.rest();
        let mut chars = rest[1..].chars();
        let c = match chars.next() {
            Some('\\') => unescape(&mut chars, '\''),
            Some('\'') | Some('\n') | None => None,
            Some(c) => Some(c),
        };
        match (c, chars.next()) {
            (Some(c), Some('\'')) => {
                self.pos += rest.len() - chars.as_str().len();
                Ok(c)
            }
            _ => Err("unterminated character constant".into()),
        }
    }
}

/// The character after a backslash, as Go's strconv.Unquote reads it.
fn unescape(chars: &mut impl Iterator<Item = char>, quote: char) -> Option<char> {
    let hex = |chars: &mut dyn Iterator<Item = char>, n: usize| -> Option<char> {
        let s: String = chars.take(n).collect();
        if s.len() != n {
            return None;
        }
        u32::from_str_radix(&s, 16).ok().and_then(char::from_u32)
    };
    Some(match chars.next()? {
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        '\\' => '\\',
        c if c == quote => c,
        'x' => hex(chars, 2)?,
        'u' => hex(chars, 4)?,
        'U' => hex(chars, 8)?,
        c @ '0'..='7' => {
            let rest: String = chars.take(2).collect();
            let v = u32::from_str_radix(&format!("{c}{rest}"), 8).ok()?;
            if rest.len() != 2 || v > 255 {
                return None;
            }
            char::from_u32(v)?
        }
        _ => return None,
    })
}

/// Go's number literals: decimal, 0x, 0o, 0b (with underscores), floats.
fn parse_number(text: &str) -> Option<Value> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let clean = body.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let radix = if lower.starts_with("0x") {
        Some((16, &clean[2..]))
    } else if lower.starts_with("0o") {
        Some((8, &clean[2..]))
    } else if lower.starts_with("0b") {
        Some((2, &clean[2..]))
    } else if clean.len() > 1 && clean.starts_with('0') && clean.bytes().all(|b| b.is_ascii_digit())
    {
        Some((8, &clean[1..]))
    } else {
        None
    };
    if let Some((r, digits)) = radix {
        let v = i64::from_str_radix(digits, r).ok()?;
        return Some(Value::from(if neg { -v } else { v }));
    }
    if let Ok(v) = clean.parse::<i64>() {
        return Some(Value::from(if neg { -v } else { v }));
    }
    if let Ok(v) = clean.parse::<u64>() {
        return (!neg).then(|| Value::from(v));
    }
    if clean.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        let f: f64 = clean.parse().ok()?;
        return Number::from_f64(if neg { -f } else { f }).map(Value::Number);
    }
    None
}

// ------------------------------------------------------------------ tree

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Out(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    pos: usize,
    text: String,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
struct Arg {
    pos: usize,
    text: String,
    term: Term,
    /// Field names after the term: `.A.B`, `$x.A`, `(…).A`.
    chain: Vec<String>,
}

#[derive(Debug, Clone)]
enum Term {
    Dot,
    Var(String),
    Func(String),
    Lit(Value),
    Nil,
    Sub(Box<Pipe>),
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else(Option<Kw>),
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Tok>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
}

type PResult<T> = Result<T, Error>;

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.i += 1;
        t
    }

    fn line_of(&self, pos: usize) -> usize {
        1 + self.src[..pos.min(self.src.len())].matches('\n').count()
    }

    fn error<X>(&self, msg: impl fmt::Display) -> PResult<X> {
        let tok = &self.toks[self.i.saturating_sub(1).min(self.toks.len() - 1)];
        Err(Error::Parse(format!(
            "template: :{}: {msg}",
            self.line_of(tok.pos)
        )))
    }

    fn unexpected<X>(&mut self, context: &str) -> PResult<X> {
        let t = self.next();
        match t.t {
            T::Error(m) => self.error(m),
            _ => self.error(format!("unexpected {t} in {context}")),
        }
    }

    fn list(&mut self) -> PResult<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.t {
                T::Text(s) => nodes.push(Node::Text(s)),
                T::Eof => return Ok((nodes, Stop::Eof)),
                T::Error(m) => return self.error(m),
                T::Left => match self.peek().t {
                    T::Kw(Kw::End) => {
                        self.next();
                        self.expect_right("end")?;
                        return Ok((nodes, Stop::End));
                    }
                    T::Kw(Kw::Else) => {
                        self.next();
                        if let T::Kw(k @ (Kw::If | Kw::With)) = self.peek().t {
                            self.next();
                            return Ok((nodes, Stop::Else(Some(k))));
                        }
                        self.expect_right("else")?;
                        return Ok((nodes, Stop::Else(None)));
                    }
                    T::Kw(k @ (Kw::If | Kw::With | Kw::Range)) => {
                        self.next();
                        nodes.push(self.control(k)?);
                    }
                    T::Kw(k @ (Kw::Break | Kw::Continue)) => {
                        self.next();
                        if self.range_depth == 0 {
                            return self
                                .error(format!("{{{{{}}}}} outside {{{{range}}}}", k.name()));
                        }
                        self.expect_right(k.name())?;
                        nodes.push(if k == Kw::Break {
                            Node::Break
                        } else {
                            Node::Continue
                        });
                    }
                    T::Kw(k @ (Kw::Define | Kw::Template | Kw::Block)) => {
                        self.next();
                        return self.error(format!(
                            "{{{{{}}}}} is not supported by berth's templates",
                            k.name()
                        ));
                    }
                    _ => {
                        let pipe = self.pipeline("command", false)?;
                        nodes.push(Node::Out(pipe));
                    }
                },
                _ => {
                    self.i -= 1;
                    return self.unexpected("input");
                }
            }
        }
    }

    fn expect_right(&mut self, context: &str) -> PResult<()> {
        if self.peek().t == T::Right {
            self.next();
            Ok(())
        } else {
            self.unexpected(context)
        }
    }

    fn control(&mut self, k: Kw) -> PResult<Node> {
        let mark = self.vars.len();
        let pipe = self.pipeline(k.name(), k == Kw::Range)?;
        if k == Kw::Range {
            self.range_depth += 1;
        }
        let (body, end) = self.list()?;
        if k == Kw::Range {
            self.range_depth -= 1;
        }
        let els = match end {
            Stop::Eof => return self.error("unexpected EOF"),
            Stop::End => Vec::new(),
            Stop::Else(None) => match self.list()? {
                (l, Stop::End) => l,
                (_, Stop::Eof) => return self.error("unexpected EOF"),
                (_, Stop::Else(_)) => return self.error("expected end; found {{else}}"),
            },
            Stop::Else(Some(k2)) if k2 == k => vec![self.control(k2)?],
            Stop::Else(Some(k2)) => {
                return self.error(format!(
                    "unexpected {{{{else {}}}}} in {}",
                    k2.name(),
                    k.name()
                ))
            }
        };
        self.vars.truncate(mark);
        Ok(match k {
            Kw::If => Node::If(pipe, body, els),
            Kw::With => Node::With(pipe, body, els),
            _ => Node::Range(pipe, body, els),
        })
    }

    /// A pipeline up to `}}` (consumed), with its declarations.
    fn pipeline(&mut self, context: &str, range: bool) -> PResult<Pipe> {
        let mut decl = Vec::new();
        let mut assign = false;
        if let T::Var(_) = self.peek().t {
            let save = self.i;
            let mut names = Vec::new();
            loop {
                match self.next().t {
                    T::Var(v) => names.push(v),
                    _ => {
                        names.clear();
                        break;
                    }
                }
                match self.next().t {
                    T::Comma if range && names.len() < 2 => continue,
                    T::Comma => return self.error(format!("too many declarations in {context}")),
                    T::Declare => break,
                    T::Assign => {
                        assign = true;
                        break;
                    }
                    _ => {
                        names.clear();
                        break;
                    }
                }
            }
            if names.is_empty() {
                self.i = save;
                assign = false;
            } else {
                for n in &names {
                    if assign && !self.vars.contains(n) {
                        return self.error(format!("undefined variable {n:?}"));
                    }
                }
                if !assign {
                    self.vars.extend(names.iter().cloned());
                }
                decl = names;
            }
        }
        let cmds = self.commands(context, T::Right)?;
        Ok(Pipe { decl, assign, cmds })
    }

    /// Commands separated by `|` up to `end` (consumed).
    fn commands(&mut self, context: &str, end: T) -> PResult<Vec<Cmd>> {
        let mut cmds: Vec<Cmd> = Vec::new();
        loop {
            let t = self.peek().t.clone();
            if t == end {
                self.next();
                if cmds.is_empty() {
                    return self.error(format!("missing value for {context}"));
                }
                for (i, c) in cmds.iter().enumerate().skip(1) {
                    if c.args[0].chain.is_empty()
                        && matches!(c.args[0].term, Term::Lit(_) | Term::Nil | Term::Dot)
                    {
                        return self.error(format!(
                            "non executable command in pipeline stage {}",
                            i + 1
                        ));
                    }
                }
                return Ok(cmds);
            }
            match t {
                T::Right if end == T::RParen => {
                    self.next();
                    return self.error("unclosed left paren");
                }
                T::Pipe if !cmds.is_empty() => {
                    self.next();
                    if matches!(self.peek().t, T::Right | T::RParen | T::Pipe) {
                        self.next();
                        return self.error("missing command");
                    }
                }
                T::Bool(_)
                | T::Num(_)
                | T::Dot
                | T::Field(_)
                | T::Ident(_)
                | T::Nil
                | T::Str(_)
                | T::Var(_)
                | T::LParen => cmds.push(self.command()?),
                _ => return self.unexpected(context),
            }
        }
    }

    fn command(&mut self) -> PResult<Cmd> {
        let pos = self.peek().pos;
        let mut args = Vec::new();
        loop {
            match self.peek().t {
                T::Right | T::RParen | T::Pipe => break,
                _ if !args.is_empty() && !self.peek().space => return self.unexpected("operand"),
                _ => match self.operand()? {
                    Some(a) => args.push(a),
                    None => return self.unexpected("operand"),
                },
            }
        }
        let end = self.peek().pos;
        Ok(Cmd {
            pos,
            text: self.src[pos..end].trim().to_owned(),
            args,
        })
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let pos = self.peek().pos;
        let (term, mut chain) = match self.peek().t.clone() {
            T::Ident(f) => {
                self.next();
                if !FUNCS.contains(&f.as_str()) {
                    return self.error(format!("function {f:?} not defined"));
                }
                (Term::Func(f), vec![])
            }
            T::Dot => {
                self.next();
                (Term::Dot, vec![])
            }
            T::Nil => {
                self.next();
                (Term::Nil, vec![])
            }
            T::Field(f) => {
                self.next();
                (Term::Dot, vec![f])
            }
            T::Var(v) => {
                self.next();
                if !self.vars.contains(&v) {
                    return self.error(format!("undefined variable {v:?}"));
                }
                (Term::Var(v), vec![])
            }
            T::Bool(b) => {
                self.next();
                (Term::Lit(Value::Bool(b)), vec![])
            }
            T::Num(n) => {
                self.next();
                (Term::Lit(n), vec![])
            }
            T::Str(s) => {
                self.next();
                (Term::Lit(Value::String(s)), vec![])
            }
            T::LParen => {
                self.next();
                let cmds = self.commands("parenthesized pipeline", T::RParen)?;
                let p = Pipe {
                    decl: vec![],
                    assign: false,
                    cmds,
                };
                (Term::Sub(Box::new(p)), vec![])
            }
            _ => return Ok(None),
        };
        while let T::Field(f) = &self.peek().t {
            if self.peek().space {
                break;
            }
            if matches!(term, Term::Lit(_) | Term::Nil)
                || (matches!(term, Term::Dot) && chain.is_empty())
            {
                let text = self.src[pos..self.peek().pos].to_owned();
                return self.error(format!("unexpected . after term {text:?}"));
            }
            chain.push(f.clone());
            self.next();
        }
        let end = self.peek().pos;
        Ok(Some(Arg {
            pos,
            text: self.src[pos..end].trim().to_owned(),
            term,
            chain,
        }))
    }
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<Node>,
}

impl Template {
    /// Parses a template as `docker inspect -f` does.
    pub fn parse(src: &str) -> Result<Template, Error> {
        Self::parse_with(src, false)
    }

    /// Parses a list command's `--format`, where `\t` and `\n` in the text
    /// are a tab and a newline (Docker's list commands replace them).
    pub fn parse_list(src: &str) -> Result<Template, Error> {
        Self::parse_with(src, true)
    }

    fn parse_with(src: &str, text_escapes: bool) -> Result<Template, Error> {
        let toks = Lexer {
            src,
            pos: 0,
            toks: Vec::new(),
            text_escapes,
        }
        .run();
        let mut p = Parser {
            src,
            toks,
            i: 0,
            vars: vec!["$".to_owned()],
            range_depth: 0,
        };
        let nodes = match p.list()? {
            (n, Stop::Eof) => n,
            (_, Stop::End) => return p.error("unexpected {{end}}"),
            (_, Stop::Else(_)) => return p.error("unexpected {{else}}"),
        };
        Ok(Template {
            src: src.to_owned(),
            nodes,
        })
    }

    /// Executes the template on `data`.
    pub fn execute(&self, data: &Value, env: &Env) -> Result<String, Error> {
        let mut out = String::new();
        self.execute_into(data, env, &mut out)?;
        Ok(out)
    }

    /// Executes into `out`, which keeps what was written before an error.
    pub fn execute_into(&self, data: &Value, env: &Env, out: &mut String) -> Result<(), Error> {
        let mut x = Exec {
            tmpl: self,
            env,
            root: data,
            vars: vec![("$".to_owned(), V::J(Cow::Borrowed(data)))],
            out,
        };
        let dot = V::J(Cow::Borrowed(data));
        x.walk(&self.nodes, &dot).map(|_| ())
    }
}

/// A method of the data's top level: `.Label "key"` of `ps`. Given the
/// method's name and arguments, `None` when there is no such method.
pub type Method<'a> = &'a dyn Fn(&str, &[Value]) -> Option<Result<Value, String>>;

/// How a template runs, beside its data.
#[derive(Default, Clone, Copy)]
pub struct Env<'a> {
    /// What `json .` prints for the top level when that differs from its
    /// fields (`events`: Go's field names for templates, JSON's in `json`).
    pub root_json: Option<&'a Value>,
    /// The top level is a Go struct of this type: a field it lacks is an
    /// error (`can't evaluate field X in type T`), not `<no value>`.
    pub root_type: Option<&'a str>,
    /// The top level's methods, tried for a name that is not a field.
    pub method: Option<Method<'a>>,
    /// Rendering a table's header: the formatting functions (json, lower, …)
    /// pass their first argument through, as Docker's header functions do.
    pub header: bool,
}

// ------------------------------------------------------------------ execution

/// A value during execution: JSON, or Go's invalid value (a missing key).
#[derive(Debug, Clone)]
enum V<'a> {
    Missing,
    J(Cow<'a, Value>),
}

impl<'a> V<'a> {
    fn own(v: Value) -> Self {
        V::J(Cow::Owned(v))
    }

    fn json(&self) -> Option<&Value> {
        match self {
            V::Missing => None,
            V::J(v) => Some(v),
        }
    }

    /// The value as a function argument: a missing value is nil.
    fn value(&self) -> Value {
        self.json().cloned().unwrap_or(Value::Null)
    }

    fn truth(&self) -> bool {
        match self.json() {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
        }
    }

    /// A child of this value (borrowed when this one is).
    fn child(&self, get: impl Fn(&Value) -> Option<&Value>) -> V<'a> {
        match self {
            V::Missing => V::Missing,
            V::J(Cow::Borrowed(v)) => get(v).map_or(V::Missing, |c| V::J(Cow::Borrowed(c))),
            V::J(Cow::Owned(v)) => get(v).map_or(V::Missing, |c| V::own(c.clone())),
        }
    }
}

/// Go's name for the type of a JSON value as text/template's errors print it
/// (`string`, `int`, `float64`, `map[string]interface {}`, …), for a
/// [`Method`]'s own argument errors.
pub fn go_type_name(v: &Value) -> &'static str {
    go_type(Some(v))
}

/// Go's name for the type of a JSON value, for error messages.
fn go_type(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "<nil>",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_f64() => "float64",
        Some(Value::Number(_)) => "int",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a, 'e> {
    tmpl: &'e Template,
    env: &'e Env<'e>,
    root: &'a Value,
    vars: Vec<(String, V<'a>)>,
    out: &'e mut String,
}

type XResult<T> = Result<T, Error>;

impl<'a> Exec<'a, '_> {
    fn error<X>(&self, pos: usize, at: &str, msg: impl fmt::Display) -> XResult<X> {
        let src = &self.tmpl.src[..pos.min(self.tmpl.src.len())];
        let line = 1 + src.matches('\n').count();
        let col = match src.rfind('\n') {
            Some(nl) => pos - nl - 1,
            None => pos,
        };
        Err(Error::Exec(format!(
            "template: :{line}:{col}: executing \"\" at <{at}>: {msg}"
        )))
    }

    fn walk(&mut self, nodes: &[Node], dot: &V<'a>) -> XResult<Flow> {
        for n in nodes {
            match n {
                Node::Text(s) => self.out.push_str(s),
                Node::Out(p) => {
                    let v = self.pipe(dot, p)?;
                    if p.decl.is_empty() {
                        print_value(&v, self.out);
                    } else {
                        self.declare(p, v);
                    }
                }
                Node::If(p, then, els) | Node::With(p, then, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(dot, p)?;
                    let truth = v.truth();
                    self.declare(p, v.clone());
                    let flow = match (truth, n) {
                        (true, Node::With(..)) => self.walk(then, &v)?,
                        (true, _) => self.walk(then, dot)?,
                        (false, _) => self.walk(els, dot)?,
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(p, body, els) => {
                    self.range(p, body, els, dot)?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn declare(&mut self, p: &Pipe, v: V<'a>) {
        for name in &p.decl {
            if p.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
    }

    fn range(&mut self, p: &Pipe, body: &[Node], els: &[Node], dot: &V<'a>) -> XResult<()> {
        let mark = self.vars.len();
        let v = self.pipe(dot, p)?;
        let items: Vec<(V<'a>, V<'a>)> = match v.json() {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => (0..a.len())
                .map(|i| (V::own(Value::from(i)), v.child(|x| x.get(i))))
                .collect(),
            Some(Value::Object(o)) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| (V::own(Value::String(k.clone())), v.child(|x| x.get(k))))
                    .collect()
            }
            Some(Value::Number(n)) if n.as_i64().is_some() => (0..n.as_i64().unwrap_or(0))
                .map(|i| (V::own(Value::from(i)), V::own(Value::from(i))))
                .collect(),
            Some(other) => {
                let cmd = &p.cmds[0];
                return self.error(
                    cmd.pos,
                    &cmd.text,
                    format!("range can't iterate over {}", go_string(other)),
                );
            }
        };
        if items.is_empty() {
            let flow = self.walk(els, dot);
            self.vars.truncate(mark);
            return flow.map(|_| ());
        }
        for (k, elem) in items {
            // One variable is the element; two are the key and the element.
            match p.decl.len() {
                1 => self.set_range_var(p, 0, elem.clone(), mark),
                2 => {
                    self.set_range_var(p, 0, k, mark);
                    self.set_range_var(p, 1, elem.clone(), mark);
                }
                _ => {}
            }
            let inner = self.vars.len();
            let flow = self.walk(body, &elem)?;
            self.vars.truncate(inner);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn set_range_var(&mut self, p: &Pipe, i: usize, v: V<'a>, mark: usize) {
        let name = &p.decl[i];
        if p.assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
            }
        } else if let Some(slot) = self.vars[mark..].iter_mut().find(|(n, _)| n == name) {
            slot.1 = v;
        } else {
            self.vars.push((name.clone(), v));
        }
    }

    fn pipe(&mut self, dot: &V<'a>, p: &Pipe) -> XResult<V<'a>> {
        let mut last: Option<V<'a>> = None;
        for c in &p.cmds {
            last = Some(self.command(dot, c, last)?);
        }
        Ok(last.unwrap_or(V::Missing))
    }

    fn var(&self, name: &str) -> V<'a> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(V::Missing, |(_, v)| v.clone())
    }

    fn command(&mut self, dot: &V<'a>, c: &Cmd, fin: Option<V<'a>>) -> XResult<V<'a>> {
        let first = &c.args[0];
        let rest = &c.args[1..];
        if let Term::Func(name) = &first.term {
            return self.call(dot, c, name, rest, fin);
        }
        if first.chain.is_empty() {
            if !rest.is_empty() || fin.is_some() {
                return self.error(
                    first.pos,
                    &first.text,
                    format!("can't give argument to non-function {}", first.text),
                );
            }
            if let Term::Nil = first.term {
                return self.error(first.pos, &first.text, "nil is not a command");
            }
        }
        self.operand(dot, first, Some((rest, fin)))
    }

    /// An operand's value; `call` holds the arguments when it is the first
    /// word of a command (for a method at the end of its chain).
    #[allow(clippy::type_complexity)]
    fn operand(
        &mut self,
        dot: &V<'a>,
        a: &Arg,
        call: Option<(&[Arg], Option<V<'a>>)>,
    ) -> XResult<V<'a>> {
        let mut v = match &a.term {
            Term::Dot => dot.clone(),
            Term::Var(n) => self.var(n),
            Term::Lit(l) => V::own(l.clone()),
            Term::Nil => V::own(Value::Null),
            Term::Sub(p) => self.pipe(dot, p)?,
            Term::Func(name) => {
                let c = Cmd {
                    pos: a.pos,
                    text: a.text.clone(),
                    args: vec![a.clone()],
                };
                return self.call(dot, &c, name, &[], None);
            }
        };
        let mut call = call.filter(|(args, fin)| !args.is_empty() || fin.is_some());
        for (i, name) in a.chain.iter().enumerate() {
            let last = i + 1 == a.chain.len();
            let args = if last { call.take() } else { None };
            v = self.field(dot, v, name, args, a)?;
        }
        Ok(v)
    }

    fn field(
        &mut self,
        dot: &V<'a>,
        recv: V<'a>,
        name: &str,
        args: Option<(&[Arg], Option<V<'a>>)>,
        a: &Arg,
    ) -> XResult<V<'a>> {
        let is_root = matches!(&recv, V::J(Cow::Borrowed(r)) if std::ptr::eq(*r, self.root));
        if is_root {
            if let Some(m) = self.env.method {
                let has_key = recv.json().and_then(|r| r.get(name)).is_some();
                if !has_key || args.is_some() {
                    let mut vals = Vec::new();
                    if let Some((args, fin)) = &args {
                        for x in *args {
                            vals.push(self.operand(dot, x, None)?.value());
                        }
                        if let Some(f) = fin {
                            vals.push(f.value());
                        }
                    }
                    if let Some(r) = m(name, &vals) {
                        return match r {
                            Ok(v) => Ok(V::own(v)),
                            Err(e) => {
                                self.error(a.pos, &a.text, format!("error calling {name}: {e}"))
                            }
                        };
                    }
                }
            }
        }
        match recv.json() {
            None => Ok(V::Missing),
            Some(Value::Object(o)) => {
                if args.is_some() {
                    return self.error(
                        a.pos,
                        &a.text,
                        format!("{name} is not a method but has arguments"),
                    );
                }
                if !o.contains_key(name) && is_root {
                    if let Some(t) = self.env.root_type {
                        return self.error(
                            a.pos,
                            &a.text,
                            format!("can't evaluate field {name} in type {t}"),
                        );
                    }
                }
                Ok(recv.child(|x| x.get(name)))
            }
            Some(Value::Null) => self.error(
                a.pos,
                &a.text,
                format!("nil pointer evaluating interface {{}}.{name}"),
            ),
            Some(other) => self.error(
                a.pos,
                &a.text,
                format!(
                    "can't evaluate field {name} in type {}",
                    go_type(Some(other))
                ),
            ),
        }
    }

    fn call(
        &mut self,
        dot: &V<'a>,
        c: &Cmd,
        name: &str,
        args: &[Arg],
        fin: Option<V<'a>>,
    ) -> XResult<V<'a>> {
        let n = args.len() + usize::from(fin.is_some());
        // and/or evaluate their arguments only as far as needed.
        if name == "and" || name == "or" {
            if n == 0 {
                return self.error(
                    c.pos,
                    &c.text,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let mut v = V::Missing;
            for x in args {
                v = self.operand(dot, x, None)?;
                if v.truth() != (name == "and") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(n);
        for x in args {
            vals.push(self.operand(dot, x, None)?);
        }
        if let Some(f) = fin {
            vals.push(f);
        }
        match funcs::call(name, &vals, self.env, self.root) {
            Ok(v) => Ok(v),
            Err(funcs::Fail::Args(m)) => self.error(c.pos, &c.text, m),
            Err(funcs::Fail::Call(m)) => {
                self.error(c.pos, &c.text, format!("error calling {name}: {m}"))
            }
        }
    }
}

// ------------------------------------------------------------------ printing

/// Go's `%v` of a value, as an action prints it.
fn print_value(v: &V, out: &mut String) {
    match v.json() {
        None => out.push_str("<no value>"),
        Some(j) => go_fmt(j, out),
    }
}

fn go_string(v: &Value) -> String {
    let mut s = String::new();
    go_fmt(v, &mut s);
    s
}

/// Go's `%v`: strings bare, `[a b]`, `map[k:v]` with sorted keys, `<nil>`.
fn go_fmt(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_fmt(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                go_fmt(&o[k], out);
            }
            out.push(']');
        }
    }
}

fn go_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_float(n.as_f64().unwrap_or(0.0))
    }
}

/// Go's `%v` of a float64: the shortest form that reads back, in `e`
/// notation when the exponent is below -4 or at least 6 (`1e+06`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        format!(
            "{mant}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    } else {
        format!("{f}")
    }
}

mod funcs {
    //! The functions a template can call.

    use super::{go_fmt, go_number, go_string, go_type, Env, Value, V};

    pub enum Fail {
        /// Wrong arguments: Go's message as it is.
        Args(String),
        /// The function failed: "error calling NAME: …".
        Call(String),
    }

    type R<'a> = Result<V<'a>, Fail>;

    fn want(name: &str, args: &[V], n: usize) -> Result<(), Fail> {
        if args.len() == n {
            Ok(())
        } else {
            Err(Fail::Args(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            )))
        }
    }

    fn string<'v>(v: &'v V) -> Result<&'v str, Fail> {
        match v.json() {
            Some(Value::String(s)) => Ok(s),
            None | Some(Value::Null) => Err(Fail::Args("invalid value; expected string".into())),
            Some(o) => Err(Fail::Args(format!(
                "wrong type for value; expected string; got {}",
                go_type(Some(o))
            ))),
        }
    }

    fn int(v: &V) -> Result<i64, Fail> {
        match v.json() {
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
            None | Some(Value::Null) => Err(Fail::Args("invalid value; expected int".into())),
            Some(o) => Err(Fail::Args(format!(
                "wrong type for value; expected int; got {}",
                go_type(Some(o))
            ))),
        }
    }

    fn s(v: impl Into<String>) -> V<'static> {
        V::own(Value::String(v.into()))
    }

    pub fn call<'a>(name: &str, args: &[V<'a>], env: &Env, root: &Value) -> R<'a> {
        let header = env.header;
        match name {
            "not" => {
                want(name, args, 1)?;
                Ok(V::own(Value::Bool(!args[0].truth())))
            }
            "len" => {
                want(name, args, 1)?;
                let n = match args[0].json() {
                    Some(Value::String(s)) => s.len(),
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::Object(o)) => o.len(),
                    None | Some(Value::Null) => {
                        return Err(Fail::Call("len of nil pointer".into()))
                    }
                    Some(o) => return Err(Fail::Call(format!("len of type {}", go_type(Some(o))))),
                };
                Ok(V::own(Value::from(n)))
            }
            "index" => index(args),
            "slice" => slice(args),
            "print" => Ok(s(sprint(args, false))),
            "println" => Ok(s(sprint(args, true))),
            "printf" => {
                if args.is_empty() {
                    return Err(Fail::Args(
                        "wrong number of args for printf: want at least 1 got 0".into(),
                    ));
                }
                let f = string(&args[0])?;
                Ok(s(super::printf::sprintf(f, &args[1..])))
            }
            "eq" => {
                if args.len() < 2 {
                    return Err(Fail::Call("missing argument for comparison".into()));
                }
                for b in &args[1..] {
                    if compare(&args[0], b, true)? == Some(std::cmp::Ordering::Equal) {
                        return Ok(V::own(Value::Bool(true)));
                    }
                }
                Ok(V::own(Value::Bool(false)))
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                want(name, args, 2)?;
                use std::cmp::Ordering::*;
                let o = compare(&args[0], &args[1], name == "ne")?;
                let t = match name {
                    "ne" => o != Some(Equal),
                    "lt" => o == Some(Less),
                    "le" => matches!(o, Some(Less | Equal)),
                    "gt" => o == Some(Greater),
                    _ => matches!(o, Some(Greater | Equal)),
                };
                Ok(V::own(Value::Bool(t)))
            }
            "json" => {
                want(name, args, 1)?;
                if header {
                    return Ok(args[0].clone());
                }
                let text = match args[0].json() {
                    None => "null".to_owned(),
                    Some(v) if std::ptr::eq(v, root) && env.root_json.is_some() => {
                        env.root_json.map(|j| j.to_string()).unwrap_or_default()
                    }
                    Some(v) => v.to_string(),
                };
                Ok(s(text))
            }
            "split" => {
                want(name, args, 2)?;
                if header {
                    return Ok(args[0].clone());
                }
                let (x, sep) = (string(&args[0])?, string(&args[1])?);
                let parts: Vec<Value> = if sep.is_empty() {
                    x.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    x.split(sep).map(|p| Value::String(p.to_owned())).collect()
                };
                Ok(V::own(Value::Array(parts)))
            }
            "join" => {
                want(name, args, 2)?;
                if header {
                    return Ok(args[0].clone());
                }
                let sep = string(&args[1])?;
                let items: Vec<String> = match args[0].json() {
                    Some(Value::Array(a)) => a.iter().map(go_string).collect(),
                    Some(Value::Null) => Vec::new(),
                    other => {
                        return Err(Fail::Args(format!(
                            "wrong type for value; expected []string; got {}",
                            go_type(other)
                        )))
                    }
                };
                Ok(s(items.join(sep)))
            }
            "title" | "lower" | "upper" => {
                want(name, args, 1)?;
                if header {
                    return Ok(args[0].clone());
                }
                let x = string(&args[0])?;
                Ok(s(match name {
                    "lower" => x.to_lowercase(),
                    "upper" => x.to_uppercase(),
                    _ => title(x),
                }))
            }
            "pad" => {
                want(name, args, 3)?;
                let x = string(&args[0])?;
                let (pre, post) = (int(&args[1])?, int(&args[2])?);
                if x.is_empty() {
                    return Ok(s(""));
                }
                let sp = |n: i64| " ".repeat(usize::try_from(n).unwrap_or(0));
                Ok(s(format!("{}{x}{}", sp(pre), sp(post))))
            }
            "truncate" => {
                want(name, args, 2)?;
                if header {
                    return Ok(args[0].clone());
                }
                let x = string(&args[0])?;
                let n = usize::try_from(int(&args[1])?).unwrap_or(0);
                Ok(s(x.chars().take(n).collect::<String>()))
            }
            _ => Err(Fail::Args(format!("function {name:?} not defined"))),
        }
    }

    /// Go's strings.Title: the first letter of each word in upper case.
    fn title(x: &str) -> String {
        let mut out = String::with_capacity(x.len());
        let mut prev_sep = true;
        for c in x.chars() {
            if prev_sep {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
        }
        out
    }

    /// fmt.Sprint (spaces between operands when neither is a string) or
    /// fmt.Sprintln (spaces always, and a newline).
    fn sprint(args: &[V], ln: bool) -> String {
        let mut out = String::new();
        let is_str = |v: &V| matches!(v.json(), Some(Value::String(_)));
        for (i, a) in args.iter().enumerate() {
            if i > 0 && (ln || !(is_str(a) || is_str(&args[i - 1]))) {
                out.push(' ');
            }
            go_fmt(&a.value(), &mut out);
        }
        if ln {
            out.push('\n');
        }
        out
    }

    /// Go's comparison of basic values; numbers compare by value.
    fn compare(a: &V, b: &V, eq: bool) -> Result<Option<std::cmp::Ordering>, Fail> {
        use Value::*;
        let (x, y) = (a.json().unwrap_or(&Null), b.json().unwrap_or(&Null));
        match (x, y) {
            (Null, Null) if eq => Ok(Some(std::cmp::Ordering::Equal)),
            (Null, _) | (_, Null) if eq => Ok(None),
            (Bool(p), Bool(q)) if eq => Ok(Some(p.cmp(q))),
            (String(p), String(q)) => Ok(Some(p.cmp(q))),
            (Number(p), Number(q)) => Ok(match (p.as_i64(), q.as_i64()) {
                (Some(i), Some(j)) => Some(i.cmp(&j)),
                _ => p
                    .as_f64()
                    .zip(q.as_f64())
                    .and_then(|(i, j)| i.partial_cmp(&j)),
            }),
            (Array(_) | Object(_), _) | (_, Array(_) | Object(_)) if eq => Err(Fail::Call(
                format!("non-comparable type {}: {}", go_string(x), go_type(Some(x))),
            )),
            (Bool(_) | Null | Array(_) | Object(_), _)
            | (_, Bool(_) | Null | Array(_) | Object(_)) => {
                Err(Fail::Call("invalid type for comparison".into()))
            }
            _ => Err(Fail::Call("incompatible types for comparison".into())),
        }
    }

    fn index<'a>(args: &[V<'a>]) -> R<'a> {
        let Some((item, keys)) = args.split_first() else {
            return Err(Fail::Args(
                "wrong number of args for index: want at least 1 got 0".into(),
            ));
        };
        let mut v = item.clone();
        for k in keys {
            let key = k.json().unwrap_or(&Value::Null);
            v = match v.json() {
                None => return Err(Fail::Call("index of untyped nil".into())),
                Some(Value::Null) => V::Missing,
                Some(Value::Array(a)) => {
                    let i = array_index(key, a.len(), "index")?;
                    v.child(|x| x.get(i))
                }
                Some(Value::String(st)) => {
                    let i = array_index(key, st.len(), "index")?;
                    V::own(Value::from(st.as_bytes()[i]))
                }
                Some(Value::Object(o)) => {
                    let Value::String(ks) = key else {
                        return Err(Fail::Call(format!(
                            "value has type {}; should be string",
                            go_type(Some(key))
                        )));
                    };
                    match o.get(ks) {
                        Some(_) => v.child(|x| x.get(ks.as_str())),
                        // Docker's maps of strings (labels, options) give
                        // "" for a missing key, as Go's index does.
                        None if o.values().all(Value::is_string) => s(""),
                        None => V::Missing,
                    }
                }
                Some(o) => {
                    return Err(Fail::Call(format!(
                        "can't index item of type {}",
                        go_type(Some(o))
                    )))
                }
            };
        }
        Ok(v)
    }

    fn array_index(key: &Value, len: usize, what: &str) -> Result<usize, Fail> {
        let Some(i) = key.as_i64() else {
            return Err(Fail::Call(format!(
                "cannot {what} slice/array with type {}",
                go_type(Some(key))
            )));
        };
        match usize::try_from(i) {
            Ok(u) if u < len => Ok(u),
            _ => Err(Fail::Call(format!("index out of range: {i}"))),
        }
    }

    fn slice<'a>(args: &[V<'a>]) -> R<'a> {
        let Some((item, idx)) = args.split_first() else {
            return Err(Fail::Args(
                "wrong number of args for slice: want at least 1 got 0".into(),
            ));
        };
        if idx.len() > 2 {
            return Err(Fail::Call(format!("too many slice indexes: {}", idx.len())));
        }
        let len = match item.json() {
            Some(Value::String(s)) => s.len(),
            Some(Value::Array(a)) => a.len(),
            None | Some(Value::Null) => return Err(Fail::Call("slice of untyped nil".into())),
            Some(o) => {
                return Err(Fail::Call(format!(
                    "can't slice item of type {}",
                    go_type(Some(o))
                )))
            }
        };
        let mut bounds = [0usize, len];
        for (i, x) in idx.iter().enumerate() {
            let n = int(x)?;
            bounds[i] = match usize::try_from(n) {
                Ok(u) if u <= len => u,
                _ => return Err(Fail::Call(format!("index out of range: {n}"))),
            };
        }
        if bounds[0] > bounds[1] {
            return Err(Fail::Call(format!(
                "invalid slice index: {} > {}",
                bounds[0], bounds[1]
            )));
        }
        Ok(match item.json() {
            Some(Value::String(st)) => match st.get(bounds[0]..bounds[1]) {
                Some(p) => s(p),
                None => return Err(Fail::Call("slice splits a character".into())),
            },
            Some(Value::Array(a)) => V::own(Value::Array(a[bounds[0]..bounds[1]].to_vec())),
            _ => V::Missing,
        })
    }

    /// For printf's `%d` and friends.
    pub fn number_text(n: &serde_json::Number) -> String {
        go_number(n)
    }
}

mod printf {
    //! Go's fmt.Sprintf for the verbs templates use: %v %s %d %q %t %f %e
    //! %g %x %X %c %%, with flags `-+ 0`, width and precision.

    use super::{go_fmt, go_type, Value, V};

    pub fn sprintf(f: &str, args: &[V]) -> String {
        let mut out = String::new();
        let mut next = 0;
        let mut chars = f.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let (mut minus, mut plus, mut zero, mut space) = (false, false, false, false);
            while let Some(&fl) = chars.peek() {
                match fl {
                    '-' => minus = true,
                    '+' => plus = true,
                    '0' => zero = true,
                    ' ' => space = true,
                    '#' => {}
                    _ => break,
                }
                chars.next();
            }
            let num = |chars: &mut std::iter::Peekable<std::str::Chars>| {
                let mut n: Option<usize> = None;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    n = Some(n.unwrap_or(0) * 10 + d as usize);
                    chars.next();
                }
                n
            };
            let width = num(&mut chars);
            let prec = if chars.peek() == Some(&'.') {
                chars.next();
                Some(num(&mut chars).unwrap_or(0))
            } else {
                None
            };
            let Some(verb) = chars.next() else {
                out.push_str("%!(NOVERB)");
                break;
            };
            if verb == '%' {
                out.push('%');
                continue;
            }
            let Some(arg) = args.get(next) else {
                out.push_str(&format!("%!{verb}(MISSING)"));
                continue;
            };
            next += 1;
            let v = arg.value();
            if v.is_null() && verb != 'v' {
                out.push_str(&format!("%!{verb}(<nil>)"));
                continue;
            }
            let body = match format_one(verb, &v, prec, plus, space) {
                Some(b) => b,
                None => {
                    let mut s = String::new();
                    go_fmt(&v, &mut s);
                    out.push_str(&format!("%!{verb}({}={s})", go_type(Some(&v))));
                    continue;
                }
            };
            let w = width.unwrap_or(0);
            let len = body.chars().count();
            if len >= w {
                out.push_str(&body);
            } else if minus {
                out.push_str(&body);
                out.push_str(&" ".repeat(w - len));
            } else if zero && matches!(v, Value::Number(_)) && verb != 's' {
                let (sign, digits) = match body.strip_prefix(['-', '+']) {
                    Some(d) => (&body[..1], d),
                    None => ("", body.as_str()),
                };
                out.push_str(sign);
                out.push_str(&"0".repeat(w - len));
                out.push_str(digits);
            } else {
                out.push_str(&" ".repeat(w - len));
                out.push_str(&body);
            }
        }
        if next < args.len() {
            out.push_str("%!(EXTRA ");
            let extra: Vec<String> = args[next..]
                .iter()
                .map(|a| {
                    let v = a.value();
                    let mut s = String::new();
                    go_fmt(&v, &mut s);
                    format!("{}={s}", go_type(Some(&v)))
                })
                .collect();
            out.push_str(&extra.join(", "));
            out.push(')');
        }
        out
    }

    fn format_one(
        verb: char,
        v: &Value,
        prec: Option<usize>,
        plus: bool,
        space: bool,
    ) -> Option<String> {
        let sign = |s: String, neg: bool| {
            if neg {
                s
            } else if plus {
                format!("+{s}")
            } else if space {
                format!(" {s}")
            } else {
                s
            }
        };
        Some(match (verb, v) {
            ('v', _) => {
                let mut s = String::new();
                go_fmt(v, &mut s);
                if let Value::Number(n) = v {
                    if n.as_f64().is_some_and(|f| f >= 0.0) {
                        s = sign(s, false);
                    }
                }
                s
            }
            ('s', Value::String(s)) => match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            ('s', Value::Array(_) | Value::Object(_)) => {
                let mut s = String::new();
                go_fmt(v, &mut s);
                s
            }
            ('q', Value::String(s)) => quote(s),
            ('q', Value::Number(n)) if n.as_i64().is_some() => {
                let c = n
                    .as_i64()
                    .and_then(|i| u32::try_from(i).ok())
                    .and_then(char::from_u32)?;
                let q = quote(&c.to_string());
                format!("'{}'", &q[1..q.len() - 1].replace("\\\"", "\""))
            }
            ('t', Value::Bool(b)) => b.to_string(),
            ('d', Value::Number(n)) if !n.is_f64() => {
                let t = super::funcs::number_text(n);
                let neg = t.starts_with('-');
                sign(t, neg)
            }
            ('c', Value::Number(n)) if !n.is_f64() => n
                .as_i64()
                .and_then(|i| u32::try_from(i).ok())
                .and_then(char::from_u32)?
                .to_string(),
            ('x' | 'X', Value::Number(n)) if !n.is_f64() => {
                let i = n.as_i64()?;
                let s = if i < 0 {
                    format!("-{:x}", i.unsigned_abs())
                } else {
                    format!("{i:x}")
                };
                if verb == 'X' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            ('x' | 'X', Value::String(s)) => {
                let h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                if verb == 'X' {
                    h.to_uppercase()
                } else {
                    h
                }
            }
            ('f' | 'F' | 'e' | 'g', Value::Number(n)) if n.is_f64() => {
                let f = n.as_f64()?;
                let s = match verb {
                    'e' => {
                        let s = format!("{:.*e}", prec.unwrap_or(6), f);
                        let (m, e) = s.split_once('e')?;
                        let e: i32 = e.parse().ok()?;
                        format!(
                            "{m}e{}{:02}",
                            if e < 0 { '-' } else { '+' },
                            e.unsigned_abs()
                        )
                    }
                    'g' => super::go_float(f),
                    _ => format!("{:.*}", prec.unwrap_or(6), f),
                };
                sign(s, f < 0.0)
            }
            _ => return None,
        })
    }

    /// Go's strconv.Quote.
    pub fn quote(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\x0b' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

#[cfg(test)]
mod tests;
