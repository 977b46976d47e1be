//! A thin registry client on reqwest: the distribution API calls kiln
//! needs, with auth challenges answered as they come.
//!
//! Why not oci-client: its `mount_blob` asks only for a push token on the
//! target, so under token auth the mount is refused (the source needs a pull
//! scope in the same token); it does not check token realms before sending
//! credentials; and its upload path defaults to chunked PATCHes. The calls
//! below are each a few lines of HTTP, and keeping them here keeps every
//! request, header and credential in view.

pub mod addr;
pub mod auth;
mod body;
pub mod credentials;
mod dns;
pub mod mirror;
mod proxy;
pub mod retry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::TryStreamExt;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode, Url};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Retry};
use crate::oci;
use crate::shown::Shown;
use auth::Challenge;
use credentials::Credential;

/// Largest manifest or index read; larger is refused, not cut short.
pub const MAX_MANIFEST: usize = 16 << 20;
/// Largest image config pulled.
pub const MAX_CONFIG: u64 = 4 << 20;
/// Largest token reply; error bodies beyond this are cut short.
const MAX_TOKEN: usize = 64 << 10;
const MAX_ERROR_BODY: usize = 64 << 10;

pub const MANIFEST_TYPES: [&str; 4] = [
    oci::OCI_MANIFEST,
    oci::OCI_INDEX,
    oci::DOCKER_MANIFEST,
    oci::DOCKER_LIST,
];

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub ca_file: Option<PathBuf>,
    /// Hosts that may be spoken to over plain HTTP (loopback always may).
    pub insecure: Vec<String>,
    /// Where pulls from a registry go first, in order.
    pub mirrors: Vec<mirror::Mirror>,
    /// Never fall back from a registry's mirrors to the registry itself.
    pub mirror_only: bool,
    pub credentials: credentials::Sources,
}

pub struct Client {
    http: reqwest::Client,
    /// The client's only resolver: one answer per name, used for vetting and connecting.
    resolver: dns::Resolver,
    opts: Options,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `https://host` or `http://host`, decided once per host.
    bases: BTreeMap<String, Url>,
    /// Authorization header per host and scope set.
    auth: BTreeMap<(String, String), String>,
}

/// When a request may be sent again as it was, on an answer that says "not now".
#[derive(Clone, Copy)]
enum Replay {
    /// Its body, if any, is in memory (HEAD, GET, the POST that opens an
    /// upload, a mount, a manifest PUT, the PUT that commits an upload).
    WhenBuffered,
    /// Its body is read again from a file by `build`, and the registry
    /// answered: it did not take the blob, and the session refuses a second
    /// commit anyway. A reset or a lost reply leaves the outcome unknown, so
    /// the caller starts over with a HEAD instead.
    WhenAnswered,
}

/// Docker Hub's registry API host; `docker.io` itself answers the API with
/// a redirect to its web site.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The host that serves the distribution API for `registry` (a name as
/// written in image references): Docker Hub's names all go to
/// `registry-1.docker.io`, as docker, containerd and containers/image do.
/// Errors and credentials keep the name the user wrote.
pub fn api_host(registry: &str) -> &str {
    if is_docker_hub(registry) {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// True for every name Docker Hub goes by.
pub fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// A registry failure, said in a way that tells the user what to do.
pub fn error(what: &str, msg: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::Registry {
        what: what.to_string(),
        msg: msg.into(),
        hint: Some(hint.into()),
        retry: Retry::No,
    }
}

/// The same, for a failure that may pass: worth another try.
fn transient(what: &str, msg: impl Into<String>, hint: impl Into<String>, retry: Retry) -> Error {
    Error::Registry {
        what: what.to_string(),
        msg: msg.into(),
        hint: Some(hint.into()),
        retry,
    }
}

impl Client {
    pub fn new(opts: Options) -> Result<Client, Error> {
        let resolver = dns::Resolver::default();
        let mut builder = reqwest::Client::builder()
            .dns_resolver(resolver.clone())
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // Never from https down to http; reqwest drops Authorization across hosts.
                let downgrade = attempt
                    .previous()
                    .last()
                    .is_some_and(|p| p.scheme() == "https")
                    && attempt.url().scheme() == "http";
                if downgrade || attempt.previous().len() >= 10 {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }));
        builder = proxy::configure(builder)?;
        if let Some(ca) = &opts.ca_file {
            let pem = std::fs::read(ca).map_err(|e| Error::Io {
                action: "read the CA file",
                path: ca.clone(),
                source: e,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                error(
                    &ca.display().to_string(),
                    "is not a PEM certificate bundle",
                    "pass the CA certificate in PEM form",
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
            error(
                "TLS",
                format!("cannot set up the HTTP client: {e}"),
                "check --ca-file",
            )
        })?;
        Ok(Client {
            http,
            resolver,
            opts,
            state: Mutex::new(State::default()),
        })
    }

    /// Where to pull `repository` of `registry` from, in order: its mirrors,
    /// then itself. (Docker Hub's own API host is chosen below, in `base`.)
    pub fn pull_sources(&self, registry: &str, repository: &str) -> Vec<mirror::Source> {
        mirror::sources(
            &self.opts.mirrors,
            self.opts.mirror_only,
            registry,
            repository,
        )
    }

    fn insecure_allowed(&self, host: &str) -> bool {
        let name = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let loopback = name == "localhost"
            || name
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        loopback || self.opts.insecure.iter().any(|h| h == host || h == name)
    }

    /// https, or plain http for a host that may use it and does not speak TLS.
    async fn base(&self, host: &str) -> Result<Url, Error> {
        if let Some(url) = self.state.lock().expect("lock").bases.get(host) {
            return Ok(url.clone());
        }
        let https = Url::parse(&format!("https://{}/", api_host(host))).map_err(|_| {
            error(
                host,
                "is not a valid registry host",
                "write HOST or HOST:PORT",
            )
        })?;
        let mut chosen = https.clone();
        if self.insecure_allowed(host) {
            // Ask in plain HTTP first (no credentials go with it): a TLS server
            // answers 400 "...HTTP request to an HTTPS server" or hangs up, and
            // a plain registry answers at once, sparing the TLS setup.
            let http = Url::parse(&format!("http://{host}/")).expect("valid above");
            let probe = self
                .http
                .get(http.join("v2/").expect("static path"))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            if let Ok(response) = probe {
                let status = response.status();
                let body = body::read_some(response, 1024, host).await;
                let wants_tls = status == StatusCode::BAD_REQUEST
                    && String::from_utf8_lossy(&body)
                        .to_ascii_lowercase()
                        .contains("https");
                if !wants_tls {
                    chosen = http;
                }
            }
        }
        self.state
            .lock()
            .expect("lock")
            .bases
            .insert(host.to_string(), chosen.clone());
        Ok(chosen)
    }

    fn credential(&self, host: &str) -> Result<Option<Credential>, Error> {
        self.opts
            .credentials
            .lookup(host)
            .map_err(|m| error(host, m, "fix the credentials configuration"))
    }

    /// Send a request built by `build` (called again for a retry after an auth
    /// challenge), with the Authorization this host and scope set needs.
    async fn send(
        &self,
        host: &str,
        scopes: &[String],
        build: &(dyn Fn(&reqwest::Client, &Url) -> reqwest::RequestBuilder + Sync),
    ) -> Result<Response, Error> {
        self.send_as(host, scopes, build, Replay::WhenBuffered)
            .await
    }

    async fn send_as(
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
    async fn transmit(
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
            let result = self.http.execute(request).await;
            let retry = match &result {
                Ok(r) => status_retry(r),
                Err(e) => transport_error(host, e).retry(),
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
                return result.map_err(|e| transport_error(host, &e));
            };
            let why = match &result {
                Ok(r) => format!("answered {}", r.status()),
                Err(e) => transport_error(host, e).to_string(),
            };
            tracing::warn!(
                "{method} {host}{}: {why}; trying again in {wait:.1?}",
                Shown(&path)
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn token(
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

    /// GET a manifest: its bytes and media type. `reference` is a tag or digest.
    pub async fn get_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String), Error> {
        let response = self.manifest_response(host, repo, reference).await?;
        let what = format!("{host}/{repo}:{reference}");
        let response = check(response, &what).await?;
        read_manifest(response, &what).await
    }

    /// A manifest that may well not exist (a cache lookup): None for a 404.
    pub async fn find_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String)>, Error> {
        let response = self.manifest_response(host, repo, reference).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let what = format!("{host}/{repo}:{reference}");
        let response = check(response, &what).await?;
        read_manifest(response, &what).await.map(Some)
    }

    /// HEAD a manifest: the digest (Docker-Content-Digest) and media type the
    /// registry gives for `reference`, without its body. Docker Hub counts
    /// manifest GETs against its pull limit, not HEADs. None when the
    /// registry gives no usable digest or will not answer a HEAD: the caller
    /// then GETs.
    pub async fn head_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(String, String)>, Error> {
        self.head_manifest_as(host, repo, reference, "pull").await
    }

    /// The same, under the token a push uses (`actions` `pull,push`).
    async fn head_manifest_as(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
        actions: &str,
    ) -> Result<Option<(String, String)>, Error> {
        let scopes = [format!("repository:{repo}:{actions}")];
        let path = format!("v2/{repo}/manifests/{reference}");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.head(base.join(&path).expect("valid path"))
                    .header(ACCEPT, MANIFEST_TYPES.join(", "))
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            let busy = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if busy {
                return Err(status_error(response, &format!("{host}/{repo}:{reference}")).await);
            }
            return Ok(None);
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        };
        let digest = header("Docker-Content-Digest").filter(|d| oci::sha256_hex(d).is_some());
        let media_type = header(CONTENT_TYPE.as_str()).unwrap_or_default();
        Ok(digest.map(|d| (d, media_type)))
    }

    async fn manifest_response(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<Response, Error> {
        let scopes = [format!("repository:{repo}:pull")];
        let path = format!("v2/{repo}/manifests/{reference}");
        self.send(host, &scopes, &|c, base| {
            c.get(base.join(&path).expect("valid path"))
                .header(ACCEPT, MANIFEST_TYPES.join(", "))
        })
        .await
    }

    /// GET a blob into `dest`, checking its size and digest on the way;
    /// nothing is left at `dest` unless it matches.
    pub async fn fetch_blob(
        &self,
        host: &str,
        repo: &str,
        desc: &oci::Descriptor,
        dest: &Path,
        bar: &crate::progress::Bar,
    ) -> Result<(), Error> {
        bar.restart();
        let scopes = [format!("repository:{repo}:pull")];
        let path = format!("v2/{repo}/blobs/{}", desc.digest);
        let response = self
            .send(host, &scopes, &|c, base| {
                c.get(base.join(&path).expect("valid path"))
            })
            .await?;
        let what = format!("{host}/{repo}@{}", desc.digest);
        let response = check(response, &what).await?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        let tmp = crate::tmp::TempFile::new_in(dir, "blob")?;
        let mut file =
            tokio::fs::File::from_std(tmp.file().try_clone().map_err(|e| Error::Io {
                action: "open",
                path: tmp.path().to_path_buf(),
                source: e,
            })?);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut stream = response.bytes_stream();
        let mut guard = body::Guard::new(&what, "the blob");
        while let Some(chunk) = guard.next(&mut stream).await? {
            size += chunk.len() as u64;
            if size > desc.size {
                break;
            }
            bar.inc(chunk.len() as u64);
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| Error::Io {
                action: "write",
                path: tmp.path().to_path_buf(),
                source: e,
            })?;
        }
        file.flush().await.map_err(|e| Error::Io {
            action: "write",
            path: tmp.path().to_path_buf(),
            source: e,
        })?;
        let digest = format!("sha256:{}", hex(&hasher.finalize()));
        if size != desc.size || digest != desc.digest {
            return Err(error(
                &what,
                format!(
                    "the registry sent {size} bytes with digest {digest}, not the {} bytes the manifest names",
                    desc.size
                ),
                "the registry or a proxy is corrupting data; try again",
            ));
        }
        drop(file);
        tmp.persist(dest).map_err(|e| Error::Io {
            action: "store blob",
            path: dest.to_path_buf(),
            source: e,
        })?;
        Ok(())
    }

    pub async fn blob_exists(&self, host: &str, repo: &str, digest: &str) -> Result<bool, Error> {
        let scopes = [format!("repository:{repo}:pull,push")];
        let path = format!("v2/{repo}/blobs/{digest}");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.head(base.join(&path).expect("valid path"))
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(response, &format!("{host}/{repo}@{digest}")).await),
        }
    }

    /// Ask the registry to mount `digest` from `from`. True if mounted.
    pub async fn mount(
        &self,
        host: &str,
        repo: &str,
        from: &str,
        digest: &str,
    ) -> Result<bool, Error> {
        let scopes = [
            format!("repository:{repo}:pull,push"),
            format!("repository:{from}:pull"),
        ];
        let path = format!("v2/{repo}/blobs/uploads/");
        let response = self
            .send(host, &scopes, &|c, base| {
                let mut url = base.join(&path).expect("valid path");
                url.query_pairs_mut()
                    .append_pair("mount", digest)
                    .append_pair("from", from);
                c.post(url).header(CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            // Not mounted: the registry opened an upload session instead; it expires unused.
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(status_error(response, &format!("{host}/{repo}")).await),
        }
    }

    /// Upload a blob from a file in one streaming request: POST for a fresh
    /// session, then PUT the whole body with the digest.
    pub async fn upload(
        &self,
        host: &str,
        repo: &str,
        digest: &str,
        size: u64,
        file: &Path,
        bar: &crate::progress::Bar,
    ) -> Result<(), Error> {
        let what = format!("{host}/{repo}@{digest}");
        let scopes = [format!("repository:{repo}:pull,push")];
        let mut url = self.start_upload(host, repo).await?;
        url.query_pairs_mut().append_pair("digest", digest);
        let build = |c: &reqwest::Client, _: &Url| {
            let body = match std::fs::File::open(file) {
                // 1 MiB reads: reqwest's own File body reads 4 KiB at a time, each a
                // trip to the blocking pool, which capped uploads near 100 MB/s.
                Ok(f) => {
                    bar.restart();
                    let chunks = tokio_util::io::ReaderStream::with_capacity(
                        tokio::fs::File::from_std(f),
                        1 << 20,
                    );
                    let counter = bar.counter();
                    reqwest::Body::wrap_stream(
                        chunks.inspect_ok(move |c| counter.inc(c.len() as u64)),
                    )
                }
                Err(_) => reqwest::Body::from(Vec::new()),
            };
            c.put(url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .body(body)
        };
        let response = self
            .send_as(host, &scopes, &build, Replay::WhenAnswered)
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(()),
            // The session is gone: a replayed PUT whose first try was
            // committed after all. The caller's next try HEADs the blob.
            StatusCode::NOT_FOUND => Err(transient(
                &what,
                "the registry forgot the upload session",
                "try again",
                Retry::Yes,
            )),
            _ => Err(status_error(response, &what).await),
        }
    }

    /// POST for a fresh upload session; returns where to send the bytes.
    pub async fn start_upload(&self, host: &str, repo: &str) -> Result<Url, Error> {
        let what = format!("{host}/{repo}");
        let scopes = [format!("repository:{repo}:pull,push")];
        let path = format!("v2/{repo}/blobs/uploads/");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.post(base.join(&path).expect("valid path"))
                    .header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(response, &what).await);
        }
        self.location(host, &response, &what).await
    }

    /// The Location a registry answered with, resolved against the registry,
    /// and refused if it points at another host.
    async fn location(&self, host: &str, response: &Response, what: &str) -> Result<Url, Error> {
        let base = self.base(host).await?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let url = base.join(location).map_err(|_| {
            error(
                what,
                "the registry gave no usable upload location",
                "check the registry",
            )
        })?;
        if url.host_str() != base.host_str()
            || url.port_or_known_default() != base.port_or_known_default()
        {
            return Err(error(
                what,
                format!(
                    "the registry sent the upload to another host, `{}`",
                    url.host_str().unwrap_or("")
                ),
                "kiln uploads only to the registry it was asked to push to",
            ));
        }
        Ok(url)
    }

    /// Send a blob's bytes as they are produced, in one PATCH whose body is
    /// `body`; returns where to finish the upload. The body cannot be sent
    /// twice, so an auth challenge here fails the stream (the caller then
    /// uploads from the file).
    pub async fn patch_stream(
        &self,
        host: &str,
        repo: &str,
        location: Url,
        body: reqwest::Body,
    ) -> Result<Url, Error> {
        let what = format!("{host}/{repo}");
        let scopes = [format!("repository:{repo}:pull,push")];
        let body = Mutex::new(Some(body));
        let response = self
            .send(host, &scopes, &|c, _| {
                let body = body
                    .lock()
                    .expect("lock")
                    .take()
                    .unwrap_or_else(|| reqwest::Body::from(Vec::new()));
                c.patch(location.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(response, &what).await);
        }
        self.location(host, &response, &what).await
    }

    /// Close an upload session with the digest of what was sent.
    pub async fn finish_upload(
        &self,
        host: &str,
        repo: &str,
        mut location: Url,
        digest: &str,
    ) -> Result<(), Error> {
        let what = format!("{host}/{repo}@{digest}");
        let scopes = [format!("repository:{repo}:pull,push")];
        location.query_pairs_mut().append_pair("digest", digest);
        let response = self
            .send(host, &scopes, &|c, _| {
                c.put(location.clone()).header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error(response, &what).await);
        }
        Ok(())
    }

    /// PUT a manifest under `tag` unless the tag already names `digest`
    /// (a HEAD says so): a registry with immutable tags (ECR) refuses even
    /// an identical overwrite. True if it was put, false if already there.
    pub async fn put_tag(
        &self,
        host: &str,
        repo: &str,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
        digest: &str,
    ) -> Result<bool, Error> {
        let existing = self
            .head_manifest_as(host, repo, tag, "pull,push")
            .await?
            .map(|(d, _)| d);
        if existing.as_deref() == Some(digest) {
            return Ok(false);
        }
        let reported = self
            .put_manifest_over(
                host,
                repo,
                tag,
                bytes,
                media_type,
                existing.as_deref(),
                digest,
            )
            .await?;
        if let Some(d) = reported.filter(|d| d != digest) {
            return Err(error(
                &format!("{host}/{repo}:{tag}"),
                format!("the registry stored the manifest as {d}, not {digest}"),
                "the registry rewrote the manifest; push to a registry that keeps manifests as sent",
            ));
        }
        Ok(true)
    }

    /// PUT a manifest under `reference` (a tag or digest). Returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Option<String>, Error> {
        self.put_manifest_over(host, repo, reference, bytes, media_type, None, "")
            .await
    }

    /// PUT a manifest; `existing` is the digest the tag named before, if
    /// known, and `digest` the one being put, both named if the registry
    /// refuses to move an immutable tag.
    #[allow(clippy::too_many_arguments)]
    async fn put_manifest_over(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
        existing: Option<&str>,
        digest: &str,
    ) -> Result<Option<String>, Error> {
        let scopes = [format!("repository:{repo}:pull,push")];
        let path = format!("v2/{repo}/manifests/{reference}");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.request(Method::PUT, base.join(&path).expect("valid path"))
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.to_vec())
            })
            .await?;
        let what = format!("{host}/{repo}:{reference}");
        let status = response.status();
        if status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT {
            // ECR answers an overwrite of an immutable tag with 400
            // TAG_INVALID or MANIFEST_TAG_IMMUTABLE; others with 409.
            let body = body::read_some(response, MAX_ERROR_BODY, &what).await;
            let codes = error_codes(&body);
            let immutable = status == StatusCode::CONFLICT
                || codes
                    .iter()
                    .any(|c| c == "TAG_INVALID" || c == "MANIFEST_TAG_IMMUTABLE");
            let detail = registry_message(&body);
            if immutable {
                let had = existing.map_or("another digest".to_string(), |d| format!("digest {d}"));
                let ours = if digest.is_empty() {
                    String::new()
                } else {
                    format!(", not {digest}")
                };
                return Err(error(
                    &what,
                    format!(
                        "the tag is immutable and already exists with {had}{ours}; the registry refused to move it ({status}{detail})"
                    ),
                    "push under a new tag (or by digest), or allow tag overwrites on the repository",
                ));
            }
            return Err(error(
                &what,
                format!("the registry answered {status}{detail}"),
                "check the registry's logs",
            ));
        }
        if status != StatusCode::CREATED {
            return Err(status_error(response, &what).await);
        }
        Ok(response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }
}

fn basic(c: &Credential) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.secret))
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A manifest's bytes (refused above MAX_MANIFEST) and the media type the registry gave it.
async fn read_manifest(response: Response, what: &str) -> Result<(Vec<u8>, String), Error> {
    let media_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let body = body::read_capped(response, MAX_MANIFEST, what, "the manifest").await?;
    Ok((body, media_type))
}

/// Pass a success through; turn anything else into an error that says what to do.
async fn check(response: Response, what: &str) -> Result<Response, Error> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(status_error(response, what).await)
    }
}

async fn status_error(response: Response, what: &str) -> Error {
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
        StatusCode::FORBIDDEN => error(
            what,
            format!("access denied{detail}"),
            "the credentials are valid but lack permission for this repository",
        ),
        StatusCode::NOT_FOUND => error(
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
fn status_retry(response: &Response) -> Retry {
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
fn retry_after(response: &Response) -> Option<u64> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    value.to_str().ok()?.trim().parse().ok()
}

/// The `errors[]` of a distribution error body: (code, message) each.
fn error_items(body: &[u8]) -> Vec<(String, String)> {
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
fn registry_message(body: &[u8]) -> String {
    error_items(body)
        .first()
        .map_or(String::new(), |(code, message)| {
            format!(": {} {}", Shown(code), Shown(message))
                .trim_end()
                .to_string()
        })
}

/// Every `errors[].code` of a distribution error body.
fn error_codes(body: &[u8]) -> Vec<String> {
    error_items(body)
        .into_iter()
        .map(|(code, _)| code)
        .filter(|c| !c.is_empty())
        .collect()
}

/// A registry that will not tell a missing repository from a private one.
/// Whether a pull's failure means this source does not have the image or
/// cannot be reached (not found, no access, no connection, busy): for a
/// mirror, a reason to try the next source. Other failures (an image
/// without the platform, a corrupt reply) are the answer.
pub fn is_miss(e: &Error) -> bool {
    let Error::Registry { msg, retry, .. } = e else {
        return false;
    };
    *retry != Retry::No
        || msg.starts_with("not found")
        || msg.starts_with("repository not found")
        || msg.starts_with("access denied")
        || msg.starts_with("unknown host")
        || msg.starts_with("TLS certificate")
        || msg.starts_with("requires authentication")
        || msg.starts_with("rejected the credentials")
        || msg.starts_with("cannot connect")
}

fn not_found_or_no_access(what: &str, had_credentials: bool) -> Error {
    let hint = if had_credentials {
        "check the repository name, and that these credentials may read it"
    } else {
        "check the repository name; a private repository needs a login (`docker login`, or KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD)"
    };
    error(what, "repository not found or no access", hint)
}

fn unauthorized(what: &str, had_credentials: bool) -> Error {
    if had_credentials {
        error(
            what,
            "rejected the credentials",
            "check the user name and password (docker login, podman login, or KILN_REGISTRY_USERNAME/KILN_REGISTRY_PASSWORD)",
        )
    } else {
        error(
            what,
            "requires authentication",
            "log in with `docker login` or `podman login`, or set KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD",
        )
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn is_certificate_error(e: &reqwest::Error) -> bool {
    let text = chain(e).to_ascii_lowercase();
    text.contains("certificate") || text.contains("unknownissuer") || text.contains("invalid peer")
}

/// A connection failure, without the URL (its query could hold a token).
fn transport_error(host: &str, e: &reqwest::Error) -> Error {
    if let Some(failed) = proxy::failure(host, e) {
        return failed;
    }
    // The sources only: reqwest's own message repeats the URL.
    let text = std::error::Error::source(e).map_or_else(|| "request failed".to_string(), chain);
    let lower = text.to_ascii_lowercase();
    if is_certificate_error(e) {
        error(
            host,
            "TLS certificate is not trusted",
            "pass the registry's CA with --ca-file, or use --insecure-registry for a plain-HTTP registry",
        )
    } else if lower.contains("dns")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        error(host, "unknown host", "check the registry's host name")
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

    #[test]
    fn docker_hub_names_go_to_its_api_host() {
        for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(api_host(name), "registry-1.docker.io");
        }
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn loopback_may_use_plain_http() {
        let c = Client::new(Options {
            insecure: vec!["registry.lan:5000".into()],
            ..Options::default()
        })
        .unwrap();
        assert!(c.insecure_allowed("127.0.0.1:5000"));
        assert!(c.insecure_allowed("localhost"));
        assert!(c.insecure_allowed("[::1]:5000"));
        assert!(c.insecure_allowed("registry.lan:5000"));
        assert!(!c.insecure_allowed("ghcr.io"));
    }
}
