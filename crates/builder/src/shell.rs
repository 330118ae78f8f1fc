//! Word splitting and variable substitution as Docker's Dockerfile frontend
//! does it (buildkit's `shell.Lex`): quotes, the escape character, `$VAR`,
//! `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?message}` and `${VAR?message}`. Pure functions.

use std::collections::BTreeMap;

/// Variables visible to substitution (ENV and ARG values), by name.
pub type Vars = BTreeMap<String, String>;

/// Splits `s` on unquoted whitespace, keeping quotes and escapes inside
/// the words (they are removed by [`process_word`] later).
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            cur.push(c);
            if c == escape && q == '"' {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
            continue;
        }
        in_word = true;
        cur.push(c);
        if c == escape {
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Expands variables in `word` and removes its quotes and escapes.
pub fn process_word(word: &str, vars: &Vars, escape: char) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut lex = Lexer {
        chars: &chars,
        pos: 0,
        vars,
        escape,
        quotes: true,
    };
    lex.process(None)
}

/// Expands variables in a heredoc's text: quotes are ordinary characters
/// there, and only the escape character before `$` (or itself) is removed.
pub fn expand_heredoc(text: &str, vars: &Vars, escape: char) -> Result<String, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lex = Lexer {
        chars: &chars,
        pos: 0,
        vars,
        escape,
        quotes: false,
    };
    lex.process(None)
}

/// Names of the variables `word` refers to (for deciding what a cached
/// step depends on); errors in the word are ignored here.
pub fn referenced_vars(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' {
            let start = if b.get(i + 1) == Some(&'{') {
                i + 2
            } else {
                i + 1
            };
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
                j += 1;
            }
            if j > start {
                out.push(b[start..j].iter().collect());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
    vars: &'a Vars,
    escape: char,
    /// Quotes group and are removed (words), or are plain text (heredocs).
    quotes: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until the end, or until an unquoted `stop` (consumed).
    fn process(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\'' | '"' if !self.quotes => {
                    self.pos += 1;
                    out.push(c);
                }
                c if c == self.escape && !self.quotes => {
                    self.pos += 1;
                    match self.peek() {
                        Some(n) if n == '$' || n == self.escape => {
                            self.pos += 1;
                            out.push(n);
                        }
                        _ => out.push(c),
                    }
                }
                '\'' => {
                    self.pos += 1;
                    out.push_str(&self.single_quoted()?);
                }
                '"' => {
                    self.pos += 1;
                    out.push_str(&self.double_quoted()?);
                }
                '$' => {
                    self.pos += 1;
                    out.push_str(&self.dollar()?);
                }
                c if c == self.escape => {
                    self.pos += 1;
                    match self.next() {
                        Some(n) => out.push(n),
                        // A trailing escape stays as it is.
                        None => out.push(c),
                    }
                }
                _ => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
        match stop {
            Some(s) => Err(format!("missing '{s}' in variable substitution")),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, String> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.vars.get(&name).cloned().unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: missing variable name".into());
        }
        let value = self.vars.get(&name);
        match self.next() {
            Some('}') => Ok(value.cloned().unwrap_or_default()),
            Some(':') => {
                let op = self.next();
                let word = self.process(Some('}'))?;
                let set_nonempty = value.is_some_and(|v| !v.is_empty());
                match op {
                    Some('-') => Ok(if set_nonempty {
                        value.cloned().unwrap_or_default()
                    } else {
                        word
                    }),
                    Some('+') => Ok(if set_nonempty { word } else { String::new() }),
                    Some('?') if set_nonempty => Ok(value.cloned().unwrap_or_default()),
                    Some('?') => Err(if word.is_empty() {
                        format!("{name}: is not allowed to be unset")
                    } else {
                        format!("{name}: {word}")
                    }),
                    _ => Err(format!("unsupported modifier in ${{{name}:...}}")),
                }
            }
            Some(op @ ('-' | '+' | '?')) => {
                let word = self.process(Some('}'))?;
                match op {
                    '-' => Ok(value.cloned().unwrap_or(word)),
                    '+' => Ok(if value.is_some() { word } else { String::new() }),
                    _ => value.cloned().ok_or_else(|| {
                        if word.is_empty() {
                            format!("{name}: is not allowed to be unset")
                        } else {
                            format!("{name}: {word}")
                        }
                    }),
                }
            }
            Some(c) => Err(format!("unsupported modifier ({c}) in substitution")),
            None => Err("missing '}' in variable substitution".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vars() -> Vars {
        [("A", "x"), ("EMPTY", ""), ("SP", "a b")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn p(s: &str) -> String {
        process_word(s, &vars(), '\\').unwrap()
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(p("$A"), "x");
        assert_eq!(p("${A}y"), "xy");
        assert_eq!(p("$Ay"), "");
        assert_eq!(p("$NOPE-z"), "-z");
        assert_eq!(p("cost $"), "cost $");
        assert_eq!(p("a$-b"), "a$-b");
    }

    #[test]
    fn modifiers() {
        assert_eq!(p("${A:-d}"), "x");
        assert_eq!(p("${NOPE:-d}"), "d");
        assert_eq!(p("${EMPTY:-d}"), "d");
        assert_eq!(p("${EMPTY-d}"), "");
        assert_eq!(p("${NOPE-d}"), "d");
        assert_eq!(p("${A:+alt}"), "alt");
        assert_eq!(p("${EMPTY:+alt}"), "");
        assert_eq!(p("${EMPTY+alt}"), "alt");
        assert_eq!(p("${NOPE:+alt}"), "");
        assert_eq!(p("${NOPE:-${A}2}"), "x2");
        assert_eq!(p("${NOPE:-a b}"), "a b");
        assert_eq!(
            process_word("${NOPE:?must be set}", &vars(), '\\').unwrap_err(),
            "NOPE: must be set"
        );
        assert_eq!(p("${A:?x}"), "x");
        assert!(process_word("${A", &vars(), '\\').is_err());
        assert!(process_word("${}", &vars(), '\\').is_err());
        assert!(process_word("${A:%x}", &vars(), '\\').is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(p("'$A'"), "$A");
        assert_eq!(p("\"$A b\""), "x b");
        assert_eq!(p("\\$A"), "$A");
        assert_eq!(p("\"\\$A\""), "$A");
        assert_eq!(p("\"a\\nb\""), "a\\nb");
        assert_eq!(p("\"q\\\"q\""), "q\"q");
        assert_eq!(p("a\\ b"), "a b");
        assert!(process_word("'open", &vars(), '\\').is_err());
        assert!(process_word("\"open", &vars(), '\\').is_err());
        // Backtick as the escape character (Windows-style Dockerfiles).
        assert_eq!(process_word("`$A", &vars(), '`').unwrap(), "$A");
        assert_eq!(process_word("c:\\dir", &vars(), '`').unwrap(), "c:\\dir");
    }

    #[test]
    fn splitting_keeps_quotes() {
        assert_eq!(
            split_words("a \"b c\" 'd e'  f\\ g", '\\'),
            vec!["a", "\"b c\"", "'d e'", "f\\ g"]
        );
        assert_eq!(split_words("  ", '\\'), Vec::<String>::new());
        assert_eq!(split_words("k=\"v w\" x=y", '\\'), vec!["k=\"v w\"", "x=y"]);
    }

    #[test]
    fn heredoc_expansion() {
        assert_eq!(
            expand_heredoc("a='$A' \"${NOPE:-d}\" \\$A \\n\n", &vars(), '\\').unwrap(),
            "a='x' \"d\" $A \\n\n"
        );
    }

    #[test]
    fn references() {
        assert_eq!(referenced_vars("$A ${B:-x} $ c$D_1"), vec!["A", "B", "D_1"]);
    }
}
