//! `kiln init`: a commented starter kiln.toml for a directory.
//!
//! It guesses what it can from the files there: the build output to copy,
//! the program to run, the port, the image name. What it cannot guess it
//! writes as a commented example. The result passes `kiln check` with no
//! error-level finding, so the first `kiln build` works as soon as the
//! build output exists.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

mod detect;
pub mod dockerfile;

use detect::*;

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
    check_dir(dir)?;
    let path = target_path(dir, force)?;
    let guess = Guess::of(dir);
    crate::tmp::write_atomic(&path, render(&guess).as_bytes())?;
    if guess.entry.is_none() {
        tracing::warn!(
            "no program to run was found: the spec has no entrypoint or cmd yet; set [config] entrypoint before building"
        );
    }
    Ok(path)
}

fn check_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::Usage {
            what: format!("`{}`", dir.display()),
            msg: "no such directory".into(),
            hint: Some("pass the directory that holds your project".into()),
        });
    }
    Ok(())
}

/// `dir/kiln.toml`, unless one is there and not to be replaced.
fn target_path(dir: &Path, force: bool) -> Result<PathBuf> {
    let path = dir.join("kiln.toml");
    // symlink_metadata: a dangling link named kiln.toml is still something to keep.
    if !force && fs::symlink_metadata(&path).is_ok() {
        return Err(Error::Usage {
            what: format!("`{}`", path.display()),
            msg: "already exists; kiln init leaves it as it is".into(),
            hint: Some("pass --force to replace it".into()),
        });
    }
    Ok(path)
}

/// What the directory's files say about the image.
struct Guess {
    name: String,
    copy: Option<Artifact>,
    /// The program to run, as a path in the image.
    entry: Option<Entry>,
    port: Option<Port>,
    /// The project's version and the file it came from.
    version: Option<(String, &'static str)>,
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
            version: project_version(dir),
        }
    }
}

fn render(g: &Guess) -> String {
    [
        header(g),
        image(g),
        args(g),
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

fn args(g: &Guess) -> String {
    let mut s = String::new();
    s += &line("[args]", "${NAME} values; --build-arg NAME=VALUE overrides");
    match &g.version {
        Some((v, from)) => s += &line(&format!("VERSION = {v:?}"), &format!("from {from}")),
        None => {
            s += &line(
                "VERSION = \"dev\"",
                "no Cargo.toml, package.json or pyproject.toml version found",
            )
        }
    }
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
    s += "# revision and created come from CI, not the spec:\n";
    s += "#   kiln build --label org.opencontainers.image.revision=$(git rev-parse HEAD) \\\n";
    s += "#     --label org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)\n";
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
mod tests;
