//! `${NAME}` substitution from `[args]` and `--build-arg`, and Docker's
//! ENV expansion for env values. `$${` writes a literal `${`.

use std::collections::BTreeMap;

/// The longest value `${NAME}` expansion may make: 1 MiB (or the value's
/// own written length, if that is more). Without a cap, 40 args that each
/// double the one before ask for a terabyte.
pub const MAX_VALUE: usize = 1 << 20;
/// The most all the expanded values of one spec may add up to: 16 MiB.
pub const MAX_TOTAL: usize = 16 << 20;
/// In every cap error, so callers can tell it from the others.
pub const CAP_NOTE: &str = "kiln's cap for one expanded value";

fn too_long(written: &str) -> String {
    format!("`{written}` makes the value longer than 1 MiB, {CAP_NOTE}")
}

/// What to do with a `${NAME}` that names no arg.
#[derive(Clone, Copy, PartialEq)]
pub enum Unknown {
    /// An error: paths, owners, labels and env values must be fully known.
    Refuse,
    /// Keep it as written: commands may expand it at run time (`sh -c '... ${PORT}'`).
    Keep,
}

pub fn expand(
    text: &str,
    args: &BTreeMap<String, String>,
    unknown: Unknown,
) -> Result<String, String> {
    substitute(text, &|name| args.get(name).cloned(), false, unknown)
}

/// An env value, as Docker's ENV reads it: `${NAME}` and `$NAME` come from
/// `lookup` (args, then the image's env so far); `$$` is a literal `$`.
pub fn expand_env(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    substitute(text, lookup, true, Unknown::Refuse)
}

fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    bare: bool,
    unknown: Unknown,
) -> Result<String, String> {
    let cap = MAX_VALUE.max(text.len());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let (name, written) = if rest.starts_with("$${") {
            out.push_str("${");
            rest = &rest[3..];
            continue;
        } else if bare && rest.starts_with("$$") {
            out.push('$');
            rest = &rest[2..];
            continue;
        } else if rest.starts_with("${") {
            let end = rest
                .find('}')
                .ok_or_else(|| format!("`{text}` has an unclosed `${{`"))?;
            (&rest[2..end], &rest[..=end])
        } else if bare && rest[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let len = rest[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len() - 1);
            (&rest[1..=len], &rest[..=len])
        } else {
            out.push('$');
            rest = &rest[1..];
            continue;
        };
        match lookup(name) {
            Some(value) if out.len() + value.len() > cap => return Err(too_long(written)),
            Some(value) => out.push_str(&value),
            None if unknown == Unknown::Keep => out.push_str(written),
            None if bare => {
                return Err(format!(
                    "`{written}` is set neither in [args] nor in the image's env (write `$$` for a literal `$`)"
                ));
            }
            None => {
                return Err(format!(
                    "`${{{name}}}` is not defined; declare it in [args] or pass --build-arg {name}=VALUE (write `$${{` for a literal `${{`)"
                ));
            }
        }
        rest = &rest[written.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BTreeMap<String, String> {
        BTreeMap::from([("VERSION".to_string(), "1.2".to_string())])
    }

    #[test]
    fn substitutes_known_args() {
        assert_eq!(
            expand("v${VERSION}-x", &args(), Unknown::Refuse).unwrap(),
            "v1.2-x"
        );
        assert_eq!(
            expand("$HOME $", &args(), Unknown::Refuse).unwrap(),
            "$HOME $"
        );
        assert_eq!(
            expand("$${VERSION}", &args(), Unknown::Refuse).unwrap(),
            "${VERSION}"
        );
    }

    #[test]
    fn env_values_expand_like_docker_env() {
        let env = |n: &str| match n {
            "PATH" => Some("/usr/bin".to_string()),
            "VERSION" => Some("1.2".to_string()),
            _ => None,
        };
        assert_eq!(
            expand_env("/app/bin:$PATH", &env).unwrap(),
            "/app/bin:/usr/bin"
        );
        assert_eq!(
            expand_env("${PATH}:/x-$VERSION.", &env).unwrap(),
            "/usr/bin:/x-1.2."
        );
        assert_eq!(expand_env("cost $$5 $", &env).unwrap(), "cost $5 $");
        assert!(
            expand_env("$NOPE", &env)
                .unwrap_err()
                .contains("`$NOPE` is set neither")
        );
    }

    #[test]
    fn unknown_args_refused_or_kept() {
        assert!(
            expand("${NOPE}", &args(), Unknown::Refuse)
                .unwrap_err()
                .contains("--build-arg NOPE")
        );
        assert_eq!(
            expand("${PORT}", &args(), Unknown::Keep).unwrap(),
            "${PORT}"
        );
        assert!(expand("${VERSION", &args(), Unknown::Keep).is_err());
    }

    #[test]
    fn doubling_stops_at_the_cap() {
        let mut args = BTreeMap::from([("A0".to_string(), "xx".to_string())]);
        let mut failed = None;
        for i in 1..=40 {
            let text = format!("${{A{0}}}${{A{0}}}", i - 1);
            match expand(&text, &args, Unknown::Refuse) {
                Ok(v) => {
                    assert!(v.len() <= MAX_VALUE);
                    args.insert(format!("A{i}"), v);
                }
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        let (i, e) = failed.expect("the cap stops the doubling");
        // 2 << 19 is 1 MiB, the last value allowed.
        assert_eq!(i, 20);
        assert!(
            e.contains("`${A19}` makes the value longer than 1 MiB"),
            "{e}"
        );
        assert!(e.contains(CAP_NOTE), "{e}");
    }

    #[test]
    fn env_expansion_has_the_same_cap() {
        let big = "x".repeat(MAX_VALUE / 2 + 1);
        let env = |n: &str| (n == "BIG").then(|| big.clone());
        assert!(expand_env("$BIG", &env).is_ok());
        assert!(
            expand_env("$BIG$BIG", &env)
                .unwrap_err()
                .contains("`$BIG` makes")
        );
    }

    #[test]
    fn long_written_text_is_not_refused() {
        let text = format!("{}${{VERSION}}", "y".repeat(MAX_VALUE + 10));
        assert!(expand(&text, &args(), Unknown::Refuse).is_ok());
    }

    #[test]
    fn values_are_not_expanded_twice() {
        let args = BTreeMap::from([("A".to_string(), "${A}".to_string())]);
        assert_eq!(expand("${A}", &args, Unknown::Refuse).unwrap(), "${A}");
    }
}
