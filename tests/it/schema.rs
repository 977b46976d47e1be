//! `kiln schema`: the JSON Schema editors use for kiln.toml. Every spec kiln
//! accepts must validate against it, and what kiln's parser refuses (unknown
//! keys, wrong types) the schema must refuse too.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::repo;
use crate::common::schema::{as_json, errors, schema, validator};

/// Every kiln.toml under `root`, sorted.
fn specs_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "kiln.toml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Whether kiln itself reads and validates the spec (sources and base aside).
fn kiln_loads(path: &Path) -> bool {
    kiln::spec::validate::load(path, &kiln::Inputs::default()).is_ok()
}

/// Whether kiln's parser (not its validation) accepts the spec.
fn kiln_parses(path: &Path, text: &str) -> bool {
    let source = kiln::spec::raw::Source {
        path: path.to_path_buf(),
        text: text.to_string(),
    };
    source.parse().is_ok()
}

/// Validate each spec; panic listing every one that does not validate.
fn assert_all_validate(specs: &[PathBuf]) {
    let validator = validator();
    let failures: Vec<String> = specs
        .iter()
        .filter_map(|path| {
            let errs = errors(&validator, &fs::read_to_string(path).unwrap());
            (!errs.is_empty()).then(|| format!("{}:\n  {}", path.display(), errs.join("\n  ")))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_example_spec_validates() {
    let specs = specs_under(&repo().join("specs"));
    assert!(specs.len() >= 7, "only {} specs under specs/", specs.len());
    assert_all_validate(&specs);
}

#[test]
fn every_check_fixture_kiln_accepts_validates() {
    let specs: Vec<PathBuf> = specs_under(&repo().join("testdata/check"))
        .into_iter()
        .filter(|p| kiln_loads(p))
        .collect();
    assert!(specs.len() > 20, "only {} check fixtures load", specs.len());
    assert_all_validate(&specs);
}

/// The broken specs refused only after parsing (bad values, missing sources,
/// base clashes) are valid TOML shapes: the schema must not refuse the ones
/// kiln's validation accepts, and must refuse the ones its parser refuses.
#[test]
fn broken_specs_agree_with_the_parser() {
    let validator = validator();
    let (mut loaded, mut refused) = (0, 0);
    let mut disagreements = Vec::new();
    for path in specs_under(&repo().join("testdata/broken-specs")) {
        // A spec that is not UTF-8 is not TOML: kiln refuses it before parsing.
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Some(json) = as_json(&text) else { continue };
        let valid = validator.is_valid(&json);
        if kiln_loads(&path) {
            loaded += 1;
            if !valid {
                disagreements.push(format!("schema refuses {}", path.display()));
            }
        } else if !kiln_parses(&path, &text) {
            refused += 1;
            if valid {
                disagreements.push(format!("schema accepts {}", path.display()));
            }
        }
    }
    assert!(
        loaded > 0 && refused > 0,
        "loaded {loaded}, refused {refused}"
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn schema_refuses_what_the_parser_refuses() {
    let validator = validator();
    let cases = [
        (
            "unknown key in [image]",
            "[image]\nname = \"web\"\nbse = \"scratch\"\n",
        ),
        ("misspelled table", "[imgae]\nname = \"web\"\n"),
        ("uid as a string", "[user]\nname = \"app\"\nuid = \"abc\"\n"),
        (
            "mode as a boolean",
            "[[dir]]\npath = \"/data\"\nmode = true\n",
        ),
        ("copy as a table", "[copy]\nsrc = \"a\"\ndest = \"/a\"\n"),
        ("copy without dest", "[[copy]]\nsrc = \"a\"\n"),
        (
            "unknown key in [[copy]]",
            "[[copy]]\nsrc = \"a\"\ndest = \"/a\"\nchown = \"app\"\n",
        ),
        (
            "env value not a string",
            "[config]\nenv = { PORT = 8000 }\n",
        ),
        ("cmd as a string", "[config]\ncmd = \"serve\"\n"),
    ];
    for (what, text) in cases {
        assert!(
            !kiln_parses(Path::new("kiln.toml"), text),
            "{what}: kiln parses it"
        );
        assert!(
            !errors(&validator, text).is_empty(),
            "{what}: the schema accepts it"
        );
    }
}

#[test]
fn schema_refuses_values_kiln_refuses() {
    let validator = validator();
    let cases = [
        ("uid 0", "[user]\nname = \"app\"\nuid = 0\n"),
        (
            "mode above 7777",
            "[[dir]]\npath = \"/d\"\nmode = 0o17777\n",
        ),
        (
            "symbolic mode",
            "[[dir]]\npath = \"/d\"\nmode = \"u+rwx\"\n",
        ),
        (
            "unknown rule",
            "[policy]\nallow = [\"KILN-NOPE\"]\nreason = \"x\"\n",
        ),
        ("empty healthcheck", "[healthcheck]\ntest = []\n"),
        ("compression level 20", "[image]\ncompression-level = 20\n"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.toml");
    for (what, text) in cases {
        fs::write(&path, text).unwrap();
        assert!(!kiln_loads(&path), "{what}: kiln accepts it");
        assert!(
            !errors(&validator, text).is_empty(),
            "{what}: the schema accepts it"
        );
    }
}

#[test]
fn schema_accepts_args_and_both_mode_forms() {
    let validator = validator();
    let cases = [
        "[args]\nFORMAT = \"oci\"\n[image]\nformat = \"${FORMAT}\"\ncompression = \"${FORMAT}\"\n",
        "[[dir]]\npath = \"/d\"\nmode = 0o750\n[[dir]]\npath = \"/e\"\nmode = \"0750\"\n",
        "[[file]]\npath = \"/f\"\ncontent = \"\"\nmode = \"0o600\"\n",
        "[policy]\nallow = [\"KILN-NO-HEALTHCHECK\"]\nreason = \"a batch job\"\n",
        "",
    ];
    for text in cases {
        let errs = errors(&validator, text);
        assert!(errs.is_empty(), "{text}\n{errs:?}");
    }
}

/// Mode strings are not ${NAME}-expanded, so the schema's pattern can say
/// exactly what kiln reads: octal digits, an optional 0o, at most 0o7777.
#[test]
fn mode_strings_agree_with_kiln() {
    let validator = validator();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.toml");
    let modes = [
        "0644", "644", "0o644", "7", "0", "0007777", "7777", "17777", "0o", "", "0888", "u+x",
        "-1", "+644", " 644", "0x1ff",
    ];
    for mode in modes {
        let text = format!("[[dir]]\npath = \"/d\"\nmode = \"{mode}\"\n");
        fs::write(&path, &text).unwrap();
        let schema_ok = errors(&validator, &text).is_empty();
        assert_eq!(schema_ok, kiln_loads(&path), "mode {mode:?}");
    }
}

#[test]
fn schema_names_and_describes_every_key() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["title"], "kiln.toml");
    assert!(
        schema["$id"]
            .as_str()
            .is_some_and(|id| id.starts_with("https://"))
    );
    assert!(
        schema["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    let base = &schema["$defs"]["RawImage"]["properties"]["base"]["description"];
    assert!(
        base.as_str().is_some_and(|d| d.contains("scratch")),
        "{base}"
    );

    let mut tables = vec![("", &schema)];
    tables.extend(
        schema["$defs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v)),
    );
    let mut keys = 0;
    for (table, def) in tables {
        for (key, prop) in def["properties"].as_object().into_iter().flatten() {
            keys += 1;
            let described = prop["description"].as_str().is_some_and(|d| !d.is_empty());
            assert!(described, "{table}.{key} has no description");
        }
    }
    assert!(keys > 50, "only {keys} keys");
}

/// Every broken spec through the schema: those it lets pass are the ones
/// only kiln's validation refuses (values that need args filled in, files,
/// the base, cross-key rules). The list is kept in testdata/schema-gap.txt,
/// so a change to the gap shows in review; `KILN_BLESS=1` rewrites it.
#[test]
fn the_gap_between_schema_and_kiln_is_known() {
    let validator = validator();
    let root = repo().join("testdata/broken-specs");
    let mut only_kiln = Vec::new();
    let mut both = 0;
    for path in specs_under(&root) {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let name = path.parent().unwrap().strip_prefix(&root).unwrap();
        match as_json(&text) {
            Some(json) if validator.is_valid(&json) => only_kiln.push(name.display().to_string()),
            _ => both += 1,
        }
    }
    let listed = only_kiln.join("\n") + "\n";
    let file = repo().join("testdata/schema-gap.txt");
    if std::env::var_os("KILN_BLESS").is_some_and(|v| v == "1") {
        fs::write(&file, &listed).unwrap();
    }
    let expected = fs::read_to_string(&file).unwrap_or_default();
    assert!(both > 40, "the schema refuses only {both} broken specs");
    assert_eq!(
        listed, expected,
        "the broken specs only kiln refuses changed (KILN_BLESS=1 accepts it)"
    );
}
