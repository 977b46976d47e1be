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
mod blobs;
mod body;
pub mod credentials;
mod dns;
mod errors;
mod manifests;
pub mod mirror;
mod proxy;
mod referrers;
pub mod retry;
mod send;

pub use errors::is_miss;
use errors::*;

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
        miss: false,
    }
}

/// A registry failure that means "not here, or not for us": see `is_miss`.
pub(super) fn miss(what: &str, msg: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::Registry {
        what: what.to_string(),
        msg: msg.into(),
        hint: Some(hint.into()),
        retry: Retry::No,
        miss: true,
    }
}

/// The same, for a failure that may pass: worth another try.
fn transient(what: &str, msg: impl Into<String>, hint: impl Into<String>, retry: Retry) -> Error {
    Error::Registry {
        what: what.to_string(),
        msg: msg.into(),
        hint: Some(hint.into()),
        retry,
        miss: false,
    }
}

impl Client {
    pub fn new(opts: Options) -> Result<Client, Error> {
        // reqwest is built without a crypto provider of its own; an error
        // here only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
