//! The raw spec: parsing, spans, modes.

use super::*;

fn src(text: &str) -> Source {
    Source {
        path: PathBuf::from("kiln.toml"),
        text: text.to_string(),
    }
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
    assert_eq!(line_col("ab", 99), (1, 3));
}

#[test]
fn unknown_key_is_located() {
    let err = src("[image]\nname = \"x\"\nbse = \"scratch\"\n")
        .parse()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("kiln.toml:3:1: unknown field `bse`"),
        "{text}"
    );
    assert!(err.hint().is_some());
}

#[test]
fn modes_parse_as_int_or_text() {
    let raw =
        src("[[dir]]\npath = \"/a\"\nmode = 0o750\n[[dir]]\npath = \"/b\"\nmode = \"0700\"\n")
            .parse()
            .unwrap();
    assert!(matches!(
        raw.dir[0].get_ref().mode.as_ref().unwrap().get_ref(),
        RawMode::Int(0o750)
    ));
    assert!(
        matches!(raw.dir[1].get_ref().mode.as_ref().unwrap().get_ref(), RawMode::Text(t) if t == "0700")
    );
}
