//! Record the git revision for `kiln --version`; "unknown" outside a checkout.
//! With the `isal` feature, compile the ISA-L chunk deflater (src/layer/isal.c).

use std::process::Command;

fn main() {
    // The `isal` feature: one C function over Debian's libisal (libisal-dev).
    #[cfg(feature = "isal")]
    {
        println!("cargo:rerun-if-changed=src/layer/isal.c");
        cc::Build::new()
            .file("src/layer/isal.c")
            .compile("kiln_isal");
        println!("cargo:rustc-link-lib=isal");
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let revision = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=KILN_REVISION={revision}");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
}
