//! SBOMs of real images (`kiln build --sbom`, read back with `kiln sbom`):
//! checked by spdx-tools and the CycloneDX schema,
//! every added file against sha256sum of the unpacked image, the packages
//! of a real dpkg status against dpkg-query, an Alpine database and real
//! wheels' METADATA, and two builds byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// The venv scripts/install-test-tools.sh puts spdx-tools and
/// cyclonedx-python-lib in. None (the test skipped) if it is missing on a
/// developer machine; under CI=true a missing venv fails the test.
fn validators() -> Option<PathBuf> {
    let venv = std::env::var_os("KILN_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/kiln-test-tools/venv")
        });
    let bin = venv.join("bin");
    if bin.join("pyspdxtools").is_file() {
        return Some(bin);
    }
    let msg = format!(
        "missing tools: pyspdxtools and cyclonedx-python-lib in {} (install them with scripts/install-test-tools.sh)",
        venv.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    None
}

const CYCLONEDX_CHECK: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
if error is not None:
    print(error)
    sys.exit(1)
print("valid")
"#;

/// Both documents pass the independent validators.
fn validate(bin: &Path, spdx: &Path, cyclonedx: &Path) {
    let out = run(Command::new(bin.join("pyspdxtools")).arg("-i").arg(spdx));
    assert!(!out.contains("ERROR"), "{out}");
    let out = run(Command::new(bin.join("python"))
        .args(["-c", CYCLONEDX_CHECK])
        .arg(cyclonedx));
    assert_eq!(out.trim(), "valid");
}

/// `kiln build SPEC --sbom --oci DIR`, then `kiln sbom oci:DIR` in both
/// formats, written to DIR-sbom/: the image's digest and the two documents.
fn build_with_sbom(spec: &Path, cache: &Path, out: &Path) -> (String, Vec<u8>, Vec<u8>) {
    let digest = build(
        spec,
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "--oci",
            out.to_str().unwrap(),
            "--sbom",
            "--no-check",
        ],
    );
    let target = format!("oci:{}", out.display());
    let spdx = run(kiln().args(["sbom", &target, "--format", "spdx"]));
    let cdx = run(kiln().args(["sbom", &target, "--format", "cyclonedx"]));
    let dir = out.with_extension("sbom");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("sbom.spdx.json"), &spdx).unwrap();
    fs::write(dir.join("sbom.cdx.json"), &cdx).unwrap();
    (digest, spdx.into_bytes(), cdx.into_bytes())
}

fn sha256sum(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    out.split_whitespace().next().unwrap().to_string()
}

/// SPDX files by path: their SHA-256 and comment.
fn spdx_files(doc: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let sha = f["checksums"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["algorithm"] == "SHA256")
                .unwrap()["checksumValue"]
                .as_str()
                .unwrap()
                .to_string();
            let name = f["fileName"].as_str().unwrap();
            let path = name.strip_prefix('.').unwrap().to_string();
            (path, (sha, f["comment"].as_str().unwrap().to_string()))
        })
        .collect()
}

/// The purls of the SPDX packages.
fn purls(doc: &serde_json::Value) -> BTreeSet<String> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().cloned().unwrap_or_default())
        .map(|r| r["referenceLocator"].as_str().unwrap().to_string())
        .collect()
}

fn package<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name}"))
}

const DISTROLESS_RECORD: &str = "Package: libssl3\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nMaintainer: Debian OpenSSL Team\nInstalled-Size: 6139\n";

const CRYPTOGRAPHY: &str = "/usr/lib/python3/dist-packages/cryptography-38.0.4.dist-info";

/// A Debian-like base from this machine's own files: its dpkg status, a
/// distroless status.d record, os-release (a link, as Debian has it) and
/// a real dist-info from the host's Python.
fn debian_base(work: &Path) -> String {
    let root = work.join("base-root");
    let dpkg = root.join("var/lib/dpkg");
    fs::create_dir_all(dpkg.join("status.d")).unwrap();
    fs::copy("/var/lib/dpkg/status", dpkg.join("status")).unwrap();
    fs::write(dpkg.join("status.d/libssl3"), DISTROLESS_RECORD).unwrap();
    fs::write(dpkg.join("status.d/libssl3.md5sums"), "0 /x\n").unwrap();
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::copy("/usr/lib/os-release", root.join("usr/lib/os-release")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    fs::write(root.join("etc/passwd"), BASE_PASSWD).unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let info = root.join(CRYPTOGRAPHY.trim_start_matches('/'));
    fs::create_dir_all(&info).unwrap();
    fs::copy(format!("{CRYPTOGRAPHY}/METADATA"), info.join("METADATA")).unwrap();
    format!("oci:{}", umoci_image(&work.join("base"), "v1", &root))
}

/// A real wheel's dist-info: one from the validators' own venv.
fn a_dist_info(bin: &Path) -> PathBuf {
    let site = bin.parent().unwrap().join("lib");
    let mut found = None;
    for py in fs::read_dir(&site).unwrap() {
        let dir = py.unwrap().path().join("site-packages");
        for e in fs::read_dir(&dir).into_iter().flatten() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("attrs-") && name.ends_with(".dist-info") {
                found = Some(p);
            }
        }
    }
    found.expect("attrs (a dependency of spdx-tools) is in the venv")
}

#[test]
fn sbom_of_a_debian_image_lists_files_and_packages() {
    if !have(&["umoci", "skopeo", "dpkg-query", "sha256sum"]) {
        return;
    }
    let Some(bin) = validators() else { return };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let base = debian_base(w);
    let project = w.join("project");
    write_tree(
        &project,
        &[
            ("app/server.py", "print('hello')\n", 0o755),
            ("app/data/config.json", "{\"a\": 1}\n", 0o644),
            ("app/link", "-> server.py", 0o777),
        ],
    );
    let attrs = a_dist_info(&bin);
    let attrs_name = attrs.file_name().unwrap().to_string_lossy().to_string();
    copy_tree(&attrs, &project.join("wheel").join(&attrs_name));
    let spec = write_spec(
        &project,
        &format!(
            r#"[image]
name = "sbom-test"
tag = "1"
base = "{base}"
format = "oci"
created = "2025-03-01T12:00:00Z"

[user]
name = "app"
uid = 10001

[[copy]]
src = "app/"
dest = "/srv/app/"
owner = "app"

[[copy]]
src = "wheel/"
dest = "/srv/venv/lib/python3.11/site-packages/"

[[copy]]
image = "{base}"
src = "{CRYPTOGRAPHY}/METADATA"
dest = "/opt/copied/METADATA"

[[file]]
path = "/etc/motd"
content = "hi\n"
"#
        ),
    );
    let cache = w.join("cache");
    let out = w.join("out");
    let (digest, spdx, cdx) = build_with_sbom(&spec, &cache, &out);
    let docs = w.join("out.sbom");
    validate(
        &bin,
        &docs.join("sbom.spdx.json"),
        &docs.join("sbom.cdx.json"),
    );
    let doc: serde_json::Value = serde_json::from_slice(&spdx).unwrap();

    // The SBOM is of the very image `kiln build` wrote.
    let image = package(&doc, "sbom-test:1");
    assert_eq!(image["versionInfo"], digest.as_str());
    assert_eq!(doc["creationInfo"]["created"], "2025-03-01T12:00:00Z");

    // Every regular file the new layers add, with the bytes the image holds.
    let files = spdx_files(&doc);
    // The layout also holds the SBOM artifacts: name the image by its tag.
    let image_ref = format!("oci:{}:1", out.display());
    let report = inspect_files(&image_ref);
    let base_layers = 1;
    let added: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["layer"].as_u64().unwrap() > base_layers && f["type"] == "file")
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let rootfs = pull_and_unpack(&image_ref, &w.join("unpacked"), &[]).rootfs();
    assert_eq!(
        added.iter().copied().collect::<BTreeSet<_>>(),
        files.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for path in &added {
        let on_disk = sha256sum(&rootfs.join(path.trim_start_matches('/')));
        assert_eq!(files[*path].0, on_disk, "{path}");
    }
    assert_eq!(
        files["/srv/app/server.py"].0,
        sha256sum(&project.join("app/server.py"))
    );
    // Owner, mode and the spec line that put each file there.
    let comment = &files["/srv/app/server.py"].1;
    assert!(
        comment.contains("owner 10001:10001, mode 0755"),
        "{comment}"
    );
    assert!(comment.contains("kiln.toml, line 12"), "{comment}");
    let copied = &files["/opt/copied/METADATA"].1;
    assert!(copied.contains("copied out of oci:"), "{copied}");
    assert!(copied.contains("@sha256:"), "{copied}");
    assert!(files["/etc/passwd"].1.contains("[user]"));
    let motd = &files["/etc/motd"].1;
    assert!(
        motd.contains("[[file]] /etc/motd (kiln.toml, line 26)"),
        "{motd}"
    );

    // The base's packages: exactly what dpkg-query reads in its status.
    let admin = rootfs.join("var/lib/dpkg");
    let listed = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.display()))
        .args(["-W", "-f=${db:Status-Abbrev}|${Package}|${Version}\n"]));
    let mut want: BTreeSet<(String, String)> = listed
        .lines()
        .filter(|l| l.starts_with("ii") || l.starts_with("hi"))
        .map(|l| {
            let parts: Vec<&str> = l.split('|').collect();
            (parts[1].to_string(), parts[2].to_string())
        })
        .collect();
    assert!(
        want.len() > 50,
        "the host's dpkg status lists {}",
        want.len()
    );
    want.insert(("libssl3".into(), "3.0.11-1~deb12u2".into()));
    let debs: BTreeSet<(String, String)> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["primaryPackagePurpose"] == "OPERATING-SYSTEM")
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["versionInfo"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(debs, want);
    let purls = purls(&doc);
    let release = fs::read_to_string("/usr/lib/os-release").unwrap();
    if release.contains("VERSION_ID=\"12\"") && release.contains("ID=debian") {
        assert!(
            purls
                .iter()
                .any(|p| p.starts_with("pkg:deb/debian/dpkg@") && p.contains("distro=debian-12")),
            "{purls:?}"
        );
    }
    assert!(
        purls
            .iter()
            .any(|p| p.starts_with("pkg:deb/debian/libssl3@3.0.11-1~deb12u2"))
    );

    // Python packages, in the base and in what kiln copied, with licenses.
    let crypto = package(&doc, "cryptography");
    assert_eq!(crypto["licenseDeclared"], "BSD-3-Clause OR Apache-2.0");
    assert!(purls.contains("pkg:pypi/cryptography@38.0.4"));
    let attrs_pkg = package(&doc, "attrs");
    assert!(
        attrs_pkg["comment"]
            .as_str()
            .unwrap()
            .contains("added by kiln")
    );
    assert!(purls.iter().any(|p| p.starts_with("pkg:pypi/attrs@")));

    // CycloneDX says the same about files and packages.
    let cdx_doc: serde_json::Value = serde_json::from_slice(&cdx).unwrap();
    let components = cdx_doc["components"].as_array().unwrap();
    let server = components
        .iter()
        .find(|c| c["name"] == "/srv/app/server.py")
        .unwrap();
    assert_eq!(
        server["hashes"][1]["content"],
        files["/srv/app/server.py"].0
    );
    let cdx_purls: BTreeSet<String> = components
        .iter()
        .filter_map(|c| c["purl"].as_str().map(String::from))
        .collect();
    assert_eq!(cdx_purls, purls);

    // Again, from the layer cache, and again from nothing: the same bytes.
    let again = build_with_sbom(&spec, &cache, &w.join("again"));
    assert_eq!(again, (digest.clone(), spdx.clone(), cdx.clone()));
    let fresh = build_with_sbom(&spec, &w.join("fresh-cache"), &w.join("fresh"));
    assert_eq!(fresh, (digest, spdx, cdx));
}

const APK_INSTALLED: &str = "\
C:Q1SEqvwdaBsxZf+vIwCzaKahfdKVg=
P:musl
V:1.2.5-r0
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712061345
c:c3f8ee6a0f1f5a9fb4e5e7ea4f2cfa1e5b0e1f1a
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1bp7Zb6a2wz5wLzLEpBnjqjtB2l8=

C:Q1ZIo4Bh8iEFpWWHR0BEb0mDWpbKU=
P:busybox
V:1.36.1-r28
A:x86_64
L:GPL-2.0-only
o:busybox
F:bin
R:busybox

C:Q1abc=
P:ca-certificates-bundle
V:20240226-r0
A:x86_64
L:MPL-2.0 AND MIT
o:ca-certificates

P:evil\x1b]0;pwned\x07
V:1

P:custom
V:2.0-r0
A:x86_64
L:Custom \"license\" <see COPYING>
";

#[test]
fn sbom_of_an_alpine_image_reads_the_apk_database() {
    if !have(&["umoci"]) {
        return;
    }
    let Some(bin) = validators() else { return };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let root = w.join("root");
    write_files(
        &root,
        &[
            ("lib/apk/db/installed", APK_INSTALLED),
            (
                "etc/os-release",
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.0\n",
            ),
        ],
    );
    let base = format!("oci:{}", umoci_image(&w.join("base"), "v1", &root));
    let project = w.join("project");
    write_files(&project, &[("hello.txt", "hello\n")]);
    let spec = write_spec(
        &project,
        &format!(
            "[image]\nname = \"alpine-sbom\"\nbase = \"{base}\"\nformat = \"oci\"\n\n[[copy]]\nsrc = \"hello.txt\"\ndest = \"/hello.txt\"\n"
        ),
    );
    let (_, spdx, _) = build_with_sbom(&spec, &w.join("cache"), &w.join("out"));
    let docs = w.join("out.sbom");
    validate(
        &bin,
        &docs.join("sbom.spdx.json"),
        &docs.join("sbom.cdx.json"),
    );
    let doc: serde_json::Value = serde_json::from_slice(&spdx).unwrap();
    let purls = purls(&doc);
    for want in [
        "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.0",
        "pkg:apk/alpine/busybox@1.36.1-r28?arch=x86_64&distro=alpine-3.20.0",
        "pkg:apk/alpine/ca-certificates-bundle@20240226-r0?arch=x86_64&distro=alpine-3.20.0",
    ] {
        assert!(purls.contains(want), "{want} not in {purls:?}");
    }
    assert_eq!(package(&doc, "busybox")["licenseDeclared"], "GPL-2.0-only");
    assert_eq!(
        package(&doc, "ca-certificates-bundle")["licenseDeclared"],
        "MPL-2.0 AND MIT"
    );
    // Image text is data: a name with control characters is no package, a
    // license no SPDX tool knows is kept as text, and both documents validate.
    assert!(!purls.iter().any(|p| p.contains("evil")), "{purls:?}");
    let custom = package(&doc, "custom");
    assert_eq!(custom["licenseDeclared"], "NOASSERTION");
    assert_eq!(
        custom["licenseComments"],
        "declared as: Custom \"license\" <see COPYING>"
    );
    let files = spdx_files(&doc);
    assert_eq!(files["/hello.txt"].0, sha256sum(&project.join("hello.txt")));
}
