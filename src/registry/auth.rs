//! WWW-Authenticate challenges and bearer tokens (the distribution token
//! spec): which realm, service and scopes, and whether kiln may send
//! credentials there.

use std::net::IpAddr;

use reqwest::Url;

use super::addr;

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
/// itself is plain HTTP. Where its host leads is judged by `vet_addresses`.
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
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("token realm `{realm}` names no host"));
    }
    Ok(url)
}

/// Refuse a realm host if any address it resolves to is internal, unless
/// that address is the registry's own, or both are loopback. A cloud
/// metadata address never passes.
pub fn vet_addresses(host: &str, realm: &[IpAddr], registry: &[IpAddr]) -> Result<(), String> {
    let registry_loopback =
        !registry.is_empty() && registry.iter().all(|ip| addr::is_loopback(*ip));
    for ip in realm {
        let Some(kind) = addr::internal_kind(*ip) else {
            continue;
        };
        let own = kind != "cloud metadata"
            && (registry.contains(ip) || (kind == "loopback" && registry_loopback));
        if !own {
            return Err(format!(
                "token realm host `{host}` resolves to {ip}, a {kind} address, not the registry's; kiln will not send credentials there"
            ));
        }
    }
    Ok(())
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
        assert!(check_realm("http://127.0.0.1:6000/token", &local).is_ok());
        assert!(check_realm("ftp://127.0.0.1/token", &local).is_err());
    }

    #[test]
    fn realm_addresses_are_vetted() {
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|s| s.parse().unwrap()).collect() };
        let public = ips(&["203.0.113.7"]);
        let loopback = ips(&["127.0.0.1"]);
        let private = ips(&["10.0.0.5"]);
        let vet =
            |realm: &[&str], registry: &[IpAddr]| vet_addresses("auth", &ips(realm), registry);
        assert!(vet(&["198.51.100.1"], &public).is_ok());
        for bad in [
            "169.254.169.254",
            "10.0.0.1",
            "100.64.0.1",
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
        ] {
            let err = vet(&[bad], &public).unwrap_err();
            assert!(err.contains(bad) && err.contains("auth"), "{err}");
        }
        // One internal address among public ones is enough to refuse.
        assert!(vet(&["198.51.100.1", "10.0.0.1"], &public).is_err());
        // Loopback to loopback, and the registry's own address, pass.
        assert!(vet(&["127.0.0.1", "::1"], &loopback).is_ok());
        assert!(vet(&["::ffff:127.0.0.1"], &loopback).is_ok());
        assert!(vet(&["10.0.0.5"], &private).is_ok());
        assert!(vet(&["10.0.0.6"], &private).is_err());
        assert!(vet(&["127.0.0.1"], &private).is_err());
        assert!(vet(&["10.0.0.5"], &loopback).is_err());
        // Not even a registry on a metadata address may send credentials there.
        let metadata = ips(&["169.254.169.254"]);
        assert!(vet(&["169.254.169.254"], &metadata).is_err());
    }
}
