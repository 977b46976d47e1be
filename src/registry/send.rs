//! Sending a request: the Authorization its host and scopes need (Basic,
//! or a Bearer token from a vetted realm), and sending it again when the
//! answer says "not now" and the request can be replayed.

use super::*;

impl Client {
    /// Send a request built by `build` (called again for a retry after an auth
    /// challenge), with the Authorization this host and scope set needs.
    pub(super) async fn send(
        &self,
        host: &str,
        scopes: &[String],
        build: &(dyn Fn(&reqwest::Client, &Url) -> reqwest::RequestBuilder + Sync),
    ) -> Result<Response, Error> {
        self.send_as(host, scopes, build, Replay::WhenBuffered)
            .await
    }

    pub(super) async fn send_as(
        &self,
        host: &str,
        scopes: &[String],
        build: &(dyn Fn(&reqwest::Client, &Url) -> reqwest::RequestBuilder + Sync),
        replay: Replay,
    ) -> Result<Response, Error> {
        let base = self.base(host).await?;
        let key = (host.to_string(), scopes.join(" "));
        let mut bearer = false;
        for attempt in 0..2 {
            let response = self
                .transmit(host, replay, &|| {
                    let request = build(&self.http, &base);
                    let cached = self.state.lock().expect("lock").auth.get(&key).cloned();
                    match cached {
                        Some(value) => request.header(AUTHORIZATION, value),
                        None => request,
                    }
                })
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if attempt == 1 {
                // Name the repository the scope was for, not only the host.
                let repo = scopes
                    .first()
                    .and_then(|s| s.split(':').nth(1))
                    .unwrap_or("");
                let what = format!("{host}/{repo}");
                let what = what.trim_end_matches('/');
                let had_credentials = self.credential(host)?.is_some();
                // A token was granted and still refused: for a pull, that is
                // how Docker Hub answers a repository that does not exist.
                let pull_only = !scopes.is_empty() && scopes.iter().all(|s| s.ends_with(":pull"));
                if bearer && pull_only {
                    return Err(not_found_or_no_access(what, had_credentials));
                }
                return Err(unauthorized(what, had_credentials));
            }
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(auth::parse_challenge);
            let header = match challenge {
                Some(Challenge::Basic) => match self.credential(host)? {
                    Some(c) if c.is_identity_token() => {
                        return Err(auth::identity_token_not_for_basic(host));
                    }
                    Some(c) => basic(&c),
                    None => return Err(unauthorized(host, false)),
                },
                Some(Challenge::Bearer { realm, service }) => {
                    bearer = true;
                    self.token(host, &base, &realm, service.as_deref(), scopes)
                        .await?
                }
                None => return Ok(response),
            };
            self.state
                .lock()
                .expect("lock")
                .auth
                .insert(key.clone(), header);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Send one request, and send it again while the answer says "not now"
    /// (a 408, 429 or 5xx, a reset, a timeout) and `replay` allows. The last
    /// answer is returned as it came, for the caller to judge.
    pub(super) async fn transmit(
        &self,
        host: &str,
        replay: Replay,
        build: &(dyn Fn() -> reqwest::RequestBuilder + Sync),
    ) -> Result<Response, Error> {
        let mut attempt = 0;
        loop {
            let request = build().build().map_err(|e| transport_error(host, &e))?;
            let buffered = request.try_clone().is_some();
            let (method, path) = (request.method().clone(), request.url().path().to_string());
            let result = (self.http.execute(request).await).map_err(|e| transport_error(host, &e));
            let retry = match &result {
                Ok(r) => status_retry(r),
                Err(e) => e.retry(),
            };
            let allowed = match replay {
                Replay::WhenBuffered => buffered,
                Replay::WhenAnswered => result.is_ok(),
            };
            let wait = match retry {
                Retry::No => None,
                _ if !allowed => None,
                retry => retry::request_delay(attempt, retry),
            };
            let Some(wait) = wait else {
                return result;
            };
            let why = match &result {
                Ok(r) => format!("answered {}", r.status()),
                Err(e) => e.to_string(),
            };
            tracing::warn!(
                "{method} {host}{}: {why}; trying again in {wait:.1?}",
                Shown(&path)
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    pub(super) async fn token(
        &self,
        host: &str,
        base: &Url,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, Error> {
        let refuse = |m: String| {
            error(
                host,
                m,
                "the registry's token service looks wrong; kiln refuses to use it",
            )
        };
        let mut url = auth::check_realm(realm, base).map_err(refuse)?;
        // Vetted on what the names resolve to; the request then connects to
        // exactly these addresses (the resolver answers each name once).
        let realm_host = url.host_str().unwrap_or("").to_string();
        let realm_ips = self.resolver.lookup(&realm_host).await.map_err(|_| {
            error(
                host,
                format!("token realm host `{realm_host}` cannot be resolved"),
                "check the registry's auth setup and this machine's DNS",
            )
        })?;
        let registry_ips = self
            .resolver
            .lookup(base.host_str().unwrap_or(""))
            .await
            .unwrap_or_default();
        auth::vet_addresses(&realm_host, &realm_ips, &registry_ips).map_err(refuse)?;
        let cred = self.credential(host)?;
        if let Some(c) = cred.as_ref().filter(|c| c.is_identity_token()) {
            match auth::refresh_grant(&self.http, &url, host, service, scopes, c).await? {
                auth::Grant::Token(token) => return Ok(format!("Bearer {token}")),
                // No OAuth2 there: the GET below, with the token as the password.
                auth::Grant::Unsupported => {}
            }
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let mut request = self.http.get(url);
        if let Some(c) = &cred {
            request = request.header(AUTHORIZATION, basic(c));
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(host, &e))?;
        if response.status() == StatusCode::UNAUTHORIZED
            || response.status() == StatusCode::FORBIDDEN
        {
            return Err(match &cred {
                Some(c) if c.is_identity_token() => auth::identity_token_rejected(host),
                c => unauthorized(host, c.is_some()),
            });
        }
        if !response.status().is_success() {
            return Err(error(
                host,
                format!("token service answered {}", response.status()),
                "check the registry's auth setup",
            ));
        }
        let body = body::read_capped(response, MAX_TOKEN, host, "the token reply").await?;
        let token = auth::token_from_reply(&body, host)?;
        Ok(format!("Bearer {token}"))
    }
}

pub(super) fn basic(c: &Credential) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.secret))
    )
}
