//! Package databases parsed into packages: dpkg's `status` (and distroless
//! `status.d/` records), apk's `installed`, Python's `METADATA`, and
//! os-release for the distro. The bytes come from an image: nothing here
//! trusts them. A field that is not there, not text or too long leaves the
//! package out; nothing panics; what is kept is plain data for serde.

use std::borrow::Cow;

/// Longest name, version, architecture or source kept.
const MAX_FIELD: usize = 256;
/// Longest declared license text kept (some METADATA put a whole license there).
const MAX_LICENSE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ecosystem {
    Deb,
    Apk,
    Python,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    /// The source package (dpkg `Source`, apk `o`), when it differs.
    pub source: Option<String>,
    /// As the metadata declares it, unchecked: see `license::expression`.
    pub license: Option<String>,
}

/// `ID` and `VERSION_ID` of an os-release file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OsRelease {
    pub id: Option<String>,
    pub version_id: Option<String>,
}

/// The installed packages of a dpkg `status` file or `status.d/` record.
/// With `truncated`, the last stanza may be cut short and is left out.
pub fn dpkg(bytes: &[u8], truncated: bool) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    each_stanza(&text, ':', truncated, &mut |fields| {
        out.extend(dpkg_package(fields));
        true
    });
    out
}

fn dpkg_package(fields: &[Field]) -> Option<Package> {
    // status.d records carry no Status; in `status`, only installed ones count.
    if let Some(status) = get(fields, "Status") {
        if status.split_whitespace().nth(2) != Some("installed") {
            return None;
        }
    }
    let name = token(get(fields, "Package")?)?;
    let source = get(fields, "Source")
        .and_then(|s| token(s.split_whitespace().next()?))
        .filter(|s| *s != name);
    Some(Package {
        ecosystem: Ecosystem::Deb,
        version: token(get(fields, "Version")?)?,
        arch: get(fields, "Architecture").and_then(token),
        source,
        license: None,
        name,
    })
}

/// The packages of an apk `installed` database (`P:` name, `V:` version,
/// `A:` arch, `L:` license, `o:` origin).
pub fn apk(bytes: &[u8], truncated: bool) -> Vec<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    each_stanza(&text, '\0', truncated, &mut |fields| {
        out.extend(apk_package(fields));
        true
    });
    out
}

fn apk_package(fields: &[Field]) -> Option<Package> {
    let name = token(get(fields, "P")?)?;
    let source = get(fields, "o").and_then(token).filter(|s| *s != name);
    Some(Package {
        ecosystem: Ecosystem::Apk,
        version: token(get(fields, "V")?)?,
        arch: get(fields, "A").and_then(token),
        source,
        license: get(fields, "L").and_then(license),
        name,
    })
}

/// The package a `METADATA` file describes: its headers, up to the first
/// blank line. The license is `License-Expression` (PEP 639), else a
/// one-line `License`, else the `License ::` classifiers.
pub fn python(bytes: &[u8]) -> Option<Package> {
    let text = String::from_utf8_lossy(bytes);
    let mut first = None;
    each_stanza(&text, ':', false, &mut |fields| {
        first = Some(python_package(fields));
        false
    });
    first?
}

fn python_package(fields: &[Field]) -> Option<Package> {
    let classifiers: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Classifier"))
        .filter_map(|(_, v)| v.trim().strip_prefix("License :: "))
        .map(|v| v.rsplit(" :: ").next().unwrap_or(v).trim())
        .filter(|v| !v.is_empty())
        .collect();
    let declared = get(fields, "License")
        .map(str::trim)
        .filter(|l| !l.contains('\n') && !l.eq_ignore_ascii_case("UNKNOWN"));
    let license = get(fields, "License-Expression")
        .and_then(license)
        .or_else(|| declared.and_then(license))
        .or_else(|| license(&classifiers.join("; ")));
    Some(Package {
        ecosystem: Ecosystem::Python,
        name: token(get(fields, "Name")?)?,
        version: token(get(fields, "Version")?)?,
        arch: None,
        source: None,
        license,
    })
}

/// `ID` and `VERSION_ID` of an os-release file (`KEY=value`, maybe quoted).
pub fn os_release(bytes: &[u8]) -> OsRelease {
    let text = String::from_utf8_lossy(bytes);
    let mut out = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        let slot = match key.trim() {
            "ID" => &mut out.id,
            "VERSION_ID" => &mut out.version_id,
            _ => continue,
        };
        *slot = token(value);
    }
    out
}

/// A `Key: value` field; a value continued over lines is owned.
type Field<'t> = (&'t str, Cow<'t, str>);

/// Hand each stanza (separated by blank lines) to `take` as a list of
/// `Key: value` fields (`K:value` for apk, `sep` = NUL), until it returns
/// false. A line starting with a space or tab continues the field above
/// it; lines that are neither are skipped. With `truncated`, a last stanza
/// no blank line ends may be partial and is left out. One list is reused
/// throughout: a 64 MiB database allocates little.
fn each_stanza<'t>(
    text: &'t str,
    sep: char,
    truncated: bool,
    take: &mut dyn FnMut(&[Field<'t>]) -> bool,
) {
    let mut current: Vec<Field> = Vec::new();
    // The newline that ends the last line does not start a blank one.
    let text = text.strip_suffix('\n').unwrap_or(text);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.is_empty() {
                if !take(&current) {
                    return;
                }
                current.clear();
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                // Continuations of a long field are not needed; stop growing them.
                if value.len() < MAX_LICENSE * 4 {
                    let v = value.to_mut();
                    v.push('\n');
                    v.push_str(line.trim());
                }
            }
            continue;
        }
        let split = match sep {
            '\0' => line.split_at_checked(1).and_then(|(k, rest)| {
                let v = rest.strip_prefix(':')?;
                Some((k, v))
            }),
            _ => line.split_once(sep),
        };
        if let Some((key, value)) = split {
            current.push((key.trim(), Cow::Borrowed(value.trim())));
        }
    }
    if !current.is_empty() && !truncated {
        take(&current);
    }
}

/// The first field named `key` (case-insensitive, as RFC 822 headers are).
fn get<'a>(fields: &'a [Field], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_ref())
}

/// A name, version or architecture: one word of printable characters.
fn token(value: &str) -> Option<String> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= MAX_FIELD
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| value.to_string())
}

/// A declared license: one line of printable text, not too long.
fn license(value: &str) -> Option<String> {
    let value = value.trim();
    let ok =
        !value.is_empty() && value.len() <= MAX_LICENSE && !value.chars().any(char::is_control);
    ok.then(|| value.to_string())
}

#[cfg(test)]
mod tests;
