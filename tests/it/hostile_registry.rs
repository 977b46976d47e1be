//! Registries that try to misuse kiln: token realms that lead to internal
//! addresses, bodies that trickle or never end, credentials written into a
//! reference. Names resolve through a private /etc/hosts inside a network
//! namespace the test creates; nothing leaves the machine.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::fake::{Fake, Reply};
use crate::common::netns::Netns;
use crate::common::*;

const USER: &str = "ci-bot";
const PASSWORD: &str = "s3cret-realm-canary";

fn scratch_spec(dir: &Path) -> std::path::PathBuf {
    write_spec(
        dir,
        "[image]\nname = \"app\"\n[[file]]\npath = \"/hello.txt\"\ncontent = \"hi\\n\"\n[policy]\nenforce = false\n",
    )
}

fn base_spec(dir: &Path, base: &str) -> std::path::PathBuf {
    write_spec(
        dir,
        &format!(
            "[image]\nname = \"app\"\nbase = \"{base}\"\n[[file]]\npath = \"/hello.txt\"\ncontent = \"hi\\n\"\n[policy]\nenforce = false\n"
        ),
    )
}

/// kiln's environment with no credentials of this machine's but ours.
fn isolate(cmd: &mut Command, work: &Path) {
    let home = work.join("home");
    fs::create_dir_all(&home).unwrap();
    cmd.env("HOME", &home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SOURCE_DATE_EPOCH")
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .env("KILN_RETRY_DELAY_MS", "50")
        .env("RUST_LOG", "debug");
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn basic_credential() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
}

/// A registry that answers every request with a bearer challenge naming `realm`.
fn challenging_registry(bind: &str, realm: String) -> Fake {
    Fake::start(bind, move |_, _| {
        Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header(
            "WWW-Authenticate",
            &format!("Bearer realm=\"{realm}\",service=\"fake\""),
        )
    })
}

/// A token server that hands out a token to anyone: the canary.
fn sink(bind: &str) -> Fake {
    Fake::start(bind, |_, _| Reply::new(200, r#"{"token":"t"}"#))
}

/// A push to a registry on a public-looking address whose token realm names
/// a host that resolves (by the namespace's /etc/hosts) to an internal
/// address. The canary token server listening there must see nothing.
#[test]
fn realms_resolving_to_internal_addresses_get_no_request() {
    const REGISTRY_IP: &str = "203.0.113.10";
    // (realm host, the address it resolves to, where the canary listens, kind named)
    let cases = [
        (
            "metadata.test",
            "169.254.169.254",
            "169.254.169.254",
            "cloud metadata",
        ),
        (
            "metadata6.test",
            "fd00:ec2::254",
            "[fd00:ec2::254]",
            "cloud metadata",
        ),
        ("internal.test", "10.20.30.40", "10.20.30.40", "private"),
        ("cgnat.test", "100.64.1.2", "100.64.1.2", "shared (CGNAT)"),
        ("mapped.test", "::ffff:127.0.0.1", "127.0.0.1", "loopback"),
        ("loop.test", "127.0.0.1", "127.0.0.1", "loopback"),
        ("localhost", "127.0.0.1", "127.0.0.1", "loopback"),
    ];
    let mut hosts: Vec<(&str, &str)> = cases
        .iter()
        .filter(|c| c.0 != "localhost")
        .map(|c| (c.1, c.0))
        .collect();
    hosts.push((REGISTRY_IP, "registry.test"));
    hosts.push(("198.51.100.7", "auth.test"));
    let Some(ns) = Netns::new(
        &[
            REGISTRY_IP,
            "198.51.100.7",
            "169.254.169.254",
            "fd00:ec2::254",
            "10.20.30.40",
            "100.64.1.2",
        ],
        &hosts,
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let spec = scratch_spec(w);
    let push = |registry: &Fake| {
        let host = format!("registry.test:{}", registry.port());
        let mut cmd = ns.command(Path::new(env!("CARGO_BIN_EXE_kiln")));
        isolate(&mut cmd, w);
        cmd.arg("build")
            .arg(&spec)
            .args(["--push", &format!("{host}/team/app:1")])
            .args(["--insecure-registry", &host, "--cache-dir"])
            .arg(w.join("cache"))
            .output()
            .unwrap()
    };

    for (name, ip, listen, kind) in cases {
        let canary = ns.run(move || sink(&format!("{listen}:0")));
        let realm = format!("http://{name}:{}/token", canary.port());
        let registry = ns.run(move || challenging_registry(&format!("{REGISTRY_IP}:0"), realm));
        let out = push(&registry);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {all}");
        let said = format!("token realm host `{name}` resolves to {ip}, a {kind} address");
        assert!(all.contains(&said), "{name}: expected {said:?} in:\n{all}");
        assert!(!all.contains(PASSWORD), "{name}: the password was printed");
        assert_eq!(
            canary.connections(),
            0,
            "{name}: the canary at {ip} was contacted: {:?}",
            canary.heads()
        );
        assert!(
            !registry.heads().is_empty(),
            "{name}: kiln never asked the registry"
        );
    }

    // The control: a realm on a public address is asked, with the credentials,
    // so the canaries above would have seen them had kiln gone there.
    let canary = ns.run(|| sink("198.51.100.7:0"));
    let realm = format!("http://auth.test:{}/token", canary.port());
    let registry = ns.run(move || challenging_registry(&format!("{REGISTRY_IP}:0"), realm));
    let out = push(&registry);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let heads = canary.heads();
    assert!(
        heads.iter().any(|h| h.contains(&basic_credential())),
        "the public realm did not get the credentials: {heads:?}"
    );
}

/// A realm on loopback is fine for a registry on loopback (the usual local
/// setup), whether named by address or by name.
#[test]
fn a_loopback_realm_serves_a_loopback_registry() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let canary = sink("127.0.0.1:0");
    let registry = challenging_registry(
        "127.0.0.1:0",
        format!("http://localhost:{}/token", canary.port()),
    );
    let mut cmd = kiln();
    isolate(&mut cmd, w);
    let out = cmd
        .arg("build")
        .arg(scratch_spec(w))
        .args(["--push", &format!("{}/team/app:1", registry.addr)])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // The fake registry rejects every token: what matters is that kiln asked.
    assert!(all.contains("rejected the credentials"), "{all}");
    assert!(
        canary
            .heads()
            .iter()
            .any(|h| h.contains(&basic_credential())),
        "{:?}",
        canary.heads()
    );
}

/// A config, and a manifest naming it (and no layers).
fn image() -> (Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#.to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": kiln::oci::digest::sha256(&config),
            "size": config.len(),
        },
        "layers": [],
    }))
    .unwrap();
    (manifest, config)
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Build on a base from `registry`; returns the output and how long it took.
fn pull_base(work: &Path, registry: &Fake, stall_secs: &str) -> (Output, Duration) {
    let spec = base_spec(work, &format!("{}/base:1", registry.addr));
    let mut cmd = kiln();
    isolate(&mut cmd, work);
    cmd.env("KILN_STALL_SECS", stall_secs)
        .arg("build")
        .arg(spec)
        .arg("--cache-dir")
        .arg(work.join("cache"));
    let start = Instant::now();
    let out = cmd.output().unwrap();
    (out, start.elapsed())
}

/// Files in the cache's blob store.
fn cached_blobs(work: &Path) -> Vec<String> {
    let dir = work.join("cache/blobs/sha256");
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn hex(digest: &str) -> String {
    digest.trim_start_matches("sha256:").to_string()
}

/// One byte every 2 s: reqwest's read timeout never fires, the progress
/// guard does. Each try fails within the window, and is retried 3 times.
#[test]
fn a_trickled_manifest_fails_within_the_stall_window() {
    let work = tempfile::tempdir().unwrap();
    let (manifest, _) = image();
    let registry = Fake::start("127.0.0.1:0", move |_, path| {
        if path.contains("/manifests/") {
            Reply::new(200, manifest.clone())
                .header("Content-Type", MANIFEST_TYPE)
                .trickle(Duration::from_secs(2))
        } else {
            Reply::new(200, "{}")
        }
    });
    let (out, took) = pull_base(work.path(), &registry, "2");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&registry.addr) && all.contains("reading the manifest stalled"),
        "{all}"
    );
    let gets = registry
        .heads()
        .iter()
        .filter(|h| h.starts_with("GET /v2/base/manifests/1 "))
        .count();
    assert_eq!(gets, 4, "one try and three retries: {:?}", registry.heads());
    // Four windows of 2 s plus short retry delays, not the bodies' 4 minutes.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        cached_blobs(work.path()).is_empty(),
        "{:?}",
        cached_blobs(work.path())
    );
}

#[test]
fn a_trickled_blob_fails_and_leaves_nothing_in_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = image();
    let manifest_digest = kiln::oci::digest::sha256(&manifest);
    let config_digest = kiln::oci::digest::sha256(&config);
    let m = manifest.clone();
    let registry = Fake::start("127.0.0.1:0", move |_, path| {
        if path.contains("/manifests/") {
            Reply::new(200, m.clone()).header("Content-Type", MANIFEST_TYPE)
        } else if path.contains("/blobs/") {
            Reply::new(200, config.clone()).trickle(Duration::from_secs(2))
        } else {
            Reply::new(200, "{}")
        }
    });
    let (out, took) = pull_base(work.path(), &registry, "2");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("reading the blob stalled"), "{all}");
    assert!(
        all.contains(&format!("{}/base@{config_digest}", registry.addr)),
        "{all}"
    );
    let gets = registry
        .heads()
        .iter()
        .filter(|h| h.starts_with("GET /v2/base/blobs/"))
        .count();
    assert_eq!(gets, 4, "{:?}", registry.heads());
    assert!(took < Duration::from_secs(20), "took {took:?}");
    // The manifest (whole and checked) is cached; no part of the config is.
    assert_eq!(cached_blobs(work.path()), vec![hex(&manifest_digest)]);
}

#[test]
fn a_blob_with_the_wrong_digest_is_not_cached() {
    let work = tempfile::tempdir().unwrap();
    let (manifest, config) = image();
    let manifest_digest = kiln::oci::digest::sha256(&manifest);
    let forged: Vec<u8> = config.iter().map(|b| b ^ 1).collect();
    let registry = Fake::start("127.0.0.1:0", move |_, path| {
        if path.contains("/manifests/") {
            Reply::new(200, manifest.clone()).header("Content-Type", MANIFEST_TYPE)
        } else if path.contains("/blobs/") {
            Reply::new(200, forged.clone())
        } else {
            Reply::new(200, "{}")
        }
    });
    let (out, _) = pull_base(work.path(), &registry, "30");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("not the"), "{all}");
    assert_eq!(cached_blobs(work.path()), vec![hex(&manifest_digest)]);
}

/// A manifest of 16 MiB + 1 byte, sent without a Content-Length so that
/// only counting what arrives can catch it.
#[test]
fn an_oversized_manifest_is_refused_and_not_cached() {
    let work = tempfile::tempdir().unwrap();
    let mut huge = b"{\"schemaVersion\":2,\"pad\":\"".to_vec();
    huge.resize((16 << 20) - 1, b'a');
    huge.extend_from_slice(b"\"}");
    let registry = Fake::start("127.0.0.1:0", move |_, path| {
        if path.contains("/manifests/") {
            Reply::new(200, huge.clone())
                .header("Content-Type", MANIFEST_TYPE)
                .close_delimited()
        } else {
            Reply::new(200, "{}")
        }
    });
    let (out, _) = pull_base(work.path(), &registry, "30");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("the manifest is larger than 16 MiB; kiln refuses it"),
        "{all}"
    );
    assert!(cached_blobs(work.path()).is_empty());
}

/// A manifest may name a config of any size; kiln fetches none over 4 MiB.
#[test]
fn an_oversized_config_is_refused_before_it_is_fetched() {
    let work = tempfile::tempdir().unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", "ab".repeat(32)),
            "size": 5 << 20,
        },
        "layers": [],
    }))
    .unwrap();
    let registry = Fake::start("127.0.0.1:0", move |_, path| {
        if path.contains("/manifests/") {
            Reply::new(200, manifest.clone()).header("Content-Type", MANIFEST_TYPE)
        } else {
            Reply::new(200, "{}")
        }
    });
    let (out, _) = pull_base(work.path(), &registry, "30");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("over kiln's limit of 4 MiB"), "{all}");
    let blob_gets = registry
        .heads()
        .iter()
        .filter(|h| h.contains("/blobs/"))
        .count();
    assert_eq!(blob_gets, 0, "{:?}", registry.heads());
}

#[test]
fn an_oversized_token_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let token = Fake::start("127.0.0.1:0", |_, _| {
        let big = format!("{{\"token\":\"{}\"}}", "t".repeat(70 << 10));
        Reply::new(200, big)
    });
    let registry = challenging_registry("127.0.0.1:0", format!("http://{}/token", token.addr));
    let (out, _) = pull_base(work.path(), &registry, "30");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("the token reply is larger than 64 KiB; kiln refuses it"),
        "{all}"
    );
}

/// Credentials written into a reference are refused (exit 2) wherever a
/// reference is read, and the password is never echoed.
#[test]
fn credentials_in_a_reference_are_refused_unprinted() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let with_secret = format!("user:secret@127.0.0.1:{port}/x");
    let spec = scratch_spec(w);
    let runs: Vec<(&str, Output)> = vec![
        (
            "--push",
            kiln()
                .arg("build")
                .arg(&spec)
                .args(["--push", &with_secret])
                .output()
                .unwrap(),
        ),
        (
            "--cache-repo",
            kiln()
                .arg("build")
                .arg(&spec)
                .args(["--cache-repo", &with_secret])
                .output()
                .unwrap(),
        ),
        (
            "base",
            kiln()
                .arg("build")
                .arg(base_spec(&w.join("b"), &format!("{with_secret}:1")))
                .output()
                .unwrap(),
        ),
        (
            "[[copy]] image",
            kiln()
                .arg("build")
                .arg(write_spec(
                    &w.join("c"),
                    &format!(
                        "[image]\nname = \"app\"\n[[copy]]\nimage = \"{with_secret}:1\"\nsrc = \"/a\"\ndest = \"/a\"\n[policy]\nenforce = false\n"
                    ),
                ))
                .output()
                .unwrap(),
        ),
        (
            "inspect",
            kiln().args(["inspect", &with_secret]).output().unwrap(),
        ),
        (
            "index",
            kiln()
                .args([
                    "index",
                    &format!("127.0.0.1:{port}/x:1"),
                    "--add",
                    &with_secret,
                ])
                .output()
                .unwrap(),
        ),
    ];
    for (place, out) in runs {
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{place}: {all}");
        assert!(
            !all.contains("secret"),
            "{place} printed the password:\n{all}"
        );
        assert!(all.contains("credentials"), "{place}: {all}");
    }
    // Nothing was sent anywhere: the refusal comes before any connection.
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err());
}

/// An upload Location on another host (here `localhost` for a registry
/// reached as 127.0.0.1) is refused before anything is sent there.
#[test]
fn an_upload_location_on_another_host_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let canary = Fake::start("127.0.0.1:0", |_, _| Reply::new(201, ""));
    let location = format!("http://localhost:{}/upload", canary.port());
    let registry = Fake::start("127.0.0.1:0", move |method, path| match method {
        "HEAD" if path.contains("/blobs/") => Reply::new(404, ""),
        "POST" => Reply::new(202, "").header("Location", &location),
        _ => Reply::new(200, "{}"),
    });
    let mut cmd = kiln();
    isolate(&mut cmd, w);
    let out = cmd
        .arg("build")
        .arg(scratch_spec(w))
        .args(["--push", &format!("{}/team/app:1", registry.addr)])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("the registry sent the upload to another host, `localhost`"),
        "{all}"
    );
    assert_eq!(canary.connections(), 0, "{:?}", canary.heads());
}
