//! `${NAME}` substitution from `[args]` and `--build-arg`.
//! `$${` writes a literal `${`.

use std::collections::BTreeMap;

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
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if rest.starts_with("$${") {
            out.push_str("${");
            rest = &rest[3..];
            continue;
        }
        if !rest.starts_with("${") {
            out.push('$');
            rest = &rest[1..];
            continue;
        }
        let Some(end) = rest.find('}') else {
            return Err(format!("`{text}` has an unclosed `${{`"));
        };
        let name = &rest[2..end];
        match args.get(name) {
            Some(value) => out.push_str(value),
            None if unknown == Unknown::Keep => out.push_str(&rest[..=end]),
            None => {
                return Err(format!(
                    "`${{{name}}}` is not defined; declare it in [args] or pass --build-arg {name}=VALUE (write `$${{` for a literal `${{`)"
                ));
            }
        }
        rest = &rest[end + 1..];
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
}
