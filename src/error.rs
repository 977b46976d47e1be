//! The build's error type: every variant names the file, key, path or
//! reference it is about, and most carry a hint that says what to do.
//! Display escapes control characters: messages quote image and registry
//! strings, which must not drive the terminal.

use std::io;
use std::path::{Path, PathBuf};

use crate::shown::Shown;

/// kiln's exit codes, chosen here and nowhere else:
///
/// | code | meaning |
/// |---|---|
/// | 0 | done |
/// | 1 | failed: a registry or I/O error, the image fails its checks (`kiln check` and `kiln build` alike), or `kiln verify` finds a signature or attestation that does not check out |
/// | 2 | bad input, to fix before trying again: the spec, its sources, a base, an output path, arguments |
/// | 130, 143 | interrupted by SIGINT, SIGTERM (temp files removed) |
/// | 141 | stdout closed early (`kiln inspect ... \| head`) |
pub mod exit {
    pub const FAILURE: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const BROKEN_PIPE: i32 = 141;
}

/// Exit code for input the user must fix (spec, sources, arguments).
pub const EXIT_BAD_INPUT: i32 = exit::BAD_INPUT;
/// Exit code for a failure: a registry or I/O error, or failed checks.
pub const EXIT_FAILURE: i32 = exit::FAILURE;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something in the spec file, located by line and column.
    #[error("{}:{line}:{col}: {}", Shown(&file.to_string_lossy()), Shown(msg))]
    Spec {
        file: PathBuf,
        line: usize,
        col: usize,
        msg: String,
        hint: Option<String>,
    },

    /// A source file or directory that cannot go into a layer as asked.
    #[error("source `{}`: {}", Shown(&path.to_string_lossy()), Shown(msg))]
    Source {
        path: PathBuf,
        msg: String,
        hint: Option<String>,
    },

    /// A base image that cannot be read or used.
    #[error("base image `{}`: {}", Shown(reference), Shown(msg))]
    Base {
        reference: String,
        msg: String,
        hint: Option<String>,
    },

    /// An image `kiln inspect` cannot read.
    #[error("image `{}`: {}", Shown(reference), Shown(msg))]
    Image {
        reference: String,
        msg: String,
        hint: Option<String>,
    },

    /// A registry that cannot be reached, refuses, or answers wrongly.
    #[error("registry `{}`: {}", Shown(what), Shown(msg))]
    Registry {
        what: String,
        msg: String,
        hint: Option<String>,
        /// Whether trying again may help, and after how long.
        retry: Retry,
        /// The registry could not be reached, or has no such image for
        /// this client (not found, no access, unknown host, untrusted
        /// certificate): for a mirror, a reason to try the next source.
        miss: bool,
    },

    /// The image would fail error-level checks (see `check`).
    #[error("the image fails {count} check(s): {}", Shown(first))]
    Policy { count: usize, first: String },

    /// An output location kiln refuses to write to.
    #[error("output `{}`: {}", Shown(&path.to_string_lossy()), Shown(msg))]
    Output { path: PathBuf, msg: String },

    /// A command-line value or environment variable that does not parse.
    #[error("{}: {}", Shown(what), Shown(msg))]
    Usage {
        what: String,
        msg: String,
        hint: Option<String>,
    },

    /// A signature, attestation or attached document that does not check
    /// out: missing, changed or signed by another key.
    #[error("{}: {}", Shown(what), Shown(msg))]
    Verify { what: String, msg: String },

    #[error("cannot {action} `{}`", Shown(&path.to_string_lossy()))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec { .. }
            | Error::Source { .. }
            | Error::Base { .. }
            | Error::Image { .. }
            | Error::Usage { .. }
            | Error::Output { .. } => EXIT_BAD_INPUT,
            Error::Registry { .. }
            | Error::Io { .. }
            | Error::Policy { .. }
            | Error::Verify { .. } => EXIT_FAILURE,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Spec { hint, .. }
            | Error::Source { hint, .. }
            | Error::Base { hint, .. }
            | Error::Image { hint, .. }
            | Error::Registry { hint, .. }
            | Error::Usage { hint, .. } => hint.as_deref(),
            Error::Policy { .. } => Some(
                "fix them (kiln check shows all), allow them in [policy] with a reason, or build with --no-check",
            ),
            Error::Output { .. } | Error::Io { .. } | Error::Verify { .. } => None,
        }
    }

    pub fn source_path(path: &Path, msg: impl Into<String>) -> Self {
        Error::Source {
            path: path.to_path_buf(),
            msg: msg.into(),
            hint: None,
        }
    }

    pub fn base(reference: &str, msg: impl Into<String>) -> Self {
        Error::Base {
            reference: reference.to_string(),
            msg: msg.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Error::Spec { hint, .. }
            | Error::Source { hint, .. }
            | Error::Base { hint, .. }
            | Error::Image { hint, .. }
            | Error::Registry { hint, .. }
            | Error::Usage { hint, .. } => *hint = Some(text.into()),
            Error::Policy { .. }
            | Error::Output { .. }
            | Error::Io { .. }
            | Error::Verify { .. } => {}
        }
        self
    }
}

/// Attach the path and the action to an I/O error.
pub trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T, Error>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// What a failed registry call says about trying it again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retry {
    No,
    Yes,
    /// The registry asked for this many seconds (Retry-After).
    After(u64),
}

impl Error {
    pub fn retry(&self) -> Retry {
        match self {
            Error::Registry { retry, .. } => *retry,
            _ => Retry::No,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
