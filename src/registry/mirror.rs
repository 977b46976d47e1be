//! Pull-through mirrors: `--registry-mirror docker.io=HOST[:PORT][/PATH]`.
//! A registry's mirrors are tried in the order given, then the registry
//! itself unless only mirrors are allowed. The path is a repository prefix
//! (a Harbor proxy-cache project, an Artifactory remote, a GAR remote
//! repository): `python` through `harbor.lan/hub` is `hub/library/python`
//! on harbor.lan. Mirrors serve pulls only; pushes go where they are sent.

use super::is_docker_hub;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The registry it stands in for, as written in references.
    pub registry: String,
    pub host: String,
    /// Repository prefix on the mirror, without slashes at either end.
    pub prefix: String,
}

/// One place to pull a repository from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub host: String,
    pub repository: String,
    /// True for a mirror (a miss there falls through to the next source).
    pub mirror: bool,
}

impl Mirror {
    /// `REGISTRY=HOST[:PORT][/PATH]`, as given on the command line.
    pub fn parse(text: &str) -> Result<Mirror, String> {
        let bad = |why: &str| {
            format!(
                "`{text}` is not REGISTRY=HOST[:PORT][/PATH] ({why}), e.g. docker.io=mirror.example.com/dockerhub"
            )
        };
        let (registry, to) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
        if to.contains("://") {
            return Err(bad(
                "no scheme: kiln uses https, or http for loopback and --insecure-registry",
            ));
        }
        let (host, prefix) = to.split_once('/').unwrap_or((to, ""));
        let prefix = prefix.trim_end_matches('/');
        if registry.is_empty() || !is_host(registry) {
            return Err(bad("the registry is not a host name"));
        }
        if host.is_empty() || !is_host(host) {
            return Err(bad("the mirror is not HOST or HOST:PORT"));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !prefix.is_empty() && !prefix.split('/').all(component_ok) {
            return Err(bad(
                "the path is not a repository prefix: lowercase letters, digits, `.`, `_`, `-`, `/`",
            ));
        }
        Ok(Mirror {
            registry: registry.to_string(),
            host: host.to_string(),
            prefix: prefix.to_string(),
        })
    }

    fn serves(&self, registry: &str) -> bool {
        self.registry == registry || (is_docker_hub(&self.registry) && is_docker_hub(registry))
    }
}

/// Where to pull `repository` of `registry` from, in order.
pub fn sources(mirrors: &[Mirror], only: bool, registry: &str, repository: &str) -> Vec<Source> {
    let mut found: Vec<Source> = mirrors
        .iter()
        .filter(|m| m.serves(registry))
        .map(|m| Source {
            host: m.host.clone(),
            repository: match m.prefix.as_str() {
                "" => repository.to_string(),
                p => format!("{p}/{repository}"),
            },
            mirror: true,
        })
        .collect();
    if found.is_empty() || !only {
        found.push(Source {
            host: registry.to_string(),
            repository: repository.to_string(),
            mirror: false,
        });
    }
    found
}

/// HOST or HOST:PORT, with a bracketed IPv6 address allowed.
fn is_host(text: &str) -> bool {
    let (name, port) = match text.rsplit_once(':') {
        Some((n, _)) if !n.ends_with(']') && n.contains(':') => (text, None),
        Some((n, p)) => (n, Some(p)),
        None => (text, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = if let Some(ip) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        ip.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_that_parse() {
        let m = Mirror::parse("docker.io=harbor.lan:8443/hub/").unwrap();
        assert_eq!(
            (m.host.as_str(), m.prefix.as_str()),
            ("harbor.lan:8443", "hub")
        );
        let m = Mirror::parse("ghcr.io=127.0.0.1:5000").unwrap();
        assert_eq!(m.prefix, "");
        let m = Mirror::parse("docker.io=[::1]:5000/a/b").unwrap();
        assert_eq!((m.host.as_str(), m.prefix.as_str()), ("[::1]:5000", "a/b"));
    }

    #[test]
    fn forms_that_do_not() {
        for bad in [
            "docker.io",
            "=mirror",
            "docker.io=",
            "docker.io=https://mirror",
            "docker.io=/hub",
            "docker.io=mirror/Hub",
            "docker.io=mirror//hub",
            "docker.io=mirror:port",
            "docker.io=mir ror",
            "dock/er.io=mirror",
        ] {
            assert!(Mirror::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mirrors_in_order_then_the_registry() {
        let mirrors = [
            Mirror::parse("docker.io=a:5000/hub").unwrap(),
            Mirror::parse("ghcr.io=c").unwrap(),
            Mirror::parse("index.docker.io=b").unwrap(),
        ];
        let hosts = |only| {
            sources(&mirrors, only, "docker.io", "library/python")
                .into_iter()
                .map(|s| format!("{}/{}", s.host, s.repository))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            hosts(false),
            [
                "a:5000/hub/library/python",
                "b/library/python",
                "docker.io/library/python"
            ]
        );
        assert_eq!(
            hosts(true),
            ["a:5000/hub/library/python", "b/library/python"]
        );
        // No mirror for the registry: the registry itself, even when only mirrors are allowed.
        let direct = sources(&mirrors, true, "quay.io", "x/y");
        assert_eq!(direct.len(), 1);
        assert!(!direct[0].mirror);
    }
}
