//! A build stopped at a random moment. SIGTERM and SIGINT remove kiln's
//! temp files and exit 143 / 130; after a SIGKILL the next run collects
//! what was left. Either way the layout path holds a complete layout, the
//! old one or the new one, never a mix or nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A spec whose one layer takes a second or two: 64 MiB that gzip cannot shrink.
fn big_spec(work: &Path) -> PathBuf {
    let app = work.join("spec/app");
    fs::create_dir_all(&app).unwrap();
    for i in 0..16 {
        fs::write(app.join(format!("f{i:02}")), noise_bytes(4 << 20, i + 1)).unwrap();
    }
    write_spec(
        &work.join("spec"),
        "[image]\nname = \"big\"\ncompression-level = 1\n[[copy]]\nsrc = \"app/\"\ndest = \"/app/\"\n[policy]\nenforce = false\n",
    )
}

/// A build into `layout`; each epoch makes a different image (and misses the layer cache).
fn start(spec: &Path, cache: &Path, layout: &Path, epoch: u64) -> Child {
    kiln()
        .arg("build")
        .arg(spec)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--oci")
        .arg(layout)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every `.kiln-tmp` path under `dir`.
fn temp_paths(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().contains("kiln-tmp") {
            found.push(p);
        } else if e.file_type().unwrap().is_dir() && !p.ends_with("blobs") {
            found.extend(temp_paths(&p));
        }
    }
    // blobs/sha256 holds kiln's temp blobs too; its digests are not walked.
    let blobs = dir.join("blobs/sha256");
    if let Ok(entries) = fs::read_dir(&blobs) {
        found.extend(
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains("kiln-tmp"))
                .map(|e| e.path()),
        );
    }
    found
}

/// The layout's manifest digest, after checking that skopeo reads it and
/// that every blob it names is there with the right bytes.
fn complete(layout: &Path) -> String {
    let (json, _) = skopeo_json(&[&format!("oci:{}", layout.display())]);
    assert_eq!(json["Layers"].as_array().unwrap().len(), 1, "{json}");
    let digest = layout_index(layout)["manifests"][0]["digest"].clone();
    let manifest = layout_manifest(layout);
    let mut blobs = vec![digest.clone(), manifest["config"]["digest"].clone()];
    blobs.extend(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].clone()),
    );
    for d in &blobs {
        let bytes = fs::read(layout_blob(layout, d)).unwrap();
        let got = kiln::oci::digest::sha256(&bytes);
        assert_eq!(
            &got,
            d.as_str().unwrap(),
            "blob damaged in {}",
            layout.display()
        );
    }
    digest.as_str().unwrap().to_string()
}

/// Delays spread over a build's length, varying from run to run.
fn delays(full: Duration, n: u32) -> Vec<Duration> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("delay seed {seed}");
    let mut x = seed | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Slot i of n, somewhere in it: every part of the build gets hit.
            let frac = (i as f64 + (x % 1000) as f64 / 1000.0) / n as f64;
            Duration::from_millis(60) + full.mul_f64(frac)
        })
        .collect()
}

fn signal(child: &Child, sig: &str) {
    run(std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string()));
}

struct Setup {
    _work: tempfile::TempDir,
    spec: PathBuf,
    cache: PathBuf,
    out: PathBuf,
    layout: PathBuf,
    /// How long an uninterrupted build takes.
    full: Duration,
    old: String,
}

fn setup() -> Setup {
    let work = tempfile::tempdir().unwrap();
    let spec = big_spec(work.path());
    let cache = work.path().join("cache");
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    let layout = out.join("image");
    let started = Instant::now();
    let built = start(&spec, &cache, &layout, 1).wait_with_output().unwrap();
    check(&kiln(), &built);
    let full = started.elapsed();
    eprintln!("a full build takes {full:.2?}");
    let old = complete(&layout);
    Setup {
        _work: work,
        spec,
        cache,
        out,
        layout,
        full,
        old,
    }
}

#[test]
fn sigterm_and_sigint_clean_up_and_leave_a_complete_layout() {
    if !have(&["skopeo", "kill"]) {
        return;
    }
    let s = setup();
    let mut current = s.old.clone();
    let mut stopped = 0;
    for (i, delay) in delays(s.full, 6).into_iter().enumerate() {
        let (sig, code) = if i % 2 == 0 {
            ("TERM", 143)
        } else {
            ("INT", 130)
        };
        let child = start(&s.spec, &s.cache, &s.layout, 100 + i as u64);
        std::thread::sleep(delay);
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let status = out.status.code();
        assert!(
            status == Some(code) || status == Some(0),
            "SIG{sig} after {delay:?}: {:?}\n{stderr}",
            out.status
        );
        stopped += (status == Some(code)) as u32;
        let left: Vec<PathBuf> = [temp_paths(&s.out), temp_paths(&s.cache)].concat();
        assert!(left.is_empty(), "SIG{sig} after {delay:?} left {left:?}");
        let now = complete(&s.layout);
        if status == Some(code) && now != current {
            // The signal came after the swap: the new layout, whole.
            eprintln!("SIG{sig} after {delay:?}: new layout in place");
        }
        current = now;
        assert_eq!(fs::read_dir(&s.out).unwrap().count(), 1);
    }
    assert!(stopped >= 3, "only {stopped} of 6 builds were interrupted");
}

#[test]
fn after_sigkill_the_next_run_collects_the_leftovers() {
    if !have(&["skopeo", "kill"]) {
        return;
    }
    let s = setup();
    let mut left_any = 0;
    for (i, delay) in delays(s.full, 4).into_iter().enumerate() {
        let mut child = start(&s.spec, &s.cache, &s.layout, 200 + i as u64);
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
        // The path holds the old layout or a new one, whole.
        complete(&s.layout);
        let left: Vec<PathBuf> = [temp_paths(&s.out), temp_paths(&s.cache)].concat();
        left_any += (!left.is_empty()) as u32;
        eprintln!("SIGKILL after {delay:?} left {} temp paths", left.len());

        let again = start(&s.spec, &s.cache, &s.layout, 300 + i as u64)
            .wait_with_output()
            .unwrap();
        check(&kiln(), &again);
        let left: Vec<PathBuf> = [temp_paths(&s.out), temp_paths(&s.cache)].concat();
        assert!(left.is_empty(), "the next run left {left:?}");
        assert_ne!(complete(&s.layout), s.old);
    }
    assert!(left_any >= 1, "no SIGKILL left anything to collect");
}
