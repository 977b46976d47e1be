//! Package databases: real shapes, and garbage, truncated and hostile input.

use super::*;

const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 More text.

Package: old-conf
Status: deinstall ok config-files
Architecture: all
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
Source: tzdata

Package: base-files
Status: hold ok installed
Architecture: amd64
Version: 12.4+deb12u5
";

fn names(p: &[Package]) -> Vec<(&str, &str)> {
    p.iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect()
}

#[test]
fn dpkg_status_lists_installed_packages() {
    let p = dpkg(STATUS.as_bytes(), false);
    assert_eq!(
        names(&p),
        [
            ("libc6", "2.36-9+deb12u4"),
            ("tzdata", "2024a-0+deb12u1"),
            ("base-files", "12.4+deb12u5")
        ]
    );
    assert_eq!(p[0].arch.as_deref(), Some("amd64"));
    assert_eq!(p[0].source.as_deref(), Some("glibc"));
    // A source named like its package says nothing.
    assert_eq!(p[1].source, None);
    assert!(p.iter().all(|p| p.ecosystem == Ecosystem::Deb));
}

#[test]
fn a_distroless_status_d_record_has_no_status_field() {
    let record = "Package: libssl3\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\nArchitecture: arm64\n";
    let p = dpkg(record.as_bytes(), false);
    assert_eq!(names(&p), [("libssl3", "3.0.11-1~deb12u2")]);
    assert_eq!(p[0].source.as_deref(), Some("openssl"));
}

#[test]
fn a_truncated_status_drops_its_last_stanza() {
    let cut = &STATUS[..STATUS.find("12.4").unwrap() + 2];
    let p = dpkg(cut.as_bytes(), true);
    assert_eq!(
        names(&p),
        [("libc6", "2.36-9+deb12u4"), ("tzdata", "2024a-0+deb12u1")]
    );
}

#[test]
fn crlf_and_odd_spacing_are_read() {
    let text =
        "Package:  zlib1g \r\nVersion:1:1.2.13.dfsg-1\r\nstatus: install ok installed\r\n\r\n";
    let p = dpkg(text.as_bytes(), false);
    assert_eq!(names(&p), [("zlib1g", "1:1.2.13.dfsg-1")]);
}

const APK: &str = "\
C:Q1abc=
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
F:lib
R:ld-musl-x86_64.so.1

C:Q1def=
P:libcrypto3
V:3.3.1-r0
A:x86_64
L:Apache-2.0
o:openssl
";

#[test]
fn apk_installed_lists_packages_with_licenses() {
    let p = apk(APK.as_bytes(), false);
    assert_eq!(
        names(&p),
        [("musl", "1.2.5-r0"), ("libcrypto3", "3.3.1-r0")]
    );
    assert_eq!(p[0].license.as_deref(), Some("MIT"));
    assert_eq!(p[0].source, None);
    assert_eq!(p[1].source.as_deref(), Some("openssl"));
    assert_eq!(p[1].arch.as_deref(), Some("x86_64"));
    assert_eq!(apk(APK.as_bytes(), true).len(), 1);
}

#[test]
fn metadata_prefers_the_license_expression() {
    let m = "Metadata-Version: 2.4\nName: attrs\nVersion: 26.1.0\nLicense-Expression: MIT\nLicense: Something else\nClassifier: License :: OSI Approved :: MIT License\n\nLicense: in the body, ignored\n";
    let p = python(m.as_bytes()).unwrap();
    assert_eq!((p.name.as_str(), p.version.as_str()), ("attrs", "26.1.0"));
    assert_eq!(p.license.as_deref(), Some("MIT"));
    assert_eq!(p.ecosystem, Ecosystem::Python);
}

#[test]
fn metadata_with_a_whole_license_text_falls_back_to_classifiers() {
    let m = "Metadata-Version: 2.1\nName: defusedxml\nVersion: 0.7.1\nLicense: PYTHON SOFTWARE FOUNDATION LICENSE\n        --------------------------------------------\n        1. This LICENSE AGREEMENT is between\nClassifier: License :: OSI Approved :: Python Software Foundation License\nClassifier: License :: OSI Approved :: MIT License\nClassifier: Programming Language :: Python\n";
    let p = python(m.as_bytes()).unwrap();
    assert_eq!(
        p.license.as_deref(),
        Some("Python Software Foundation License; MIT License")
    );
}

#[test]
fn metadata_license_line_and_unknown() {
    let one = "Name: cryptography\nVersion: 38.0.4\nLicense: BSD-3-Clause OR Apache-2.0\n";
    assert_eq!(
        python(one.as_bytes()).unwrap().license.as_deref(),
        Some("BSD-3-Clause OR Apache-2.0")
    );
    let unknown = "Name: x\nVersion: 1\nLicense: UNKNOWN\n";
    assert_eq!(python(unknown.as_bytes()).unwrap().license, None);
}

#[test]
fn metadata_without_name_or_version_is_no_package() {
    assert_eq!(python(b"Name: x\n"), None);
    assert_eq!(python(b"Version: 1\n"), None);
    assert_eq!(python(b""), None);
    assert_eq!(
        python(b"\n\nName: x\nVersion: 1\n"),
        python(b"Name: x\nVersion: 1\n")
    );
}

#[test]
fn hostile_values_are_left_out() {
    let long = format!("Name: {}\nVersion: 1\n", "a".repeat(10_000));
    assert_eq!(python(long.as_bytes()), None);
    assert_eq!(python(b"Name: a b\nVersion: 1\n"), None);
    assert_eq!(python(b"Name: a\x1b[31m\nVersion: 1\n"), None);
    let p = python(b"Name: \xff\xfe\nVersion: 1\n").unwrap();
    assert_eq!(p.name, "\u{fffd}\u{fffd}");
    let bell = "Name: a\nVersion: 1\nLicense-Expression: MIT\x07\n";
    assert_eq!(python(bell.as_bytes()).unwrap().license, None);
}

#[test]
fn os_release_id_and_version() {
    let r = os_release(
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    assert_eq!(r.id.as_deref(), Some("debian"));
    assert_eq!(r.version_id.as_deref(), Some("12"));
    assert_eq!(os_release(b"garbage\n=\nID\n"), OsRelease::default());
}

/// Every prefix of real inputs and a spread of byte soups: no panic, and
/// nothing kept that is not one printable word.
#[test]
fn garbage_and_truncation_never_panic() {
    let inputs: Vec<Vec<u8>> = vec![
        STATUS.as_bytes().to_vec(),
        APK.as_bytes().to_vec(),
        b"Name: x\nVersion: 1\nLicense: a\n  b\n\tc\n".to_vec(),
    ];
    let check = |p: &Package| {
        for v in [&p.name, &p.version] {
            assert!(!v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control()));
        }
    };
    for input in &inputs {
        for n in 0..=input.len() {
            for cut in [true, false] {
                dpkg(&input[..n], cut).iter().for_each(check);
                apk(&input[..n], cut).iter().for_each(check);
            }
            python(&input[..n]).iter().for_each(check);
            os_release(&input[..n]);
        }
    }
    // A simple deterministic generator: bytes weighted towards the
    // characters the formats care about.
    let alphabet = b"PV:AL\n \t\r\x00\xff\xc3Status: installed.-+~";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..2000 {
        let len = (state % 300) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect();
        dpkg(&bytes, false).iter().for_each(check);
        apk(&bytes, true).iter().for_each(check);
        python(&bytes).iter().for_each(check);
        os_release(&bytes);
    }
}

#[test]
fn a_continuation_before_any_field_is_ignored() {
    let p = dpkg(b" orphan\nPackage: a\nVersion: 1\n", false);
    assert_eq!(names(&p), [("a", "1")]);
}
