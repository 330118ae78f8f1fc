//! `.dockerignore`: patterns as moby/patternmatcher reads them — Go's
//! `filepath.Match` per path component, `**` for any number of
//! components, `!` exceptions (the last matching pattern decides), and a
//! pattern that matches a directory excludes everything below it.

/// One component pattern match, as Go's `filepath.Match` (`*`, `?`,
/// `[a-z]`, `[^a]`/`[!a]`, `\` escapes); `*` never matches `/`.
pub fn match_component(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    // Backtracking point for the last `*`.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() && n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if ni < n.len() => {
                    if let Some((ok, len)) = class(&p[pi..], n[ni]) {
                        if ok {
                            pi += len;
                            ni += 1;
                            continue;
                        }
                    } else {
                        return false;
                    }
                }
                '\\' if pi + 1 < p.len() && ni < n.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c != '?' && c != '[' && c != '\\' && ni < n.len() && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return true;
        }
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
}

/// A `[...]` class at the start of `p`: whether `c` is in it and the
/// class's length; None when malformed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&x| x != ']') {
            i += 1;
            hi = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            i += 1;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Some((matched != negate, i))
}

/// Whether `pattern` (components split on `/`, `**` for any number of
/// them) matches all of `path`'s components.
pub fn match_path(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|k| match_path(rest, &path[k..])),
        Some((p, rest)) => match path.split_first() {
            Some((c, prest)) => match_component(p, c) && match_path(rest, prest),
            None => false,
        },
    }
}

/// Cleans a path the way Go's filepath.Clean does, without a leading `/`
/// (paths here are relative to the context's root); "" for the root.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// A `.dockerignore` pattern as Docker reads it: Go's `filepath.Clean`
/// (which keeps the `..` that lead out of a relative path: such a pattern
/// matches nothing in the context, `../*` included) then one leading `/`
/// dropped; "" for a pattern that names the context's root.
pub fn clean_pattern(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            c => out.push(c),
        }
    }
    out.join("/")
}

#[derive(Debug, Clone)]
struct Pattern {
    parts: Vec<String>,
    exclusion: bool,
}

/// The patterns of a `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Reads the file's text: one pattern a line, `#` comments, blank
    /// lines skipped, surrounding blanks trimmed.
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for line in text.lines() {
            // As Docker's ReadAll: a comment starts in the first column.
            if line.starts_with('#') {
                continue;
            }
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            let (exclusion, t) = match t.strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, t),
            };
            let cleaned = clean_pattern(t);
            // "." and "/" name the context itself, which no pattern excludes.
            if cleaned.is_empty() {
                continue;
            }
            patterns.push(Pattern {
                parts: cleaned.split('/').map(str::to_owned).collect(),
                exclusion,
            });
        }
        Ignore { patterns }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (`!`): then an excluded
    /// directory may still hold included files.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `rel` (relative to the context, `/`-separated) is excluded:
    /// the last pattern that matches it or one of its parents decides.
    pub fn excluded(&self, rel: &str) -> bool {
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        if comps.is_empty() {
            return false;
        }
        let mut excluded = false;
        for p in &self.patterns {
            if excluded != p.exclusion {
                continue;
            }
            let hit = (1..=comps.len()).any(|k| match_path(&p.parts, &comps[..k]));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match() {
        assert!(match_component("*", "abc"));
        assert!(match_component("a*c", "abbbc"));
        assert!(match_component("a*c", "ac"));
        assert!(!match_component("a*c", "acb"));
        assert!(match_component("*.go", "x.go"));
        assert!(!match_component("*.go", "x.go.bak"));
        assert!(match_component("?b", "ab"));
        assert!(!match_component("?b", "b"));
        assert!(match_component("[a-c]x", "bx"));
        assert!(!match_component("[a-c]x", "dx"));
        assert!(match_component("[^a-c]x", "dx"));
        assert!(match_component("[!a]x", "bx"));
        assert!(!match_component("[!a]x", "ax"));
        assert!(match_component("\\*", "*"));
        assert!(!match_component("\\*", "a"));
        assert!(!match_component("[", "["));
        assert!(match_component("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn dockerignore_semantics() {
        let ig = Ignore::parse(
            "# comment\n\n*.log\n/build\nnode_modules/**\n**/*.tmp\n!keep.log\ndocs/*/draft\n  spaced.txt  \n./dot/x\n",
        );
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("sub/a.log")); // `*.log` is for the root only
        assert!(!ig.excluded("keep.log"));
        assert!(ig.excluded("build"));
        assert!(ig.excluded("build/out/bin")); // below an excluded directory
        assert!(ig.excluded("node_modules/x/y.js"));
        assert!(ig.excluded("deep/er/f.tmp"));
        assert!(ig.excluded("f.tmp"));
        assert!(ig.excluded("docs/v1/draft"));
        assert!(!ig.excluded("docs/v1/x/draft"));
        assert!(ig.excluded("spaced.txt"));
        assert!(ig.excluded("dot/x"));
        assert!(!ig.excluded("src/main.rs"));
        assert!(ig.has_exceptions());
    }

    #[test]
    fn exceptions_reinclude_below_excluded_dirs() {
        let ig = Ignore::parse("dir\n!dir/keep\n");
        assert!(ig.excluded("dir/other"));
        assert!(!ig.excluded("dir/keep"));
        assert!(!ig.excluded("dir/keep/below"));
        // The last match wins.
        let ig = Ignore::parse("!a\na\n");
        assert!(ig.excluded("a"));
    }

    #[test]
    fn patterns_leading_out_of_the_context_match_nothing() {
        // Docker: filepath.Clean keeps a leading "..", and no path in the
        // context starts with one.
        let ig = Ignore::parse("../*\n");
        assert!(!ig.excluded("a"));
        assert!(!ig.excluded("dir/file"));
        let ig = Ignore::parse("a/../../b\n../x/y\n");
        assert!(!ig.excluded("b"));
        assert!(!ig.excluded("x/y"));
        // A rooted pattern's ".." stops at the root: /../x is x.
        let ig = Ignore::parse("/../x\n");
        assert!(ig.excluded("x"));
        // ".." inside a pattern is cleaned away.
        let ig = Ignore::parse("a/../b\n");
        assert!(ig.excluded("b"));
        assert!(!ig.excluded("a"));
        // A comment starts in the first column only.
        let ig = Ignore::parse(" #x\n");
        assert!(ig.excluded("#x"));
        assert_eq!(clean_pattern("../*"), "../*");
        assert_eq!(clean_pattern("/.."), "");
        assert_eq!(clean_pattern("./a/b/../c/"), "a/c");
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("/a/./b/../c/"), "a/c");
        assert_eq!(clean("../../x"), "x");
        assert_eq!(clean("."), "");
    }
}
