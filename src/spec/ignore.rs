//! `.dockerignore`, read the way Docker's builder reads it (moby's
//! patternmatcher): one pattern per line, `#` comments, `!` exceptions,
//! Go `filepath.Match` syntax plus `**`, paths relative to the spec's
//! directory. The last pattern that matches a path, or one of its parent
//! directories, decides.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::error::{Error, Result};

pub struct Ignore {
    /// The file the patterns came from, for messages.
    pub file: PathBuf,
    patterns: Vec<Pattern>,
}

struct Pattern {
    regex: Regex,
    exception: bool,
}

impl Ignore {
    pub fn read(file: &Path) -> Result<Ignore> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::Io {
            action: "read the ignore file",
            path: file.to_path_buf(),
            source: e,
        })?;
        Ignore::parse(&text, file)
    }

    pub fn parse(text: &str, file: &Path) -> Result<Ignore> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            let regex = to_regex(&cleaned).map_err(|msg| Error::Source {
                path: file.to_path_buf(),
                msg: format!("line {}: pattern `{line}` {msg}", n + 1),
                hint: Some("see Docker's .dockerignore syntax".into()),
            })?;
            patterns.push(Pattern { regex, exception });
        }
        Ok(Ignore {
            file: file.to_path_buf(),
            patterns,
        })
    }

    /// Whether `path` (relative to the spec's directory, `/`-separated) is
    /// left out: the last matching pattern decides, and a pattern matching
    /// a parent directory matches everything under it.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = path.split('/').collect();
        let parents = &parents[..parents.len().saturating_sub(1)];
        let mut excluded = false;
        for p in &self.patterns {
            // Only an exception can undo a match, only a pattern can make one.
            if p.exception != excluded {
                continue;
            }
            let mut hit = p.regex.is_match(&path);
            if !hit {
                hit = (1..=parents.len()).any(|i| p.regex.is_match(&parents[..i].join("/")));
            }
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether some exception might re-include a path under an excluded
    /// directory, so that the directory must still be walked.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

/// Go's `filepath.Clean` for relative, `/`-separated paths, without a leading `/`.
fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !path.starts_with('/') {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

/// moby's translation: `**` any number of directories, `*` and `?` within
/// one name, `[...]` classes, `\` escapes.
fn to_regex(pattern: &str) -> std::result::Result<Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .ok_or("has an unclosed `[`")?;
                // Go negates a class with `^` only; `[!a]` is `!` or `a`.
                let class: String = chars[i + 1..i + 1 + end].iter().collect();
                re.push('[');
                re.push_str(&class.replace('[', "\\["));
                re.push(']');
                i += end + 1;
            }
            '\\' => {
                i += 1;
                let next = chars.get(i).ok_or("ends in `\\`")?;
                re.push_str(&regex::escape(&next.to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text, Path::new(".dockerignore")).unwrap()
    }

    #[test]
    fn dockers_documented_examples() {
        // https://docs.docker.com/build/concepts/context/#dockerignore-files
        let i = ignore("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert!(i.excludes("somedir/temporary.txt"));
        assert!(i.excludes("somedir/temp"));
        assert!(i.excludes("somedir/subdir/temporary.txt"));
        assert!(i.excludes("tempa"));
        assert!(i.excludes("tempb"));
        assert!(!i.excludes("temporary.txt"));
        assert!(!i.excludes("a/b/c/temp"));

        let i = ignore("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(i.excludes("CHANGES.md"));
        assert!(!i.excludes("README.md"));
        assert!(!i.excludes("README-public.md"));
        assert!(i.excludes("README-secret.md"));

        let i = ignore("*.md\nREADME-secret.md\n!README*.md\n");
        assert!(!i.excludes("README-secret.md"));

        let i = ignore("**/*.go\n");
        assert!(i.excludes("main.go"));
        assert!(i.excludes("a/b/c.go"));
    }

    #[test]
    fn directories_exclude_their_contents() {
        let i = ignore("node_modules\n/build/\n.git\n");
        assert!(i.excludes("node_modules"));
        assert!(i.excludes("node_modules/x/y.js"));
        assert!(i.excludes("build/out.o"));
        assert!(!i.excludes("src/node_modules/x"));
        assert!(i.excludes(".git/HEAD"));
        let i = ignore("docs\n!docs/README.md\n");
        assert!(i.excludes("docs/guide.md"));
        assert!(!i.excludes("docs/README.md"));
        assert!(i.has_exceptions());
    }

    #[test]
    fn patterns_are_cleaned_and_escaped() {
        let i = ignore("./a/../b/*.txt\n\\!literal\n[^a]x\n[!c]y\n  spaced  \n");
        assert!(i.excludes("b/1.txt"));
        assert!(i.excludes("!literal"));
        assert!(i.excludes("bx"));
        assert!(!i.excludes("ax"));
        assert!(i.excludes("!y") && i.excludes("cy") && !i.excludes("dy"));
        assert!(i.excludes("spaced"));
        assert!(Ignore::parse("[abc\n", Path::new("x")).is_err());
    }

    proptest::proptest! {
        /// Any ignore file and any path: an error or an answer, never a panic.
        #[test]
        fn never_panics(text in "[ -~\n\\[\\]!*?/.\\\\]{0,80}", path in "[a-z*?./\\[\\]!-]{0,30}") {
            if let Ok(i) = Ignore::parse(&text, Path::new("x")) {
                let _ = i.excludes(&path);
            }
        }
    }
}
