//! What a registry's answer or a failed connection means, said so that
//! the user knows what to do, and whether trying again may help.

use super::*;

/// Pass a success through; turn anything else into an error that says what to do.
pub(super) async fn check(response: Response, what: &str) -> Result<Response, Error> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(status_error(response, what).await)
    }
}

pub(super) async fn status_error(response: Response, what: &str) -> Error {
    let status = response.status();
    let retry = status_retry(&response);
    let retry_after = retry_after(&response);
    let body = body::read_some(response, MAX_ERROR_BODY, what).await;
    let detail = registry_message(&body);
    let name_unknown = error_codes(&body).iter().any(|c| c == "NAME_UNKNOWN");
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
            if name_unknown =>
        {
            not_found_or_no_access(what, true)
        }
        StatusCode::UNAUTHORIZED => unauthorized(what, true),
        StatusCode::FORBIDDEN => miss(
            what,
            format!("access denied{detail}"),
            "the credentials are valid but lack permission for this repository",
        ),
        StatusCode::NOT_FOUND => miss(
            what,
            format!("not found{detail}"),
            "check the repository name and tag (and --registry-mirror for docker.io images)",
        ),
        // Asked to wait longer than kiln waits: say so now rather than sleep for hours.
        s if matches!(s.as_u16(), 429 | 503)
            && retry_after.is_some_and(|secs| secs > retry::MAX_RETRY_AFTER) =>
        {
            let secs = retry_after.unwrap_or_default();
            error(
                what,
                format!(
                    "the registry answered {status} and asked kiln to wait {} (Retry-After: {secs}){detail}",
                    crate::spec::duration::format(secs.min(1 << 32) as i64 * 1_000_000_000)
                ),
                format!(
                    "kiln waits at most {} s for a registry; try again later (on Docker Hub, logging in raises the pull limit)",
                    retry::MAX_RETRY_AFTER
                ),
            )
        }
        _ if retry != Retry::No => transient(
            what,
            format!("the registry answered {status}{detail}"),
            "the registry is busy or failing; try again later",
            retry,
        ),
        _ => error(
            what,
            format!("the registry answered {status}{detail}"),
            "check the registry's logs",
        ),
    }
}

/// What a response's status says about sending the request again; the
/// same statuses [`status_error`] calls transient.
pub(super) fn status_retry(response: &Response) -> Retry {
    match response.status().as_u16() {
        // "Not now": 408, 429, 499 (client closed), 5xx but 501/505, 522.
        408 | 429 | 499 | 500 | 502 | 503 | 504 | 522 => {
            retry_after(response).map_or(Retry::Yes, Retry::After)
        }
        _ => Retry::No,
    }
}

/// Retry-After in seconds (the HTTP-date form is rare from registries and
/// taken as no answer).
pub(super) fn retry_after(response: &Response) -> Option<u64> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    value.to_str().ok()?.trim().parse().ok()
}

/// The `errors[]` of a distribution error body: (code, message) each.
pub(super) fn error_items(body: &[u8]) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    serde_json::from_slice::<Body>(body).map_or_else(
        |_| Vec::new(),
        |b| {
            b.errors
                .into_iter()
                .map(|e| (e.code.unwrap_or_default(), e.message.unwrap_or_default()))
                .collect()
        },
    )
}

/// The first `errors[].message` of a distribution error body, escaped: a
/// registry's words end up on the terminal.
pub(super) fn registry_message(body: &[u8]) -> String {
    error_items(body)
        .first()
        .map_or(String::new(), |(code, message)| {
            format!(": {} {}", Shown(code), Shown(message))
                .trim_end()
                .to_string()
        })
}

/// Every `errors[].code` of a distribution error body.
pub(super) fn error_codes(body: &[u8]) -> Vec<String> {
    error_items(body)
        .into_iter()
        .map(|(code, _)| code)
        .filter(|c| !c.is_empty())
        .collect()
}

/// Whether a pull's failure means this source does not have the image or
/// cannot be reached (not found, no access, no connection, busy): for a
/// mirror, a reason to try the next source. Other failures (an image
/// without the platform, a corrupt reply) are the answer.
pub fn is_miss(e: &Error) -> bool {
    matches!(e, Error::Registry { retry, miss, .. } if *miss || *retry != Retry::No)
}

/// A registry that will not tell a missing repository from a private one.
pub(super) fn not_found_or_no_access(what: &str, had_credentials: bool) -> Error {
    let hint = if had_credentials {
        "check the repository name, and that these credentials may read it"
    } else {
        "check the repository name; a private repository needs a login (`docker login`, or KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD)"
    };
    miss(what, "repository not found or no access", hint)
}

pub(super) fn unauthorized(what: &str, had_credentials: bool) -> Error {
    if had_credentials {
        miss(
            what,
            "rejected the credentials",
            "check the user name and password (docker login, podman login, or KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD)",
        )
    } else {
        miss(
            what,
            "requires authentication",
            "log in with `docker login` or `podman login`, or set KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD",
        )
    }
}

pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub(super) fn is_certificate_error(e: &reqwest::Error) -> bool {
    let text = chain(e).to_ascii_lowercase();
    text.contains("certificate") || text.contains("unknownissuer") || text.contains("invalid peer")
}

/// A connection failure, without the URL (its query could hold a token).
pub(super) fn transport_error(host: &str, e: &reqwest::Error) -> Error {
    if let Some(failed) = proxy::failure(host, e) {
        return failed;
    }
    // The sources only: reqwest's own message repeats the URL.
    let text = std::error::Error::source(e).map_or_else(|| "request failed".to_string(), chain);
    let lower = text.to_ascii_lowercase();
    if is_certificate_error(e) {
        miss(
            host,
            "TLS certificate is not trusted",
            "pass the registry's CA with --ca-file, or use --insecure-registry for a plain-HTTP registry",
        )
    } else if lower.contains("dns")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        miss(
            host,
            "unknown host",
            "check the registry's host name, and this machine's network and DNS; where Docker Hub is out of reach, pull through a mirror with --registry-mirror docker.io=HOST",
        )
    } else if e.is_timeout() {
        transient(
            host,
            "timed out",
            "check the network and the registry; retry later",
            Retry::Yes,
        )
    } else if e.is_connect() {
        transient(
            host,
            "cannot connect",
            "check the host and port, and that the registry is running",
            Retry::Yes,
        )
    } else {
        // Resets and bodies cut short land here: worth another try.
        transient(
            host,
            format!("request failed: {text}"),
            "check the registry and the network",
            Retry::Yes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mirror falls through on what says "not here, or not for us", or
    /// may pass; a wrong answer (a corrupt reply, a missing platform) is final.
    #[test]
    fn misses_are_a_kind_not_a_message() {
        assert!(is_miss(&unauthorized("m", true)));
        assert!(is_miss(&unauthorized("m", false)));
        assert!(is_miss(&transient("m", "busy", "later", Retry::Yes)));
        // A wrong answer is final, whatever its words.
        assert!(!is_miss(&error(
            "m",
            "not found in the index",
            "a wrong answer"
        )));
        assert!(is_miss(&not_found_or_no_access("m", false)));
    }

    #[test]
    fn distribution_error_bodies_are_summarised() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            registry_message(body),
            ": MANIFEST_UNKNOWN manifest unknown"
        );
        assert_eq!(registry_message(b"<html>"), "");
        let hostile =
            br#"{"errors":[{"code":"DENIED","message":"no\n\u001b[2Jerror: forged\u202e"}]}"#;
        assert_eq!(
            registry_message(hostile),
            ": DENIED no\\n\\x1b[2Jerror: forged\\u{202e}"
        );
    }
}
