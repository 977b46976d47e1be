//! Proxies from the environment, read as Go's net/http reads them (and so
//! as docker, containerd, podman and skopeo do): `HTTPS_PROXY` for https,
//! `HTTP_PROXY` for plain http, each uppercase first, then lowercase, the
//! first one set and not empty; `NO_PROXY` the same way. `ALL_PROXY` is not
//! read, as in Go. Loopback is never proxied.
//!
//! reqwest would read these variables itself, with rules of its own; here
//! kiln decides, with one rule it tests and logs.
//!
//! Through a proxy the proxy resolves the registry's name, so kiln's pinned
//! addresses (dns.rs) hold for the proxy's own address only. Token realms are
//! still vetted on what their names resolve to on this machine.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use reqwest::Url;

use super::addr;
use crate::error::{Error, Retry};

/// A proxy named by an environment variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Proxy {
    /// The variable it came from, as set: `HTTPS_PROXY` or `https_proxy`.
    pub var: &'static str,
    /// With its credentials, if any: never printed.
    url: Url,
}

impl Proxy {
    /// `scheme://host:port`: how logs and errors name it, without credentials.
    pub fn shown(&self) -> String {
        format!(
            "{}://{}:{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or(""),
            self.url.port_or_known_default().unwrap_or(0)
        )
    }

    fn has_credentials(&self) -> bool {
        !self.url.username().is_empty() || self.url.password().is_some()
    }
}

/// The proxies and exceptions set in the environment.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    https: Option<Proxy>,
    http: Option<Proxy>,
    no_proxy: NoProxy,
}

/// Where a request to a URL goes.
#[derive(Debug, PartialEq)]
pub enum Route<'a> {
    Direct(&'static str),
    Through(&'a Proxy),
}

impl Settings {
    pub fn from_env() -> Result<Settings, Error> {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    /// Read through `get`, which gives a variable's value.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|n| get(n).filter(|v| !v.is_empty()).map(|v| (n, v)))
        };
        let parse = |found: Option<(&'static str, String)>| {
            found
                .map(|(var, value)| parse_proxy(var, &value))
                .transpose()
        };
        let https = parse(first(["HTTPS_PROXY", "https_proxy"]))?;
        // Under CGI, HTTP_PROXY may come from a request's `Proxy:` header
        // (httpoxy); Go refuses it there too.
        let cgi = get("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
        let http = match first(["HTTP_PROXY", "http_proxy"]) {
            Some((var, _)) if cgi => {
                tracing::debug!("REQUEST_METHOD is set (CGI): {var} is not used");
                None
            }
            found => parse(found)?,
        };
        let no_proxy = first(["NO_PROXY", "no_proxy"])
            .map_or_else(NoProxy::default, |(_, v)| NoProxy::parse(&v));
        Ok(Settings {
            https,
            http,
            no_proxy,
        })
    }

    fn is_empty(&self) -> bool {
        self.https.is_none() && self.http.is_none()
    }

    /// Whether a request to `url` goes through a proxy, and which.
    pub fn route(&self, url: &Url) -> Route<'_> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        };
        let Some(proxy) = proxy else {
            return Route::Direct("no proxy is set for its scheme");
        };
        let host = url.host_str().unwrap_or("");
        let port = url.port_or_known_default().unwrap_or(0);
        if is_loopback(host) {
            Route::Direct("loopback is never proxied")
        } else if self.no_proxy.matches(host, port) {
            Route::Direct("NO_PROXY lists it")
        } else {
            Route::Through(proxy)
        }
    }
}

/// `localhost`, or a loopback address in any spelling.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse().is_ok_and(addr::is_loopback)
}

/// A proxy URL: `http://` or `https://`, or `HOST:PORT` taken as `http://`.
fn parse_proxy(var: &'static str, value: &str) -> Result<Proxy, Error> {
    // The value may hold a password: messages name the variable, never its value.
    let refuse = |msg: &str| Error::Usage {
        what: var.to_string(),
        msg: msg.to_string(),
        hint: Some(format!(
            "set {var} to http://HOST:PORT (http://USER:PASSWORD@HOST:PORT for a proxy that asks for a login), or unset it"
        )),
    };
    let text = value.trim();
    let text = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&text).map_err(|_| refuse("is not a proxy URL"))?;
    match url.scheme() {
        "http" | "https" => {}
        s if s.starts_with("socks") => {
            return Err(refuse(
                "names a SOCKS proxy; kiln speaks to HTTP and HTTPS proxies only",
            ));
        }
        _ => return Err(refuse("is not an http:// or https:// proxy URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("names no proxy host"));
    }
    Ok(Proxy { var, url })
}

/// `NO_PROXY`: comma-separated host names (each matching itself and its
/// subdomains; with a leading `.` or `*.`, its subdomains only), IP
/// addresses, CIDR blocks, any of them with `:PORT`, or `*` for all.
#[derive(Clone, Debug, Default, PartialEq)]
struct NoProxy {
    all: bool,
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq)]
enum Entry {
    Net(IpAddr, u8),
    Ip(IpAddr, Option<u16>),
    /// `.example.com`; `exact` if `example.com` itself matches too.
    Domain {
        suffix: String,
        exact: bool,
        port: Option<u16>,
    },
}

impl NoProxy {
    /// Entries that do not parse are left out, as Go leaves them out.
    fn parse(text: &str) -> NoProxy {
        let mut list = NoProxy::default();
        for raw in text.split(',') {
            let item = raw.trim().to_ascii_lowercase();
            if item.is_empty() {
                continue;
            }
            if item == "*" {
                return NoProxy {
                    all: true,
                    entries: Vec::new(),
                };
            }
            if let Some(net) = parse_cidr(&item) {
                list.entries.push(net);
                continue;
            }
            let (host, port) = match split_host_port(&item) {
                Some((host, port)) => match port.parse::<u16>() {
                    Ok(port) => (host, Some(port)),
                    Err(_) => continue,
                },
                None => (item.as_str(), None),
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                list.entries.push(Entry::Ip(ip.to_canonical(), port));
                continue;
            }
            // `*.example.com` is `.example.com`: subdomains only.
            let host = host
                .strip_prefix('*')
                .filter(|h| h.starts_with('.'))
                .unwrap_or(host);
            if host.is_empty() || host == "." {
                continue;
            }
            let exact = !host.starts_with('.');
            let suffix = if exact {
                format!(".{host}")
            } else {
                host.to_string()
            };
            list.entries.push(Entry::Domain {
                suffix,
                exact,
                port,
            });
        }
        list
    }

    /// `host` as a URL writes it (lowercase, IPv6 in brackets).
    fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.to_ascii_lowercase();
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical());
        let port_ok = |want: &Option<u16>| want.is_none_or(|p| p == port);
        self.entries.iter().any(|entry| match entry {
            Entry::Net(net, bits) => ip.is_some_and(|ip| in_net(ip, *net, *bits)),
            Entry::Ip(want, p) => ip == Some(*want) && port_ok(p),
            Entry::Domain {
                suffix,
                exact,
                port: p,
            } => {
                let named = host.ends_with(suffix.as_str()) || (*exact && host == suffix[1..]);
                // Go also matches an address's text against names (`.2.10`
                // would take 192.0.2.10); here names match names only.
                ip.is_none() && named && port_ok(p)
            }
        })
    }
}

/// `10.0.0.0/8` or `fd00::/8`.
fn parse_cidr(item: &str) -> Option<Entry> {
    let (ip, bits) = item.split_once('/')?;
    let ip = ip.parse::<IpAddr>().ok()?.to_canonical();
    let bits = bits.parse::<u8>().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Entry::Net(ip, bits))
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// `host:port` or `[v6]:port`, as Go's net.SplitHostPort reads them: None
/// for a bare host, a bare IPv6 address among them.
fn split_host_port(item: &str) -> Option<(&str, &str)> {
    if let Some(rest) = item.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = item.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

/// Set up `builder` with the environment's proxies. Without any, it reads
/// no variables of its own either.
pub fn configure(builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, Error> {
    let settings = Settings::from_env()?;
    if settings.is_empty() {
        return Ok(builder.no_proxy());
    }
    let logged = Mutex::new(BTreeSet::new());
    let settings = Arc::new(settings);
    Ok(builder.proxy(reqwest::Proxy::custom(move |url| {
        let route = settings.route(url);
        log_once(&logged, url, &route);
        match route {
            Route::Through(proxy) => Some(proxy.url.clone()),
            Route::Direct(_) => None,
        }
    })))
}

/// Say once per scheme, host and port where its requests go.
fn log_once(logged: &Mutex<BTreeSet<String>>, url: &Url, route: &Route) {
    let key = format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    );
    let Ok(mut seen) = logged.lock() else { return };
    if !seen.insert(key.clone()) {
        return;
    }
    match route {
        Route::Through(proxy) => {
            tracing::debug!("{key}: through proxy {} ({})", proxy.shown(), proxy.var)
        }
        Route::Direct(why) => tracing::debug!("{key}: direct, {why}"),
    }
}

/// The error for a request that failed at its proxy: the proxy refused the
/// connection or the CONNECT, or asked for a login. None if `e` is not that.
pub fn failure(host: &str, e: &reqwest::Error) -> Option<Error> {
    let url = e.url()?;
    let settings = Settings::from_env().ok()?;
    let Route::Through(proxy) = settings.route(url) else {
        return None;
    };
    let text = super::chain(e).to_ascii_lowercase();
    // hyper-util says "tunnel error: ..." for each way a CONNECT fails; a
    // plain-http request's only connection is the one to the proxy; and a
    // connection that timed out got no further than the proxy or its tunnel.
    let at_proxy = text.contains("tunnel error")
        || (e.is_connect() && (url.scheme() == "http" || e.is_timeout()));
    if !at_proxy {
        return None;
    }
    let named = format!("proxy {} (from {})", proxy.shown(), proxy.var);
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    );
    let check = format!("check {} and NO_PROXY", proxy.var);
    let (msg, hint, retry) = if text.contains("proxy authorization required") {
        if proxy.has_credentials() {
            (
                format!("{named} rejected the credentials in {}", proxy.var),
                format!("{check}: the user name and password in it"),
                Retry::No,
            )
        } else {
            (
                format!("{named} asks for a login (407)"),
                format!(
                    "put the proxy's login in {} as http://USER:PASSWORD@HOST:PORT, or list this registry in NO_PROXY",
                    proxy.var
                ),
                Retry::No,
            )
        }
    } else if text.contains("tunnel error: unsuccessful") {
        // hyper-util keeps no status; some proxies answer a wrong login with 401 or 403.
        let login = if proxy.has_credentials() {
            format!(", or not accept the login in {}", proxy.var)
        } else {
            String::new()
        };
        (
            format!("{named} refused to connect to {target}"),
            format!("{check}: the proxy may not allow this host or port{login}"),
            Retry::No,
        )
    } else if e.is_timeout() {
        (
            format!("connecting through {named} timed out"),
            format!("{check}, and that the proxy is running"),
            Retry::Yes,
        )
    } else {
        let cause = innermost(e);
        (
            format!("cannot connect through {named}: {cause}"),
            format!("{check}, and that the proxy is running"),
            Retry::Yes,
        )
    };
    Some(Error::Registry {
        what: host.to_string(),
        msg,
        hint: Some(hint),
        retry,
        miss: false,
    })
}

/// The last source in `e`'s chain: the OS's words, as a rule.
fn innermost(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

#[cfg(test)]
mod tests;
