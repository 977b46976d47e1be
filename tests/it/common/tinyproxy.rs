//! tinyproxy, a real HTTP proxy that tunnels with CONNECT, for the tests of
//! HTTPS_PROXY and NO_PROXY: our own config, and its log read back.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Tinyproxy {
    /// `http://127.0.0.1:PORT`, without a login.
    pub url: String,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Listen on 127.0.0.1:`port`, tunnel only to `connect_ports`, and ask
    /// for `login` (user, password) if given. `cmd` runs the tinyproxy
    /// binary: `Command::new(path)`, or `Netns::command(path)` to run it
    /// inside a namespace, where it resolves names by that /etc/hosts.
    pub fn start(
        mut cmd: Command,
        port: u16,
        connect_ports: &[u16],
        login: Option<(&str, &str)>,
    ) -> Tinyproxy {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("tinyproxy.log");
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\nLogFile \"{}\"\nLogLevel Info\n",
            log.display()
        );
        for p in connect_ports {
            config.push_str(&format!("ConnectPort {p}\n"));
        }
        if let Some((user, password)) = login {
            config.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let conf = dir.path().join("tinyproxy.conf");
        fs::write(&conf, config).unwrap();
        // -d: stay in the foreground, so the child is the proxy itself.
        let mut child = cmd
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let text = || fs::read_to_string(&log).unwrap_or_default();
        while !text().contains("Accepting connections") {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tinyproxy exited with {status}:\n{}", text());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tinyproxy did not start on port {port}:\n{}", text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Tinyproxy {
            url: format!("http://127.0.0.1:{port}"),
            log,
            child,
            _dir: dir,
        }
    }

    /// The request lines it was sent, e.g. `CONNECT registry.test:443 HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): ").filter(|_| l.contains("Request (")))
            .map(|(_, request)| request.trim().to_string())
            .collect()
    }

    /// Its whole log, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
