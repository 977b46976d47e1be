//! Strings that come from images, registries or spec values, made safe to
//! print on a terminal. A label holding `ESC [2J` would clear the screen, a
//! `\r` or newline could forge a line of `kiln inspect`, and U+202E turns
//! the rest of a line around; each is shown as an escape instead.
//!
//! JSON output needs none of this: serde escapes what JSON requires, and a
//! JSON reader never interprets the rest.

use std::fmt::{self, Write};

/// `{}` of `Shown(s)` is `s` with control characters escaped: C0 and DEL as
/// `\n`, `\r`, `\t` or `\x1b`; C1, line and paragraph separators and bidi
/// controls as `\u{202e}`. Everything else, backslashes included, is as is.
#[derive(Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.chars().any(needs_escape) {
            return f.pad(self.0);
        }
        f.pad(&escape(self.0))
    }
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `s` with control characters escaped, as `Shown` prints it.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
            c => write!(out, "\\u{{{:x}}}", c as u32),
        };
    }
    out
}

/// Characters a terminal acts on rather than shows.
pub fn needs_escape(c: char) -> bool {
    // is_control: C0 (U+0000-001F), DEL and C1 (U+0080-009F).
    c.is_control()
        || matches!(
            c,
            '\u{061c}'                      // arabic letter mark
            | '\u{200e}' | '\u{200f}'       // LRM, RLM
            | '\u{2028}' | '\u{2029}'       // line and paragraph separators
            | '\u{202a}'..='\u{202e}'       // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape("a\x1b[2Jb\rc\nd\te\x7f"),
            "a\\x1b[2Jb\\rc\\nd\\te\\x7f"
        );
        assert_eq!(escape("\u{85}\u{9b}31m"), "\\u{85}\\u{9b}31m");
        assert_eq!(
            escape("x\u{202e}gnp.exe\u{2066}\u{2028}"),
            "x\\u{202e}gnp.exe\\u{2066}\\u{2028}"
        );
        assert_eq!(escape("\0"), "\\x00");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for s in ["", "plain", "C:\\path", "ünïcödé ☃ 日本", "tab-less\\t"] {
            assert_eq!(escape(s), s);
            assert_eq!(Shown(s).to_string(), s);
        }
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let once = escape("\x1b]0;title\x07\u{202e}");
        assert_eq!(escape(&once), once);
        assert!(!once.chars().any(needs_escape));
    }

    #[test]
    fn padding_applies_to_the_escaped_text() {
        assert_eq!(format!("[{:<6}]", Shown("a\rb")), "[a\\rb  ]");
        assert_eq!(format!("[{:>4}]", Shown("ab")), "[  ab]");
    }

    #[test]
    fn no_output_holds_a_raw_control_character() {
        // Every char from U+0000 to U+3000, and a few beyond.
        let all: String = (0u32..0x3000)
            .chain([0xfeff, 0x1_0000])
            .filter_map(char::from_u32)
            .collect();
        let out = escape(&all);
        assert!(!out.chars().any(needs_escape));
        assert!(!out.bytes().any(|b| b < 0x20 || b == 0x7f));
    }
}
