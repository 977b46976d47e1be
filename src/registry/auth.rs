//! WWW-Authenticate challenges and bearer tokens (the distribution token
//! spec): which realm, service and scopes, and whether kiln may send
//! credentials there; and the OAuth2 refresh-token grant that turns an
//! identity token into a bearer token.

use std::net::IpAddr;

use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{StatusCode, Url};

use super::addr;
use super::credentials::Credential;
use crate::error::Error;

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

/// What a token service made of an OAuth2 refresh-token grant.
pub enum Grant {
    /// The bearer token to send the registry.
    Token(String),
    /// No OAuth2 here (404 or 405 to the POST): ask by GET instead.
    Unsupported,
}

/// Exchange an identity token for a bearer token: POST the OAuth2
/// refresh-token grant to `realm`, which must already be checked and its
/// addresses vetted. `host` names the registry in errors.
pub async fn refresh_grant(
    http: &reqwest::Client,
    realm: &Url,
    host: &str,
    service: Option<&str>,
    scopes: &[String],
    cred: &Credential,
) -> Result<Grant, Error> {
    let form = refresh_form(&cred.secret, service, scopes);
    let length = form.len();
    // A body that cannot be replayed: reqwest then does not follow a 307 or
    // 308, so the token never goes on to a host the realm redirects to.
    let once: Result<String, std::io::Error> = Ok(form);
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter([once]));
    let response = http
        .post(realm.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(CONTENT_LENGTH, length)
        .header(ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| super::transport_error(host, &e))?;
    let status = response.status();
    // A 301-303 was followed as a GET without the body: still not an answer to it.
    if status.is_redirection() || response.url() != realm {
        return Err(super::error(
            host,
            "the token service redirected the identity-token exchange; kiln does not follow it with the token",
            "check the registry's auth setup (its token realm should answer itself)",
        ));
    }
    if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
        return Ok(Grant::Unsupported);
    }
    if status == StatusCode::BAD_REQUEST {
        // OAuth2 says invalid_grant for a refresh token that is bad or expired.
        let body = super::body::read_some(response, super::MAX_TOKEN, host).await;
        if oauth_error(&body).as_deref() == Some("invalid_grant") {
            return Err(identity_token_rejected(host));
        }
        return Err(token_service_status(host, status));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(identity_token_rejected(host));
    }
    if !status.is_success() {
        return Err(token_service_status(host, status));
    }
    let body =
        super::body::read_capped(response, super::MAX_TOKEN, host, "the token reply").await?;
    token_from_reply(&body, host).map(Grant::Token)
}

/// The form body of the refresh-token grant (distribution's OAuth2 spec):
/// all scopes in one `scope`, space-separated.
pub fn refresh_form(token: &str, service: Option<&str>, scopes: &[String]) -> String {
    let mut pairs = vec![("grant_type", "refresh_token")];
    if let Some(s) = service {
        pairs.push(("service", s));
    }
    let scope = scopes.join(" ");
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    pairs.push(("client_id", "kiln"));
    pairs.push(("refresh_token", token));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// application/x-www-form-urlencoded: alphanumerics and `*-._` as they
/// are, space as `+`, every other byte as `%XX`.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `error` of an OAuth2 error reply, if the body is one.
fn oauth_error(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Reply {
        error: String,
    }
    serde_json::from_slice::<Reply>(body).ok().map(|r| r.error)
}

/// The bearer token in a token service's JSON reply (`token`, or OAuth2's `access_token`).
pub fn token_from_reply(body: &[u8], host: &str) -> Result<String, Error> {
    #[derive(serde::Deserialize)]
    struct TokenReply {
        token: Option<String>,
        access_token: Option<String>,
    }
    let reply: TokenReply = serde_json::from_slice(body).map_err(|_| {
        super::error(
            host,
            "token service reply is not JSON",
            "check the registry's auth setup",
        )
    })?;
    reply.token.or(reply.access_token).ok_or_else(|| {
        super::error(
            host,
            "token service gave no token",
            "check the registry's auth setup",
        )
    })
}

fn token_service_status(host: &str, status: StatusCode) -> Error {
    super::error(
        host,
        format!("token service answered {status}"),
        "check the registry's auth setup",
    )
}

/// The token service refused the identity token: expired, revoked, or for another registry.
pub fn identity_token_rejected(host: &str) -> Error {
    super::error(
        host,
        "rejected the identity token",
        "it may have expired or been revoked: log in again (docker login, podman login, or `az acr login` for ACR) to get a fresh one",
    )
}

/// A registry asking for Basic auth when all kiln has is an identity token,
/// which goes only to a token service.
pub fn identity_token_not_for_basic(host: &str) -> Error {
    super::error(
        host,
        "asks for a user name and password, but its credentials are an identity token (which kiln sends only to a token service)",
        "log in to this registry with a user name and password, or set KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD",
    )
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
    fn refresh_grant_forms() {
        let scopes = [
            "repository:team/app:pull,push".to_string(),
            "repository:library/python:pull".to_string(),
        ];
        assert_eq!(
            refresh_form("a+b/c=d&e", Some("my registry"), &scopes),
            "grant_type=refresh_token&service=my+registry\
             &scope=repository%3Ateam%2Fapp%3Apull%2Cpush+repository%3Alibrary%2Fpython%3Apull\
             &client_id=kiln&refresh_token=a%2Bb%2Fc%3Dd%26e"
        );
        assert_eq!(
            refresh_form("t", None, &[]),
            "grant_type=refresh_token&client_id=kiln&refresh_token=t"
        );
    }

    #[test]
    fn token_replies() {
        let token = |body: &str| token_from_reply(body.as_bytes(), "reg.example");
        assert_eq!(token(r#"{"token":"a"}"#).unwrap(), "a");
        assert_eq!(
            token(r#"{"access_token":"b","refresh_token":"r","expires_in":300}"#).unwrap(),
            "b"
        );
        assert!(token(r#"{"expires_in":300}"#).is_err());
        assert!(token("<html>").is_err());
        assert_eq!(
            oauth_error(br#"{"error":"invalid_grant"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(oauth_error(b"nope"), None);
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
