//! KILN-SECRET: env values, labels and args that hold a secret, by their
//! name (`*PASSWORD*`, `*_KEY`), by their shape (AWS, GitHub and Slack key
//! formats, PEM keys), or as the password of a URL
//! (`postgresql://user:pass@host/db`).

use super::Checker;

impl Checker<'_> {
    pub(super) fn secrets(&mut self) {
        let mut values: Vec<(String, String, &str)> = Vec::new();
        for (k, v, _) in &self.spec.config.env {
            values.push((format!("env {k}"), v.clone(), k.as_str()));
        }
        for (k, v) in &self.spec.config.labels {
            values.push((format!("label {k}"), v.clone(), "labels"));
        }
        for (k, v) in &self.spec.args {
            values.push((format!("arg {k}"), v.clone(), k.as_str()));
        }
        for (what, value, key) in values {
            let name = what
                .split_once(' ')
                .map_or("", |(_, n)| n)
                .to_ascii_uppercase();
            let named = [
                "PASSWORD",
                "PASSWD",
                "SECRET",
                "TOKEN",
                "CREDENTIAL",
                "PRIVATE_KEY",
            ]
            .iter()
            .any(|s| name.contains(s))
                || name.ends_with("_KEY");
            let literal = !value.is_empty() && !value.starts_with('$');
            if (named && literal) || looks_like_key(&value) {
                self.add(
                    "KILN-SECRET",
                    format!("{what} holds what looks like a secret"),
                    Some(key),
                );
            } else if let Some(url) = url_with_password(&value) {
                self.add(
                    "KILN-SECRET",
                    format!("{what} holds a URL with a password in it (`{url}`)"),
                    Some(key),
                );
            }
        }
    }
}

/// Values that look like keys whatever they are called: AWS access key ids,
/// GitHub and Slack tokens, PEM private keys.
fn looks_like_key(v: &str) -> bool {
    let prefixed = [
        "AKIA",
        "ghp_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "sk_live_",
    ]
    .iter()
    .any(|p| v.starts_with(p) && v.len() >= 20);
    prefixed || v.contains("-----BEGIN") && v.contains("PRIVATE KEY")
}

/// The first URL in `value` whose userinfo holds a password
/// (`scheme://user:password@host`), shown with the password masked. A user
/// alone (`ssh://git@host`), an empty password, or one that is a `$`
/// reference left for the run time is not a secret.
fn url_with_password(value: &str) -> Option<String> {
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let after = &rest[at + 3..];
        let authority_end = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            if let Some((user, password)) = userinfo.split_once(':') {
                if !password.is_empty() && !password.starts_with('$') && at > scheme_start {
                    let scheme = &rest[scheme_start..at];
                    return Some(format!("{scheme}://{user}:***@{host}"));
                }
            }
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats_are_recognised() {
        assert!(looks_like_key("AKIAIOSFODNN7EXAMPLE1"));
        assert!(looks_like_key("ghp_0123456789abcdefghijABCDEFGHIJ"));
        assert!(looks_like_key("-----BEGIN RSA PRIVATE KEY-----\nabc"));
        assert!(!looks_like_key("8000"));
        assert!(!looks_like_key("AKIA"));
    }

    #[test]
    fn a_password_in_a_url_is_found_and_masked() {
        assert_eq!(
            url_with_password("postgresql://user:pass@host/db").as_deref(),
            Some("postgresql://user:***@host")
        );
        assert_eq!(
            url_with_password("redis://:s3cret@cache:6379/0").as_deref(),
            Some("redis://:***@cache:6379")
        );
        // After other text, and the second of two URLs.
        assert!(url_with_password("--db=mysql://a:b@h").is_some());
        assert!(url_with_password("http://x/ amqp://u:p@mq:5672").is_some());
        // The last `@` ends the userinfo: a password may hold one.
        assert_eq!(
            url_with_password("https://u:p@ss@h/x").as_deref(),
            Some("https://u:***@h")
        );
    }

    #[test]
    fn a_user_alone_or_no_url_is_not_a_secret() {
        for v in [
            "ssh://git@github.com/org/repo",
            "postgresql://user@host/db",
            "postgresql://user:@host/db",
            "postgresql://user:${DB_PASSWORD}@host/db",
            "http://host:8080/path?q=a:b@c",
            "https://example.com/a@b:c",
            "user:pass@host",
            "://u:p@h",
            "",
        ] {
            assert_eq!(url_with_password(v), None, "{v}");
        }
    }
}
