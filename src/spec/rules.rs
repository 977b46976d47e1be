//! The hardening rules a spec can name (`[policy] ignore`): their IDs,
//! severities and hints. `check` evaluates them; this catalogue depends on
//! nothing, so the spec, its schema and the checker can all name it.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub hint: &'static str,
    /// The same check elsewhere: hadolint, dockle, trivy, CIS Docker Benchmark.
    pub same_as: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "KILN-ROOT-USER",
        severity: Severity::Error,
        title: "runs as root",
        hint: "add a [user] section, or set [config] user to a non-zero uid:gid",
        same_as: "hadolint DL3002, dockle CIS-DI-0001, trivy DS-0002, CIS 4.1",
    },
    Rule {
        id: "KILN-USER-UNKNOWN",
        severity: Severity::Error,
        title: "the runtime cannot start the user",
        hint: "use a user and group the image's /etc/passwd and /etc/group have, or numeric ids in 0..=2147483647",
        same_as: "runc: unable to find user",
    },
    Rule {
        id: "KILN-ROOT-GROUP",
        severity: Severity::Warning,
        title: "runs with root's group (gid 0)",
        hint: "give the user its own group, e.g. [config] user = \"10001:10001\"",
        same_as: "",
    },
    Rule {
        id: "KILN-USER-NOT-NUMERIC",
        severity: Severity::Warning,
        title: "user is not a numeric uid:gid",
        hint: "write [config] user as \"10001:10001\" so Kubernetes runAsNonRoot can verify it",
        same_as: "Kubernetes runAsNonRoot",
    },
    Rule {
        id: "KILN-LOW-UID",
        severity: Severity::Warning,
        title: "uid below 1000",
        hint: "use a uid of 1000 or more (10001 keeps clear of host users)",
        same_as: "seed 004 (UID 10001+ for Kubernetes)",
    },
    Rule {
        id: "KILN-NO-HEALTHCHECK",
        severity: Severity::Warning,
        title: "no healthcheck",
        hint: "add a [healthcheck] section",
        same_as: "hadolint DL3057, dockle CIS-DI-0006, trivy DS-0026, CIS 4.6",
    },
    Rule {
        id: "KILN-HEALTHCHECK-NOT-IN-IMAGE",
        severity: Severity::Error,
        title: "healthcheck command is not in the image",
        hint: "copy the program into the image (mode = 0o755), or use one that is there on the image's PATH (e.g. busybox wget)",
        same_as: "",
    },
    Rule {
        id: "KILN-ENTRYPOINT-NOT-IN-IMAGE",
        severity: Severity::Error,
        title: "the entrypoint (or cmd) cannot start",
        hint: "copy the program in with mode = 0o755; for a dynamically linked one, use a base that has its loader and libraries, or link it statically; for a script, a base with its #! interpreter",
        same_as: "runc/docker at run time: exec: no such file or directory / permission denied",
    },
    Rule {
        id: "KILN-NO-COMMAND",
        severity: Severity::Warning,
        title: "no entrypoint and no cmd",
        hint: "set [config] entrypoint (or cmd) to the program the container runs",
        same_as: "docker run: no command specified",
    },
    Rule {
        id: "KILN-SECRET",
        severity: Severity::Error,
        title: "secret in env, labels or args (a URL's password too)",
        hint: "pass secrets at run time (docker run -e, Kubernetes secrets), never in the image",
        same_as: "hadolint DL3064, dockle CIS-DI-0010 / DKL-LI-0003, trivy DS-0031",
    },
    Rule {
        id: "KILN-BASE-NOT-PINNED",
        severity: Severity::Warning,
        title: "base (or an image copied from) not pinned by digest",
        hint: "pin the base as NAME:TAG@sha256:...",
        same_as: "hadolint DL3006 / DL3007, dockle DKL-DI-0006, trivy DS-0001",
    },
    Rule {
        id: "KILN-MISSING-LABEL",
        severity: Severity::Info,
        title: "missing OCI label",
        hint: "set it in [config] labels, e.g. from --build-arg",
        same_as: "hadolint DL3048-DL3058",
    },
    Rule {
        id: "KILN-SETUID",
        severity: Severity::Warning,
        title: "setuid or setgid file",
        hint: "drop the bit with mode = 0o755 unless the program needs it",
        same_as: "dockle CIS-DI-0008",
    },
    Rule {
        id: "KILN-WORLD-WRITABLE",
        severity: Severity::Warning,
        title: "world-writable path",
        hint: "give the app user ownership instead (owner = \"app:app\", mode 0o750)",
        same_as: "CIS 4 (least privilege)",
    },
    Rule {
        id: "KILN-PRIVILEGED-PORT",
        severity: Severity::Warning,
        title: "privileged port for a non-root user",
        hint: "listen on a port above 1023 and map it at run time",
        same_as: "seed 001 (port 80 -> 8000)",
    },
    Rule {
        id: "KILN-ROOT-OWNED-IN-APP-DIR",
        severity: Severity::Warning,
        title: "root-owned file in a directory the app writes to",
        hint: "give the copy the app user as owner",
        same_as: "",
    },
    Rule {
        id: "KILN-LOGIN-SHELL",
        severity: Severity::Info,
        title: "login shell for the app user",
        hint: "set [user] shell = \"/sbin/nologin\" unless something needs a shell",
        same_as: "seed 004 (/sbin/nologin)",
    },
];

/// How findings are handled: from `[policy]` and the command line.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub ignore: Vec<String>,
    /// An unpinned or `latest` base is an error, not a warning.
    pub strict: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_an_id_hint_and_title() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        assert!(
            RULES
                .iter()
                .all(|r| !r.hint.is_empty() && !r.title.is_empty())
        );
    }
}
