//! Trying a registry call again when the failure says it may pass: about
//! 1 s then 3 s apart (with jitter), or as long as the registry's
//! Retry-After asks, up to 60 s.
//!
//! Two levels share one budget. Each request that can be sent again as it
//! was (HEAD, GET, the POST that opens an upload, a manifest PUT) is retried
//! on its own by the client, so a registry failing a steady share of
//! requests costs a request, not a blob. An operation (a blob's whole push
//! or pull) is retried as a whole when a request that cannot be replayed,
//! such as a streamed upload, fails; it starts again with a HEAD. Within
//! [`with_budget`], every retry of either kind draws from the same count,
//! so one blob's tries stay bounded however they fail.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Retry};

const DELAYS_MS: [u64; 3] = [1000, 3000, 3000];
/// The longest Retry-After kiln waits for; a longer one fails at once.
pub const MAX_RETRY_AFTER: u64 = 60;
/// Retries one blob (or one manifest) may use, over all its requests.
pub const BUDGET: usize = 12;

tokio::task_local! {
    static LEFT: Cell<usize>;
}

/// Run `op` with its own retry budget (see the module docs).
pub async fn with_budget<T>(op: impl Future<Output = T>) -> T {
    LEFT.scope(Cell::new(BUDGET), op).await
}

/// Run `op` with no retries at all: for a mirror, where the next source is
/// a better try than the same one again.
pub async fn without_retries<T>(op: impl Future<Output = T>) -> T {
    LEFT.scope(Cell::new(0), op).await
}

/// Take one retry from the budget in force, if any is in force; false when
/// it is spent.
fn take_one() -> bool {
    LEFT.try_with(|left| match left.get() {
        0 => false,
        n => {
            left.set(n - 1);
            true
        }
    })
    .unwrap_or(true)
}

/// How long to wait before try `attempt + 1` of one request (or one whole
/// operation), or None to give up: its 3 retries are used, the registry
/// asked for longer than kiln waits, or the budget is spent.
pub fn request_delay(attempt: usize, retry: Retry) -> Option<Duration> {
    if attempt >= DELAYS_MS.len() {
        return None;
    }
    let wait = delay(attempt, retry)?;
    take_one().then_some(wait)
}

fn delay(attempt: usize, retry: Retry) -> Option<Duration> {
    let base = DELAYS_MS[attempt.min(DELAYS_MS.len() - 1)];
    match retry {
        Retry::No => None,
        Retry::After(secs) if secs > MAX_RETRY_AFTER => None,
        Retry::After(secs) => Some(Duration::from_secs(secs)),
        Retry::Yes => Some(jittered(scaled(base))),
    }
}

/// Run `op` until it succeeds, fails for good, or has spent its budget;
/// with a budget of its own unless one is already in force.
pub async fn retrying<T, F, Fut>(what: &str, op: F) -> Result<T, Error>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    if LEFT.try_with(|_| ()).is_ok() {
        run(what, op).await
    } else {
        with_budget(run(what, op)).await
    }
}

async fn run<T, F, Fut>(what: &str, mut op: F) -> Result<T, Error>
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
        let Some(wait) = request_delay(attempt, error.retry()) else {
            return Err(error);
        };
        tracing::warn!(
            "{what}: {error}; trying again in {:.1?} (retry {})",
            wait,
            attempt + 1
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
            miss: false,
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

    #[tokio::test(start_paused = true)]
    async fn requests_and_whole_tries_share_one_budget() {
        let mut calls = 0;
        let r: Result<(), Error> = retrying("op", |_| {
            calls += 1;
            async {
                // Each whole try spends up to three request retries first.
                let mut attempt = 0;
                while request_delay(attempt, Retry::Yes).is_some() {
                    attempt += 1;
                }
                Err(transient())
            }
        })
        .await;
        assert!(r.is_err());
        // Each try spends 3 request retries and one whole retry: after 4
        // tries the 12 are gone.
        assert_eq!(BUDGET, 12);
        assert_eq!(calls, 4);
    }

    #[test]
    fn requests_outside_a_budget_get_their_own_tries() {
        assert!(request_delay(0, Retry::Yes).is_some());
        assert!(request_delay(2, Retry::After(0)).is_some());
        assert!(request_delay(3, Retry::Yes).is_none());
        assert!(request_delay(0, Retry::After(MAX_RETRY_AFTER + 1)).is_none());
        assert!(request_delay(0, Retry::No).is_none());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(1000).as_millis();
            assert!((900..=1100).contains(&d), "{d}");
        }
    }
}
