//! The example image, checked the way a user would check it: skopeo reads
//! it, umoci shows the owners, podman runs it as app and finds it healthy.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::common::*;

fn config_of(target: &str) -> serde_json::Value {
    let raw = run(Command::new("skopeo").args(["inspect", "--config", "--raw", target]));
    serde_json::from_str(&raw).unwrap()
}

#[test]
fn oci_layout_reads_with_skopeo_and_umoci_shows_owners() {
    if !have(&["skopeo", "umoci"]) {
        return;
    }
    let fx = web_fixture();
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("web");
    let digest_file = out.path().join("digest");
    let digest = build(
        &fx.path().join("kiln.toml"),
        &[
            "--oci",
            layout.to_str().unwrap(),
            "--digest-file",
            digest_file.to_str().unwrap(),
        ],
    );

    // The manifest skopeo reads is the one whose digest kiln printed and wrote.
    let target = format!("oci:{}", layout.display());
    let manifest = run(Command::new("skopeo").args(["inspect", "--raw", &target]));
    assert_eq!(kiln::oci::digest::sha256(manifest.as_bytes()), digest);
    assert_eq!(fs::read_to_string(&digest_file).unwrap().trim(), digest);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    let config = config_of(&target);
    let c = &config["config"];
    assert_eq!(c["User"], "10001:10001");
    assert_eq!(c["Healthcheck"]["Test"][0], "CMD");
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert_eq!(c["Healthcheck"]["StartInterval"], 2_000_000_000i64);
    assert_eq!(c["Healthcheck"]["Retries"], 3);
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "dev");
    assert!(c["ExposedPorts"].get("8000/tcp").is_some());
    assert_eq!(config["created"], "2025-01-01T00:00:00Z");
    let history = config["history"].as_array().unwrap();
    assert!(history.iter().any(|h| {
        h["created_by"]
            .as_str()
            .unwrap()
            .starts_with("HEALTHCHECK --interval=30s")
    }));
    assert_eq!(
        history
            .iter()
            .filter(|h| h.get("empty_layer").is_none())
            .count(),
        config["rootfs"]["diff_ids"].as_array().unwrap().len()
    );

    // skopeo checks every blob's digest while copying.
    run(Command::new("skopeo")
        .args(["copy", "--quiet", &target])
        .arg(format!("dir:{}", out.path().join("copy").display())));

    let bundle = unpack(&layout, out.path());
    let root = bundle.join("rootfs");
    assert_eq!(stat(&root.join("www")), "10001:10001 755");
    assert_eq!(stat(&root.join("www/index.html")), "10001:10001 644");
    assert_eq!(stat(&root.join("home/app")), "10001:10001 755");
    assert_eq!(stat(&root.join("bin/busybox")), "0:0 755");
    assert_eq!(stat(&root.join("tmp")), "0:0 1777");
    assert_eq!(stat(&root.join("etc/passwd")), "0:0 644");
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001::/home/app:/sbin/nologin\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/group")).unwrap(),
        "root:x:0:\napp:x:10001:\n"
    );
}

#[test]
fn docker_archive_runs_as_app_in_podman() {
    if !have(&["skopeo", "podman", "runc"]) {
        return;
    }
    let fx = web_fixture();
    let tar = fx.path().join("web.tar");
    build(
        &fx.path().join("kiln.toml"),
        &["--tar", tar.to_str().unwrap()],
    );
    assert!(
        !fx.path().join("kiln-out").exists(),
        "--tar alone writes no layout"
    );

    let inspect = run(Command::new("skopeo")
        .args(["inspect"])
        .arg(format!("docker-archive:{}", tar.display())));
    assert!(
        inspect.contains("org.opencontainers.image.version"),
        "{inspect}"
    );

    let podman = Podman::new();
    podman.run(&["load", "-q", "-i", tar.to_str().unwrap()]);
    let id = podman.exec("web:latest", &["/bin/busybox", "id"]);
    assert_eq!(id.trim(), "uid=10001(app) gid=10001(app) groups=10001(app)");
    let ls = podman.exec(
        "web:latest",
        &[
            "/bin/busybox",
            "stat",
            "-c",
            "%U:%G %a %n",
            "/www/index.html",
            "/www",
            "/home/app",
        ],
    );
    assert_eq!(
        ls,
        "app:app 644 /www/index.html\napp:app 755 /www\napp:app 755 /home/app\n"
    );
    let pwd = podman.exec("web:latest", &["/bin/busybox", "pwd"]);
    assert_eq!(pwd.trim(), "/www");
    let user = podman.run(&[
        "image",
        "inspect",
        "web:latest",
        "--format",
        "{{.Config.User}} {{.Config.Healthcheck.Test}}",
    ]);
    assert!(
        user.starts_with("10001:10001 [CMD /bin/busybox wget"),
        "{user}"
    );
}

#[test]
fn healthcheck_is_healthy_in_podman_and_a_broken_one_is_not() {
    if !have(&["podman", "runc"]) {
        return;
    }
    let fx = web_fixture();
    let spec = fx.path().join("kiln.toml");
    let tar = fx.path().join("web.tar");
    build(&spec, &["--tar", tar.to_str().unwrap()]);
    // The same image with a healthcheck that asks for a page that is not there.
    let broken = fs::read_to_string(&spec)
        .unwrap()
        .replace("/health\"]", "/missing\"]")
        .replace("name = \"web\"", "name = \"broken\"");
    fs::write(fx.path().join("broken.toml"), broken).unwrap();
    let broken_tar = fx.path().join("broken.tar");
    build(
        &fx.path().join("broken.toml"),
        &["--tar", broken_tar.to_str().unwrap()],
    );

    let podman = Podman::new();
    podman.run(&["load", "-q", "-i", tar.to_str().unwrap()]);
    podman.run(&["load", "-q", "-i", broken_tar.to_str().unwrap()]);
    podman
        .healthy_within("web:latest", "web", Duration::from_secs(30))
        .unwrap();
    let status = podman.run(&["inspect", "web", "--format", "{{.State.Health.Status}}"]);
    assert_eq!(status.trim(), "healthy");
    assert!(
        podman
            .healthy_within("broken:latest", "broken", Duration::from_secs(3))
            .is_err(),
        "a healthcheck of a missing page passed"
    );
}

#[test]
fn pushed_by_skopeo_pulls_back_identical_and_runs_from_the_registry() {
    if !have(&["skopeo", "podman", "runc", "docker-registry"]) {
        return;
    }
    let fx = web_fixture();
    let layout = fx.path().join("out");
    let digest = build(
        &fx.path().join("kiln.toml"),
        &["--oci", layout.to_str().unwrap()],
    );
    let registry = Registry::start();
    let dest = format!("docker://{}/web:1", registry.addr);
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}", layout.display()))
        .arg(&dest));
    let pushed =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &dest]));
    assert_eq!(
        kiln::oci::digest::sha256(pushed.as_bytes()),
        digest,
        "the registry holds other manifest bytes"
    );

    let podman = Podman::new();
    let image = format!("{}/web:1", registry.addr);
    let id = podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        "--network",
        "none",
        "--entrypoint",
        "/bin/busybox",
        &image,
        "id",
        "-u",
    ]);
    assert_eq!(id.trim(), "10001");
}

#[test]
fn oci_format_is_readable_by_tag_and_warns_about_healthcheck() {
    if !have(&["skopeo"]) {
        return;
    }
    let fx = web_fixture();
    let spec = fx.path().join("kiln.toml");
    fs::write(
        &spec,
        fs::read_to_string(&spec)
            .unwrap()
            .replace("format = \"docker\"", "format = \"oci\""),
    )
    .unwrap();
    let layout = fx.path().join("out");
    let out = kiln()
        .arg("build")
        .arg(&spec)
        .arg("--oci")
        .arg(&layout)
        .output()
        .unwrap();
    check(&kiln(), &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("podman and CRI-O ignore Healthcheck in OCI images"),
        "{stderr}"
    );
    let manifest = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:latest", layout.display())));
    assert!(manifest.contains("application/vnd.oci.image.manifest.v1+json"));
    assert!(manifest.contains("application/vnd.oci.image.layer.v1.tar+gzip"));
}
