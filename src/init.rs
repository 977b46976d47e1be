//! `kiln init`: a commented starter kiln.toml for a directory.
//!
//! It guesses what it can from the files there: the build output to copy,
//! the program to run, the port, the image name. What it cannot guess it
//! writes as a commented example. The result passes `kiln check` with no
//! error-level finding, so the first `kiln build` works as soon as the
//! build output exists.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where builds commonly leave their output, in the order they are tried.
const OUTPUT_DIRS: [&str; 6] = ["dist", "build", "out", "bin", "target/release", "public"];

/// What cargo leaves in target/release besides the binaries.
const CARGO_LEFTOVERS: [&str; 7] = [
    "build",
    "deps",
    "examples",
    "incremental",
    ".fingerprint",
    ".cargo-lock",
    "*.d",
];

/// The port used in examples when none is found.
const DEFAULT_PORT: u16 = 8080;

/// The starter spec for `dir`.
pub fn starter(dir: &Path) -> String {
    render(&Guess::of(dir))
}

/// Write `dir/kiln.toml`; an existing one is kept unless `force`.
pub fn write(dir: &Path, force: bool) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(Error::Usage {
            what: format!("`{}`", dir.display()),
            msg: "no such directory".into(),
            hint: Some("pass the directory that holds your project".into()),
        });
    }
    let path = dir.join("kiln.toml");
    // symlink_metadata: a dangling link named kiln.toml is still something to keep.
    if !force && fs::symlink_metadata(&path).is_ok() {
        return Err(Error::Usage {
            what: format!("`{}`", path.display()),
            msg: "already exists; kiln init leaves it as it is".into(),
            hint: Some("pass --force to replace it".into()),
        });
    }
    crate::tmp::write_atomic(&path, starter(dir).as_bytes())?;
    Ok(path)
}

/// What the directory's files say about the image.
struct Guess {
    name: String,
    copy: Option<Artifact>,
    /// The program to run, as a path in the image.
    entry: Option<Entry>,
    port: Option<Port>,
}

/// The build output to copy into /app.
struct Artifact {
    /// Relative to the spec: `dist/`, or one file like `target/release/NAME`.
    src: String,
    dest: String,
    /// Where it came from, for the comment above the [[copy]].
    why: String,
    exclude: Vec<&'static str>,
}

struct Entry {
    path: String,
    why: String,
    /// Other executables that could be the entrypoint instead.
    others: Vec<String>,
    /// It names an ELF interpreter, which scratch does not have.
    dynamic: bool,
}

struct Port {
    /// Normalised, e.g. `8080/tcp`.
    spec: String,
    number: u16,
    from: String,
    /// Found as PORT= in an env file: the app reads PORT, so the image sets it.
    set_env: bool,
}

impl Guess {
    fn of(dir: &Path) -> Guess {
        let (copy, entry) = match cargo_binary(dir) {
            Some(bin) if !has_earlier_output(dir) => cargo_artifact(dir, &bin),
            _ => output_dir_artifact(dir),
        };
        Guess {
            name: dir_name(dir),
            copy,
            entry,
            port: port_from_dockerfile(dir).or_else(|| port_from_env_file(dir)),
        }
    }
}

/// Whether an output directory tried before target/release exists.
fn has_earlier_output(dir: &Path) -> bool {
    OUTPUT_DIRS
        .iter()
        .take_while(|d| **d != "target/release")
        .any(|d| dir.join(d).is_dir())
}

/// The release binary alone: the rest of target/release is build leftovers.
fn cargo_artifact(dir: &Path, bin: &str) -> (Option<Artifact>, Option<Entry>) {
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
fn output_dir_artifact(dir: &Path) -> (Option<Artifact>, Option<Entry>) {
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
fn cargo_binary(dir: &Path) -> Option<String> {
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
fn executables(dir: &Path) -> Vec<PathBuf> {
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

fn is_executable(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The first bytes of a file, where ELF keeps its headers.
fn head(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(file) = fs::File::open(path) {
        let _ = file.take(4096).read_to_end(&mut bytes);
    }
    bytes
}

fn is_elf(path: &Path) -> bool {
    head(path).starts_with(b"\x7fELF")
}

/// Whether an ELF program needs a dynamic loader. The loader's path
/// (.interp) sits right after the program headers, so looking for
/// `/ld-` in the first 4 KiB finds glibc's and musl's without parsing ELF.
fn dynamically_linked(path: &Path) -> bool {
    let bytes = head(path);
    bytes.starts_with(b"\x7fELF") && bytes.windows(4).any(|w| w == b"/ld-")
}

/// The first port in an EXPOSE line of a Dockerfile or Containerfile.
fn port_from_dockerfile(dir: &Path) -> Option<Port> {
    ["Dockerfile", "Containerfile"].iter().find_map(|file| {
        let text = fs::read_to_string(dir.join(file)).ok()?;
        let spec = text.lines().find_map(expose_port)?;
        Port::new(&spec, format!("EXPOSE in {file}"), false)
    })
}

/// `EXPOSE 8080 9090/udp` -> the first port that is a number (not `$PORT`).
fn expose_port(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("EXPOSE") {
        return None;
    }
    words.find_map(normalize_port)
}

/// `PORT=3000` in .env or .env.example (only that key is read: env files hold secrets).
fn port_from_env_file(dir: &Path) -> Option<Port> {
    [".env", ".env.example"].iter().find_map(|file| {
        let text = fs::read_to_string(dir.join(file)).ok()?;
        let value = text.lines().find_map(env_port)?;
        Port::new(&value, format!("PORT in {file}"), true)
    })
}

fn env_port(line: &str) -> Option<String> {
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
fn normalize_port(text: &str) -> Option<String> {
    let (number, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let number: u16 = number.parse().ok().filter(|n| *n > 0)?;
    let proto = proto.to_ascii_lowercase();
    matches!(proto.as_str(), "tcp" | "udp" | "sctp").then(|| format!("{number}/{proto}"))
}

impl Port {
    fn new(spec: &str, from: String, set_env: bool) -> Option<Port> {
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
fn dir_name(dir: &Path) -> String {
    let full = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let raw = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    repository_name(&raw)
}

fn repository_name(raw: &str) -> String {
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
fn join(between: &str) -> &str {
    match between {
        "" => "",
        "." | "_" | "__" => between,
        s if s.chars().all(|c| c == '-') => between,
        _ => "-",
    }
}

fn render(g: &Guess) -> String {
    [
        header(g),
        image(g),
        args(),
        user(),
        copy(g),
        config(g),
        labels(g),
        healthcheck(g),
    ]
    .join("\n")
}

/// `key = value` with a comment at column 40, as in the example specs.
fn line(code: &str, comment: &str) -> String {
    if comment.is_empty() {
        format!("{code}\n")
    } else {
        format!("{code:<38} # {comment}\n")
    }
}

fn header(g: &Guess) -> String {
    format!(
        "# The image of {name}: a starter spec from `kiln init`. Its guesses come from\n\
         # the files in this directory; check each one. `kiln check` lists what to\n\
         # harden, `kiln build` writes the image. kiln's README describes every key\n\
         # (\"The spec\"); `kiln schema` prints a JSON Schema for editors.\n",
        name = g.name
    )
}

fn image(g: &Guess) -> String {
    let mut s = String::from("[image]\n");
    s += &line(
        &format!("name = \"{}\"", g.name),
        "default: this directory's name",
    );
    s += &line("# tag = \"${VERSION}\"", "default \"latest\"");
    s += &line(
        "base = \"scratch\"",
        "empty: the image holds what this spec puts in it",
    );
    s += &line(
        "# base = \"debian:12-slim@sha256:...\"",
        "or an image from a registry, pinned by digest",
    );
    s += &line("", "(skopeo inspect docker://debian:12-slim shows it)");
    s += &line(
        "format = \"docker\"",
        "podman honours healthchecks only in Docker format",
    );
    if let Some(e) = g.entry.as_ref().filter(|e| e.dynamic) {
        s += &format!(
            "# {} is dynamically linked, and scratch has no C library: build it\n\
             # statically (Rust: --target x86_64-unknown-linux-musl; Go: CGO_ENABLED=0),\n\
             # or use a base that has one, e.g. gcr.io/distroless/cc-debian12@sha256:...\n",
            e.path
        );
    }
    s
}

fn args() -> String {
    let mut s = String::new();
    s += &line("[args]", "${NAME} values; --build-arg NAME=VALUE overrides");
    s += &line("VERSION = \"dev\"", "");
    s += &line(
        "REVISION = \"unknown\"",
        "--build-arg REVISION=$(git rev-parse HEAD)",
    );
    s += &line(
        "CREATED = \"unknown\"",
        "--build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    );
    s
}

fn user() -> String {
    let mut s = String::new();
    s += &line(
        "[user]",
        "the app user, added to /etc/passwd and /etc/group",
    );
    s += &line("name = \"app\"", "its group is \"app\" too");
    s += &line(
        "uid = 10001",
        "not root, and clear of host users; gid = uid",
    );
    s += &line(
        "# home = \"/home/app\"",
        "default: none; shell: /sbin/nologin",
    );
    s
}

fn copy(g: &Guess) -> String {
    let Some(a) = &g.copy else {
        return format!(
            "# No build output found ({}/). Copy yours into the image:\n\
             # [[copy]]\n\
             # src = \"dist/\"                         # relative to this file\n\
             # dest = \"/app/\"                        # a trailing / copies into the directory\n\
             # owner = \"app:app\"\n",
            OUTPUT_DIRS.join("/, ")
        );
    };
    let mut s = format!("# {}\n[[copy]]\n", a.why);
    s += &line(&format!("src = \"{}\"", a.src), "relative to this file");
    let dest_note = if a.dest.ends_with('/') {
        "a trailing / copies into the directory"
    } else {
        ""
    };
    s += &line(&format!("dest = \"{}\"", a.dest), dest_note);
    s += &line("owner = \"app:app\"", "");
    if !a.exclude.is_empty() {
        let list: Vec<String> = a.exclude.iter().map(|e| format!("\"{e}\"")).collect();
        s += &format!("exclude = [{}]\n", list.join(", "));
    }
    s
}

fn config(g: &Guess) -> String {
    let mut s = String::from("[config]\n");
    match &g.entry {
        Some(e) => {
            s += &line(&format!("entrypoint = [\"{}\"]", e.path), &e.why);
            if !e.others.is_empty() {
                s += &format!("# also executable: {}\n", e.others.join(", "));
            }
        }
        None => s += &line("# entrypoint = [\"/app/server\"]", "the program to run"),
    }
    s += &line("workdir = \"/app\"", "");
    match &g.port {
        Some(p) => {
            s += &line(
                &format!("expose = [\"{}\"]", p.spec),
                &format!("from {}", p.from),
            );
            if p.set_env {
                s += &line(&format!("env = {{ PORT = \"{}\" }}", p.number), "");
            }
            if p.number < 1024 {
                s += "# Ports below 1024 need root to bind: listen on 8080 and map it at run time.\n";
            }
        }
        None => {
            s += &line(
                &format!("# expose = [\"{DEFAULT_PORT}/tcp\"]"),
                "the port the app listens on",
            );
        }
    }
    s += &line(
        "# user = \"10001:10001\"",
        "default: [user]'s uid:gid, numeric as checks want",
    );
    s
}

fn labels(g: &Guess) -> String {
    let mut s = String::new();
    s += &line(
        "[config.labels]",
        "OCI labels that registries and scanners show",
    );
    s += &format!("\"org.opencontainers.image.title\" = \"{}\"\n", g.name);
    s += &format!(
        "\"org.opencontainers.image.source\" = \"https://example.invalid/{}\"   # where the code lives\n",
        g.name
    );
    s += "\"org.opencontainers.image.version\" = \"${VERSION}\"\n";
    s += "\"org.opencontainers.image.revision\" = \"${REVISION}\"\n";
    s += "\"org.opencontainers.image.created\" = \"${CREATED}\"\n";
    s
}

/// Always commented: its program must be in the image, and scratch has none,
/// so an uncommented guess would be a KILN-HEALTHCHECK-NOT-IN-IMAGE error.
fn healthcheck(g: &Guess) -> String {
    let port = g.port.as_ref().map_or(DEFAULT_PORT, |p| p.number);
    format!(
        "# No healthcheck yet: its program must be in the image, and scratch has\n\
         # none. Give the app a probe of its own, or copy a static busybox to\n\
         # /bin/busybox, then:\n\
         # [healthcheck]\n\
         # test = [\"CMD\", \"/bin/busybox\", \"wget\", \"--spider\", \"-q\", \"http://127.0.0.1:{port}/health\"]\n\
         # interval = \"30s\"\n\
         # timeout = \"10s\"\n\
         # start-period = \"5s\"\n\
         # retries = 3\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_repository_names() {
        assert_eq!(repository_name("My App"), "my-app");
        assert_eq!(repository_name("web_v2.1"), "web_v2.1");
        assert_eq!(repository_name("--a__b--c.-d_"), "a__b--c-d");
        assert_eq!(repository_name("Ünïcode"), "n-code");
        assert_eq!(repository_name("..."), "app");
    }

    #[test]
    fn ports_are_read_from_expose_and_env_lines() {
        assert_eq!(expose_port("EXPOSE 8080").as_deref(), Some("8080/tcp"));
        assert_eq!(
            expose_port("expose $PORT 53/UDP").as_deref(),
            Some("53/udp")
        );
        assert_eq!(expose_port("EXPOSED 1"), None);
        assert_eq!(expose_port("EXPOSE 0 70000"), None);
        assert_eq!(env_port("PORT=3000").as_deref(), Some("3000/tcp"));
        assert_eq!(
            env_port("export PORT=\"3000\" # web").as_deref(),
            Some("3000/tcp")
        );
        assert_eq!(env_port("DB_PORT=5432"), None);
    }

    #[test]
    fn dynamic_elf_is_told_from_static() {
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("dynamic");
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.resize(0x238, 0);
        bytes.extend_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        fs::write(&dynamic, &bytes).unwrap();
        let fixed = dir.path().join("static");
        fs::write(&fixed, b"\x7fELF\x02\x01\x01\0\0\0\0").unwrap();
        let script = dir.path().join("script");
        fs::write(&script, b"#!/lib/ld-x\n").unwrap();
        assert!(dynamically_linked(&dynamic));
        assert!(!dynamically_linked(&fixed));
        assert!(!dynamically_linked(&script));
    }
}
