//! A private network namespace for tests that need host names, or addresses
//! other than 127.0.0.1, without any traffic leaving the machine: its own
//! `lo` (up, with extra addresses) and its own /etc/hosts, held open by a
//! sleeping `unshare -n -m` process. Servers join it by running on a thread
//! that entered it (`run`); programs run inside it through `nsenter`
//! (`command`), so they see the private /etc/hosts too.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Netns {
    holder: Child,
    _dir: tempfile::TempDir,
}

impl Netns {
    /// A namespace whose `lo` also has `addrs` (IPv4 or IPv6) and whose
    /// /etc/hosts is `127.0.0.1 localhost` plus `hosts` (address, name).
    /// None if the tools are missing on a developer machine (under CI=true,
    /// a missing tool fails the test, as `have` does).
    pub fn new(addrs: &[&str], hosts: &[(&str, &str)]) -> Option<Netns> {
        if !super::have(&["unshare", "nsenter", "ip", "mount"]) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let hosts_file = dir.path().join("hosts");
        // IPv4 only for localhost, so which address it resolves to first is certain.
        let mut text = String::from("127.0.0.1 localhost\n");
        for (addr, name) in hosts {
            text.push_str(&format!("{addr} {name}\n"));
        }
        fs::write(&hosts_file, text).unwrap();
        let mut script = String::from("set -e\nip link set lo up\n");
        for addr in addrs {
            let (family, bits, flags) = if addr.contains(':') {
                ("-6", 128, " nodad")
            } else {
                ("-4", 32, "")
            };
            script.push_str(&format!(
                "ip {family} addr add {addr}/{bits} dev lo{flags}\n"
            ));
        }
        script.push_str(&format!(
            "mount --bind {} /etc/hosts\necho ready\nexec sleep 100000\n",
            hosts_file.display()
        ));
        let mut holder = Command::new("unshare")
            .args(["-n", "-m", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let _ = holder.kill();
            let out = holder.wait_with_output().unwrap();
            panic!(
                "cannot set up a network namespace (root is needed): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(Netns { holder, _dir: dir })
    }

    /// Run `f` on a thread inside the namespace: sockets it opens, and
    /// threads it starts, live there.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = fs::File::open(format!("/proc/{}/ns/net", self.holder.id())).unwrap();
        std::thread::spawn(move || {
            // SAFETY: a valid namespace fd; setns moves only this thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }

    /// `program` run inside the namespace, seeing its /etc/hosts.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-n", "-m", "--"])
            .arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
