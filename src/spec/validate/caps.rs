//! `capabilities = [...]` on `[[copy]]` and `[[file]]`: Linux capability
//! names (linux/capability.h) turned into the permitted mask of a file's
//! `security.capability` xattr.

use super::validator::Validator;
use crate::error::Result;
use crate::spec::raw::S;

/// Every capability Linux defines, by number (CAP_CHOWN is 0).
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The number of a capability written `cap_net_bind_service`,
/// `NET_BIND_SERVICE` or any case in between.
pub fn number(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

impl Validator {
    /// The capabilities a spec names, as a mask (bit N for capability N).
    pub(super) fn capabilities(&self, raw: &Option<Vec<S<String>>>) -> Result<u64> {
        let mut mask = 0u64;
        for cap in raw.iter().flatten() {
            let text = self.text(cap)?;
            let n = number(&text).ok_or_else(|| {
                self.err(
                    cap.span(),
                    format!("capabilities: unknown capability `{text}`"),
                )
                .with_hint("use a name from capabilities(7), e.g. \"cap_net_bind_service\"")
            })?;
            mask |= 1 << n;
        }
        Ok(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_case_with_or_without_the_prefix() {
        assert_eq!(number("cap_net_bind_service"), Some(10));
        assert_eq!(number("NET_BIND_SERVICE"), Some(10));
        assert_eq!(number("Cap_Chown"), Some(0));
        assert_eq!(number("checkpoint_restore"), Some(40));
        assert_eq!(number("cap_"), None);
        assert_eq!(number("net_bind"), None);
    }
}
