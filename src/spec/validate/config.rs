//! `[config]`: entrypoint, cmd, workdir, env, ports, volumes, labels,
//! stop signal and the user the image runs as.

use std::collections::BTreeMap;

use super::validator::Validator;
use super::{Span, User};
use crate::error::Result;
use crate::spec::raw::RawSpec;

#[derive(Default)]
pub struct Config {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    /// Name, value as written (expanded against args and the image's env later), span.
    pub env: Vec<(String, String, Span)>,
    pub expose: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub user: Option<String>,
}

impl Validator {
    pub(super) fn config(&self, raw: &RawSpec, user: Option<&User>) -> Result<Config> {
        let c = &raw.config;
        let mut env = Vec::new();
        for (key, value) in &c.env {
            if key.is_empty() || key.contains('=') {
                return Err(self.err(
                    value.span(),
                    format!("env name `{key}` must be non-empty, without `=`"),
                ));
            }
            // Expanded in `assemble`, where the base's env is known.
            env.push((key.clone(), value.get_ref().clone(), value.span()));
        }
        // File order, as Docker applies ENV lines: later values may use earlier ones.
        env.sort_by_key(|(_, _, span)| span.start);
        let mut expose = Vec::new();
        for port in &c.expose {
            let text = self.text(port)?;
            expose.push(normalize_port(&text).map_err(|m| self.err(port.span(), m))?);
        }
        let mut labels = BTreeMap::new();
        for (key, value) in &c.labels {
            labels.insert(key.clone(), self.text(value)?);
        }
        let volumes = c
            .volumes
            .iter()
            .map(|v| self.abs_path(v))
            .collect::<Result<Vec<_>>>()?;
        let workdir = c.workdir.as_ref().map(|w| self.abs_path(w)).transpose()?;
        let user_field = match &c.user {
            Some(u) => {
                let text = self.text(u)?;
                check_config_user(&text).map_err(|m| {
                    self.err(u.span(), m)
                        .with_hint("write it as \"10001:10001\" (uid:gid), or as name[:group] from the image's /etc/passwd")
                })?;
                Some(text)
            }
            None => user.map(|u| format!("{}:{}", u.uid, u.gid)),
        };
        let stop_signal = match &c.stop_signal {
            Some(s) => {
                let text = self.text(s)?;
                check_signal(&text).map_err(|m| self.err(s.span(), m))?;
                Some(text)
            }
            None => None,
        };
        Ok(Config {
            entrypoint: c.entrypoint.as_ref().map(|v| self.command(v)).transpose()?,
            cmd: c.cmd.as_ref().map(|v| self.command(v)).transpose()?,
            workdir,
            env,
            expose,
            volumes,
            labels,
            stop_signal,
            user: user_field,
        })
    }
}

/// `[config] user` shapes that no runtime runs as intended. What it runs
/// as (`+0` is root) is for `kiln check` to judge, with the image's accounts.
fn check_config_user(text: &str) -> Result<(), String> {
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "user `{text}` must be `uid[:gid]` or `name[:group]`"
        ));
    }
    let mut parts = text.split(':');
    let (user, group) = (parts.next().unwrap_or(""), parts.next());
    if parts.next().is_some() {
        return Err(format!(
            "user `{text}` has more than one `:`; runtimes ignore all after the second"
        ));
    }
    if user.is_empty() {
        return Err(format!(
            "user `{text}` has no user before `:`, which runtimes run as root (uid 0)"
        ));
    }
    for (what, part) in [("uid", Some(user)), ("gid", group)] {
        let n = part.and_then(crate::oci::runas::atoi);
        if let Some(n) = n.filter(|n| !(0..=i64::from(i32::MAX)).contains(n)) {
            return Err(format!(
                "user `{text}`: {what} {n} is outside 0..=2147483647, so the container would not start"
            ));
        }
    }
    Ok(())
}
fn check_signal(text: &str) -> Result<(), String> {
    let numeric = text.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n));
    let named = text.starts_with("SIG")
        && text.len() > 3
        && text[3..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+');
    if numeric || named {
        Ok(())
    } else {
        Err(format!(
            "stop-signal `{text}` is not a signal like \"SIGTERM\" or \"15\""
        ))
    }
}

fn normalize_port(text: &str) -> Result<String, String> {
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let bad = || format!("port `{text}` must be like \"8000\", \"8000/tcp\" or \"53/udp\"");
    let n: u32 = port.parse().map_err(|_| bad())?;
    if !(1..=65535).contains(&n) || !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    Ok(format!("{n}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(normalize_port("8000").unwrap(), "8000/tcp");
        assert_eq!(normalize_port("53/udp").unwrap(), "53/udp");
        assert!(normalize_port("0").is_err());
        assert!(normalize_port("80/http").is_err());
    }

    #[test]
    fn config_users_and_signals() {
        assert!(check_config_user("10001:10001").is_ok());
        assert!(check_config_user("app").is_ok());
        assert!(check_config_user(":10001").is_err());
        assert!(check_config_user("a:b:c").is_err());
        assert!(check_signal("SIGTERM").is_ok());
        assert!(check_signal("15").is_ok());
        assert!(check_signal("TERM").is_err());
        assert!(check_signal("65").is_err());
    }
}
