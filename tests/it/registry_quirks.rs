//! The registries people use, as they behave: Docker Hub (its API on
//! registry-1.docker.io, tokens from auth.docker.io, docker.io itself a web
//! site), reached by name inside a private network namespace; and ECR's
//! immutable tags, played by a proxy in front of a real registry.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::netns::Netns;
use crate::common::proxy::{Fault, Proxy};
use crate::common::registries::{Auth, DOCKER_HUB_HOSTS, DockerHub};
use crate::common::*;

const USER: &str = "hub-user";
const PASSWORD: &str = "hub-Pa55-not-printed";

fn scratch_spec(dir: &Path) -> std::path::PathBuf {
    write_spec(
        dir,
        "[image]\nname = \"app\"\n[[file]]\npath = \"/hello.txt\"\ncontent = \"hi\\n\"\n[policy]\nenforce = false\n",
    )
}

fn base_spec(dir: &Path, base: &str) -> std::path::PathBuf {
    fs::create_dir_all(dir).unwrap();
    write_spec(
        dir,
        &format!(
            "[image]\nname = \"app\"\nbase = \"{base}\"\n[[file]]\npath = \"/app.txt\"\ncontent = \"app\\n\"\n[policy]\nenforce = false\n"
        ),
    )
}

/// kiln inside the namespace, with no credentials from this machine.
fn kiln_in(ns: &Netns, work: &Path) -> Command {
    let home = work.join("home");
    fs::create_dir_all(&home).unwrap();
    let mut cmd = ns.command(Path::new(env!("CARGO_BIN_EXE_kiln")));
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .env_remove("RUST_LOG")
        .env("KILN_RETRY_DELAY_MS", "50")
        .env("HOME", &home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("KILN_REGISTRY_USERNAME")
        .env_remove("KILN_REGISTRY_PASSWORD");
    cmd
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn succeeded(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
}

/// Registry access-log lines (`"METHOD /v2/... HTTP/x" STATUS`) for
/// manifests of `repo` that were answered (not the 401 that asks for a token).
fn manifest_requests<'a>(lines: &'a [String], method: &str, repo: &str) -> Vec<&'a String> {
    let request = format!("\"{method} /v2/{repo}/manifests/");
    lines
        .iter()
        .filter(|l| l.contains(&request) && !l.contains("\" 401 "))
        .collect()
}

#[test]
fn docker_hub_short_names_pull_through_registry_1_with_a_token() {
    if !have(&["docker-registry", "openssl"]) {
        return;
    }
    let Some(ns) = Netns::new(&[], &DOCKER_HUB_HOSTS) else {
        return;
    };
    let hub = ns.run(|| DockerHub::start(USER, PASSWORD, &["library/python"]));
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let ca = hub.ca_file.to_str().unwrap().to_string();

    // The base goes up under its Docker Hub name, with docker's credentials:
    // pushes to docker.io/... go to registry-1.docker.io too.
    let out = kiln_in(&ns, w)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .arg("build")
        .arg(scratch_spec(&w.join("base")))
        .args(["--push", "docker.io/library/python:3.13-slim"])
        .args(["--ca-file", &ca, "--cache-dir"])
        .arg(w.join("push-cache"))
        .output()
        .unwrap();
    succeeded(&out);
    assert!(!text(&out).contains(PASSWORD));
    let pushed = hub.log_lines();
    assert_eq!(
        manifest_requests(&pushed, "PUT", "library/python").len(),
        1,
        "{pushed:#?}"
    );

    // A short name, no mirror, anonymous: the token is for library/python:pull.
    let spec = base_spec(&w.join("app"), "python:3.13-slim");
    let cache = w.join("cache");
    let build = || {
        let out = kiln_in(&ns, w)
            .arg("build")
            .arg(&spec)
            .args(["--ca-file", &ca, "--cache-dir"])
            .arg(&cache)
            .output()
            .unwrap();
        succeeded(&out);
        out
    };
    let before = hub.log_lines().len();
    let tokens_before = hub.token_requests().len();
    build();
    let first: Vec<String> = hub.log_lines()[before..].to_vec();
    let anonymous: Vec<_> = hub.token_requests()[tokens_before..].to_vec();
    assert!(!anonymous.is_empty());
    for t in &anonymous {
        assert_eq!(t.auth, Auth::Anonymous, "{t:?}");
        assert_eq!(t.scopes, ["repository:library/python:pull"], "{t:?}");
        assert!(t.target.contains("service=registry.docker.io"), "{t:?}");
    }
    let first_gets = manifest_requests(&first, "GET", "library/python").len();
    let first_heads = manifest_requests(&first, "HEAD", "library/python").len();
    assert!(first_gets >= 1, "{first:#?}");

    // Unchanged rebuild on a tag base: HEADs only, no manifest GET.
    let before = hub.log_lines().len();
    build();
    let again: Vec<String> = hub.log_lines()[before..].to_vec();
    let again_gets = manifest_requests(&again, "GET", "library/python").len();
    let again_heads = manifest_requests(&again, "HEAD", "library/python").len();
    eprintln!(
        "manifest requests: first build {first_gets} GET + {first_heads} HEAD; unchanged rebuild {again_gets} GET + {again_heads} HEAD"
    );
    assert_eq!(again_gets, 0, "{again:#?}");
    assert_eq!(again_heads, 1, "{again:#?}");

    // A mirror that is down (nothing listens on port 1 in the namespace):
    // one warning, then registry-1.docker.io serves the pull.
    let before = hub.log_lines().len();
    let out = kiln_in(&ns, w)
        .arg("build")
        .arg(&spec)
        .args(["--registry-mirror", "docker.io=127.0.0.1:1/hub"])
        .args(["--ca-file", &ca, "--cache-dir"])
        .arg(w.join("mirror-cache"))
        .output()
        .unwrap();
    succeeded(&out);
    let warned = text(&out)
        .lines()
        .filter(|l| l.contains("mirror 127.0.0.1:1/hub/library/python"))
        .count();
    assert_eq!(warned, 1, "{}", text(&out));
    let through: Vec<String> = hub.log_lines()[before..].to_vec();
    assert!(
        !manifest_requests(&through, "GET", "library/python").is_empty(),
        "{through:#?}"
    );

    // A repository that does not exist: Docker Hub answers 401 with a token.
    let missing = base_spec(&w.join("missing"), "nobody/nothere:1");
    let out = kiln_in(&ns, w)
        .arg("build")
        .arg(&missing)
        .args(["--ca-file", &ca, "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("docker.io/nobody/nothere")
            && text(&out).contains("not found or no access"),
        "{}",
        text(&out)
    );

    // docker.io, the web site, was never asked anything.
    assert_eq!(hub.web_requests(), Vec::<String>::new());
}

fn spec_with(dir: &Path, content: &str) -> std::path::PathBuf {
    fs::create_dir_all(dir).unwrap();
    write_spec(
        dir,
        &format!(
            "[image]\nname = \"app\"\n[[file]]\npath = \"/hello.txt\"\ncontent = \"{content}\\n\"\n[policy]\nenforce = false\n"
        ),
    )
}

fn push_to(spec: &Path, target: &str, cache: &Path) -> Output {
    kiln()
        .arg("build")
        .arg(spec)
        .args(["--push", target, "--cache-dir"])
        .arg(cache)
        .output()
        .unwrap()
}

fn manifest_puts(proxy: &Proxy) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
        .count()
}

#[test]
fn ecr_immutable_tags_are_left_alone_or_named_in_the_error() {
    let Some((work, registry)) = with_registry(&["docker-registry"]) else {
        return;
    };
    let w = work.path();
    let proxy = Proxy::start(&registry.addr);
    let target = format!("{}/team/app:1", proxy.addr);
    let cache = w.join("cache");
    let first = spec_with(&w.join("a"), "one");

    let out = push_to(&first, &target, &cache);
    succeeded(&out);
    assert_eq!(manifest_puts(&proxy), 1);
    let digest = build_json(&first, &cache, &[])["manifest"]["digest"]
        .as_str()
        .expect("a manifest digest")
        .to_string();

    // From now on the tag is immutable: every PUT of it is refused.
    proxy.fault("PUT", "/manifests/1", 100, Fault::Status(400, None));

    // The same image again: a HEAD finds the tag already names it; no PUT.
    let out = push_to(&first, &target, &cache);
    succeeded(&out);
    assert_eq!(manifest_puts(&proxy), 1, "{:#?}", proxy.requests());
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.method == "HEAD" && r.path.ends_with("/manifests/1"))
    );

    // Another image under the same tag: refused, and the error says why,
    // naming the digest the tag has and the one kiln pushed.
    let out = push_to(&spec_with(&w.join("b"), "two"), &target, &cache);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("immutable") && all.contains("MANIFEST_TAG_IMMUTABLE"),
        "{all}"
    );
    assert!(all.contains(&digest), "{all}");
    assert!(all.matches("sha256:").count() >= 2, "{all}");
}

#[test]
fn a_mount_answered_202_falls_back_to_an_upload() {
    let Some((work, registry)) = with_registry(&["docker-registry"]) else {
        return;
    };
    let w = work.path();
    let proxy = Proxy::start(&registry.addr);
    let cache = w.join("cache");
    let base = format!("{}/team/base:1", proxy.addr);
    succeeded(&push_to(&spec_with(&w.join("base"), "base"), &base, &cache));

    // The registry will not mount: it opens an upload session instead.
    proxy.fault("POST", "mount=", 100, Fault::Status(202, None));
    let spec = base_spec(&w.join("app"), &base);
    let out = push_to(&spec, &format!("{}/team/app:1", proxy.addr), &cache);
    succeeded(&out);
    let seen = proxy.requests();
    assert!(
        seen.iter()
            .any(|r| r.method == "POST" && r.path.contains("mount=") && r.fault.is_some()),
        "{seen:#?}"
    );
    // Every blob of team/app was uploaded: the base layer too.
    let uploads = seen
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/v2/team/app/blobs/uploads/"))
        .count();
    assert_eq!(uploads, 3, "{seen:#?}");
    assert!(is_served(&format!("{}/team/app:1", registry.addr)));
}
