//! A Dockerfile split into instructions, each with the line it starts on:
//! parser directives (`# escape=`), comments, line continuations, heredocs
//! and case-insensitive instruction names, as BuildKit reads them.

/// One instruction as written, its continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Instr {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// The instruction's name, uppercased: `RUN`, `COPY`...
    pub cmd: String,
    /// `--name=value` (or bare `--name`) flags before the arguments.
    pub flags: Vec<(String, Option<String>)>,
    /// The rest, after the flags, trimmed.
    pub args: String,
    /// A heredoc (`<<EOF`) followed it; its body is not kept.
    pub heredoc: bool,
    /// The whole instruction, continuation lines joined.
    pub text: String,
    /// The lines it was written on, with their numbers.
    pub physical: Vec<(usize, String)>,
}

impl Instr {
    /// The line, from `*from` on, where the command `part` of this
    /// instruction starts (its first two words); `*from` moves there.
    pub fn line_of(&self, part: &str, from: &mut usize) -> usize {
        let key: Vec<&str> = part.split_whitespace().take(2).collect();
        let key = key.join(" ");
        for (n, (line, text)) in self.physical.iter().enumerate().skip(*from) {
            let text: Vec<&str> = text.split_whitespace().collect();
            if !key.is_empty() && text.join(" ").contains(&key) {
                *from = n;
                return *line;
            }
        }
        self.line
    }
}

impl Instr {
    /// The value of `--name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// The arguments in JSON (exec) form, if they are one: `["a", "b"]`.
    pub fn json(&self) -> Option<Vec<String>> {
        if !self.args.starts_with('[') {
            return None;
        }
        serde_json::from_str::<Vec<String>>(&self.args).ok()
    }
}

/// The instructions of `text`, and the escape character its directive chose.
pub fn parse(text: &str) -> Vec<Instr> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    let mut i = 0;
    // Parser directives: `# key=value` lines at the very top only.
    while i < lines.len() {
        let Some(rest) = lines[i].trim_start().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        if key == "escape" {
            escape = match value.trim() {
                "`" => '`',
                _ => '\\',
            };
        }
        i += 1;
    }
    let mut out = Vec::new();
    while i < lines.len() {
        let first = lines[i];
        let start = i;
        i += 1;
        let trimmed = first.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut joined = String::new();
        let mut current = first.trim_end();
        let mut physical = vec![(start + 1, current.to_string())];
        loop {
            match current.strip_suffix(escape) {
                Some(head) => {
                    joined.push_str(head);
                    // Comment and empty lines inside a continuation are dropped.
                    while i < lines.len() && {
                        let t = lines[i].trim();
                        t.is_empty() || t.starts_with('#')
                    } {
                        i += 1;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    current = lines[i].trim_end();
                    i += 1;
                    physical.push((i, current.to_string()));
                }
                None => {
                    joined.push_str(current);
                    break;
                }
            }
        }
        let (cmd, rest) = split_word(joined.trim_start());
        let cmd = cmd.to_ascii_uppercase();
        // Only these take flags; `CMD --help` is a command, as BuildKit reads it.
        let (flags, args) = match cmd.as_str() {
            "FROM" | "COPY" | "ADD" | "RUN" | "HEALTHCHECK" => flags(rest),
            _ => (Vec::new(), rest),
        };
        let mut instr = Instr {
            line: start + 1,
            cmd,
            flags,
            args: args.trim().to_string(),
            heredoc: false,
            text: joined.trim().to_string(),
            physical,
        };
        if matches!(instr.cmd.as_str(), "RUN" | "COPY" | "ADD") {
            let ends = heredoc_ends(&instr.args);
            if !ends.is_empty() {
                instr.heredoc = true;
                for (end, strip_tabs) in ends {
                    while i < lines.len() {
                        let l = lines[i];
                        i += 1;
                        let l = if strip_tabs {
                            l.trim_start_matches('\t')
                        } else {
                            l
                        };
                        if l == end {
                            break;
                        }
                    }
                }
            }
        }
        out.push(instr);
    }
    out
}

/// The first whitespace-separated word and the rest.
fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(n) => (&s[..n], &s[n..]),
        None => (s, ""),
    }
}

/// Leading `--flag[=value]` words, and what follows them.
fn flags(mut rest: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut out = Vec::new();
    loop {
        let t = rest.trim_start();
        if !t.starts_with("--") {
            return (out, t);
        }
        let (word, after) = split_word(t);
        let word = &word[2..];
        match word.split_once('=') {
            Some((n, v)) => out.push((n.to_ascii_lowercase(), Some(unquote(v)))),
            None => out.push((word.to_ascii_lowercase(), None)),
        }
        rest = after;
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// The terminators of the heredocs `<<EOF`, `<<-EOF`, `<<"EOF"` in `args`,
/// each with whether leading tabs are stripped from the body (`<<-`).
fn heredoc_ends(args: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = args;
    while let Some(pos) = rest.find("<<") {
        let mut after = &rest[pos + 2..];
        let strip = after.starts_with('-');
        if strip {
            after = &after[1..];
        }
        let word: String = after
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '&' | '|' | '>' | '<' | ')'))
            .collect();
        let name = word.trim_matches(|c| c == '"' || c == '\'');
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((name.to_string(), strip));
        }
        rest = &after[word.len().min(after.len())..];
        if !rest.is_char_boundary(0) {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_case() {
        let text = "# syntax=docker/dockerfile:1\nfrom alpine AS base\n\n# c\nrun echo a && \\\n  # inside\n\n  echo b\nCopy --chown=app:app --chmod=0755 a b /x/\n";
        let got = parse(text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].cmd, "FROM");
        assert_eq!(got[0].line, 2);
        assert_eq!(got[1].args, "echo a &&   echo b");
        assert_eq!(got[1].line, 5);
        assert_eq!(got[2].flag("chown"), Some("app:app"));
        assert_eq!(got[2].flag("chmod"), Some("0755"));
        assert_eq!(got[2].args, "a b /x/");
        let mut from = 0;
        assert_eq!(got[1].line_of("echo a", &mut from), 5);
        assert_eq!(got[1].line_of("echo  b", &mut from), 8);
        assert_eq!(got[1].line_of("nowhere", &mut from), 5);
    }

    #[test]
    fn flags_only_where_buildkit_reads_them() {
        let got = parse("\u{feff}FROM a\nCMD --help\nENV --x=1\n");
        assert_eq!(got[0].cmd, "FROM");
        assert_eq!((got[1].args.as_str(), got[1].flags.len()), ("--help", 0));
        assert_eq!(got[2].args, "--x=1");
    }

    #[test]
    fn escape_directive() {
        let got = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n");
        assert_eq!(got[1].args, "dir c:\\   && echo");
        assert_eq!(got[1].line, 3);
    }

    #[test]
    fn heredocs_are_skipped() {
        let got =
            parse("FROM x\nRUN <<EOF\nFROM y\nEOF\nUSER a\nRUN <<-'E' cat\n\tx\n\tE\nUSER b\n");
        let cmds: Vec<_> = got.iter().map(|i| (i.cmd.as_str(), i.heredoc)).collect();
        assert_eq!(
            cmds,
            [
                ("FROM", false),
                ("RUN", true),
                ("USER", false),
                ("RUN", true),
                ("USER", false)
            ]
        );
        assert_eq!(got[4].line, 9);
    }

    #[test]
    fn json_form() {
        let got = parse("CMD [\"a\", \"b c\"]\nCMD a b\nCMD [broken\n");
        assert_eq!(got[0].json(), Some(vec!["a".into(), "b c".into()]));
        assert_eq!(got[1].json(), None);
        assert_eq!(got[2].json(), None);
    }
}
