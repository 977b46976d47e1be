//! Shell-like words as Dockerfile instructions read them (quotes, backslash
//! escapes), with Docker's `$NAME` / `${NAME}` / `${NAME:-word}` expansion
//! rewritten into kiln's spelling of the same value.

use std::collections::{BTreeMap, BTreeSet};

/// The variables an instruction sees, and how the result is spelled.
pub struct Vars<'a> {
    /// ARGs declared in the stage: kept as `${NAME}` for kiln's [args].
    pub args: &'a BTreeSet<String>,
    /// ENV set earlier in the Dockerfile, already in kiln's env spelling.
    pub env: &'a BTreeMap<String, String>,
    /// For an env value: kiln expands `$NAME` there too, and `$$` is `$`;
    /// a name neither declares is kept for the base's env to supply.
    pub env_value: bool,
}

/// `s` split into words; `vars` expands variables (None: kept as written).
pub fn words(s: &str, vars: Option<&Vars>) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
                i += 1;
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '\\') | (Some('"'), '\\') => {
                let next = chars.get(i + 1).copied();
                let escapes = quote.is_none() || matches!(next, Some('"' | '\\' | '$'));
                match next {
                    Some(n) if escapes => {
                        literal(&mut word, n, chars.get(i + 2).copied(), vars);
                        i += 1;
                    }
                    _ => word.push('\\'),
                }
            }
            (None | Some('"'), '$') if vars.is_some() => match (vars, reference(&chars[i..])) {
                (Some(v), Some((len, name, op))) => {
                    word.push_str(&expand(&name, op, v));
                    i += len;
                    in_word = true;
                    continue;
                }
                _ => literal(&mut word, '$', chars.get(i + 1).copied(), vars),
            },
            (_, c) => literal(&mut word, c, chars.get(i + 1).copied(), vars),
        }
        in_word = true;
        i += 1;
    }
    if in_word {
        out.push(word);
    }
    out
}

/// RUN's shell text with the `$NAME` / `${NAME}` of ENV set earlier in the
/// Dockerfile replaced, as the shell running it would (not in single quotes).
pub fn expand_shell(text: &str, env: &BTreeMap<String, String>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut single = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            single = !single;
        }
        if c == '$' && !single {
            if let Some((len, name, None)) = reference(&chars[i..]) {
                if let Some(v) = env.get(&name).filter(|v| !v.contains('$')) {
                    out.push_str(v);
                    i += len;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// A character meant as itself, escaped where kiln would read it as `${`.
fn literal(word: &mut String, c: char, next: Option<char>, vars: Option<&Vars>) {
    if c == '$' {
        match vars {
            Some(v) if v.env_value => word.push_str("$$"),
            Some(_) if next == Some('{') => word.push_str("$$"),
            _ => word.push('$'),
        }
    } else {
        word.push(c);
    }
}

/// `:-word` or `:+word`, if any.
type Op = Option<(char, String)>;

/// `$NAME`, `${NAME}` or `${NAME:-word}` / `${NAME:+word}` at the start of
/// `s`: its length in chars, the name, and the operator with its word.
fn reference(s: &[char]) -> Option<(usize, String, Op)> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if s.get(1) == Some(&'{') {
        let close = s.iter().position(|&c| c == '}')?;
        let inner: String = s[2..close].iter().collect();
        let (name, op) = match inner.split_once(':') {
            Some((n, rest)) => {
                let mut r = rest.chars();
                let op = r.next()?;
                if op != '-' && op != '+' {
                    return None;
                }
                (n.to_string(), Some((op, r.collect())))
            }
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(is_name) {
            return None;
        }
        return Some((close + 1, name, op));
    }
    let first = *s.get(1)?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let len = s[1..].iter().take_while(|&&c| is_name(c)).count();
    Some((len + 1, s[1..=len].iter().collect(), None))
}

fn expand(name: &str, op: Op, v: &Vars) -> String {
    let known = if let Some(value) = v.env.get(name) {
        Some(value.clone())
    } else if v.args.contains(name) {
        Some(format!("${{{name}}}"))
    } else {
        None
    };
    match (op, known) {
        (Some(('+', word)), Some(_)) => escape_plain(&word, v),
        (Some(('+', _)), None) => String::new(),
        (Some((_, word)), None) => escape_plain(&word, v),
        (_, Some(value)) => value,
        (None, None) if v.env_value => format!("${{{name}}}"),
        (None, None) => String::new(),
    }
}

fn escape_plain(word: &str, v: &Vars) -> String {
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        literal(&mut out, c, chars.get(i + 1).copied(), Some(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(env_value: bool, s: &str) -> Vec<String> {
        let args: BTreeSet<String> = ["VERSION".to_string()].into();
        let env: BTreeMap<String, String> = [("PORT".to_string(), "8000".to_string())].into();
        let v = Vars {
            args: &args,
            env: &env,
            env_value,
        };
        words(s, Some(&v))
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            words(r#"a "b c" 'd e' f\ g"#, None),
            ["a", "b c", "d e", "f g"]
        );
        assert_eq!(words(r#""a\"b" 'x\y'"#, None), ["a\"b", "x\\y"]);
        assert!(words("  ", None).is_empty());
        assert_eq!(words("\"\"", None), [""]);
    }

    #[test]
    fn expansion() {
        assert_eq!(
            with(false, "v=$VERSION p=${PORT} x=$NOPE"),
            ["v=${VERSION}", "p=8000", "x="]
        );
        assert_eq!(with(true, "/a:$PATH"), ["/a:${PATH}"]);
        assert_eq!(with(false, "'$VERSION' \\$x"), ["$VERSION", "$x"]);
        assert_eq!(with(false, "'${x}'"), ["$${x}"]);
        assert_eq!(with(true, "'$x'"), ["$$x"]);
        assert_eq!(
            with(false, "${NOPE:-d} ${PORT:+y} ${NOPE:+y}"),
            ["d", "y", ""]
        );
    }

    #[test]
    fn shell_text() {
        let env: BTreeMap<String, String> = [("H".to_string(), "/h".to_string())].into();
        assert_eq!(expand_shell("a $H ${H} '$H' $X", &env), "a /h /h '$H' $X");
    }

    #[test]
    fn odd_inputs() {
        for s in [
            "$", "${", "${}", "${a:", "${a:?x}", "\\", "'", "\"", "$1", "é$é", "${é}",
        ] {
            let _ = with(false, s);
            let _ = with(true, s);
            let _ = words(s, None);
        }
    }
}
