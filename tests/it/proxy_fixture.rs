//! The fault-injecting proxy (tests/common/proxy.rs) in front of a real
//! docker-registry: it passes skopeo and curl through unchanged, and each
//! fault fires exactly as often as asked, then passes through.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::proxy::{Fault, Proxy, Seen};
use crate::common::*;

/// curl's exit code, stdout and stderr; `-s` and no proxy from the environment.
fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--noproxy", "*"])
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// PUT `file` to `url` (`curl -i`): exit code, the final response, stderr.
/// Not curl's default form Content-Type: the registry would parse the body as a form.
fn put(url: &str, file: &str) -> (i32, String, String) {
    let (code, out, err) = curl(&[
        "-i",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{file}"),
        url,
    ]);
    (code, final_response(&out), err)
}

/// `curl -i` output without the `100 Continue` heads before the real answer.
fn final_response(mut out: &str) -> String {
    while out.starts_with("HTTP/1.1 1") {
        out = out.split_once("\r\n\r\n").map_or("", |(_, rest)| rest);
    }
    out.to_string()
}

/// PATCH `file` to `url` as a chunked body: exit code, the final response, stderr.
fn patch_chunked(url: &str, file: &str) -> (i32, String, String) {
    let (code, out, err) = curl(&[
        "-i",
        "-X",
        "PATCH",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{file}"),
        url,
    ]);
    (code, final_response(&out), err)
}

/// The status code of a HEAD on `url`.
fn head_status(url: &str) -> String {
    curl(&["-I", "-o", "/dev/null", "-w", "%{http_code}", url]).1
}

/// The status code of a GET on `url`.
fn get_status(url: &str) -> String {
    curl(&["-o", "/dev/null", "-w", "%{http_code}", url]).1
}

/// A header's value from `curl -i` output.
fn header(response: &str, name: &str) -> Option<String> {
    response.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// Open an upload session through `addr`; its absolute Location.
fn start_upload(addr: &str, repo: &str) -> String {
    let url = format!("http://{addr}/v2/{repo}/blobs/uploads/");
    let (code, out, err) = curl(&["-i", "-X", "POST", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
    header(&out, "location").expect("a Location")
}

/// A blob of `len` bytes that no other test uses, written to `dir`; (path, digest).
fn blob(dir: &Path, name: &str, len: usize) -> (String, String) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ name.len() as u8)
        .collect();
    let path = dir.join(name);
    fs::write(&path, &bytes).unwrap();
    let digest = kiln::oci::digest::sha256(&bytes);
    assert!(digest.starts_with("sha256:"), "{digest}");
    (path.to_str().unwrap().to_string(), digest)
}

fn faults(proxy: &Proxy) -> Vec<Seen> {
    proxy
        .requests()
        .into_iter()
        .filter(|s| s.fault.is_some())
        .collect()
}

#[test]
fn passes_skopeo_push_and_inspect_through_unchanged() {
    if !have(&["skopeo", "umoci", "docker-registry", "curl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    let image = base_layout(work.path());
    let push = |addr: &str, repo: &str| {
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false", &image])
            .arg(format!("docker://{addr}/{repo}:v1")));
    };
    let inspect = |addr: &str, repo: &str| {
        run(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{addr}/{repo}:v1")))
    };
    push(&registry.addr, "direct/base");
    push(&proxy.addr, "proxied/base");
    let via_proxy = inspect(&proxy.addr, "proxied/base");
    assert!(via_proxy.contains("\"layers\""), "{via_proxy}");
    assert_eq!(via_proxy, inspect(&registry.addr, "proxied/base"));
    assert_eq!(via_proxy, inspect(&registry.addr, "direct/base"));
    assert_eq!(via_proxy, inspect(&proxy.addr, "direct/base"));
    let seen = proxy.requests();
    assert!(faults(&proxy).is_empty());
    for (method, path) in [
        ("PATCH", "/v2/proxied/base/blobs/uploads/"),
        ("PUT", "/v2/proxied/base/blobs/uploads/"),
        ("PUT", "/v2/proxied/base/manifests/v1"),
        ("GET", "/v2/direct/base/manifests/v1"),
    ] {
        assert!(
            seen.iter()
                .any(|s| s.method == method && s.path.starts_with(path)),
            "no {method} {path} in {seen:#?}"
        );
    }

    // Keep-alive: curl sends both requests on one connection.
    let url = format!("http://{}/v2/", proxy.addr);
    let w = "%{http_code} %{num_connects}\n";
    let (code, out, err) = curl(&["-w", w, "-o", "/dev/null", &url, "-o", "/dev/null", &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "200 1\n200 0\n");
}

#[test]
fn status_fires_times_then_passes_on_one_connection() {
    if !have(&["docker-registry", "curl"]) {
        return;
    }
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    proxy.fault("GET", "/v2/", 2, Fault::Status(503, None));
    let url = format!("http://{}/v2/", proxy.addr);
    let (code, out, err) = curl(&[
        "-w",
        "%{http_code} %{num_connects}\n",
        "-o",
        "/dev/null",
        &url,
        "-o",
        "/dev/null",
        &url,
        "-o",
        "/dev/null",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "503 1\n503 0\n200 0\n");
    let fired: Vec<_> = faults(&proxy)
        .into_iter()
        .map(|s| s.fault.unwrap())
        .collect();
    assert_eq!(fired, ["Status(503, None)", "Status(503, None)"]);

    // 429 with Retry-After, on a request with a body the proxy must swallow.
    let work = tempfile::tempdir().unwrap();
    let (file, digest) = blob(work.path(), "status", 100_000);
    let location = start_upload(&proxy.addr, "status/repo");
    proxy.fault("PUT", "/blobs/uploads/", 1, Fault::Status(429, Some(7)));
    let put_url = format!("{location}&digest={digest}");
    let (code, out, err) = put(&put_url, &file);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 429"), "{out}");
    assert_eq!(header(&out, "retry-after").as_deref(), Some("7"));
    assert!(out.contains("TOOMANYREQUESTS"), "{out}");
    let blob_url = format!("http://{}/v2/status/repo/blobs/{digest}", registry.addr);
    assert_eq!(
        head_status(&blob_url),
        "404",
        "the faulted PUT was forwarded"
    );
    // The same PUT again goes through.
    let (code, out, err) = put(&put_url, &file);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    assert_eq!(head_status(&blob_url), "200");
    assert_eq!(faults(&proxy).len(), 3);
}

#[test]
fn lose_reply_stores_the_blob_but_answers_nothing() {
    if !have(&["docker-registry", "curl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    let (file, digest) = blob(work.path(), "lose", 300_000);
    let location = start_upload(&proxy.addr, "lose/repo");
    assert!(
        location.starts_with(&format!(
            "http://{}/v2/lose/repo/blobs/uploads/",
            proxy.addr
        )),
        "the registry's Location must point back at the proxy: {location}"
    );
    proxy.fault("PUT", "/blobs/uploads/", 1, Fault::LoseReply);
    let put_url = format!("{location}&digest={digest}");
    let (code, _, err) = put(&put_url, &file);
    assert_eq!(code, 52, "curl should get an empty reply: {err}");
    let blob_url = format!("http://{}/v2/lose/repo/blobs/{digest}", registry.addr);
    assert_eq!(head_status(&blob_url), "200");
    assert_eq!(faults(&proxy).len(), 1);

    // Retrying the completed session is refused; a client must HEAD the blob instead.
    let (code, out, err) = put(&put_url, &file);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    assert!(out.contains("BLOB_UPLOAD_UNKNOWN"), "{out}");
    let via_proxy = format!("http://{}/v2/lose/repo/blobs/{digest}", proxy.addr);
    assert_eq!(head_status(&via_proxy), "200");
}

#[test]
fn reset_mid_body_leaves_no_blob_and_spoils_the_session() {
    if !have(&["docker-registry", "curl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    let (file, digest) = blob(work.path(), "reset", 400_000);
    let blob_url = format!("http://{}/v2/reset/repo/blobs/{digest}", registry.addr);
    proxy.fault("PUT", "/blobs/uploads/", 1, Fault::ResetMidBody);
    proxy.fault("PATCH", "/blobs/uploads/", 1, Fault::ResetMidBody);
    for chunked in [false, true] {
        let location = start_upload(&proxy.addr, "reset/repo");
        let (code, _, err) = if chunked {
            patch_chunked(&location, &file)
        } else {
            put(&format!("{location}&digest={digest}"), &file)
        };
        assert!(matches!(code, 55 | 56), "curl exited {code}: {err}");
        assert!(err.contains("reset by peer"), "{err}");
        assert_eq!(head_status(&blob_url), "404");
        // The registry kept what arrived: the session's offset no longer
        // matches its _state, so it is dead; a retry needs a new session.
        let (code, out, err) = put(&format!("{location}&digest={digest}"), &file);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("HTTP/1.1 404"), "{out}");
        assert!(out.contains("BLOB_UPLOAD_INVALID"), "{out}");
    }
    let fired: Vec<_> = faults(&proxy).into_iter().map(|s| s.method).collect();
    assert_eq!(fired, ["PUT", "PATCH"]);

    let location = start_upload(&proxy.addr, "reset/repo");
    let (code, out, err) = put(&format!("{location}&digest={digest}"), &file);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    assert_eq!(head_status(&blob_url), "200");
}

#[test]
fn chunked_patch_streams_through() {
    if !have(&["docker-registry", "curl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    let (file, digest) = blob(work.path(), "chunked", 1_500_000);
    let location = start_upload(&proxy.addr, "chunked/repo");
    let (code, out, err) = patch_chunked(&location, &file);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
    assert_eq!(header(&out, "range").as_deref(), Some("0-1499999"));
    let next = header(&out, "location").unwrap();
    assert!(
        next.starts_with(&format!("http://{}/", proxy.addr)),
        "{next}"
    );
    let (code, out, err) = curl(&["-i", "-X", "PUT", &format!("{next}&digest={digest}")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    let got = work.path().join("got");
    let blob_url = format!("http://{}/v2/chunked/repo/blobs/{digest}", registry.addr);
    let (code, _, err) = curl(&["-o", got.to_str().unwrap(), &blob_url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(got).unwrap(), fs::read(&file).unwrap());
    let methods: Vec<_> = proxy.requests().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["POST", "PATCH", "PUT"]);

    // Streamed, not buffered: the first chunk reaches the registry's disk
    // while the request is still open.
    let location = start_upload(&proxy.addr, "chunked/stream");
    let target = location
        .strip_prefix(&format!("http://{}", proxy.addr))
        .unwrap();
    let uuid = target
        .split("/uploads/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let mut stream = TcpStream::connect(&proxy.addr).unwrap();
    write!(
        stream,
        "PATCH {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        proxy.addr,
        256 << 10
    )
    .unwrap();
    stream.write_all(&[7; 256 << 10]).unwrap();
    stream.write_all(b"\r\n").unwrap();
    let data = registry.dir.path().join(format!(
        "data/docker/registry/v2/repositories/chunked/stream/_uploads/{uuid}/data"
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::metadata(&data).map_or(0, |m| m.len()) < 128 << 10 {
        assert!(Instant::now() < deadline, "the first chunk never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.write_all(b"5\r\nhello\r\n0\r\n\r\n").unwrap();
    let mut reply = String::new();
    let mut reader = BufReader::new(stream);
    while reader.read_line(&mut reply).unwrap() > 2 {}
    assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
    let range = format!("0-{}", (256 << 10) + 5 - 1);
    assert_eq!(header(&reply, "range").as_deref(), Some(range.as_str()));
}

#[test]
fn stall_sends_nothing_then_closes() {
    if !have(&["docker-registry", "curl"]) {
        return;
    }
    let registry = Registry::start();
    let proxy = Proxy::start(&registry.addr);
    proxy.fault("GET", "/v2/", 2, Fault::Stall(Duration::from_millis(1500)));
    let url = format!("http://{}/v2/", proxy.addr);
    let (code, _, err) = curl(&["--max-time", "0.5", &url]);
    assert_eq!(code, 28, "curl should time out: {err}");
    let started = Instant::now();
    let (code, _, err) = curl(&["--max-time", "10", &url]);
    assert_eq!(code, 52, "an empty reply after the stall: {err}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert_eq!(get_status(&url), "200");
    assert_eq!(faults(&proxy).len(), 2);
    proxy.fault("GET", "/v2/", 5, Fault::Stall(Duration::from_secs(60)));
    proxy.clear();
    assert_eq!(get_status(&url), "200");

    // Dropping the proxy ends a stall at once and closes the connection.
    proxy.fault("GET", "/v2/", 1, Fault::Stall(Duration::from_secs(60)));
    let mut stream = TcpStream::connect(&proxy.addr).unwrap();
    write!(stream, "GET /v2/ HTTP/1.1\r\nHost: {}\r\n\r\n", proxy.addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.requests().len() < 5 {
        assert!(
            Instant::now() < deadline,
            "the proxy never read the request"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    drop(proxy);
    assert!(started.elapsed() < Duration::from_secs(5));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(stream.read(&mut [0; 16]).unwrap(), 0);
}
