//! Purls, package gathering and the two documents, from hand-made facts.

use std::sync::Arc;

use super::*;
use crate::plan::Origin;
use dbfiles::DbFile;
use files::Hashes;

fn db(path: &str, db: Db, bytes: &str, added: bool) -> DbFile {
    DbFile {
        path: path.into(),
        db,
        bytes: bytes.as_bytes().to_vec(),
        truncated: false,
        added,
    }
}

fn facts() -> Facts {
    let dbs = vec![
        db(
            "/etc/os-release",
            Db::OsRelease,
            "ID=debian\nVERSION_ID=\"12\"\n",
            false,
        ),
        db(
            "/var/lib/dpkg/status",
            Db::Dpkg,
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n",
            false,
        ),
        db(
            "/app/lib/site-packages/Flask_Cors-4.0.dist-info/METADATA",
            Db::Python,
            "Name: Flask_Cors\nVersion: 4.0\nLicense: MIT License\n",
            true,
        ),
    ];
    let origin = Arc::new(Origin {
        what: "the copy of `/bin/tool` from reg/tool:1".into(),
        at: Some(10..20),
        image: Some(("reg/tool:1".into(), format!("sha256:{}", "b".repeat(64)))),
    });
    let file = |path: &str, sha: char, origin: Option<Arc<Origin>>, line| Described {
        file: AddedFile {
            path: path.into(),
            size: 3,
            hashes: Hashes {
                sha1: sha.to_string().repeat(40),
                sha256: sha.to_string().repeat(64),
            },
            uid: 10001,
            gid: 10001,
            mode: 0o755,
            origin: origin.clone(),
        },
        what: origin.as_ref().map(|o| o.what.clone()),
        line,
        image: origin.and_then(|o| o.image.clone()),
    };
    Facts {
        name: "app".into(),
        tag: "1.0".into(),
        digest: format!("sha256:{}", "a".repeat(64)),
        platform: "linux/amd64".into(),
        created: "2025-01-01T00:00:00Z".into(),
        spec_file: "kiln.toml".into(),
        base: Some(("oci:base:v1".into(), format!("sha256:{}", "c".repeat(64)))),
        sources: vec![("reg/tool:1".into(), format!("sha256:{}", "b".repeat(64)))],
        files: vec![
            file("/app/\"quoted\"\n\u{1b}[31m", 'd', None, None),
            file("/bin/tool", 'e', Some(origin), Some(3)),
        ],
        packages: found_packages(dbs),
    }
}

#[test]
fn purls_as_the_purl_spec_writes_them() {
    let f = facts();
    let purls: Vec<&str> = f.packages.iter().map(|p| p.purl.as_str()).collect();
    assert_eq!(
        purls,
        [
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
            "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
            "pkg:pypi/flask-cors@4.0",
        ]
    );
    let apk = Package {
        ecosystem: Ecosystem::Apk,
        name: "musl".into(),
        version: "1.2.5-r0".into(),
        arch: Some("x86_64".into()),
        source: None,
        license: None,
    };
    let alpine = OsRelease {
        id: Some("alpine".into()),
        version_id: Some("3.20.0".into()),
    };
    assert_eq!(
        purl(&apk, &alpine),
        "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.0"
    );
    let epoch = Package {
        ecosystem: Ecosystem::Deb,
        version: "1:1.2.13.dfsg-1".into(),
        ..apk
    };
    assert_eq!(
        purl(&epoch, &OsRelease::default()),
        "pkg:deb/debian/musl@1%3A1.2.13.dfsg-1?arch=x86_64&distro=debian"
    );
}

#[test]
fn packages_remember_where_they_were_recorded() {
    let f = facts();
    let flask = f
        .packages
        .iter()
        .find(|p| p.package.name == "Flask_Cors")
        .unwrap();
    assert!(flask.added);
    assert_eq!(flask.expression, None);
    let libc = f
        .packages
        .iter()
        .find(|p| p.package.name == "libc6")
        .unwrap();
    assert_eq!(libc.recorded_in, ["/var/lib/dpkg/status"]);
    assert!(!libc.added);
}

#[test]
fn the_documents_are_the_same_bytes_every_time() {
    let (a, b) = (facts(), facts());
    assert_eq!(spdx::render(&a), spdx::render(&b));
    assert_eq!(cyclonedx::render(&a), cyclonedx::render(&b));
    // Another image digest, other identifiers.
    let mut c = facts();
    c.digest = format!("sha256:{}", "f".repeat(64));
    assert_ne!(a.uuid("spdx"), c.uuid("spdx"));
    assert_ne!(a.uuid("spdx"), a.uuid("cyclonedx"));
}

#[test]
fn the_spdx_document_says_what_the_image_holds() {
    let doc: serde_json::Value = serde_json::from_slice(&spdx::render(&facts())).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2025-01-01T00:00:00Z");
    let ns = doc["documentNamespace"].as_str().unwrap();
    assert!(
        ns.starts_with("https://spdx.org/spdxdocs/kiln/app-"),
        "{ns}"
    );
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files[1]["fileName"], "./bin/tool");
    assert_eq!(files[1]["checksums"][1]["checksumValue"], "e".repeat(64));
    let comment = files[1]["comment"].as_str().unwrap();
    assert!(
        comment.contains("owner 10001:10001, mode 0755"),
        "{comment}"
    );
    assert!(comment.contains("kiln.toml, line 3"), "{comment}");
    assert!(comment.contains(&format!("reg/tool:1@sha256:{}", "b".repeat(64))));
    // Image-controlled text is data: JSON escapes it.
    assert_eq!(files[0]["fileName"], "./app/\"quoted\"\n\u{1b}[31m");
    let packages = doc["packages"].as_array().unwrap();
    let libc = packages.iter().find(|p| p["name"] == "libc6").unwrap();
    assert_eq!(libc["licenseDeclared"], "NOASSERTION");
    let flask = packages.iter().find(|p| p["name"] == "Flask_Cors").unwrap();
    assert_eq!(flask["licenseComments"], "declared as: MIT License");
    assert_eq!(packages[0]["filesAnalyzed"], true);
}

#[test]
fn the_cyclonedx_document_says_what_the_image_holds() {
    let doc: serde_json::Value = serde_json::from_slice(&cyclonedx::render(&facts())).unwrap();
    assert_eq!(doc["specVersion"], "1.6");
    let serial = doc["serialNumber"].as_str().unwrap();
    assert_eq!(serial.len(), "urn:uuid:".len() + 36, "{serial}");
    assert_eq!(&serial[9 + 14..9 + 15], "8", "a version 8 UUID: {serial}");
    let components = doc["components"].as_array().unwrap();
    let tool = components
        .iter()
        .find(|c| c["name"] == "/bin/tool")
        .unwrap();
    assert_eq!(tool["type"], "file");
    let props: Vec<(&str, &str)> = tool["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["value"].as_str().unwrap()))
        .collect();
    assert!(
        props.contains(&("kiln:spec-line", "kiln.toml:3")),
        "{props:?}"
    );
    assert!(props.contains(&("kiln:mode", "0755")));
    let flask = components
        .iter()
        .find(|c| c["name"] == "Flask_Cors")
        .unwrap();
    assert_eq!(flask["licenses"][0]["license"]["name"], "MIT License");
    assert_eq!(doc["dependencies"][0]["dependsOn"][0], "base");
}
