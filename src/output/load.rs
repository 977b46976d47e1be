//! `--load`: the image straight into the local engine, as `docker buildx
//! --load` does, with no archive on disk: the docker-archive is streamed
//! into `podman load` (or `docker load` where a daemon answers).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::assemble::Assembled;
use crate::error::{Error, Result};

/// Load `assembled` into podman, else docker; returns the engine's name.
pub fn load(assembled: &Assembled) -> Result<&'static str> {
    let engine = engine().ok_or_else(|| Error::Usage {
        what: "--load".into(),
        msg: "found neither podman nor a docker daemon".into(),
        hint: Some(
            "install podman (or start docker), or write a file with --tar and load it elsewhere"
                .into(),
        ),
    })?;
    let failed = |msg: String| Error::Output {
        path: Path::new(engine).to_path_buf(),
        msg,
    };
    let mut child = Command::new(engine)
        .args(["load", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start `{engine} load`: {e}")))?;
    let stdin = child.stdin.take().expect("piped above");
    let written = super::archive::write_to(assembled, stdin, Path::new(engine));
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("`{engine} load` did not finish: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = crate::shown::Shown(said.trim()).to_string();
        return Err(failed(format!("`{engine} load` failed: {said}")));
    }
    written?;
    Ok(engine)
}

/// podman if it is on PATH; else docker if its daemon answers.
fn engine() -> Option<&'static str> {
    let answers = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if answers("podman", &["--version"]) {
        Some("podman")
    } else if answers("docker", &["info"]) {
        Some("docker")
    } else {
        None
    }
}
