//! A scripted HTTP/1.1 server for registries that misbehave on purpose:
//! each request's reply comes from a closure, and a reply may trickle its
//! body a byte at a time. Every request head is recorded, so a test can
//! tell that a server was never contacted, or what it was sent.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body one byte per this interval.
    pub trickle: Option<Duration>,
    /// No Content-Length: the body ends when the connection closes.
    pub close_delimited: bool,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            trickle: None,
            close_delimited: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn trickle(mut self, every: Duration) -> Reply {
        self.trickle = Some(every);
        self
    }

    pub fn close_delimited(mut self) -> Reply {
        self.close_delimited = true;
        self
    }
}

type Handler = dyn Fn(&str, &str) -> Reply + Send + Sync;

pub struct Fake {
    /// `IP:PORT` it listens on.
    pub addr: String,
    heads: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Fake {
    /// Serve on `bind` (`127.0.0.1:0`, `[fd00:ec2::254]:0`) with `handler(method, path)`.
    pub fn start(
        bind: &str,
        handler: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let listener = TcpListener::bind(bind).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let connections = Arc::new(AtomicUsize::new(0));
        let (h, s, c) = (heads.clone(), stop.clone(), connections.clone());
        // Polled, not blocking: waking a blocked accept would need a
        // connection from outside the namespace the server may live in.
        listener.set_nonblocking(true).unwrap();
        let acceptor = thread::spawn(move || {
            while !s.load(SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.fetch_add(1, SeqCst);
                let _ = stream.set_nonblocking(false);
                let (h, s, handler) = (h.clone(), s.clone(), handler.clone());
                thread::spawn(move || {
                    let _ = serve(stream, &h, &s, &*handler);
                });
            }
        });
        Fake {
            addr,
            heads,
            connections,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Every request head received (request line and headers), in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Connections accepted, whether or not a request came on them.
    pub fn connections(&self) -> usize {
        self.connections.load(SeqCst)
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit_once(':').unwrap().1.parse().unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        let _ = self.acceptor.take().map(JoinHandle::join);
    }
}

fn serve(
    stream: TcpStream,
    heads: &Mutex<Vec<String>>,
    stop: &AtomicBool,
    handler: &Handler,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut words = head.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let reply = handler(method, path);
        heads.lock().unwrap().push(head.clone());
        let mut text = format!("HTTP/1.1 {} Fake\r\n", reply.status);
        for (n, v) in &reply.headers {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        if reply.close_delimited {
            text.push_str("Connection: close\r\n\r\n");
        } else {
            text.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
        }
        out.write_all(text.as_bytes())?;
        let body = if method == "HEAD" {
            &[][..]
        } else {
            &reply.body
        };
        match reply.trickle {
            None => out.write_all(body)?,
            Some(every) => {
                for byte in body {
                    if stop.load(SeqCst) {
                        return Ok(());
                    }
                    out.write_all(&[*byte])?;
                    thread::sleep(every);
                }
            }
        }
        if reply.close_delimited {
            return Ok(());
        }
    }
}
