//! Property tests: the spec loader, image paths, image references and
//! durations return Ok or Err for any input and never panic, and a spec
//! error always says where it is. Failures are kept by proptest as
//! regressions in tests/fuzz_spec.proptest-regressions.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use kiln::oci::reference::Reference;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// The seed specs from specs/*/kiln.toml: valid input to mutate.
static SPECS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut specs: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.unwrap().path().join("kiln.toml")).ok())
        .collect();
    specs.sort();
    assert!(!specs.is_empty(), "no specs/*/kiln.toml");
    specs
});

/// One spec file per test thread, rewritten for each case.
struct SpecFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SpecFile {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        SpecFile { _dir: dir, path }
    }

    /// Load `text`; an error must start with `PATH:LINE:COL: ` inside the text.
    fn check(&self, text: &str) -> Result<(), TestCaseError> {
        fs::write(&self.path, text).unwrap();
        let Err(err) = kiln::spec::validate::load(&self.path, &kiln::Inputs::default()) else {
            return Ok(());
        };
        let shown = err.to_string();
        let prefix = format!("{}:", self.path.display());
        let rest = shown.strip_prefix(&prefix);
        prop_assert!(rest.is_some(), "error without the file's path: {shown:?}");
        let mut parts = rest.unwrap().splitn(3, ':');
        let line: usize = parts.next().unwrap().parse().unwrap_or(0);
        let col: usize = parts.next().unwrap_or("").parse().unwrap_or(0);
        let msg = parts.next().unwrap_or("");
        prop_assert!(
            line >= 1 && col >= 1 && line <= text.split('\n').count(),
            "bad location in {shown:?}"
        );
        prop_assert!(
            msg.len() > 1 && msg.starts_with(' '),
            "empty message: {shown:?}"
        );
        Ok(())
    }
}

/// Pieces of TOML and of kiln's own syntax, so that random text gets past the parser.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\n",
            "[image]\n",
            "[user]\n",
            "[[copy]]\n",
            "[[dir]]\n",
            "[[file]]\n",
            "[[symlink]]\n",
            "[config]\n",
            "[healthcheck]\n",
            "[args]\n",
            "name = ",
            "uid = ",
            "gid = ",
            "src = ",
            "dest = ",
            "path = ",
            "mode = ",
            "owner = ",
            "base = ",
            "tag = ",
            "test = ",
            "interval = ",
            "env = ",
            "expose = ",
            "content = ",
            "target = ",
            "created = ",
            "platform = ",
            "compression-level = ",
            "\"",
            "'",
            "=",
            "[",
            "]",
            "{",
            "}",
            ",",
            "#",
            "\\",
            "${",
            "$${",
            "$",
            "..",
            "/",
            ":",
            "0o",
            "-",
            ".",
            "\u{0}",
            "\u{7}",
            "é",
            "µs",
            "sha256:",
            "@",
            "oci:",
            "\"CMD\"",
            "\"CMD-SHELL\"",
            "\"NONE\"",
            "2025-01-01T00:00:00Z",
            "0o7777",
            "2147483648",
            "-1",
            "1.5",
            "true",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z0-9_./:@${}-]{0,8}",
        "\"[a-zA-Z0-9_./:@${} -]{0,12}\"",
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    Replace(usize, char),
    DupLine(usize),
    /// Replace the contents of the n-th `"..."` string: valid TOML, so the validator sees it.
    Str(usize, String),
    /// Replace the n-th run of digits.
    Num(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Printable text and TOML escapes, with the characters kiln gives a meaning to.
    let value = "([a-zA-Z0-9_./:@${}=+ -]|\\\\n|\\\\u0000|\\\\u0007|é|\\.\\.){0,12}";
    let number = "-?[0-9]{1,20}|0o[0-7]{1,8}|0x[0-9a-f]{1,17}";
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), fragment()).prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        any::<usize>().prop_map(Edit::DupLine),
        (any::<usize>(), value).prop_map(|(n, s)| Edit::Str(n, s)),
        (any::<usize>(), number).prop_map(|(n, s)| Edit::Num(n, s)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_string();
    for e in edits {
        let at = |i: usize| {
            let mut i = i % (text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match e {
            Edit::Delete(i, n) => {
                let start = at(*i);
                let mut end = (start + n).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(start..end, "");
            }
            Edit::Insert(i, s) => text.insert_str(at(*i), s),
            Edit::Replace(i, c) => {
                let start = at(*i);
                if let Some(old) = text[start..].chars().next() {
                    text.replace_range(start..start + old.len_utf8(), &c.to_string());
                }
            }
            Edit::DupLine(i) => {
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let n = i % lines.len();
                    text = [&lines[..=n], &lines[n..]].concat().concat();
                }
            }
            Edit::Str(n, s) => {
                // Quotes pair up in order; good enough for the seed specs.
                let quotes: Vec<usize> = text.match_indices('"').map(|(i, _)| i).collect();
                if quotes.len() >= 2 {
                    let k = n % (quotes.len() / 2) * 2;
                    text.replace_range(quotes[k] + 1..quotes[k + 1], s);
                }
            }
            Edit::Num(n, s) => {
                let runs: Vec<(usize, usize)> = digit_runs(&text);
                if !runs.is_empty() {
                    let (a, b) = runs[n % runs.len()];
                    text.replace_range(a..b, s);
                }
            }
        }
    }
    text
}

fn digit_runs(text: &str) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(a)) => {
                runs.push((a, i));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

thread_local! {
    static FILE: SpecFile = SpecFile::new();
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // tests/ has no lib.rs, so name the regression file rather than have proptest guess.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(2000)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn load_survives_arbitrary_text(text in any::<String>()) {
        FILE.with(|f| f.check(&text))?;
    }

    #[test]
    fn load_survives_toml_like_text(parts in prop::collection::vec(fragment(), 0..40)) {
        FILE.with(|f| f.check(&parts.concat()))?;
    }

    #[test]
    fn load_survives_mutated_seed_specs(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let seed: &String = which.get(&SPECS);
        let text = apply(seed, &edits);
        FILE.with(|f| f.check(&text))?;
    }

    #[test]
    fn image_paths_are_normal(text in prop_oneof![any::<String>(), "[/.a\u{0}\u{7f}\n]{0,12}"]) {
        if let Ok(p) = kiln::spec::validate::image_path(&text) {
            prop_assert!(p.starts_with('/'), "{text:?} -> {p:?}");
            prop_assert!(!p.contains("//") && !p.contains("/./"), "{text:?} -> {p:?}");
            prop_assert!(!p.split('/').any(|c| c == "." || c == ".."), "{text:?} -> {p:?}");
            prop_assert!(!p.chars().any(char::is_control), "{text:?} -> {p:?}");
        }
    }

    #[test]
    fn references_parse_or_fail(
        text in prop_oneof![any::<String>(), "[a-zA-Z0-9:/@._ -]{0,30}(@sha256:[0-9a-f]{0,64})?"],
    ) {
        // What parses prints back as a reference that parses to the same.
        if let Ok(r) = Reference::parse(&text) {
            prop_assert_eq!(Reference::parse(&r.to_string()), Ok(r.clone()), "{:?}", text);
        }
    }

    #[test]
    fn durations_parse_or_fail(
        text in prop_oneof![any::<String>(), "([0-9.]{0,25}(ns|us|µs|ms|s|m|h|x|)){0,4}"],
    ) {
        if let Ok(nanos) = kiln::spec::duration::parse(&text) {
            prop_assert!(nanos >= 0, "{text:?} -> {nanos}");
        }
    }
}
