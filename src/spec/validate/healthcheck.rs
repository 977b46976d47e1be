//! `[healthcheck]`: the probe command, its durations and retries.

use super::validator::Validator;
use crate::error::Result;
use crate::spec::duration;
use crate::spec::raw::{RawHealthcheck, S};

#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

impl Validator {
    pub(super) fn healthcheck(&self, raw: &S<RawHealthcheck>) -> Result<Healthcheck> {
        let h = raw.get_ref();
        let test = self.command(&h.test)?;
        let shape_ok = match test.first().map(String::as_str) {
            Some("NONE") => test.len() == 1,
            Some("CMD") => test.len() >= 2,
            Some("CMD-SHELL") => test.len() == 2,
            _ => false,
        };
        if !shape_ok {
            return Err(self
                .err(h.test.span(), "healthcheck test must be [\"CMD\", program, args...], [\"CMD-SHELL\", \"command\"] or [\"NONE\"]")
                .with_hint("for example test = [\"CMD\", \"/bin/busybox\", \"wget\", \"--spider\", \"-q\", \"http://127.0.0.1:8000/health\"]"));
        }
        let dur = |v: &Option<S<String>>| -> Result<i64> {
            let Some(v) = v else { return Ok(0) };
            let nanos = duration::parse(&self.text(v)?).map_err(|m| self.err(v.span(), m))?;
            if nanos != 0 && nanos < 1_000_000 {
                return Err(self.err(v.span(), "durations must be 0 or at least 1ms"));
            }
            Ok(nanos)
        };
        let retries = match &h.retries {
            Some(r) if *r.get_ref() < 0 || *r.get_ref() > i64::from(i32::MAX) => {
                return Err(self.err(r.span(), "retries must be 0 or more"));
            }
            Some(r) => *r.get_ref(),
            None => 0,
        };
        Ok(Healthcheck {
            test,
            interval: dur(&h.interval)?,
            timeout: dur(&h.timeout)?,
            start_period: dur(&h.start_period)?,
            start_interval: dur(&h.start_interval)?,
            retries,
        })
    }
}
