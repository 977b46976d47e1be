//! The TOML parser's and serde's messages, said for people writing a spec:
//! each with a hint that shows the right form of what they wrote.

/// A spec file's bytes as text: UTF-8, a leading byte-order mark dropped.
/// UTF-16 (as some Windows editors save) and other encodings are refused.
pub fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err("is UTF-16 text (it starts with a UTF-16 byte-order mark)".into());
    }
    let bytes = match bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "is not UTF-8 text (byte {} is not valid UTF-8)",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The message to show for `msg`, and a hint. `line` is the spec's line
/// the error points into.
pub fn explain(msg: &str, line: &str) -> (String, Option<String>) {
    let plain = msg
        .replace("expected i64", "expected an integer")
        .replace("expected u32", "expected an integer");
    let hint = hint(msg, &plain, line);
    let shown = if msg.starts_with("duplicate key") {
        format!("duplicate key or table `{}`", line.trim())
    } else if msg.contains("string values must be quoted") && line.trim_end().ends_with('=') {
        format!("`{}` has no value", line.trim())
    } else {
        plain
    };
    (shown, hint)
}

fn hint(msg: &str, plain: &str, line: &str) -> Option<String> {
    let key = key_of(line);
    if msg.starts_with("unknown field") {
        return Some("check the key's spelling against the spec reference in README.md".into());
    }
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        return Some(match example(field) {
            Some(e) => format!("add `{field}`, e.g. {e}"),
            None => format!("add `{field}`; the README's spec reference shows its form"),
        });
    }
    if msg.starts_with("invalid type: string") && plain.contains("expected an integer") {
        return Some("write the number without quotes".into());
    }
    if msg.starts_with("invalid type: string") && msg.ends_with("expected a sequence") {
        let words: Vec<String> = quoted(line)
            .split_whitespace()
            .map(|w| format!("{w:?}"))
            .collect();
        return Some(format!("{key} is a list: {key} = [{}]", words.join(", ")));
    }
    if msg.starts_with("invalid type: integer") && msg.ends_with("expected a string") {
        let number = msg.split('`').nth(1).unwrap_or("0");
        return Some(match key.as_str() {
            "expose" => format!("ports are strings with a protocol: expose = [\"{number}/tcp\"]"),
            _ => format!(
                "quote it: {} = \"{number}\"",
                key_before(line, number, &key)
            ),
        });
    }
    if msg == "invalid type: sequence, expected a map" {
        let pairs: Vec<String> = inline_items(line)
            .iter()
            .filter_map(|item| item.split_once('='))
            .map(|(k, v)| format!("{} = {v:?}", k.trim()))
            .collect();
        let example = match pairs.is_empty() {
            true => "NAME = \"value\"".to_string(),
            false => pairs.join(", "),
        };
        return Some(format!("{key} is a table: {key} = {{ {example} }}"));
    }
    if msg == "invalid type: map, expected a sequence" {
        return Some(
            "[[copy]], [[dir]], [[file]] and [[symlink]] take double brackets: each is one entry in a list".into(),
        );
    }
    if msg == "invalid type: map, expected a string" && line.contains(char::is_numeric) {
        return Some("quote the time: created = \"2025-01-01T00:00:00Z\"".into());
    }
    if msg.starts_with("duplicate key") {
        return Some(
            "each key and each [table] may appear once; remove or merge the repeat".into(),
        );
    }
    if msg.contains("string values must be quoted") && line.trim_end().ends_with('=') {
        return Some("write a value after `=`, e.g. name = \"web\"".into());
    }
    None
}

/// The key a `key = value` line sets.
fn key_of(line: &str) -> String {
    let key = line.split('=').next().unwrap_or("").trim();
    key.trim_matches('"').to_string()
}

/// The key just before `value` on the line: `PORT` in `env = { PORT = 8000 }`.
fn key_before(line: &str, value: &str, fallback: &str) -> String {
    let Some(at) = line.find(&format!("= {value}")) else {
        return fallback.to_string();
    };
    let before = line[..at].trim_end();
    let key = before.rsplit(['{', ',', ' ']).next().unwrap_or("");
    match key.trim_matches('"') {
        "" => fallback.to_string(),
        k => k.to_string(),
    }
}

/// The text of the first quoted string on the line.
fn quoted(line: &str) -> &str {
    line.split('"').nth(1).unwrap_or("")
}

/// The quoted items of an inline array on the line: `["A=B", "C=D"]`.
fn inline_items(line: &str) -> Vec<&str> {
    line.split('"').skip(1).step_by(2).collect()
}

/// A form of each required key, for "missing field".
fn example(field: &str) -> Option<&'static str> {
    Some(match field {
        "uid" => "uid = 10001",
        "name" => "name = \"app\"",
        "src" => "src = \"dist/\"",
        "dest" => "dest = \"/app/\"",
        "path" => "path = \"/etc/app.conf\"",
        "target" => "target = \"/usr/bin/python3\"",
        "test" => "test = [\"CMD\", \"/app/healthcheck\"]",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint_for(msg: &str, line: &str) -> String {
        explain(msg, line).1.unwrap_or_default()
    }

    #[test]
    fn wrong_types_show_the_right_form() {
        assert_eq!(
            hint_for(
                "invalid type: string \"uvicorn app:app\", expected a sequence",
                "cmd = \"uvicorn app:app\""
            ),
            "cmd is a list: cmd = [\"uvicorn\", \"app:app\"]"
        );
        assert_eq!(
            hint_for(
                "invalid type: integer `8000`, expected a string",
                "expose = [8000]"
            ),
            "ports are strings with a protocol: expose = [\"8000/tcp\"]"
        );
        assert_eq!(
            hint_for(
                "invalid type: sequence, expected a map",
                "env = [\"A=B\", \"C=D=E\"]"
            ),
            "env is a table: env = { A = \"B\", C = \"D=E\" }"
        );
        assert_eq!(
            hint_for("missing field `uid`", "[user]"),
            "add `uid`, e.g. uid = 10001"
        );
        assert_eq!(
            hint_for("invalid type: integer `1`, expected a string", "tag = 1"),
            "quote it: tag = \"1\""
        );
        assert_eq!(
            hint_for(
                "invalid type: integer `8000`, expected a string",
                "env = { PORT = 8000 }"
            ),
            "quote it: PORT = \"8000\""
        );
    }

    #[test]
    fn text_must_be_utf8() {
        let utf16: Vec<u8> = [0xff, 0xfe, b'a', 0].to_vec();
        assert!(utf8(utf16).unwrap_err().contains("UTF-16"));
        assert!(utf8(vec![b'a', 0xc3]).unwrap_err().contains("byte 1"));
        assert_eq!(utf8(b"\xef\xbb\xbfname".to_vec()).unwrap(), "name");
    }
}
