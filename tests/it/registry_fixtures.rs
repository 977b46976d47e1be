//! The test registries themselves, checked with skopeo: each takes a push
//! with the right password only, and counts the blobs uploaded to it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::registries::{Auth, upload_count};
use crate::common::*;

const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "openssl", "htpasswd"];

/// A one-layer OCI image made by umoci. Returns the skopeo source and how
/// many blobs a push uploads (layers + config).
fn small_image(dir: &Path) -> (String, usize) {
    let layout = dir.join("layout");
    let image = format!("{}:v1", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    let file = dir.join("hello.txt");
    std::fs::write(&file, "hello from kiln's test registry\n").unwrap();
    run(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(&file)
        .arg("/hello.txt"));
    let source = format!("oci:{image}");
    let manifest = run(Command::new("skopeo").args(["inspect", "--raw", &source]));
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    (source, manifest["layers"].as_array().unwrap().len() + 1)
}

/// skopeo with no auth file of the user's: only the flags given count.
fn skopeo(dir: &Path, args: &[&str]) -> Output {
    Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", dir.join("no-auth.json"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "skopeo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: Output) -> String {
    assert!(!out.status.success(), "skopeo should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tls_basic_registry_takes_the_right_password_only() {
    if !have(TOOLS) {
        return;
    }
    let reg = Registry::tls_basic("alice", "s3cret");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (source, blobs) = small_image(w);
    let certs = reg.ca_file.parent().unwrap().to_str().unwrap();
    let dest = format!("docker://{}/fixtures/tls:v1", reg.addr);

    let err = fails(skopeo(
        w,
        &[
            "copy",
            "--dest-creds",
            "alice:wrong",
            "--dest-cert-dir",
            certs,
            &source,
            &dest,
        ],
    ));
    assert!(err.contains("unauthorized"), "{err}");
    ok(skopeo(
        w,
        &[
            "copy",
            "--dest-creds",
            "alice:s3cret",
            "--dest-cert-dir",
            certs,
            &source,
            &dest,
        ],
    ));
    assert_eq!(upload_count(&reg.log), blobs);

    let pushed = ok(skopeo(
        w,
        &[
            "inspect",
            "--raw",
            "--creds",
            "alice:s3cret",
            "--cert-dir",
            certs,
            &dest,
        ],
    ));
    let local = ok(skopeo(w, &["inspect", "--raw", &source]));
    assert_eq!(pushed, local);
    fails(skopeo(
        w,
        &[
            "inspect",
            "--creds",
            "alice:wrong",
            "--cert-dir",
            certs,
            &dest,
        ],
    ));
    fails(skopeo(
        w,
        &["inspect", "--no-creds", "--cert-dir", certs, &dest],
    ));
    // Really TLS with our own CA: without it the cert is not trusted.
    let err = fails(skopeo(w, &["inspect", "--creds", "alice:s3cret", &dest]));
    assert!(err.contains("x509"), "{err}");
}

#[test]
fn token_registry_grants_push_with_the_password_and_pull_to_anyone() {
    if !have(TOOLS) {
        return;
    }
    let reg = Registry::token("bob", "hunter2");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (source, blobs) = small_image(w);
    let dest = format!("docker://{}/fixtures/token:v1", reg.addr);
    let plain = "--dest-tls-verify=false";

    fails(skopeo(
        w,
        &["copy", "--dest-no-creds", plain, &source, &dest],
    ));
    fails(skopeo(
        w,
        &["copy", "--dest-creds", "bob:wrong", plain, &source, &dest],
    ));
    assert_eq!(upload_count(&reg.log), 0);
    ok(skopeo(
        w,
        &["copy", "--dest-creds", "bob:hunter2", plain, &source, &dest],
    ));
    assert_eq!(upload_count(&reg.log), blobs);

    let local = ok(skopeo(w, &["inspect", "--raw", &source]));
    for creds in [
        ["--creds", "bob:hunter2"],
        ["--no-creds", "--tls-verify=false"],
    ] {
        let pushed = ok(skopeo(
            w,
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                creds[0],
                creds[1],
                &dest,
            ],
        ));
        assert_eq!(pushed, local, "with {creds:?}");
    }
    fails(skopeo(
        w,
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "bob:wrong",
            &dest,
        ],
    ));

    let requests = reg.requests();
    let asked = |auth: Auth, scope: &str| {
        requests
            .iter()
            .any(|r| r.auth == auth && r.scopes.iter().any(|s| s == scope))
    };
    let push = "repository:fixtures/token:pull,push";
    assert!(asked(Auth::Accepted, push), "{requests:#?}");
    assert!(asked(Auth::Anonymous, push), "{requests:#?}");
    assert!(asked(Auth::Rejected, push), "{requests:#?}");
    assert!(
        asked(Auth::Anonymous, "repository:fixtures/token:pull"),
        "{requests:#?}"
    );
    assert!(requests.iter().all(|r| r.target.starts_with("/token?")));
    assert!(reg.realm.ends_with("/token"));
}
