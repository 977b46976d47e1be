//! Progress on stderr. On a terminal: one bar per layer being built and per
//! blob being pulled or pushed, with bytes, rate and ETA. Elsewhere: one
//! log line per finished step. stdout is never touched; it is for results.
//!
//! The mode is set once by the binary; a library caller that sets nothing
//! gets the plain lines through `tracing`.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Bars on stderr, which is a terminal.
    Bars,
    /// One `tracing` line per finished step.
    Plain,
}

static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Choose the mode; call once, before any bar starts.
pub fn init(mode: Mode) {
    if mode == Mode::Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let _ = BARS.set(multi);
    }
}

/// Take the bars off the screen (before exiting on a signal).
pub fn clear() {
    if let Some(multi) = BARS.get() {
        let _ = multi.clear();
    }
}

/// What a bar is for; the word it shows.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Build,
    Pull,
    Push,
}

impl Step {
    fn word(self) -> (&'static str, &'static str) {
        match self {
            Step::Build => ("build", "built"),
            Step::Pull => ("pull", "pulled"),
            Step::Push => ("push", "pushed"),
        }
    }
}

/// One step's progress. Dropped without `done`, it vanishes from the screen.
pub struct Bar {
    step: Step,
    name: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Bar {
    /// A bar for `name` (a layer, a digest) expecting `total` bytes.
    pub fn start(step: Step, name: &str, total: u64) -> Bar {
        // Digests and paths can come from an image: never raw on the terminal.
        let name = crate::shown::escape(name);
        let bar = BARS.get().map(|multi| {
            let bar = multi.add(ProgressBar::new(total));
            bar.set_style(style());
            bar.set_prefix(step.word().0);
            bar.set_message(name.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Bar {
            step,
            name,
            bar,
            started: Instant::now(),
        }
    }

    pub fn inc(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    /// A handle that only counts, for a body stream that outlives this borrow.
    pub fn counter(&self) -> Counter {
        Counter(self.bar.clone())
    }

    /// Start counting again (a retried transfer).
    pub fn restart(&self) {
        if let Some(b) = &self.bar {
            b.set_position(0);
        }
    }

    /// Finish: one line for the step, printed above the bars still running
    /// (or logged, without bars).
    pub fn done(mut self, bytes: u64, note: &str) {
        let took = self.started.elapsed();
        let line = format!(
            "{:>6} {} ({}) in {took:.2?}{}",
            self.step.word().1,
            self.name,
            human(bytes),
            sep(note)
        );
        match (self.bar.take(), BARS.get()) {
            (Some(bar), Some(multi)) => {
                let _ = multi.println(&line);
                bar.finish_and_clear();
                multi.remove(&bar);
            }
            _ => tracing::info!("{line}"),
        }
    }
}

#[derive(Clone)]
pub struct Counter(Option<ProgressBar>);

impl Counter {
    pub fn inc(&self, bytes: u64) {
        if let Some(b) = &self.0 {
            b.inc(bytes);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if let Some(multi) = BARS.get() {
                multi.remove(&bar);
            }
        }
    }
}

fn sep(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(", {note}")
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>6} {msg:40!} [{bar:24}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ")
}

/// stderr for log lines: with bars on screen, a line is printed above them
/// rather than through them.
#[derive(Clone, Copy, Default)]
pub struct Stderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One log line, written whole when dropped.
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.0);
        let write = || {
            let _ = std::io::stderr().lock().write_all(&bytes);
        };
        match BARS.get() {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
