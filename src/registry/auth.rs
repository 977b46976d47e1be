//! WWW-Authenticate challenges and bearer tokens (the distribution token
//! spec): which realm, service and scopes, and whether kiln may send
//! credentials there.

use std::net::IpAddr;

use reqwest::Url;

#[derive(Debug, PartialEq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parse `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    for (key, value) in params_of(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
    })
}

/// `k="v",k2=v2` with commas allowed inside quotes.
fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            value = quoted[..end].to_string();
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',');
        out.push((key, value));
    }
    out
}

/// A token realm kiln will send credentials to: https unless the registry
/// itself is plain HTTP, and no loopback, private or link-local address
/// unless it is the registry's own host.
pub fn check_realm(realm: &str, registry: &Url) -> Result<Url, String> {
    let url = Url::parse(realm).map_err(|_| format!("token realm `{realm}` is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if registry.scheme() == "http" => {}
        _ => {
            return Err(format!(
                "token realm `{realm}` is not https; kiln will not send credentials there"
            ));
        }
    }
    let host = url.host_str().unwrap_or("");
    let internal = host
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .is_ok_and(|ip| match ip {
            IpAddr::V4(v4) => {
                v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
            }
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        });
    if internal && Some(host) != registry.host_str() {
        return Err(format!(
            "token realm `{realm}` points at an internal address other than the registry's"
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn realms_are_checked() {
        let https = Url::parse("https://registry.example.com/v2/").unwrap();
        let local = Url::parse("http://127.0.0.1:5000/v2/").unwrap();
        assert!(check_realm("https://auth.example.com/token", &https).is_ok());
        assert!(check_realm("http://auth.example.com/token", &https).is_err());
        assert!(check_realm("https://169.254.169.254/latest", &https).is_err());
        assert!(check_realm("https://10.0.0.1/token", &https).is_err());
        assert!(check_realm("http://127.0.0.1:6000/token", &local).is_ok());
    }
}
