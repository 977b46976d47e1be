//! A fault-injecting HTTP/1.1 proxy in front of a test registry: passes
//! requests through byte for byte (Host included, so the registry's absolute
//! Locations point back here) unless a fault set by the test matches.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (and `Retry-After`) without forwarding.
    Status(u16, Option<u32>),
    /// Forward the head and part of the body, then reset both connections.
    ResetMidBody,
    /// Read the request, send nothing for this long, then close.
    Stall(Duration),
    /// Forward it all and read the whole reply, then close without answering.
    LoseReply,
}

/// One request the proxy saw; `fault` is the fault that fired, if any, as
/// `{:?}` prints it: `Status(503, None)`, `ResetMidBody`, `Stall(1.5s)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    pub fault: Option<String>,
}

#[derive(Default)]
struct Shared {
    target: String,
    /// (method, path substring, times left, fault); the first match fires.
    rules: Mutex<Vec<(String, String, usize, Fault)>>,
    seen: Mutex<Vec<Seen>>,
    /// Every nth request gets the next fault of the cycle: (n, cycle, requests so far).
    every: Mutex<Option<(usize, Vec<Fault>, usize)>>,
    stop: AtomicBool,
    /// Clones of every open socket, so Drop can unblock their threads.
    socks: Mutex<Vec<(u64, TcpStream)>>,
    next_id: AtomicU64,
}

pub struct Proxy {
    pub addr: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listen on 127.0.0.1 and a free port, forwarding to `target` (`127.0.0.1:PORT`).
    pub fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let target = target.to_string();
        let shared = Arc::new(Shared {
            target,
            ..Shared::default()
        });
        let s = shared.clone();
        // Scoped: the acceptor ends only once every connection's thread has.
        let acceptor = thread::spawn(move || {
            thread::scope(|scope| {
                for client in listener.incoming() {
                    if s.stop.load(SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let s = &s;
                    scope.spawn(move || {
                        if let Some(_open) = Tracked::new(s, &client) {
                            let _ = serve(s, client);
                        }
                    });
                }
            })
        });
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Fire `fault` for the next `times` requests whose method is `method`
    /// (or `*`) and whose path+query contains `path_contains`.
    pub fn fault(&self, method: &str, path_contains: &str, times: usize, fault: Fault) {
        let rule = (method.into(), path_contains.into(), times, fault);
        self.shared.rules.lock().unwrap().push(rule);
    }

    /// From now on, every `n`th request (of any kind) gets the next fault
    /// of `cycle`: a registry failing a steady share of requests.
    pub fn fault_every(&self, n: usize, cycle: Vec<Fault>) {
        *self.shared.every.lock().unwrap() = Some((n, cycle, 0));
    }

    /// Forget every fault not yet fired; the request log is kept.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
        *self.shared.every.lock().unwrap() = None;
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        // Wake the blocking accept so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        for (_, s) in self.shared.socks.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let _ = self.acceptor.take().map(JoinHandle::join);
    }
}

/// Keeps a socket in `Shared::socks` while it is open.
struct Tracked<'a>(&'a Shared, u64);

impl<'a> Tracked<'a> {
    fn new(shared: &'a Shared, s: &TcpStream) -> Option<Tracked<'a>> {
        let id = shared.next_id.fetch_add(1, SeqCst);
        let mut socks = shared.socks.lock().unwrap();
        // Checked under the lock: Drop sets `stop` before it sweeps.
        if shared.stop.load(SeqCst) {
            return None;
        }
        socks.push((id, s.try_clone().ok()?));
        Some(Tracked(shared, id))
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.0.socks.lock().unwrap().retain(|(id, _)| *id != self.1);
    }
}

/// A request or status line and its headers (names lowercased), with the
/// raw bytes to forward.
#[derive(Default)]
struct Head {
    raw: Vec<u8>,
    start: Vec<String>,
    headers: Vec<(String, String)>,
}

impl Head {
    fn start(&self, i: usize) -> &str {
        self.start.get(i).map_or("", |s| s.as_str())
    }

    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        let found = self.headers.iter().filter(move |(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }

    /// True if header `name` lists `token` (case-insensitively).
    fn has(&self, name: &str, token: &str) -> bool {
        let mut tokens = self.values(name).flat_map(|v| v.split(','));
        tokens.any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn framing(&self) -> Body {
        match self.values("content-length").next() {
            _ if self.has("transfer-encoding", "chunked") => Body::Chunked,
            Some(n) => Body::Len(n.parse().unwrap_or(0)),
            None => Body::None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    Len(u64),
    Chunked,
    /// A reply delimited by the server closing the connection.
    Eof,
}

/// The next message head, or None on a clean EOF before it.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut head = Head::default();
    loop {
        let line = match read_line(r) {
            Err(e) if head.raw.is_empty() && e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(None);
            }
            line => line?,
        };
        head.raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            return Ok(Some(head));
        } else if head.start.is_empty() {
            head.start = text.split(' ').map(String::from).collect();
        } else if let Some((n, v)) = text.split_once(':') {
            let name = n.trim().to_ascii_lowercase();
            head.headers.push((name, v.trim().to_string()));
        }
    }
}

fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    match r.read_until(b'\n', &mut line)? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(line),
    }
}

fn copy_exact(r: &mut impl BufRead, w: &mut dyn Write, n: u64) -> io::Result<()> {
    match io::copy(&mut r.take(n), w)? == n {
        true => Ok(()),
        false => Err(io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Copy a body as it arrives, at most `limit` payload bytes and never a
/// chunked body's last chunk when limited. True if it was all copied.
fn copy_body(
    r: &mut impl BufRead,
    w: &mut dyn Write,
    body: Body,
    limit: Option<u64>,
) -> io::Result<bool> {
    let limit = limit.unwrap_or(u64::MAX);
    let mut sent = 0;
    match body {
        Body::None => Ok(true),
        Body::Eof => io::copy(r, w).map(|_| true),
        Body::Len(n) => copy_exact(r, w, n.min(limit)).map(|()| n <= limit),
        Body::Chunked => loop {
            let line = read_line(r)?;
            let text = String::from_utf8_lossy(&line);
            let hex = text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(hex, 16).map_err(io::Error::other)?;
            if size == 0 && limit != u64::MAX {
                return Ok(false);
            }
            w.write_all(&line)?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let line = read_line(r)?;
                    w.write_all(&line)?;
                    if line.trim_ascii().is_empty() {
                        return Ok(true);
                    }
                }
            }
            let k = size.min(limit - sent);
            copy_exact(r, w, k)?;
            sent += k;
            if k < size {
                return Ok(false);
            }
            w.write_all(&read_line(r)?)?;
        },
    }
}

fn serve(shared: &Shared, client: TcpStream) -> io::Result<()> {
    let mut out = client.try_clone()?;
    let mut reader = BufReader::new(client);
    // A TLS ClientHello (skopeo tries https first): refuse it at once, as
    // the registry does, or the client waits for its handshake timeout.
    if reader.fill_buf()?.first() == Some(&0x16) {
        return out.write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        );
    }
    while let Some(head) = read_head(&mut reader)? {
        let (method, path) = (head.start(0), head.start(1));
        let fault = shared.take_fault(method, path);
        shared.seen.lock().unwrap().push(Seen {
            method: method.to_string(),
            path: path.to_string(),
            fault: fault.as_ref().map(|f| format!("{f:?}")),
        });
        let body = head.framing();
        let keep_alive = head.start(2) == "HTTP/1.1" && !head.has("connection", "close");
        let expect = head.has("expect", "100-continue");
        match fault {
            None if forward(shared, &mut reader, &mut out, &head, false)? && keep_alive => {}
            None => return Ok(()),
            Some(Fault::Status(code, retry_after)) => {
                if expect {
                    out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                }
                copy_body(&mut reader, &mut io::sink(), body, None)?;
                // 400 is ECR's answer to a PUT that would move an immutable tag.
                let err = match code {
                    429 => "TOOMANYREQUESTS",
                    400 => "MANIFEST_TAG_IMMUTABLE",
                    _ => "UNAVAILABLE",
                };
                let json = format!(r#"{{"errors":[{{"code":"{err}","message":"injected"}}]}}"#);
                let retry = retry_after.map(|s| format!("Retry-After: {s}\r\n"));
                write!(
                    out,
                    "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\n{}Content-Length: {}\r\n\r\n{json}",
                    retry.unwrap_or_default(),
                    json.len()
                )?;
                if !keep_alive {
                    return Ok(());
                }
            }
            Some(Fault::Stall(d)) => {
                // Drained first, so the final close is a FIN, not a reset.
                if !expect {
                    copy_body(&mut reader, &mut io::sink(), body, None)?;
                }
                let end = Instant::now() + d;
                while Instant::now() < end && !shared.stop.load(SeqCst) {
                    thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
                }
                return Ok(());
            }
            Some(Fault::ResetMidBody) => {
                // Never the whole body: the registry must not complete it.
                let partial = match body {
                    Body::Len(n) if n > 0 => Some((n / 2).min(64 << 10)),
                    Body::Chunked => Some(64 << 10),
                    _ => None,
                };
                if let Some(limit) = partial {
                    let mut backend = TcpStream::connect(&shared.target)?;
                    let _open = Tracked::new(shared, &backend).ok_or(io::ErrorKind::Interrupted)?;
                    backend.write_all(&head.raw)?;
                    let _ = copy_body(&mut reader, &mut backend, body, Some(limit));
                    reset_on_close(&backend);
                }
                reset_on_close(reader.get_ref());
                return Ok(());
            }
            Some(Fault::LoseReply) => {
                forward(shared, &mut reader, &mut out, &head, true)?;
                return Ok(());
            }
        }
    }
    Ok(())
}

impl Shared {
    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        if let Some((n, cycle, count)) = self.every.lock().unwrap().as_mut() {
            *count += 1;
            if *count % *n == 0 {
                return Some(cycle[(*count / *n - 1) % cycle.len()].clone());
            }
        }
        let mut rules = self.rules.lock().unwrap();
        let (_, _, left, fault) = rules.iter_mut().find(|(m, p, left, _)| {
            *left > 0 && (m == "*" || m == method) && path.contains(p.as_str())
        })?;
        *left -= 1;
        Some(fault.clone())
    }
}

/// SO_LINGER 0: the last close of this socket sends RST, not FIN.
fn reset_on_close(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let size = size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: a valid fd, and a pointer to a linger struct of that size.
    unsafe {
        let l = (&l as *const libc::linger).cast();
        libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, l, size);
    }
}

/// Forward one request on a fresh backend connection and relay the reply
/// (only its 1xx heads if `lose`). True if the client connection is reusable.
fn forward(
    shared: &Shared,
    reader: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
    head: &Head,
    lose: bool,
) -> io::Result<bool> {
    let mut backend = TcpStream::connect(&shared.target)?;
    let _open = Tracked::new(shared, &backend).ok_or(io::ErrorKind::Interrupted)?;
    backend.write_all(&head.raw)?;
    let mut upload = backend.try_clone()?;
    let mut replies = BufReader::new(backend.try_clone()?);
    let body = head.framing();
    // The body goes up while the reply is read: the registry may answer
    // 100 Continue, or answer early without reading it.
    thread::scope(|scope| {
        let sender = scope.spawn(move || {
            let done = copy_body(reader, &mut upload, body, None);
            if done.is_err() {
                let _ = upload.shutdown(Shutdown::Both);
            }
            done
        });
        let reply = relay_reply(&mut replies, out, head.start(0) == "HEAD", lose);
        let grace = Instant::now() + Duration::from_secs(1);
        while reply.is_ok() && !sender.is_finished() && Instant::now() < grace {
            thread::sleep(Duration::from_millis(1));
        }
        if !sender.is_finished() {
            // Answered without reading the whole body: drop the connection.
            let _ = backend.shutdown(Shutdown::Both);
            let _ = out.shutdown(Shutdown::Both);
        }
        let sent = sender.join().unwrap();
        Ok(reply? && sent?)
    })
}

/// Relay 1xx heads and the final reply; true if its framing allows reuse.
fn relay_reply(
    r: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
    head_only: bool,
    lose: bool,
) -> io::Result<bool> {
    loop {
        let head = read_head(r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let code: u16 = head.start(1).parse().unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            out.write_all(&head.raw)?;
            continue;
        }
        let body = match head.framing() {
            _ if head_only || code == 204 || code == 304 => Body::None,
            Body::None => Body::Eof,
            b => b,
        };
        let mut sink = io::sink();
        let to: &mut dyn Write = if lose { &mut sink } else { out };
        to.write_all(&head.raw)?;
        copy_body(r, to, body, None)?;
        return Ok(body != Body::Eof && !head.has("connection", "close"));
    }
}
