//! `${NAME}` expansion is capped (1 MiB a value, 16 MiB a spec): a spec
//! whose args double each other 40 times, or that repeats a long
//! --build-arg, fails with exit 2 in well under a second, and kiln's peak
//! memory stays small instead of heading for a terabyte.

use std::time::{Duration, Instant};

use crate::common::*;

/// Largest resident set of any child this process has waited for, in KiB.
fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss
    }
}

/// `[args]` A1..A40, each `${A(n-1)}${A(n-1)}`, after `first`.
fn doubling_spec(first: &str) -> String {
    let mut spec = format!("[args]\n{first}\n");
    for i in 1..=40 {
        spec.push_str(&format!("A{i} = \"${{A{0}}}${{A{0}}}\"\n", i - 1));
    }
    spec + "[image]\ntag = \"${A40}\"\n"
}

#[test]
fn forty_doublings_fail_fast_and_small() {
    let work = tempfile::tempdir().unwrap();
    let long = "y".repeat(100 << 10);
    let cases = [
        (doubling_spec("A0 = \"xx\""), vec![], "arg `A20`: `${A19}`"),
        (
            // A --build-arg value, used eleven times in one label.
            format!(
                "[args]\nBIG = \"\"\n[config]\nlabels = {{ a = \"{}\" }}\n",
                "${BIG}".repeat(11)
            ),
            vec!["--build-arg".to_string(), format!("BIG={long}")],
            "kiln.toml:4:",
        ),
    ];
    for (i, (text, extra, names)) in cases.iter().enumerate() {
        let spec = write_spec(&work.path().join(i.to_string()), text);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let started = Instant::now();
        let stderr = build_refused(&spec, &extra);
        let took = started.elapsed();
        assert!(stderr.contains(names), "{stderr}");
        assert!(
            stderr.contains("longer than 1 MiB, kiln's cap for one expanded value"),
            "{stderr}"
        );
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
    let rss = children_max_rss_kib();
    assert!(rss < 64 << 10, "kiln's peak RSS was {rss} KiB");
}
