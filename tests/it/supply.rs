//! Supply chain: SBOMs, provenance, signatures and attestations attached to
//! the image, checked with openssl (the signatures), skopeo and umoci (the
//! layout still reads as before) and a real distribution 2.8 registry (no
//! referrers API: everything is found through the `sha256-<hex>` tag).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::common::*;

const IN_TOTO: &str = "application/vnd.in-toto+json";
const SIG_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// A P-256 key pair made by openssl: (private key, public key). With a
/// passphrase the private key is PKCS#8 encrypted with AES-256-CBC.
fn keys(dir: &Path, passphrase: Option<&str>) -> (PathBuf, PathBuf) {
    let key = dir.join("key.pem");
    let public = dir.join("pub.pem");
    let mut make = Command::new("openssl");
    make.args([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
    ])
    .arg(&key);
    if let Some(p) = passphrase {
        make.args(["-aes-256-cbc", "-pass", &format!("pass:{p}")]);
    }
    run(&mut make);
    let mut pubout = Command::new("openssl");
    pubout
        .arg("pkey")
        .arg("-in")
        .arg(&key)
        .args(["-pubout", "-out"])
        .arg(&public);
    if let Some(p) = passphrase {
        pubout.args(["-passin", &format!("pass:{p}")]);
    }
    run(&mut pubout);
    assert!(
        fs::read_to_string(&key)
            .unwrap()
            .contains(match passphrase {
                Some(_) => "BEGIN ENCRYPTED PRIVATE KEY",
                None => "BEGIN PRIVATE KEY",
            })
    );
    (key, public)
}

/// A spec of two inline files on scratch, in `format`.
fn spec(dir: &Path, format: &str, extra: &str) -> PathBuf {
    write_spec(
        dir,
        &format!(
            "[image]\nname = \"signed\"\ntag = \"1\"\nformat = \"{format}\"\ncreated = \"2024-05-01T00:00:00Z\"\n{extra}\n\
             [config]\nuser = \"10001:10001\"\n\n\
             [[file]]\npath = \"/etc/app.conf\"\ncontent = \"port = 8080\\n\"\n\n\
             [[file]]\npath = \"/app/VERSION\"\ncontent = \"1.0\\n\"\n"
        ),
    )
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

fn blob_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob(layout, digest)).unwrap()
}

/// The index.json entry tagged `tag`.
fn entry(layout: &Path, tag: &str) -> Value {
    let index = layout_index(layout);
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"))
        .clone()
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// openssl's verdict on `sig` (DER) over `data` with `public`.
fn openssl_verifies(public: &Path, data: &[u8], sig: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("data"), data).unwrap();
    fs::write(dir.path().join("sig.der"), sig).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(dir.path().join("sig.der"))
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    out.status.success() && said.contains("Verified OK")
}

fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Check a DSSE envelope with openssl; returns its in-toto statement.
fn openssl_envelope(public: &Path, envelope: &[u8]) -> Value {
    let env: Value = serde_json::from_slice(envelope).unwrap();
    assert_eq!(env["payloadType"], IN_TOTO);
    let payload = B64.decode(env["payload"].as_str().unwrap()).unwrap();
    let sig = B64
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    assert!(
        openssl_verifies(public, &pae(IN_TOTO, &payload), &sig),
        "openssl refuses the envelope"
    );
    serde_json::from_slice(&payload).unwrap()
}

fn verify(target: &str, public: &Path) -> std::process::Output {
    kiln()
        .args(["verify", target, "--key"])
        .arg(public)
        .output()
        .unwrap()
}

#[test]
fn a_signed_layout_verifies_with_openssl_and_still_reads_as_before() {
    if !have(&["openssl", "skopeo", "umoci"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keys(work.path(), None);
    let spec = spec(work.path(), "oci", "");
    let out = work.path().join("out");
    let digest = build(
        &spec,
        &[
            "--oci",
            out.to_str().unwrap(),
            "--sbom",
            "--provenance",
            "--sign-key",
            key.to_str().unwrap(),
        ],
    );
    // The image keeps its tag, a plain manifest; the signature and the referrers index sit beside it.
    assert_eq!(entry(&out, "1")["digest"], digest.as_str());
    assert_eq!(
        entry(&out, "1")["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(layout_index(&out)["manifests"].as_array().unwrap().len(), 4);
    let sig_manifest = blob_json(
        &out,
        entry(&out, &format!("sha256-{}.sig", hex(&digest)))["digest"]
            .as_str()
            .unwrap(),
    );
    let layer = &sig_manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = blob(&out, layer["digest"].as_str().unwrap());
    let said: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        said["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(said["critical"]["type"], "cosign container image signature");
    let sig = B64
        .decode(layer["annotations"][SIG_ANNOTATION].as_str().unwrap())
        .unwrap();
    assert!(
        openssl_verifies(&public, &payload, &sig),
        "openssl refuses the signature"
    );

    let referrers = blob_json(
        &out,
        entry(&out, &format!("sha256-{}", hex(&digest)))["digest"]
            .as_str()
            .unwrap(),
    );
    let mut predicates = Vec::new();
    for r in referrers["manifests"].as_array().unwrap() {
        let m = blob_json(&out, r["digest"].as_str().unwrap());
        assert_eq!(m["subject"]["digest"], digest.as_str());
        assert_eq!(m["artifactType"], r["artifactType"]);
        if r["artifactType"] == IN_TOTO {
            let statement = openssl_envelope(
                &public,
                &blob(&out, m["layers"][0]["digest"].as_str().unwrap()),
            );
            assert_eq!(statement["subject"][0]["digest"]["sha256"], hex(&digest));
            predicates.push(statement["predicateType"].as_str().unwrap().to_string());
            if statement["predicateType"] == "https://slsa.dev/provenance/v1" {
                let p = &statement["predicate"];
                assert!(
                    p["runDetails"]["builder"]["id"]
                        .as_str()
                        .unwrap()
                        .contains("kiln")
                );
                let spec_digest =
                    p["buildDefinition"]["externalParameters"]["spec"]["digest"]["sha256"]
                        .as_str()
                        .unwrap();
                let sha = run(Command::new("sha256sum").arg(&spec));
                assert!(sha.starts_with(spec_digest), "{sha} vs {spec_digest}");
            }
        }
    }
    predicates.sort();
    assert_eq!(
        predicates,
        [
            "https://cyclonedx.org/bom",
            "https://slsa.dev/provenance/v1",
            "https://spdx.dev/Document"
        ]
    );
    // The same envelopes where cosign verify-attestation looks: the `.att`
    // image, a layer each, with its predicate type and as a diff_id.
    let att = blob_json(
        &out,
        entry(&out, &format!("sha256-{}.att", hex(&digest)))["digest"]
            .as_str()
            .unwrap(),
    );
    let config = blob_json(&out, att["config"]["digest"].as_str().unwrap());
    let mut att_predicates = Vec::new();
    for (i, layer) in att["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
        assert_eq!(config["rootfs"]["diff_ids"][i], layer["digest"]);
        let statement = openssl_envelope(&public, &blob(&out, layer["digest"].as_str().unwrap()));
        assert_eq!(
            statement["predicateType"],
            layer["annotations"]["predicateType"]
        );
        att_predicates.push(statement["predicateType"].as_str().unwrap().to_string());
    }
    att_predicates.sort();
    assert_eq!(att_predicates, predicates);

    let verified = verify(&format!("oci:{}", out.display()), &public);
    check(&kiln(), &verified);
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        said.contains(&format!("{digest}: signature verified, signed as signed")),
        "{said}"
    );
    assert!(
        said.contains("https://slsa.dev/provenance/v1 (verified): builder https://kiln.dev/kiln@v"),
        "{said}"
    );

    let spdx = parse_json(&run(
        kiln().args(["sbom", &format!("oci:{}:1", out.display())])
    ));
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    let cdx = parse_json(&run(kiln().args([
        "sbom",
        &format!("oci:{}", out.display()),
        "--format",
        "cyclonedx",
    ])));
    assert_eq!(cdx["bomFormat"], "CycloneDX");

    // skopeo and umoci still read the image by its tag.
    skopeo_copy(
        &format!("oci:{}:1", out.display()),
        &format!("oci:{}:1", work.path().join("copy").display()),
        &[],
    );
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:1", out.display())])
        .arg(&bundle));
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/app/VERSION")).unwrap(),
        "1.0\n"
    );
}

#[test]
fn without_attachments_index_json_names_the_image_alone() {
    if !have(&["skopeo"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path(), "docker", "");
    let out = work.path().join("out");
    build(&spec, &["--oci", out.to_str().unwrap()]);
    assert_eq!(layout_index(&out)["manifests"].as_array().unwrap().len(), 1);
    // An SBOM alone (no key) is attached all the same, and kiln reads the untagged layout.
    let sbom = work.path().join("sbom");
    build(&spec, &["--oci", sbom.to_str().unwrap(), "--sbom"]);
    let spdx = parse_json(&run(
        kiln().args(["sbom", &format!("oci:{}", sbom.display())])
    ));
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    run(kiln().args(["inspect", &format!("oci:{}", sbom.display())]));
}

/// Put `bytes` in the layout in place of the blob `old`, and rewrite every
/// manifest, index and index.json that names it (and what names those),
/// as someone tampering with the layout would.
fn replace_blob(layout: &Path, old: &str, bytes: &[u8]) {
    use sha2::Digest as _;
    let sum = sha2::Sha256::digest(bytes);
    let new = format!(
        "sha256:{}",
        sum.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    fs::write(layout.join("blobs/sha256").join(hex(&new)), bytes).unwrap();
    fn fix(v: &mut Value, old: &str, new: &str, size: usize) -> bool {
        let mut changed = false;
        match v {
            Value::Object(map) => {
                if map.get("digest").and_then(Value::as_str) == Some(old) {
                    map.insert("digest".into(), json!(new));
                    map.insert("size".into(), json!(size));
                    changed = true;
                }
                for (_, x) in map.iter_mut() {
                    changed |= fix(x, old, new, size);
                }
            }
            Value::Array(items) => {
                for x in items {
                    changed |= fix(x, old, new, size);
                }
            }
            _ => {}
        }
        changed
    }
    for e in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = e.unwrap().path();
        let Ok(mut v) = serde_json::from_slice::<Value>(&fs::read(&path).unwrap()) else {
            continue;
        };
        if fix(&mut v, old, &new, bytes.len()) {
            let name = format!("sha256:{}", path.file_name().unwrap().to_str().unwrap());
            replace_blob(layout, &name, &serde_json::to_vec(&v).unwrap());
        }
    }
    let mut index = layout_index(layout);
    if fix(&mut index, old, &new, bytes.len()) {
        fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn a_tampered_manifest_payload_signature_or_envelope_fails_verify() {
    if !have(&["openssl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keys(work.path(), None);
    let spec = spec(work.path(), "oci", "");
    let out = work.path().join("out");
    let digest = build(
        &spec,
        &[
            "--oci",
            out.to_str().unwrap(),
            "--provenance",
            "--sign-key",
            key.to_str().unwrap(),
        ],
    );
    let fresh = |name: &str| {
        let dir = work.path().join(name);
        copy_tree(&out, &dir);
        dir
    };
    let fails = |dir: &Path, says: &str| {
        let o = verify(&format!("oci:{}:1", dir.display()), &public);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "expected {says:?} in:\n{stderr}");
    };
    let sig_digest = entry(&out, &format!("sha256-{}.sig", hex(&digest)))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let sig_manifest = blob_json(&out, &sig_digest);
    let payload_digest = sig_manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // The image manifest, changed in place.
    let dir = fresh("manifest");
    let path = dir.join("blobs/sha256").join(hex(&digest));
    let mut m: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    m["annotations"]["evil"] = json!("1");
    fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    fails(&dir, "the image manifest");

    // The image manifest replaced (new digest): no signature names it.
    let dir = fresh("manifest2");
    replace_blob(&dir, &digest, &serde_json::to_vec(&m).unwrap());
    fails(&dir, "has no signature");

    // The payload: another digest in it.
    let dir = fresh("payload");
    let mut p: Value = serde_json::from_slice(&blob(&out, &payload_digest)).unwrap();
    p["critical"]["identity"]["docker-reference"] = json!("evil/app");
    replace_blob(&dir, &payload_digest, &serde_json::to_vec(&p).unwrap());
    fails(&dir, "the signature");
    fails(&dir, "does not verify");

    // The signature: another one, by the right key over other bytes.
    let dir = fresh("signature");
    let mut s = sig_manifest.clone();
    let other = run(Command::new("sh").arg("-c").arg(format!(
        "printf other | openssl dgst -sha256 -sign {} | base64 -w0",
        key.display()
    )));
    s["layers"][0]["annotations"][SIG_ANNOTATION] = json!(other.trim());
    replace_blob(&dir, &sig_digest, &serde_json::to_vec(&s).unwrap());
    fails(&dir, "does not verify");

    // The provenance envelope: a changed statement under the old signature.
    let dir = fresh("envelope");
    let referrers = blob_json(
        &out,
        entry(&out, &format!("sha256-{}", hex(&digest)))["digest"]
            .as_str()
            .unwrap(),
    );
    let att = blob_json(&out, referrers["manifests"][0]["digest"].as_str().unwrap());
    let env_digest = att["layers"][0]["digest"].as_str().unwrap();
    let mut env: Value = serde_json::from_slice(&blob(&out, env_digest)).unwrap();
    let mut statement: Value =
        serde_json::from_slice(&B64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    statement["predicate"]["runDetails"]["builder"]["id"] = json!("https://evil.example/builder");
    env["payload"] = json!(B64.encode(serde_json::to_vec(&statement).unwrap()));
    replace_blob(&dir, env_digest, &serde_json::to_vec(&env).unwrap());
    fails(&dir, "the attestation envelope");

    // A payload far larger than a signature payload is refused unread.
    let dir = fresh("huge");
    let mut big = p.clone();
    big["optional"] = json!({ "pad": "x".repeat(100 << 10) });
    replace_blob(&dir, &payload_digest, &serde_json::to_vec(&big).unwrap());
    fails(&dir, "more than kiln reads");

    // A FIFO in place of a blob is refused, not waited on.
    let dir = fresh("fifo");
    let payload_path = dir.join("blobs/sha256").join(hex(&payload_digest));
    fs::remove_file(&payload_path).unwrap();
    run(Command::new("mkfifo").arg(&payload_path));
    fails(&dir, "is not a regular file");

    // Another key: nothing verifies.
    let other = work.path().join("other");
    fs::create_dir(&other).unwrap();
    let (_, other_public) = keys(&other, None);
    let o = verify(&format!("oci:{}:1", out.display()), &other_public);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another key signed it"));

    // The untouched copy still verifies.
    check(
        &kiln(),
        &verify(&format!("oci:{}:1", fresh("clean").display()), &public),
    );
}

#[test]
fn two_builds_attach_the_same_bytes() {
    if !have(&["openssl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (key, _) = keys(work.path(), None);
    let spec = spec(work.path(), "oci", "sbom = true\nprovenance = true");
    let mut indexes = Vec::new();
    for n in ["a", "b"] {
        let out = work.path().join(n);
        build(
            &spec,
            &[
                "--oci",
                out.to_str().unwrap(),
                "--sign-key",
                key.to_str().unwrap(),
            ],
        );
        indexes.push(fs::read(out.join("index.json")).unwrap());
    }
    // index.json names the image, its signature, its attestations and its
    // referrers by digest: all equal.
    assert_eq!(indexes[0], indexes[1]);
    assert_eq!(
        parse_json(&String::from_utf8_lossy(&indexes[0]))["manifests"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn an_encrypted_key_takes_its_passphrase_from_the_environment() {
    if !have(&["openssl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let secret = "correct horse battery";
    let (key, public) = keys(work.path(), Some(secret));
    let spec = spec(work.path(), "docker", "");
    let out = work.path().join("out");
    let args = [
        "build",
        spec.to_str().unwrap(),
        "--oci",
        out.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
    ];
    let o = kiln()
        .args(args)
        .env_remove("KILN_SIGN_PASSWORD")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("KILN_SIGN_PASSWORD"), "{stderr}");
    let o = kiln()
        .args(args)
        .env("KILN_SIGN_PASSWORD", "wrong horse")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("wrong horse"), "{stderr}");
    let o = kiln()
        .args(args)
        .args(["-v"])
        .env("KILN_SIGN_PASSWORD", secret)
        .output()
        .unwrap();
    check(&kiln(), &o);
    assert!(!String::from_utf8_lossy(&o.stderr).contains(secret));
    // A Docker-format image: the signature names its schema2 manifest.
    check(&kiln(), &verify(&format!("oci:{}", out.display()), &public));
    let manifest = layout_manifest(&out);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

/// GET a path of a plain-HTTP registry on loopback: (status, body).
fn http_get(addr: &str, path: &str, accept: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, all[split + 4..].to_vec())
}

#[test]
fn a_push_is_found_through_the_referrers_tag() {
    let Some((work, registry)) = with_registry(&["docker-registry", "skopeo", "openssl"]) else {
        return;
    };
    let (key, public) = keys(work.path(), None);
    let spec = write_spec(
        work.path(),
        "[image]\nname = \"multi\"\nformat = \"oci\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsbom = true\n\n\
         [config]\nuser = \"10001:10001\"\n\n\
         [[file]]\npath = \"/etc/arch\"\ncontent = \"${TARGETARCH}\\n\"\n",
    );
    let target = format!("{}/team/multi:1", registry.addr);
    let cache = work.path().join("cache");
    let push = || {
        kiln_build(
            &spec,
            &cache,
            &[
                "--push",
                &target,
                "--provenance",
                "--sign-key",
                key.to_str().unwrap(),
                "--format",
                "json",
            ],
        )
    };
    let o = push();
    check(&kiln(), &o);
    let summary = parse_json(&String::from_utf8_lossy(&o.stdout));
    let top = summary["manifest"]["digest"].as_str().unwrap().to_string();
    // 2 platforms x (2 SBOMs, 3 attestations, cosign's .att of them, 1
    // signature), and the index's signature.
    assert_eq!(
        summary["attachments"].as_array().unwrap().len(),
        15,
        "{summary}"
    );
    assert_eq!(
        summary["push"]["referrers"],
        json!(["referrers-tag", "referrers-tag"])
    );
    // distribution 2.8 has no referrers API.
    let (status, _) = http_get(
        &registry.addr,
        &format!("/v2/team/multi/referrers/{top}"),
        "application/vnd.oci.image.index.v1+json",
    );
    assert_eq!(status, 404);
    let index = parse_json(&run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ])));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    for m in index["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        let tag = format!("docker://{}/team/multi:sha256-{}", registry.addr, hex(d));
        let referrers = parse_json(&run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &tag,
        ])));
        let types: Vec<&str> = referrers["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["artifactType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "application/spdx+json",
                "application/vnd.cyclonedx+json",
                IN_TOTO,
                IN_TOTO,
                IN_TOTO
            ],
            "{referrers}"
        );
        // cosign's .att image holds the three envelopes.
        let att = parse_json(&run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!(
                "docker://{}/team/multi:sha256-{}.att",
                registry.addr,
                hex(d)
            ),
        ])));
        assert_eq!(att["layers"].as_array().unwrap().len(), 3, "{att}");
        // The signature pulled back with skopeo, checked with openssl.
        let sig_dir = work.path().join(format!("sig-{}", hex(d)));
        skopeo_copy(
            &format!(
                "docker://{}/team/multi:sha256-{}.sig",
                registry.addr,
                hex(d)
            ),
            &format!("oci:{}:sig", sig_dir.display()),
            &["--src-tls-verify=false"],
        );
        let sig_manifest = blob_json(&sig_dir, entry(&sig_dir, "sig")["digest"].as_str().unwrap());
        let layer = &sig_manifest["layers"][0];
        let payload = blob(&sig_dir, layer["digest"].as_str().unwrap());
        let sig = B64
            .decode(layer["annotations"][SIG_ANNOTATION].as_str().unwrap())
            .unwrap();
        assert!(openssl_verifies(&public, &payload, &sig));
        // Each attestation envelope, fetched from the registry, checked with openssl.
        for r in referrers["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["artifactType"] == IN_TOTO)
        {
            let (_, m) = http_get(
                &registry.addr,
                &format!("/v2/team/multi/manifests/{}", r["digest"].as_str().unwrap()),
                "application/vnd.oci.image.manifest.v1+json",
            );
            let m: Value = serde_json::from_slice(&m).unwrap();
            assert_eq!(m["subject"]["digest"], d);
            let (_, env) = http_get(
                &registry.addr,
                &format!(
                    "/v2/team/multi/blobs/{}",
                    m["layers"][0]["digest"].as_str().unwrap()
                ),
                "*/*",
            );
            let statement = openssl_envelope(&public, &env);
            assert_eq!(statement["subject"][0]["digest"]["sha256"], hex(d));
        }
    }
    let verified = verify(&target, &public);
    check(&kiln(), &verified);
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        said.contains(&format!("{top}: signature verified")),
        "{said}"
    );
    assert!(said.contains("(linux/arm64)"), "{said}");
    let cdx = parse_json(&run(kiln().args([
        "sbom",
        &target,
        "--platform",
        "linux/arm64",
        "--format",
        "cyclonedx",
    ])));
    assert_eq!(cdx["bomFormat"], "CycloneDX");

    // Pushed again: the referrers tag keeps one entry per artifact.
    check(&kiln(), &push());
    let d = index["manifests"][0]["digest"].as_str().unwrap();
    let tag = format!("docker://{}/team/multi:sha256-{}", registry.addr, hex(d));
    let referrers = parse_json(&run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &tag,
    ])));
    assert_eq!(referrers["manifests"].as_array().unwrap().len(), 5);
}

#[test]
fn annotations_from_the_spec_with_args() {
    let work = tempfile::tempdir().unwrap();
    let spec = write_spec(
        work.path(),
        "[image]\nname = \"notes\"\nformat = \"oci\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ncreated = \"2024-05-01T00:00:00Z\"\n\n\
         [args]\nREV = \"abc123\"\n\n\
         [config]\nuser = \"10001:10001\"\n\n\
         [annotations]\n\"org.opencontainers.image.revision\" = \"${REV}\"\n\n\
         [index-annotations]\n\"org.opencontainers.image.source\" = \"https://example.com/${REV}\"\n\n\
         [[file]]\npath = \"/x\"\ncontent = \"x\"\n",
    );
    let out = work.path().join("out");
    build(
        &spec,
        &["--oci", out.to_str().unwrap(), "--build-arg", "REV=def456"],
    );
    let index = blob_json(
        &out,
        layout_index(&out)["manifests"][0]["digest"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.source"],
        "https://example.com/def456"
    );
    let manifest = blob_json(&out, index["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.revision"],
        "def456"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2024-05-01T00:00:00Z"
    );

    let docker = work.path().join("docker");
    fs::create_dir(&docker).unwrap();
    let spec = write_spec(
        &docker,
        "[image]\nformat = \"docker\"\n\n[index-annotations]\na = \"b\"\n",
    );
    let stderr = build_refused(&spec, &[]);
    assert!(
        stderr.contains("[index-annotations] need format = \"oci\""),
        "{stderr}"
    );
}

#[test]
fn provenance_records_allow_listed_ci_variables_and_no_secret() {
    let work = tempfile::tempdir().unwrap();
    let spec = spec(work.path(), "oci", "");
    let out = work.path().join("out");
    let stdout = run(kiln()
        .arg("build")
        .arg(&spec)
        .args([
            "--oci",
            out.to_str().unwrap(),
            "--provenance",
            "--no-check",
            "--build-arg",
            "API_TOKEN=tok-3141",
        ])
        .env("GITHUB_SHA", "0123abcd")
        .env("GITHUB_REPOSITORY", "acme/web")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "42")
        .env("GITHUB_TOKEN", "ghs_planted5926")
        .env("CI_JOB_TOKEN", "glcbt-planted5358"));
    let digest = stdout.trim().rsplit_once('@').unwrap().1.to_string();
    let referrers = blob_json(
        &out,
        entry(&out, &format!("sha256-{}", hex(&digest)))["digest"]
            .as_str()
            .unwrap(),
    );
    let r = &referrers["manifests"][0];
    assert_eq!(r["artifactType"], IN_TOTO);
    assert_eq!(
        r["annotations"]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    // Without a key the statement is stored as it is, unsigned.
    let m = blob_json(&out, r["digest"].as_str().unwrap());
    assert_eq!(m["layers"][0]["mediaType"], IN_TOTO);
    let statement = blob_json(&out, m["layers"][0]["digest"].as_str().unwrap());
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["subject"][0]["digest"]["sha256"], hex(&digest));
    let p = &statement["predicate"];
    assert_eq!(
        p["buildDefinition"]["internalParameters"]["ci"]["GITHUB_SHA"],
        "0123abcd"
    );
    assert_eq!(
        p["buildDefinition"]["internalParameters"]["created"],
        "2024-05-01T00:00:00Z"
    );
    assert_eq!(
        p["buildDefinition"]["externalParameters"]["buildArgs"]["API_TOKEN"],
        "(withheld)"
    );
    assert_eq!(
        p["runDetails"]["metadata"]["invocationId"],
        "https://github.com/acme/web/actions/runs/42/attempts/1"
    );
    // No planted secret anywhere in the layout.
    for e in fs::read_dir(out.join("blobs/sha256")).unwrap() {
        let bytes = fs::read(e.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for planted in ["ghs_planted5926", "glcbt-planted5358", "tok-3141"] {
            assert!(!text.contains(planted), "{planted} leaked");
        }
    }
}

#[test]
fn each_platform_of_an_index_gets_its_own_attachments_in_the_layout() {
    if !have(&["openssl"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keys(work.path(), None);
    let spec = write_spec(
        work.path(),
        "[image]\nname = \"multi\"\nformat = \"docker\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
         [config]\nuser = \"10001:10001\"\n\n\
         [[file]]\npath = \"/etc/arch\"\ncontent = \"${TARGETARCH}\\n\"\n",
    );
    let out = work.path().join("out");
    let top = build(
        &spec,
        &[
            "--oci",
            out.to_str().unwrap(),
            "--sbom",
            "--sign-key",
            key.to_str().unwrap(),
        ],
    );
    let list = blob_json(&out, &top);
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    // The list, and each platform's manifest, signed; each manifest with its referrers.
    entry(&out, &format!("sha256-{}.sig", hex(&top)));
    for m in list["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        entry(&out, &format!("sha256-{}.sig", hex(d)));
        let referrers = blob_json(
            &out,
            entry(&out, &format!("sha256-{}", hex(d)))["digest"]
                .as_str()
                .unwrap(),
        );
        for r in referrers["manifests"].as_array().unwrap() {
            let artifact = blob_json(&out, r["digest"].as_str().unwrap());
            assert_eq!(artifact["subject"]["digest"], d);
            // A Docker schema2 manifest as the subject, named by its own media type.
            assert_eq!(
                artifact["subject"]["mediaType"],
                "application/vnd.docker.distribution.manifest.v2+json"
            );
        }
    }
    // Per platform: tag, .sig, .att, referrers; and the list's .sig.
    assert_eq!(layout_index(&out)["manifests"].as_array().unwrap().len(), 8);
    let verified = verify(&format!("oci:{}", out.display()), &public);
    check(&kiln(), &verified);
    let said = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(said.matches("signature verified").count(), 3, "{said}");
    assert!(
        said.contains("(linux/arm64)") && said.contains("(linux/amd64)"),
        "{said}"
    );
    let spdx = parse_json(&run(kiln().args([
        "sbom",
        &format!("oci:{}", out.display()),
        "--platform",
        "linux/arm64",
    ])));
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
}
