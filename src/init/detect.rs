//! What a directory's files say: the build output, the program to run,
//! the port, the image name.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

/// Whether an output directory tried before target/release exists.
pub(super) fn has_earlier_output(dir: &Path) -> bool {
    OUTPUT_DIRS
        .iter()
        .take_while(|d| **d != "target/release")
        .any(|d| dir.join(d).is_dir())
}

/// The release binary alone: the rest of target/release is build leftovers.
pub(super) fn cargo_artifact(dir: &Path, bin: &str) -> (Option<Artifact>, Option<Entry>) {
    let copy = Artifact {
        src: format!("target/release/{bin}"),
        dest: format!("/app/{bin}"),
        why: "The release binary Cargo.toml names, owned by the app user.".into(),
        exclude: Vec::new(),
    };
    let entry = Entry {
        path: format!("/app/{bin}"),
        why: "the cargo binary".into(),
        others: Vec::new(),
        dynamic: dynamically_linked(&dir.join("target/release").join(bin)),
    };
    (Some(copy), Some(entry))
}

/// The first output directory that exists, and an executable in it.
pub(super) fn output_dir_artifact(dir: &Path) -> (Option<Artifact>, Option<Entry>) {
    let Some(out) = OUTPUT_DIRS.iter().find(|d| dir.join(d).is_dir()) else {
        return (None, None);
    };
    let exclude = if *out == "target/release" {
        CARGO_LEFTOVERS.to_vec()
    } else {
        Vec::new()
    };
    let copy = Artifact {
        src: format!("{out}/"),
        dest: "/app/".into(),
        why: format!("The build output in {out}/, owned by the app user."),
        exclude,
    };
    let mut found = executables(&dir.join(out));
    // A compiled program before a script: scripts need an interpreter that scratch lacks.
    found.sort_by_key(|p| !is_elf(p));
    let entry = found.first().map(|first| Entry {
        path: format!("/app/{}", file_name(first)),
        why: format!("an executable in {out}/"),
        others: found[1..].iter().map(|p| file_name(p)).collect(),
        dynamic: dynamically_linked(first),
    });
    (Some(copy), entry)
}

/// The binary of the crate in `dir`, if cargo has built it in release mode.
pub(super) fn cargo_binary(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let manifest: toml::Table = toml::from_str(&text).ok()?;
    let bins = manifest.get("bin").and_then(|b| b.as_array());
    let bin_names = bins
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("name")?.as_str());
    let package = manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str());
    bin_names
        .chain(package)
        .filter(|n| plain_name(n))
        .find(|n| is_executable(&dir.join("target/release").join(n)))
        .map(str::to_string)
}

/// Executable regular files directly in `dir`, with names safe to write
/// unquoted in a path (no glob characters), sorted.
pub(super) fn executables(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(plain_name)
        })
        .filter(|p| is_executable(p))
        .collect();
    found.sort();
    found
}

pub(super) fn is_executable(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(super) fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The first bytes of a file, where ELF keeps its headers.
pub(super) fn head(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(file) = fs::File::open(path) {
        let _ = file.take(4096).read_to_end(&mut bytes);
    }
    bytes
}

pub(super) fn is_elf(path: &Path) -> bool {
    head(path).starts_with(b"\x7fELF")
}

/// Whether an ELF program needs a dynamic loader. The loader's path
/// (.interp) sits right after the program headers, so looking for
/// `/ld-` in the first 4 KiB finds glibc's and musl's without parsing ELF.
pub(super) fn dynamically_linked(path: &Path) -> bool {
    let bytes = head(path);
    bytes.starts_with(b"\x7fELF") && bytes.windows(4).any(|w| w == b"/ld-")
}

/// The first port in an EXPOSE line of a Dockerfile or Containerfile.
pub(super) fn port_from_dockerfile(dir: &Path) -> Option<Port> {
    ["Dockerfile", "Containerfile"].iter().find_map(|file| {
        let text = fs::read_to_string(dir.join(file)).ok()?;
        let spec = text.lines().find_map(expose_port)?;
        Port::new(&spec, format!("EXPOSE in {file}"), false)
    })
}

/// `EXPOSE 8080 9090/udp` -> the first port that is a number (not `$PORT`).
pub(super) fn expose_port(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("EXPOSE") {
        return None;
    }
    words.find_map(normalize_port)
}

/// `PORT=3000` in .env or .env.example (only that key is read: env files hold secrets).
pub(super) fn port_from_env_file(dir: &Path) -> Option<Port> {
    [".env", ".env.example"].iter().find_map(|file| {
        let text = fs::read_to_string(dir.join(file)).ok()?;
        let value = text.lines().find_map(env_port)?;
        Port::new(&value, format!("PORT in {file}"), true)
    })
}

pub(super) fn env_port(line: &str) -> Option<String> {
    let line = line.trim();
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (key, value) = line.split_once('=')?;
    if key.trim() != "PORT" {
        return None;
    }
    let value = value.split_whitespace().next()?;
    normalize_port(value.trim_matches(['"', '\'']))
}

/// `8080` or `53/udp` as `8080/tcp`, `53/udp`; None unless 1-65535 and tcp/udp/sctp.
pub(super) fn normalize_port(text: &str) -> Option<String> {
    let (number, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let number: u16 = number.parse().ok().filter(|n| *n > 0)?;
    let proto = proto.to_ascii_lowercase();
    matches!(proto.as_str(), "tcp" | "udp" | "sctp").then(|| format!("{number}/{proto}"))
}

impl Port {
    pub(super) fn new(spec: &str, from: String, set_env: bool) -> Option<Port> {
        let number = spec.split('/').next()?.parse().ok()?;
        Some(Port {
            spec: spec.to_string(),
            number,
            from,
            set_env,
        })
    }
}

/// The directory's name as an OCI repository name component: lowercase
/// letters and digits, separated by `.`, `_`, `__` or runs of `-`.
pub(super) fn dir_name(dir: &Path) -> String {
    let full = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let raw = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    repository_name(&raw)
}

pub(super) fn repository_name(raw: &str) -> String {
    let mut name = String::new();
    let mut separator = String::new();
    for c in raw.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if !name.is_empty() {
                name.push_str(join(&separator));
            }
            separator.clear();
            name.push(c);
        } else {
            separator.push(c);
        }
    }
    if name.is_empty() {
        "app".to_string()
    } else {
        name
    }
}

/// What the characters between two alphanumeric runs become.
pub(super) fn join(between: &str) -> &str {
    match between {
        "" => "",
        "." | "_" | "__" => between,
        s if s.chars().all(|c| c == '-') => between,
        _ => "-",
    }
}

/// The project's version, from the first manifest that gives one:
/// Cargo.toml `[package] version`, package.json `version`, pyproject.toml
/// `[project] version` (or Poetry's). Only plain version text is taken.
pub(super) fn project_version(dir: &Path) -> Option<(String, &'static str)> {
    let read = |name: &str| {
        let mut text = String::new();
        fs::File::open(dir.join(name))
            .ok()?
            .take(1 << 20)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    };
    let toml_at = |text: &str, path: &[&str]| {
        let mut value: toml::Value = toml::from_str(text).ok()?;
        for key in path {
            value = value.get(key)?.clone();
        }
        value.as_str().map(str::to_string)
    };
    let found = [
        (
            "Cargo.toml",
            read("Cargo.toml").and_then(|t| toml_at(&t, &["package", "version"])),
        ),
        (
            "package.json",
            read("package.json").and_then(|t| {
                let v: serde_json::Value = serde_json::from_str(&t).ok()?;
                v.get("version")?.as_str().map(str::to_string)
            }),
        ),
        (
            "pyproject.toml",
            read("pyproject.toml").and_then(|t| {
                toml_at(&t, &["project", "version"])
                    .or_else(|| toml_at(&t, &["tool", "poetry", "version"]))
            }),
        ),
    ];
    found.into_iter().find_map(|(from, v)| {
        let v = v?;
        let plain = !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
        plain.then_some((v, from))
    })
}
