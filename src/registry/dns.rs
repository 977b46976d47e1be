//! Name resolution for the HTTP client: each name is looked up once per run
//! and every later connection to it uses that answer. A token realm is
//! vetted on the addresses it resolves to, and because the connection
//! reuses exactly those addresses, a second lookup (DNS rebinding) cannot
//! send the request somewhere else.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Clone, Default)]
pub struct Resolver {
    answers: Arc<Mutex<BTreeMap<String, Vec<IpAddr>>>>,
}

impl Resolver {
    /// The addresses `host` (a name or an IP literal, brackets allowed)
    /// stands for; a name is looked up the first time only.
    pub async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = bare.to_ascii_lowercase();
        if let Some(found) = self.answers.lock().expect("lock").get(&name) {
            return Ok(found.clone());
        }
        let asked = name.clone();
        let found: Vec<IpAddr> = tokio::task::spawn_blocking(move || {
            (asked.as_str(), 0)
                .to_socket_addrs()
                .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>())
        })
        .await
        .map_err(std::io::Error::other)??;
        if found.is_empty() {
            return Err(std::io::Error::other(format!(
                "failed to lookup address information: no addresses for {name}"
            )));
        }
        // Two lookups raced: the first answer stored is the one used.
        let mut answers = self.answers.lock().expect("lock");
        Ok(answers.entry(name).or_insert(found).clone())
    }
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = this.lookup(&host).await?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
