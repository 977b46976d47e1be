//! Registry auth as users have it set up: basic auth behind TLS from a
//! private CA, and bearer tokens from a token server. Secrets never show
//! in output, at any log level, and never end up in the image.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::registries::{Auth, upload_count};
use crate::common::*;

const USER: &str = "ci-bot";
const PASSWORD: &str = "s3cret-Pa55-do-not-print";

const SPEC: &str = r#"[image]
name = "app"
base = "BASE"
[user]
name = "app"
uid = 10001
[[file]]
path = "/app/hello.txt"
content = "hello\n"
owner = "app:app"
"#;

fn spec(work: &Path, base: &str) -> std::path::PathBuf {
    let path = work.join("kiln.toml");
    fs::write(&path, SPEC.replace("BASE", base)).unwrap();
    path
}

/// kiln with no credentials from this machine: an empty HOME and no auth files.
fn isolated(work: &Path) -> Command {
    let home = work.join("home");
    fs::create_dir_all(&home).unwrap();
    let mut cmd = kiln();
    cmd.env("HOME", &home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("KILN_REGISTRY_USERNAME")
        .env_remove("KILN_REGISTRY_PASSWORD")
        .env("RUST_LOG", "trace");
    cmd
}

fn assert_no_secret(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(PASSWORD),
            "the password was printed:\n{text}"
        );
    }
}

fn fails_with(out: &Output, needles: &[&str]) {
    assert_no_secret(out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in:\n{stderr}");
    }
}

fn grep_tree(dir: &Path, needle: &[u8]) -> bool {
    fs::read_dir(dir).unwrap().any(|e| {
        let p = e.unwrap().path();
        if p.is_dir() {
            grep_tree(&p, needle)
        } else {
            fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        }
    })
}

#[test]
fn basic_auth_over_tls_with_a_private_ca() {
    if !have(&["skopeo", "umoci", "docker-registry", "openssl", "htpasswd"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let registry = Registry::tls_basic(USER, PASSWORD);
    let target = format!("{}/team/app:1", registry.addr);
    let spec = spec(w, "scratch");
    let ca = registry.ca_file.to_str().unwrap();
    let layout = w.join("out");

    // No CA: the registry's certificate is not trusted, and kiln says how to fix it.
    let out = isolated(w)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .arg("build")
        .arg(&spec)
        .args(["--push", &target])
        .output()
        .unwrap();
    fails_with(&out, &["TLS certificate is not trusted", "--ca-file"]);

    // Wrong password: rejected, said once, the secret never printed.
    let out = isolated(w)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", "wrong-password")
        .arg("build")
        .arg(&spec)
        .args(["--push", &target, "--ca-file", ca])
        .output()
        .unwrap();
    fails_with(&out, &["rejected the credentials"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-password"));

    // No credentials at all.
    let out = isolated(w)
        .arg("build")
        .arg(&spec)
        .args(["--push", &target, "--ca-file", ca])
        .output()
        .unwrap();
    fails_with(&out, &["requires authentication", "docker login"]);

    // Right credentials from the environment (as CI passes them).
    let out = isolated(w)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .arg("build")
        .arg(&spec)
        .args(["--push", &target, "--ca-file", ca, "--oci"])
        .arg(&layout)
        .output()
        .unwrap();
    assert_no_secret(&out);
    check(&kiln(), &out);
    assert!(
        !grep_tree(&layout, PASSWORD.as_bytes()),
        "the password is in the image"
    );
    let printed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let cert_dir = registry.ca_file.parent().unwrap().to_str().unwrap();
    let raw = run(Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--cert-dir",
            cert_dir,
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ])
        .arg(format!("docker://{target}"))
        .env("REGISTRY_AUTH_FILE", w.join("none.json")));
    assert_eq!(
        format!("{target}@{}", kiln::oci::digest::sha256(raw.as_bytes())),
        printed
    );

    // Right credentials from docker's config.json.
    let docker = w.join("docker");
    fs::create_dir_all(&docker).unwrap();
    let auth = base64_encode(&format!("{USER}:{PASSWORD}"));
    fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"https://{}":{{"auth":"{auth}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let out = isolated(w)
        .env("DOCKER_CONFIG", &docker)
        .arg("build")
        .arg(&spec)
        .args([
            "--push",
            &format!("{}/team/app:2", registry.addr),
            "--ca-file",
            ca,
        ])
        .output()
        .unwrap();
    assert_no_secret(&out);
    check(&kiln(), &out);

    // From a credential helper named in credHelpers (a docker-credential-* program on PATH).
    let bin = w.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-kilntest");
    let asked = w.join("asked");
    let script = format!(
        "#!/bin/sh\nread server\necho \"$server\" > {}\necho '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n",
        asked.display()
    );
    fs::write(&helper, script).unwrap();
    run(Command::new("chmod").arg("+x").arg(&helper));
    fs::write(
        docker.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"kilntest"}}}}"#, registry.addr),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let target3 = format!("{}/team/app:3", registry.addr);
    let out = isolated(w)
        .env("DOCKER_CONFIG", &docker)
        .env("PATH", &path)
        .arg("build")
        .arg(&spec)
        .args(["--push", &target3, "--ca-file", ca])
        .output()
        .unwrap();
    assert_no_secret(&out);
    check(&kiln(), &out);
    assert_eq!(fs::read_to_string(&asked).unwrap().trim(), registry.addr);

    // From podman's auth.json named by REGISTRY_AUTH_FILE.
    let auth_file = w.join("auth.json");
    fs::write(
        &auth_file,
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.addr),
    )
    .unwrap();
    let target4 = format!("{}/team/app:4", registry.addr);
    let out = isolated(w)
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .arg("build")
        .arg(&spec)
        .args(["--push", &target4, "--ca-file", ca])
        .output()
        .unwrap();
    assert_no_secret(&out);
    check(&kiln(), &out);
}

#[test]
fn bearer_tokens_with_the_mount_source_in_scope() {
    if !have(&["skopeo", "umoci", "docker-registry", "openssl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let registry = Registry::token(USER, PASSWORD);
    let image = base_layout(w);
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{USER}:{PASSWORD}"),
            &image,
        ])
        .arg(format!(
            "docker://{}/library/python:3.13-slim",
            registry.addr
        ))
        .env("REGISTRY_AUTH_FILE", w.join("none.json")));
    let spec = spec(w, "python:3.13-slim");
    let mirror = format!("docker.io={}", registry.addr);
    let target = format!("{}/team/app:1", registry.addr);
    let cache = w.join("cache");
    let base_args = [
        "--registry-mirror",
        &mirror,
        "--cache-dir",
        cache.to_str().unwrap(),
    ];

    // Anonymous: the pull is allowed, the push is not.
    let out = isolated(w)
        .arg("build")
        .arg(&spec)
        .args(base_args)
        .args(["--push", &target])
        .output()
        .unwrap();
    fails_with(&out, &["team/app", "requires authentication"]);

    let out = isolated(w)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", "nope")
        .arg("build")
        .arg(&spec)
        .args(base_args)
        .args(["--push", &target])
        .output()
        .unwrap();
    fails_with(&out, &["rejected the credentials"]);

    let uploads = upload_count(&registry.log);
    let out = isolated(w)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .arg("build")
        .arg(&spec)
        .args(base_args)
        .args(["--push", &target])
        .output()
        .unwrap();
    assert_no_secret(&out);
    check(&kiln(), &out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 mounted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The accounts+file layer and the config; the base layer was mounted.
    assert_eq!(upload_count(&registry.log) - uploads, 2);
    let asked: Vec<_> = registry
        .requests()
        .into_iter()
        .filter(|r| r.auth == Auth::Accepted)
        .collect();
    assert!(
        asked.iter().any(|r| r
            .scopes
            .contains(&"repository:team/app:pull,push".to_string())
            && r.scopes
                .contains(&"repository:library/python:pull".to_string())),
        "no token asked for the mount source: {asked:?}"
    );
    let printed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{target}"))
        .env("REGISTRY_AUTH_FILE", w.join("none.json")));
    assert_eq!(
        format!("{target}@{}", kiln::oci::digest::sha256(raw.as_bytes())),
        printed
    );
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A one-thread HTTP server on 127.0.0.1 that answers with `respond` and
/// records each request's head (request line and headers).
fn tiny_server(
    respond: impl Fn(&str) -> String + Send + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let reply = respond(&head);
            log.lock().unwrap().push(head);
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (addr, seen)
}

#[test]
fn credentials_do_not_follow_a_redirect_to_another_host() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // The "blob storage" a registry redirects to: it must never see the credentials.
    let (storage, storage_seen) = tiny_server(|_| {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    });
    let redirect = format!("http://{storage}/bucket/manifest?sig=abc");
    let (registry, registry_seen) = tiny_server(move |head| {
        if !head.to_ascii_lowercase().contains("authorization: basic") {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        } else {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {redirect}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
    });
    let spec = spec(w, "python:3.13-slim");
    let out = isolated(w)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .arg("build")
        .arg(&spec)
        .args([
            "--registry-mirror",
            &format!("docker.io={registry}"),
            "--push",
            &format!("{registry}/team/app:1"),
        ])
        .args(["--cache-dir", w.join("cache").to_str().unwrap()])
        .output()
        .unwrap();
    assert_no_secret(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let encoded = base64_encode(&format!("{USER}:{PASSWORD}"));
    assert!(
        registry_seen
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.contains(&encoded)),
        "the registry itself never got the credentials"
    );
    let storage_seen = storage_seen.lock().unwrap();
    assert!(!storage_seen.is_empty(), "the redirect was not followed");
    for head in storage_seen.iter() {
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "credentials sent to another host:\n{head}"
        );
        assert!(!head.contains(&encoded));
    }
}
