//! HTTPS_PROXY, HTTP_PROXY and NO_PROXY, through tinyproxy, a real proxy
//! that tunnels with CONNECT. Loopback is never proxied, so the registry is
//! reached by name inside a private network namespace: there `registry.test`
//! is 192.0.2.10 (a documentation address, on the namespace's own `lo`),
//! served by docker-registry over TLS from a throwaway CA, and the proxies
//! listen on the namespace's 127.0.0.1.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::fake::{Fake, Reply};
use crate::common::netns::Netns;
use crate::common::registries::TlsRegistry;
use crate::common::tinyproxy::Tinyproxy;
use crate::common::*;

const REGISTRY_IP: &str = "192.0.2.10";
const USER: &str = "reg-user";
const PASSWORD: &str = "reg-Pa55-word";
const PROXY_USER: &str = "proxy-user";
const PROXY_SECRET: &str = "proxy-S3cret-never-printed";

/// Every variable a proxy could come from: the tests set their own.
const PROXY_VARS: [&str; 9] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "REQUEST_METHOD",
];

/// A namespace with `registry.test` in it, and a work directory.
struct Site {
    ns: Netns,
    registry: TlsRegistry,
    work: tempfile::TempDir,
    spec: PathBuf,
}

fn site() -> Option<Site> {
    if !have(&[
        "docker-registry",
        "openssl",
        "htpasswd",
        "tinyproxy",
        "skopeo",
    ]) {
        return None;
    }
    let ns = Netns::new(&[REGISTRY_IP], &[(REGISTRY_IP, "registry.test")])?;
    let registry = ns.run(|| {
        Registry::tls_basic_at(
            &format!("{REGISTRY_IP}:443"),
            &format!("DNS:registry.test,IP:{REGISTRY_IP}"),
            USER,
            PASSWORD,
        )
    });
    let work = tempfile::tempdir().unwrap();
    let spec = write_spec(
        &work.path().join("app"),
        "[image]\nname = \"app\"\n[[file]]\npath = \"/hello.txt\"\ncontent = \"hi\\n\"\n[policy]\nenforce = false\n",
    );
    Some(Site {
        ns,
        registry,
        work,
        spec,
    })
}

/// tinyproxy inside a namespace.
fn tinyproxy_in(
    ns: &Netns,
    port: u16,
    connect_ports: &[u16],
    login: Option<(&str, &str)>,
) -> Tinyproxy {
    let program = which("tinyproxy").expect("tinyproxy");
    Tinyproxy::start(ns.command(&program), port, connect_ports, login)
}

/// No proxy, credentials or log settings from this machine.
fn clean_env(cmd: &mut Command) -> &mut Command {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("KILN_REGISTRY_USERNAME")
        .env_remove("KILN_REGISTRY_PASSWORD")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("RUST_LOG")
        .env("KILN_RETRY_DELAY_MS", "50")
}

/// `kiln build --push registry.test/app:TAG` inside the namespace, with `env` set.
fn push(site: &Site, target: &str, env: &[(&str, &str)]) -> Output {
    let w = site.work.path();
    let home = w.join("home");
    fs::create_dir_all(&home).unwrap();
    let mut cmd = site.ns.command(Path::new(env!("CARGO_BIN_EXE_kiln")));
    clean_env(&mut cmd)
        .env("HOME", &home)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .envs(env.iter().copied())
        .arg("build")
        .arg(&site.spec)
        .args(["--push", target, "--ca-file"])
        .arg(&site.registry.ca_file)
        .arg("--cache-dir")
        .arg(w.join("cache"))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The digest kiln printed for a push that must have worked.
fn pushed(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    last.rsplit_once('@')
        .expect("NAME:TAG@DIGEST")
        .1
        .to_string()
}

/// The manifest digest skopeo reads for `reference`, straight from the registry.
fn skopeo_digest(site: &Site, reference: &str) -> String {
    let program = which("skopeo").expect("skopeo");
    let mut cmd = site.ns.command(&program);
    let out = run(clean_env(&mut cmd)
        .arg("inspect")
        .arg("--cert-dir")
        .arg(site.registry.ca_file.parent().unwrap())
        .args(["--creds", &format!("{USER}:{PASSWORD}")])
        .arg(format!("docker://{reference}")));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["Digest"].as_str().unwrap().to_string()
}

#[test]
fn pushes_and_pulls_go_through_the_proxy_unless_no_proxy_says_otherwise() {
    let Some(site) = site() else { return };
    let proxy = tinyproxy_in(&site.ns, 3128, &[443], None);
    let via = [("HTTPS_PROXY", proxy.url.as_str())];

    // Through the proxy, with the debug log saying so once, without credentials.
    let out = push(
        &site,
        "registry.test/app:1",
        &[via[0], ("RUST_LOG", "kiln=debug")],
    );
    let digest = pushed(&out);
    let seen = proxy.requests();
    assert!(
        seen.iter()
            .any(|r| r == "CONNECT registry.test:443 HTTP/1.1"),
        "{seen:#?}\n{}",
        proxy.log()
    );
    let said = "https://registry.test:443: through proxy http://127.0.0.1:3128 (HTTPS_PROXY)";
    assert_eq!(text(&out).matches(said).count(), 1, "{}", text(&out));
    assert_eq!(skopeo_digest(&site, "registry.test/app:1"), digest);

    // The lowercase variable, and a value without a scheme, work too.
    let before = proxy.requests().len();
    pushed(&push(
        &site,
        "registry.test/app:2",
        &[("https_proxy", "127.0.0.1:3128")],
    ));
    assert!(proxy.requests().len() > before);

    // A base pulled through the proxy.
    let base_dir = site.work.path().join("on-base");
    let on_base = write_spec(
        &base_dir,
        "[image]\nname = \"app\"\nbase = \"registry.test/app:1\"\n[[file]]\npath = \"/more.txt\"\ncontent = \"more\\n\"\n[policy]\nenforce = false\n",
    );
    // KILN_REGISTRY_* are for the push registry: a pull reads an auth file.
    let auth_file = site.work.path().join("auth.json");
    let login = base64(&format!("{USER}:{PASSWORD}"));
    let auths = serde_json::json!({"auths": {"registry.test": {"auth": login}}});
    fs::write(&auth_file, auths.to_string()).unwrap();
    let before = proxy.requests().len();
    let mut cmd = site.ns.command(Path::new(env!("CARGO_BIN_EXE_kiln")));
    let out = clean_env(&mut cmd)
        .env("HOME", site.work.path().join("home"))
        .env("REGISTRY_AUTH_FILE", &auth_file)
        .env("HTTPS_PROXY", &proxy.url)
        .arg("build")
        .arg(&on_base)
        .arg("--ca-file")
        .arg(&site.registry.ca_file)
        .arg("--cache-dir")
        .arg(site.work.path().join("fresh-cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(proxy.requests().len() > before, "{}", proxy.log());

    // An address is proxied like a name, and NO_PROXY's CIDRs judge it.
    pushed(&push(&site, &format!("{REGISTRY_IP}/app:ip"), &via));
    let connect_ip = format!("CONNECT {REGISTRY_IP}:443 HTTP/1.1");
    assert!(proxy.requests().contains(&connect_ip), "{}", proxy.log());

    // Each of these NO_PROXY values sends the push around the proxy.
    for (i, no_proxy) in [
        "registry.test",
        ".test",
        "*.test",
        "REGISTRY.TEST",
        "registry.test:443",
        "other.example, registry.test",
        "*",
    ]
    .into_iter()
    .enumerate()
    {
        let before = proxy.requests();
        let target = format!("registry.test/app:direct-{i}");
        let digest = pushed(&push(&site, &target, &[via[0], ("NO_PROXY", no_proxy)]));
        assert_eq!(proxy.requests(), before, "NO_PROXY={no_proxy}");
        assert_eq!(skopeo_digest(&site, &target), digest);
    }
    let before = proxy.requests();
    let target = format!("{REGISTRY_IP}/app:direct-cidr");
    pushed(&push(
        &site,
        &target,
        &[via[0], ("no_proxy", "192.0.2.0/24")],
    ));
    assert_eq!(proxy.requests(), before);

    // And these do not match it: the push goes through the proxy.
    for no_proxy in [
        "other.test",
        "registry.test:5000",
        "test.registry",
        "192.0.2.0/24",
    ] {
        let before = proxy.requests().len();
        pushed(&push(
            &site,
            "registry.test/app:again",
            &[via[0], ("NO_PROXY", no_proxy)],
        ));
        assert!(proxy.requests().len() > before, "NO_PROXY={no_proxy}");
    }
}

#[test]
fn a_proxy_login_works_and_is_never_printed() {
    let Some(site) = site() else { return };
    let proxy = tinyproxy_in(&site.ns, 3128, &[443], Some((PROXY_USER, PROXY_SECRET)));
    let with_login = format!("http://{PROXY_USER}:{PROXY_SECRET}@127.0.0.1:3128");
    // What a Proxy-Authorization header would carry.
    let header = base64(&format!("{PROXY_USER}:{PROXY_SECRET}"));

    let out = push(
        &site,
        "registry.test/app:1",
        &[("HTTPS_PROXY", &with_login), ("RUST_LOG", "trace")],
    );
    let digest = pushed(&out);
    let all = text(&out);
    assert!(all.contains("through proxy http://127.0.0.1:3128"), "{all}");
    assert!(
        !all.contains(PROXY_SECRET) && !all.contains(&header),
        "{all}"
    );
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.starts_with("CONNECT registry.test:443 ")),
        "{}",
        proxy.log()
    );
    assert_eq!(skopeo_digest(&site, "registry.test/app:1"), digest);

    // No login: the proxy answers 407, and the error says where to put one.
    let out = push(&site, "registry.test/app:2", &[("HTTPS_PROXY", &proxy.url)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    for part in [
        "proxy http://127.0.0.1:3128 (from HTTPS_PROXY)",
        "asks for a login",
        "NO_PROXY",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }

    // A wrong password: refused, and printed nowhere, not even at trace level.
    let wrong = "wrong-S3cret-never-printed";
    let out = push(
        &site,
        "registry.test/app:3",
        &[
            (
                "https_proxy",
                &format!("http://{PROXY_USER}:{wrong}@127.0.0.1:3128"),
            ),
            ("RUST_LOG", "trace"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    // tinyproxy answers a wrong login with 401, not 407: a refusal, login named.
    for part in [
        "proxy http://127.0.0.1:3128 (from https_proxy) refused to connect to registry.test:443",
        "not accept the login in https_proxy",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!err.contains(wrong), "{err}");
}

#[test]
fn proxy_failures_name_the_proxy_and_the_variable() {
    let Some(site) = site() else { return };

    // Nothing listens there: the connection to the proxy is refused.
    let out = push(
        &site,
        "registry.test/app:1",
        &[("HTTPS_PROXY", "http://someone:hidden-pw@127.0.0.1:9")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    for part in [
        "cannot connect through proxy http://127.0.0.1:9 (from HTTPS_PROXY)",
        "check HTTPS_PROXY and NO_PROXY",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!err.contains("hidden-pw"), "{err}");

    // The proxy answers the CONNECT with 403: it tunnels to port 8443 only.
    let strict = tinyproxy_in(&site.ns, 3129, &[8443], None);
    let out = push(
        &site,
        "registry.test/app:1",
        &[("HTTPS_PROXY", &strict.url)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    for part in [
        "proxy http://127.0.0.1:3129 (from HTTPS_PROXY) refused to connect to registry.test:443",
        "check HTTPS_PROXY and NO_PROXY",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(
        strict.log().contains("Refused CONNECT method on port 443"),
        "{}",
        strict.log()
    );

    // A proxy kiln cannot speak to is refused before anything is sent.
    let out = push(
        &site,
        "registry.test/app:1",
        &[("HTTPS_PROXY", "socks5://someone:hidden-pw@127.0.0.1:1080")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = text(&out);
    assert!(err.contains("HTTPS_PROXY: names a SOCKS proxy"), "{err}");
    assert!(!err.contains("hidden-pw"), "{err}");
}

#[test]
fn token_realms_are_still_vetted_on_local_resolution_behind_a_proxy() {
    if !have(&["tinyproxy"]) {
        return;
    }
    // auth.test is a metadata address here; nothing listens there, and the
    // namespace has no route to it, so nothing could leave even if sent.
    let hosts = [
        (REGISTRY_IP, "registry.test"),
        ("169.254.169.254", "auth.test"),
    ];
    let Some(ns) = Netns::new(&[REGISTRY_IP], &hosts) else {
        return;
    };
    let registry = ns.run(|| {
        Fake::start(&format!("{REGISTRY_IP}:80"), |_, _| {
            Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header(
                "WWW-Authenticate",
                r#"Bearer realm="http://auth.test/token",service="registry.test""#,
            )
        })
    });
    let proxy = tinyproxy_in(&ns, 3128, &[443], None);
    let work = tempfile::tempdir().unwrap();
    let spec = write_spec(
        work.path(),
        "[image]\nname = \"app\"\n[[file]]\npath = \"/hello.txt\"\ncontent = \"hi\\n\"\n[policy]\nenforce = false\n",
    );
    let mut cmd = ns.command(Path::new(env!("CARGO_BIN_EXE_kiln")));
    let out = clean_env(&mut cmd)
        .env("HOME", work.path())
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .env("HTTP_PROXY", &proxy.url)
        .arg("build")
        .arg(&spec)
        .args(["--push", "registry.test/app:1"])
        .args(["--insecure-registry", "registry.test", "--cache-dir"])
        .arg(work.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("`auth.test` resolves to 169.254.169.254, a cloud metadata address"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
    // The registry was reached through the proxy; the realm, by no one.
    let seen = proxy.requests();
    assert!(
        seen.iter()
            .any(|r| r.starts_with("GET http://registry.test/v2/")),
        "{seen:#?}\n{}",
        proxy.log()
    );
    assert!(!seen.iter().any(|r| r.contains("auth.test")), "{seen:#?}");
    assert!(!registry.heads().is_empty());
    assert!(
        registry
            .heads()
            .iter()
            .all(|h| !h.contains("Authorization"))
    );
}

#[test]
fn loopback_registries_are_never_proxied() {
    let Some((work, registry)) = with_registry(&["docker-registry", "tinyproxy"]) else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = Tinyproxy::start(
        Command::new(which("tinyproxy").unwrap()),
        port,
        &[
            443,
            registry.addr.rsplit_once(':').unwrap().1.parse().unwrap(),
        ],
        None,
    );
    let spec = write_spec(
        work.path(),
        "[image]\nname = \"app\"\n[[file]]\npath = \"/hello.txt\"\ncontent = \"hi\\n\"\n[policy]\nenforce = false\n",
    );
    let registry_port = registry.addr.rsplit_once(':').unwrap().1;
    for (i, host) in ["127.0.0.1", "localhost"].into_iter().enumerate() {
        let mut cmd = kiln();
        let out = clean_env(&mut cmd)
            .env("HTTPS_PROXY", &proxy.url)
            .env("HTTP_PROXY", &proxy.url)
            .arg("build")
            .arg(&spec)
            .args(["--push", &format!("{host}:{registry_port}/app:{i}")])
            .arg("--cache-dir")
            .arg(work.path().join("cache"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(proxy.requests(), Vec::<String>::new(), "{}", proxy.log());
}

/// Standard base64, as in a Basic Authorization header.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        out.push_str(&"=="[..3 - chunk.len()]);
    }
    out
}
