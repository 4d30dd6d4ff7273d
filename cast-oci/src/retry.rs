//! Retrying transient failures with exponential backoff. What counts as transient is
//! decided by the error itself ([`Transient`]; for registries
//! [`crate::Error::is_transient`]): a server that could not be reached, a body that
//! broke off, HTTP 429 and 5xx. Every other failure — 4xx, digest mismatches, local
//! I/O — is returned at once, since trying again cannot help. Other HTTP clients of
//! the build (`ADD <url>`, kernel downloads) use the same policy with their own errors.

use std::time::Duration;

/// An error that knows whether trying again may help.
pub trait Transient {
    /// Whether the same request may succeed if tried again.
    fn is_transient(&self) -> bool;
}

impl Transient for crate::Error {
    fn is_transient(&self) -> bool {
        crate::Error::is_transient(self)
    }
}

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub initial_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, 250 ms doubling up to 4 s.
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// Runs `f` until it succeeds, fails with a non-transient error or runs out of attempts.
    pub fn run<T, E: Transient>(&self, mut f: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let mut delay = self.initial_delay;
        let mut attempt = 1;
        loop {
            match f() {
                Err(e) if e.is_transient() && attempt < self.attempts => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(self.max_delay);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use std::cell::Cell;

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn status(status: u16) -> Error {
        Error::Status {
            registry: "r".into(),
            status,
            what: "w".into(),
        }
    }

    #[test]
    fn retries_only_transient_errors() {
        for (code, expected_calls) in [(503, 3), (429, 3), (500, 3), (404, 1), (401, 1), (400, 1)] {
            let calls = Cell::new(0);
            let r: Result<()> = quick(3).run(|| {
                calls.set(calls.get() + 1);
                Err(status(code))
            });
            assert!(r.is_err());
            assert_eq!(calls.get(), expected_calls, "status {code}");
        }
        let calls = Cell::new(0);
        let r = quick(4).run(|| {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(status(502))
            } else {
                Ok(7)
            }
        });
        assert_eq!((r.unwrap(), calls.get()), (7, 3));
    }
}
