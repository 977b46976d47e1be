//! Trying a registry operation again when the failure says it may pass:
//! 3 more tries, about 1 s then 3 s apart (with jitter), or as long as the
//! registry's Retry-After asks, up to 60 s. Each operation retries as a
//! whole; nothing inside it retries on its own.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Retry};

const DELAYS_MS: [u64; 3] = [1000, 3000, 3000];
/// The longest Retry-After kiln waits for; a longer one fails at once.
pub const MAX_RETRY_AFTER: u64 = 60;

/// Run `op` until it succeeds, fails for good, or has had its retries.
pub async fn retrying<T, F, Fut>(what: &str, mut op: F) -> Result<T, Error>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 0;
    loop {
        let error = match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let wait = match (error.retry(), DELAYS_MS.get(attempt)) {
            (Retry::No, _) | (_, None) => return Err(error),
            (Retry::After(secs), Some(_)) => Duration::from_secs(secs.min(MAX_RETRY_AFTER)),
            (Retry::Yes, Some(ms)) => jittered(scaled(*ms)),
        };
        tracing::warn!(
            "{what}: {error}; trying again in {:.1?} ({} of {})",
            wait,
            attempt + 1,
            DELAYS_MS.len()
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// KILN_RETRY_DELAY_MS replaces the first delay (the others keep their
/// ratio to it), so tests of the retry paths do not sit through seconds.
fn scaled(ms: u64) -> u64 {
    match std::env::var("KILN_RETRY_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(base) => ms * base / DELAYS_MS[0],
        None => ms,
    }
}

/// +-10%, so clients that failed together do not come back together.
fn jittered(ms: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let spread = ms / 10;
    let offset = if spread == 0 {
        0
    } else {
        u64::from(nanos) % (2 * spread + 1)
    };
    Duration::from_millis(ms - spread + offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::error;

    fn transient() -> Error {
        Error::Registry {
            what: "r".into(),
            msg: "503".into(),
            hint: None,
            retry: Retry::After(0),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_tried_again_then_given_up() {
        let mut calls = 0;
        let r: Result<(), Error> = retrying("op", |_| {
            calls += 1;
            async { Err(transient()) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not() {
        let mut calls = 0;
        let r: Result<(), Error> = retrying("op", |_| {
            calls += 1;
            async { Err(error("r", "404", "no")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_success_wins() {
        let r = retrying("op", |attempt| async move {
            if attempt < 2 {
                Err(transient())
            } else {
                Ok(attempt)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 2);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(1000).as_millis();
            assert!((900..=1100).contains(&d), "{d}");
        }
    }
}
