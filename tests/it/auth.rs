//! Registry auth as users have it set up: basic auth behind TLS from a
//! private CA, bearer tokens from a token server, and identity tokens
//! (OAuth2 refresh tokens, as ACR issues) exchanged by POST. Secrets never
//! show in output, at any log level, and never end up in the image.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::registries::{Auth, TokenRegistry, TokenRequest, upload_count};
use crate::common::*;

const USER: &str = "ci-bot";
const PASSWORD: &str = "s3cret-Pa55-do-not-print";
/// An identity token with characters a form body must escape.
const IDENTITY_TOKEN: &str = "idtok+Refresh/do-not-print=";

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
        assert!(
            !text.contains(IDENTITY_TOKEN) && !text.contains("idtok"),
            "the identity token was printed:\n{text}"
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
        "--registry-mirror-only",
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
            "--registry-mirror-only",
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

/// A token registry holding the base image `library/python:3.13-slim`, put
/// there by skopeo with the password.
fn seeded(w: &Path, registry: &TokenRegistry) -> String {
    let image = base_layout(w);
    let base = format!("{}/library/python:3.13-slim", registry.addr);
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{USER}:{PASSWORD}"),
            &image,
        ])
        .arg(format!("docker://{base}"))
        .env("REGISTRY_AUTH_FILE", w.join("none.json")));
    base
}

/// A DOCKER_CONFIG directory named `name` whose config.json is `json`.
fn docker_config(w: &Path, name: &str, json: &str) -> std::path::PathBuf {
    let dir = w.join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.json"), json).unwrap();
    dir
}

/// config.json as `az acr login` writes it: a zero-UUID user and an identity token.
fn identity_config(
    w: &Path,
    name: &str,
    registry: &str,
    user: &str,
    token: &str,
) -> std::path::PathBuf {
    let auth = base64_encode(&format!("{user}:"));
    docker_config(
        w,
        name,
        &format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}","identitytoken":"{token}"}}}}}}"#),
    )
}

/// `kiln build SPEC --push TARGET` with the credentials in `config`.
fn push_with(w: &Path, config: &Path, spec: &Path, target: &str, cache: &str) -> Output {
    isolated(w)
        .env("DOCKER_CONFIG", config)
        .arg("build")
        .arg(spec)
        .args(["--push", target, "--cache-dir", cache])
        .output()
        .unwrap()
}

/// The token requests made since `before` of them had been.
fn since(registry: &TokenRegistry, before: usize) -> Vec<TokenRequest> {
    registry.requests()[before..].to_vec()
}

/// The image skopeo sees at `target` is the one kiln printed.
fn served_as_printed(w: &Path, target: &str, out: &Output) {
    let printed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
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

/// Every request a refresh-token grant with the right token, and no Basic anywhere.
fn all_oauth_grants(requests: &[TokenRequest]) {
    assert!(!requests.is_empty(), "no token requests");
    for r in requests {
        assert_eq!(r.method, "POST", "{r:?}");
        assert_eq!(r.grant_type.as_deref(), Some("refresh_token"), "{r:?}");
        assert!(r.refresh_token && !r.basic, "{r:?}");
        assert_eq!((r.auth, r.status), (Auth::Accepted, 200), "{r:?}");
    }
}

#[test]
fn identity_tokens_are_exchanged_by_oauth2_post() {
    if !have(&["skopeo", "umoci", "docker-registry", "openssl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let registry = Registry::token_oauth(USER, PASSWORD, IDENTITY_TOKEN, true);
    let base = seeded(w, &registry);
    let spec = spec(w, &base);
    let cache = w.join("cache");
    let cache = cache.to_str().unwrap();
    let zero = "00000000-0000-0000-0000-000000000000";

    // The base pulled and the image pushed with only an identity token.
    let config = identity_config(w, "acr", &registry.addr, zero, IDENTITY_TOKEN);
    let target = format!("{}/team/app:1", registry.addr);
    let before = registry.requests().len();
    let out = push_with(w, &config, &spec, &target, cache);
    assert_no_secret(&out);
    check(&kiln(), &out);
    let asked = since(&registry, before);
    served_as_printed(w, &target, &out);
    all_oauth_grants(&asked);
    let pull = "repository:library/python:pull".to_string();
    let push = "repository:team/app:pull,push".to_string();
    assert!(
        asked.iter().any(|r| r.scopes == [pull.clone()]),
        "no grant for the base pull: {asked:#?}"
    );
    // The mount source in the same grant as the push, both in one `scope`.
    assert!(
        asked
            .iter()
            .any(|r| r.scopes.contains(&push) && r.scopes.contains(&pull)),
        "no grant with the mount source: {asked:#?}"
    );

    // A credential helper answering for user `<token>` gives an identity token too.
    let bin = w.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-kilntoken");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"<token>\",\"Secret\":\"{IDENTITY_TOKEN}\"}}'\n"
        ),
    )
    .unwrap();
    run(Command::new("chmod").arg("+x").arg(&helper));
    let helped = docker_config(
        w,
        "helper",
        &format!(r#"{{"credHelpers":{{"{}":"kilntoken"}}}}"#, registry.addr),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let target2 = format!("{}/team/app:2", registry.addr);
    let before = registry.requests().len();
    let out = isolated(w)
        .env("DOCKER_CONFIG", &helped)
        .env("PATH", &path)
        .arg("build")
        .arg(&spec)
        .args(["--push", &target2, "--cache-dir", cache])
        .output()
        .unwrap();
    assert_no_secret(&out);
    check(&kiln(), &out);
    all_oauth_grants(&since(&registry, before));
    served_as_printed(w, &target2, &out);

    // A user name and password still go by GET with Basic, though the server takes POSTs.
    let target3 = format!("{}/team/app:3", registry.addr);
    let before = registry.requests().len();
    let out = isolated(w)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .arg("build")
        .arg(&spec)
        .args(["--push", &target3, "--cache-dir", cache])
        .output()
        .unwrap();
    assert_no_secret(&out);
    check(&kiln(), &out);
    let asked = since(&registry, before);
    assert!(!asked.is_empty());
    for r in &asked {
        assert_eq!(r.method, "GET", "{r:?}");
        assert!(r.basic && r.auth == Auth::Accepted, "{r:?}");
    }

    // A wrong identity token: refused, the registry named, the token never printed.
    let wrong = "idtok-wrong-do-not-print";
    let config = identity_config(w, "wrong", &registry.addr, zero, wrong);
    let fresh = w.join("fresh-cache");
    let before = registry.requests().len();
    let out = push_with(w, &config, &spec, &target, fresh.to_str().unwrap());
    fails_with(
        &out,
        &[
            &registry.addr,
            "rejected the identity token",
            "log in again",
        ],
    );
    let asked = since(&registry, before);
    assert!(
        asked.iter().all(|r| r.method == "POST" && r.status == 400),
        "{asked:#?}"
    );
}

#[test]
fn a_token_service_without_oauth2_gets_the_identity_token_by_get() {
    if !have(&["skopeo", "umoci", "docker-registry", "openssl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // POST answered 405; GET takes the identity token as the password.
    let registry = Registry::token_oauth(USER, PASSWORD, IDENTITY_TOKEN, false);
    let base = seeded(w, &registry);
    let spec = spec(w, &base);
    let config = identity_config(w, "docker", &registry.addr, USER, IDENTITY_TOKEN);
    let target = format!("{}/team/app:1", registry.addr);
    let before = registry.requests().len();
    let out = push_with(
        w,
        &config,
        &spec,
        &target,
        w.join("cache").to_str().unwrap(),
    );
    assert_no_secret(&out);
    check(&kiln(), &out);
    let asked = since(&registry, before);
    served_as_printed(w, &target, &out);
    let (posts, gets): (Vec<_>, Vec<_>) = asked.iter().partition(|r| r.method == "POST");
    assert_eq!(
        asked[0].method, "POST",
        "the grant is tried first: {asked:#?}"
    );
    for r in &posts {
        assert_eq!(r.grant_type.as_deref(), Some("refresh_token"), "{r:?}");
        assert_eq!(r.status, 405, "{r:?}");
    }
    assert!(!gets.is_empty(), "no fallback GET: {asked:#?}");
    for r in &gets {
        assert!(r.basic && r.auth == Auth::Accepted, "{r:?}");
    }
}

#[test]
fn an_identity_token_is_not_sent_as_a_basic_password() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (registry, seen) = tiny_server(|_| {
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    });
    let config = identity_config(w, "docker", &registry, USER, IDENTITY_TOKEN);
    let spec = spec(w, "scratch");
    let target = format!("{registry}/team/app:1");
    let out = push_with(
        w,
        &config,
        &spec,
        &target,
        w.join("cache").to_str().unwrap(),
    );
    fails_with(
        &out,
        &[&registry, "identity token", "user name and password"],
    );
    for head in seen.lock().unwrap().iter() {
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "credentials sent on a Basic challenge:\n{head}"
        );
    }
}

#[test]
fn an_identity_token_does_not_follow_a_token_service_redirect() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // Where a token service redirects: it must never see the token.
    let (elsewhere, elsewhere_seen) = tiny_server(|_| {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
    });
    let (realm, realm_seen) = tiny_server(move |_| {
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{elsewhere}/token\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let (registry, _) = tiny_server(move |_| {
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{realm}/token\",service=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let config = identity_config(w, "docker", &registry, USER, IDENTITY_TOKEN);
    let spec = spec(w, "scratch");
    let target = format!("{registry}/team/app:1");
    let out = push_with(
        w,
        &config,
        &spec,
        &target,
        w.join("cache").to_str().unwrap(),
    );
    fails_with(&out, &[&registry, "redirected"]);
    assert!(
        realm_seen
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.starts_with("POST /token")),
        "the grant never reached the realm"
    );
    assert!(
        elsewhere_seen.lock().unwrap().is_empty(),
        "the grant followed the redirect: {:?}",
        elsewhere_seen.lock().unwrap()
    );
}
