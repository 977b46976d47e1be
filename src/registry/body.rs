//! Reading response bodies with two guards: a size cap, and a progress
//! guard that fails a body arriving slower than 4 KiB per window (30 s,
//! or KILN_STALL_SECS). reqwest's read timeout restarts on every byte, so a
//! server sending one byte every few seconds would otherwise hold kiln for
//! hours.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use reqwest::Response;
use reqwest::header::CONTENT_LENGTH;
use tokio::time::Instant;

use crate::error::{Error, Retry};

/// Bytes that must arrive within each window.
const MIN_PROGRESS: u64 = 4 << 10;
const DEFAULT_WINDOW_SECS: u64 = 30;

fn window() -> Duration {
    let secs = std::env::var("KILN_STALL_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_WINDOW_SECS);
    Duration::from_secs(secs)
}

/// Watches one body: `next` gives its chunks, or a transient error naming
/// `what` if too little arrived in a window.
pub struct Guard {
    window: Duration,
    since: Instant,
    bytes: u64,
    what: String,
    reading: String,
}

impl Guard {
    /// `what` names the host or blob, `reading` what the body is ("the manifest").
    pub fn new(what: &str, reading: &str) -> Guard {
        Guard {
            window: window(),
            since: Instant::now(),
            bytes: 0,
            what: what.to_string(),
            reading: reading.to_string(),
        }
    }

    pub async fn next<S, B>(&mut self, stream: &mut S) -> Result<Option<B>, Error>
    where
        S: Stream<Item = reqwest::Result<B>> + Unpin,
        B: AsRef<[u8]>,
    {
        let deadline = self.since + self.window;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => Err(self.stalled()),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(super::transport_error(&self.what, &e)),
            Ok(Some(Ok(chunk))) => {
                self.bytes += chunk.as_ref().len() as u64;
                if self.bytes >= MIN_PROGRESS {
                    self.since = Instant::now();
                    self.bytes = 0;
                }
                Ok(Some(chunk))
            }
        }
    }

    fn stalled(&self) -> Error {
        Error::Registry {
            what: self.what.clone(),
            msg: format!(
                "reading {} stalled: less than 4 KiB arrived in {} s",
                self.reading,
                self.window.as_secs()
            ),
            hint: Some("the registry or the network is failing; try again later".into()),
            retry: Retry::Yes,
            miss: false,
        }
    }
}

/// The whole body, refused if it is larger than `cap` (by its
/// Content-Length before any byte is read, or by what arrives).
pub async fn read_capped(
    response: Response,
    cap: usize,
    what: &str,
    reading: &str,
) -> Result<Vec<u8>, Error> {
    let too_big = || {
        super::error(
            what,
            format!("{reading} is larger than {}; kiln refuses it", size(cap)),
            "a registry that sends this is broken or hostile; check the reference and the registry",
        )
    };
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(too_big());
    }
    let mut guard = Guard::new(what, reading);
    let mut stream = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = guard.next(&mut stream).await? {
        if out.len() + chunk.len() > cap {
            return Err(too_big());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Up to `limit` bytes of a body whose content only decorates a message
/// (an error body): cut short rather than refused, and empty if it stalls.
pub async fn read_some(response: Response, limit: usize, what: &str) -> Vec<u8> {
    let mut guard = Guard::new(what, "an error reply");
    let mut stream = response.bytes_stream();
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = guard.next(&mut stream).await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}
