//! Shell text as RUN holds it: a chain split into commands, options read
//! as getopt would, and the `mkdir`/`chown`/`chmod` kiln writes as [[dir]].

use super::accounts::{Got, Step};

/// The commands of a RUN's shell text, split at `&&`, `||`, `;`, `|` and newlines.
pub fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, '&') if chars.peek() == Some(&'&') => {
                chars.next();
                out.push(std::mem::take(&mut cur));
            }
            (None, '|') => {
                if chars.peek() == Some(&'|') {
                    chars.next();
                }
                out.push(std::mem::take(&mut cur));
            }
            (None, ';' | '\n') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Options as `(flag, value)`, and the operands.
pub type Parsed = (Vec<(String, String)>, Vec<String>);

/// `args` read with `with_value` flags taking a value and `bare` ones none;
/// bundled short flags (`-DS`) and `--flag=value` included.
pub fn options(args: &[String], with_value: &[&str], bare: &[&str]) -> Result<Parsed, String> {
    let mut opts = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if !a.starts_with('-') || a == "-" {
            rest.push(a.clone());
            continue;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if a.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        // Bundled short flags: -DS, -rm.
        if !flag.starts_with("--") && flag.chars().count() > 2 && inline.is_none() {
            let short: Vec<String> = flag.chars().skip(1).map(|c| format!("-{c}")).collect();
            if short.iter().all(|s| bare.contains(&s.as_str())) {
                opts.extend(short.into_iter().map(|s| (s, String::new())));
                continue;
            }
            let cut = flag.char_indices().nth(2).map_or(flag.len(), |(i, _)| i);
            let (f, v) = flag.split_at(cut);
            if with_value.contains(&f) {
                opts.push((f.to_string(), v.to_string()));
                continue;
            }
            return Err(format!("option `{flag}` is not one kiln reads"));
        }
        if with_value.contains(&flag.as_str()) {
            let v = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i - 1)
                        .cloned()
                        .ok_or(format!("`{flag}` needs a value"))?
                }
            };
            opts.push((flag, v));
        } else if bare.contains(&flag.as_str()) {
            opts.push((flag, String::new()));
        } else {
            return Err(format!("option `{flag}` is not one kiln reads"));
        }
    }
    Ok((opts, rest))
}

pub fn mkdir(args: &[String]) -> Got {
    let (opts, paths) = options(args, &["-m", "--mode"], &["-p", "--parents", "-v"])?;
    if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
        return Err("mkdir of a relative path: write it as [[dir]] with an absolute path".into());
    }
    let mode = opts
        .into_iter()
        .find(|(f, _)| f == "-m" || f == "--mode")
        .map(|(_, v)| v);
    Ok(Step::Mkdir { paths, mode })
}

pub fn chown(args: &[String]) -> Got {
    let (opts, mut rest) = options(args, &[], &["-R", "--recursive", "-h", "-v"])?;
    if rest.len() < 2 || rest[1..].iter().any(|p| !p.starts_with('/')) {
        return Err("chown needs an owner and absolute paths".into());
    }
    let owner = rest.remove(0).replace('.', ":");
    let recursive = opts.iter().any(|(f, _)| f == "-R" || f == "--recursive");
    Ok(Step::Chown {
        owner,
        paths: rest,
        recursive,
    })
}

pub fn chmod(args: &[String]) -> Got {
    let (_, mut rest) = options(args, &[], &[])?;
    if rest.len() < 2
        || !rest[0].chars().all(|c| c.is_ascii_digit())
        || rest[1..].iter().any(|p| !p.starts_with('/'))
    {
        return Err("only `chmod OCTAL /path` of a directory made here is written".into());
    }
    let mode = rest.remove(0);
    Ok(Step::Chmod { mode, paths: rest })
}

#[cfg(test)]
mod tests {
    use super::super::accounts::step;
    use super::*;

    #[test]
    fn chains_split() {
        assert_eq!(
            commands("groupadd -g 1 a && useradd a; echo 'x && y' | tee f || true"),
            [
                "groupadd -g 1 a",
                "useradd a",
                "echo 'x && y'",
                "tee f",
                "true"
            ]
        );
    }

    #[test]
    fn dirs() {
        assert_eq!(
            step("mkdir -p /a /b"),
            Step::Mkdir {
                paths: vec!["/a".into(), "/b".into()],
                mode: None
            }
        );
        assert_eq!(
            step("chown -R a:b /a"),
            Step::Chown {
                owner: "a:b".into(),
                paths: vec!["/a".into()],
                recursive: true
            }
        );
        assert!(matches!(step("chmod -R u+x /a"), Step::Other { .. }));
        assert!(matches!(step("apt-get install -y x"), Step::Other { .. }));
    }
}
