//! Every spec in specs/ parses and validates, so the examples in the
//! repository never rot. (tests/seeds.rs builds and runs them.)

use std::path::Path;

#[test]
fn every_example_spec_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let spec = entry.unwrap().path().join("kiln.toml");
        if !spec.is_file() {
            continue;
        }
        let loaded = kiln::spec::validate::load(&spec, &kiln::Inputs::default());
        if let Err(e) = &loaded {
            panic!("{}: {e}\nhint: {:?}", spec.display(), e.hint());
        }
        seen += 1;
    }
    assert!(seen >= 1, "no specs found under {}", root.display());
}
