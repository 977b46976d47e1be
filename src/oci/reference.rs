//! Image references read the way docker and podman read them:
//! `python:3.13-slim` is `docker.io/library/python:3.13-slim`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/python`, `astral-sh/uv`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

pub const DOCKER_HUB: &str = "docker.io";

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, String> {
        if let Some(rest) = credentials_in(text) {
            // Never echo what came before the `@`: it may be a password.
            return Err(format!(
                "`***@{rest}` is not an image reference: it holds credentials; \
                 log in with `docker login` or `podman login`, or set KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD"
            ));
        }
        let bad = |why: &str| format!("`{text}` is not an image reference: {why}");
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("empty or contains white space"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                crate::oci::sha256_hex(d)
                    .ok_or_else(|| bad("the digest must be sha256:<64 hex digits>"))?;
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            if !is_tag(t) {
                return Err(bad("a tag is letters, digits, `.`, `_` and `-`"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad(
                "repository names are lowercase letters, digits and `._-` separated by `/`",
            ));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The tag to pull when neither tag nor digest is given.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

/// `text` fit to show: any credentials in it replaced by `***`.
/// A tag as the distribution spec allows it: up to 128 letters, digits,
/// `.`, `_` and `-`, not starting with `.` or `-`.
pub fn is_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub fn redacted(text: &str) -> String {
    match credentials_in(text) {
        Some(rest) => format!("***@{rest}"),
        None => text.to_string(),
    }
}

/// `user:pass@host/repo` (or `https://user@host/...`): what follows the
/// userinfo, if `text` has one. A digest after `@` is not a host.
fn credentials_in(text: &str) -> Option<&str> {
    let bare = text.split_once("://").map_or(text, |(_, r)| r);
    // The last `@`: a password may hold one too.
    let (before, after) = bare.rsplit_once('@')?;
    // A known algorithm names a digest however short (and is refused as
    // one); another name needs a digest's length of hex to be one.
    let digest = after.split_once(':').is_some_and(|(alg, hex)| {
        let known = ["sha256", "sha384", "sha512", "blake3"].contains(&alg);
        let hexy = hex.bytes().all(|b| b.is_ascii_hexdigit());
        known
            || (!alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b))
                && hex.len() >= 32
                && hexy)
    });
    (!before.contains('/') && !digest).then_some(after)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_shorthands_expand() {
        assert_eq!(
            parse("python:3.13-slim"),
            "docker.io/library/python:3.13-slim"
        );
        assert_eq!(parse("edoburu/pgbouncer"), "docker.io/edoburu/pgbouncer");
        assert_eq!(
            parse("index.docker.io/library/redis:7"),
            "docker.io/library/redis:7"
        );
    }

    #[test]
    fn registries_ports_and_digests() {
        let d = format!("sha256:{}", "0".repeat(64));
        assert_eq!(parse("127.0.0.1:5000/web:1"), "127.0.0.1:5000/web:1");
        assert_eq!(parse("localhost/a/b"), "localhost/a/b");
        assert_eq!(
            parse(&format!("ghcr.io/astral-sh/uv:0.8@{d}")),
            format!("ghcr.io/astral-sh/uv:0.8@{d}")
        );
        let r = Reference::parse(&format!("127.0.0.1:5000/web@{d}")).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.tag, r.digest),
            ("127.0.0.1:5000", None, Some(d))
        );
    }

    #[test]
    fn bad_references() {
        for bad in ["", "Python:3", "a b", "x@sha256:12", "x:", "x:-a", "/x"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_refused_without_being_echoed() {
        for text in [
            "user:secret@127.0.0.1:5000/x",
            "user:secret@ghcr.io/a/b:1",
            "secret@registry.example.com/x",
            "https://user:secret@ghcr.io/a/b",
            "user:secret@host",
            "user:secret@python:3",
            "user:se@cret@ghcr.io/a/b",
        ] {
            let err = Reference::parse(text).unwrap_err();
            assert!(
                !err.contains("secret") && !err.contains("cret"),
                "{text}: {err}"
            );
            assert!(err.contains("credentials"), "{text}: {err}");
        }
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(Reference::parse(&format!("python@{d}")).is_ok());
        assert!(Reference::parse(&format!("python:3@{d}")).is_ok());
    }
}
