//! Declared licenses as SPDX license expressions, when they are ones.
//!
//! SPDX and CycloneDX tools reject an expression naming an identifier
//! outside the SPDX license list, so a declared license is written as an
//! expression only when every identifier in it is one of the common ones
//! below (the list is a subset of SPDX's, matched case-insensitively as
//! SPDX matches them); any other text is kept as text.

/// Common SPDX license identifiers, as the SPDX license list spells them.
const LICENSES: &[&str] = &[
    "0BSD",
    "AFL-2.1",
    "AFL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "APSL-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "Beerware",
    "BlueOak-1.0.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-2-Clause-Patent",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-4-Clause",
    "BSD-Source-Code",
    "BSL-1.0",
    "bzip2-1.0.6",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "CECILL-2.1",
    "curl",
    "ECL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "FTL",
    "GFDL-1.2-only",
    "GFDL-1.2-or-later",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ICU",
    "IJG",
    "Info-ZIP",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "Libpng",
    "libpng-2.0",
    "MIT",
    "MIT-0",
    "MIT-CMU",
    "MPL-1.1",
    "MPL-2.0",
    "MS-PL",
    "NCSA",
    "OFL-1.1",
    "OLDAP-2.8",
    "OpenSSL",
    "PHP-3.01",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "Sleepycat",
    "TCL",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "Vim",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
];

/// Common SPDX license exceptions, for `WITH`.
const EXCEPTIONS: &[&str] = &[
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Classpath-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
    "Linux-syscall-note",
];

/// Deepest nesting of parentheses followed.
const MAX_DEPTH: usize = 16;

/// `text` as an SPDX license expression with each identifier spelled as
/// the list spells it, or None if it is not one kiln can vouch for.
pub fn expression(text: &str) -> Option<String> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens: &tokens,
        at: 0,
        out: String::new(),
    };
    p.expr(0)?;
    (p.at == tokens.len()).then_some(p.out)
}

fn tokenize(text: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for word in text.split_ascii_whitespace() {
        let mut rest = word;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix(['(', ')']) {
                out.push(&rest[..1]);
                rest = r;
                continue;
            }
            let end = rest.find(['(', ')']).unwrap_or(rest.len());
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    (!out.is_empty() && out.len() <= 256).then_some(out)
}

struct Parser<'a> {
    tokens: &'a [&'a str],
    at: usize,
    out: String,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let t = *self.tokens.get(self.at)?;
        self.at += 1;
        Some(t)
    }

    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.at).copied()
    }

    /// term ((AND | OR) term)*
    fn expr(&mut self, depth: usize) -> Option<()> {
        self.term(depth)?;
        while let Some(op) = self.peek() {
            let op = match op {
                o if o.eq_ignore_ascii_case("AND") => "AND",
                o if o.eq_ignore_ascii_case("OR") => "OR",
                _ => break,
            };
            self.at += 1;
            self.out.push_str(&format!(" {op} "));
            self.term(depth)?;
        }
        Some(())
    }

    /// `(` expr `)` | id [WITH exception]
    fn term(&mut self, depth: usize) -> Option<()> {
        let t = self.next()?;
        if t == "(" {
            if depth >= MAX_DEPTH {
                return None;
            }
            self.out.push('(');
            self.expr(depth + 1)?;
            (self.next()? == ")").then_some(())?;
            self.out.push(')');
            return Some(());
        }
        let id = known(LICENSES, t)?;
        self.out.push_str(id);
        if self.peek().is_some_and(|w| w.eq_ignore_ascii_case("WITH")) {
            self.at += 1;
            let e = self.next()?;
            let exception = known(EXCEPTIONS, e)?;
            self.out.push_str(" WITH ");
            self.out.push_str(exception);
        }
        Some(())
    }
}

fn known(list: &[&'static str], word: &str) -> Option<&'static str> {
    list.iter()
        .copied()
        .find(|id| id.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::expression;

    #[test]
    fn expressions_of_known_identifiers() {
        let cases = [
            ("MIT", Some("MIT")),
            ("mit", Some("MIT")),
            (
                "BSD-3-Clause OR Apache-2.0",
                Some("BSD-3-Clause OR Apache-2.0"),
            ),
            (
                "(MIT or Apache-2.0) AND  Zlib",
                Some("(MIT OR Apache-2.0) AND Zlib"),
            ),
            (
                "GPL-2.0-or-later WITH Classpath-exception-2.0",
                Some("GPL-2.0-or-later WITH Classpath-exception-2.0"),
            ),
            ("MIT License", None),
            ("GPL2", None),
            ("MIT AND", None),
            ("(MIT", None),
            ("MIT)", None),
            ("", None),
            ("LicenseRef-foo", None),
            ("MIT WITH MIT", None),
        ];
        for (text, want) in cases {
            assert_eq!(expression(text).as_deref(), want, "{text:?}");
        }
        assert_eq!(expression(&"(".repeat(100)), None);
        assert_eq!(
            expression(&format!("{}MIT{}", "(".repeat(20), ")".repeat(20))),
            None
        );
    }
}
