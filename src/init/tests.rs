use super::detect::*;
use super::*;

#[test]
fn names_become_repository_names() {
    assert_eq!(repository_name("My App"), "my-app");
    assert_eq!(repository_name("web_v2.1"), "web_v2.1");
    assert_eq!(repository_name("--a__b--c.-d_"), "a__b--c-d");
    assert_eq!(repository_name("Ünïcode"), "n-code");
    assert_eq!(repository_name("..."), "app");
}

#[test]
fn ports_are_read_from_expose_and_env_lines() {
    assert_eq!(expose_port("EXPOSE 8080").as_deref(), Some("8080/tcp"));
    assert_eq!(
        expose_port("expose $PORT 53/UDP").as_deref(),
        Some("53/udp")
    );
    assert_eq!(expose_port("EXPOSED 1"), None);
    assert_eq!(expose_port("EXPOSE 0 70000"), None);
    assert_eq!(env_port("PORT=3000").as_deref(), Some("3000/tcp"));
    assert_eq!(
        env_port("export PORT=\"3000\" # web").as_deref(),
        Some("3000/tcp")
    );
    assert_eq!(env_port("DB_PORT=5432"), None);
}

#[test]
fn dynamic_elf_is_told_from_static() {
    let dir = tempfile::tempdir().unwrap();
    let dynamic = dir.path().join("dynamic");
    let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
    bytes.resize(0x238, 0);
    bytes.extend_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
    fs::write(&dynamic, &bytes).unwrap();
    let fixed = dir.path().join("static");
    fs::write(&fixed, b"\x7fELF\x02\x01\x01\0\0\0\0").unwrap();
    let script = dir.path().join("script");
    fs::write(&script, b"#!/lib/ld-x\n").unwrap();
    assert!(dynamically_linked(&dynamic));
    assert!(!dynamically_linked(&fixed));
    assert!(!dynamically_linked(&script));
}

#[test]
fn the_version_comes_from_the_project_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(project_version(d), None);
    fs::write(
        d.join("package.json"),
        r#"{"name": "web", "version": "2.1.0"}"#,
    )
    .unwrap();
    assert_eq!(project_version(d), Some(("2.1.0".into(), "package.json")));
    fs::write(
        d.join("Cargo.toml"),
        "[package]\nname = \"x\"\nversion = \"0.4.1\"\n",
    )
    .unwrap();
    assert_eq!(project_version(d), Some(("0.4.1".into(), "Cargo.toml")));
    // A workspace-inherited version is not text: the next manifest answers.
    fs::write(
        d.join("Cargo.toml"),
        "[package]\nversion.workspace = true\n",
    )
    .unwrap();
    assert_eq!(project_version(d), Some(("2.1.0".into(), "package.json")));
    fs::remove_file(d.join("package.json")).unwrap();
    fs::write(
        d.join("pyproject.toml"),
        "[tool.poetry]\nversion = \"1.0rc1\"\n",
    )
    .unwrap();
    assert_eq!(
        project_version(d),
        Some(("1.0rc1".into(), "pyproject.toml"))
    );
    fs::write(
        d.join("pyproject.toml"),
        "[project]\nversion = \"1.0\\\"\\ninjected\"\n",
    )
    .unwrap();
    assert_eq!(project_version(d), None);
}
