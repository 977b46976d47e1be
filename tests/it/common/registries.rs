//! Two more real registries for the tests, both docker-registry on
//! 127.0.0.1: one behind TLS and htpasswd, one behind distribution's token
//! auth with a small token server of our own as the realm. The token
//! server also takes OAuth2 refresh-token grants (POST), as ACR's does.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Registry, run, which};

const SERVICE: &str = "kiln-test-registry";
const ISSUER: &str = "kiln-test-token-server";

/// docker-registry over TLS (a throwaway CA) with htpasswd basic auth.
pub struct TlsRegistry {
    pub addr: String,
    /// The CA cert, alone in its directory: `ca_file.parent()` is a
    /// `--cert-dir` for skopeo (which refuses a `.key` without a `.cert`).
    pub ca_file: PathBuf,
    pub log: PathBuf,
    child: Child,
    pub dir: tempfile::TempDir,
}

/// docker-registry (plain HTTP) with token auth, and its token server.
pub struct TokenRegistry {
    pub addr: String,
    /// The token server's URL, as the registry advertises it.
    pub realm: String,
    pub log: PathBuf,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    token_addr: String,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
    child: Child,
    pub dir: tempfile::TempDir,
}

/// One request the token server answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `GET`, or `POST` for an OAuth2 grant.
    pub method: String,
    /// Path and query as received, still percent-encoded.
    pub target: String,
    /// Every scope asked for, decoded, e.g. `repository:a/b:pull,push`: the
    /// `scope` parameters of a GET, or the space-separated `scope` of a POST.
    pub scopes: Vec<String>,
    /// For a GET, the Authorization header; for a POST, the refresh token.
    pub auth: Auth,
    /// An `Authorization: Basic` header came with it.
    pub basic: bool,
    /// A POST's `grant_type`.
    pub grant_type: Option<String>,
    /// A POST's form held a `refresh_token` (its value is not kept).
    pub refresh_token: bool,
    /// The status answered.
    pub status: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No Authorization header: granted `pull` only.
    Anonymous,
    Accepted,
    /// Wrong credentials: answered 401.
    Rejected,
}

impl Registry {
    pub fn tls_basic(user: &str, password: &str) -> TlsRegistry {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        Registry::tls_basic_at(&addr, "IP:127.0.0.1,DNS:localhost", user, password)
    }

    /// The same on `addr`, with a certificate for `names` (`DNS:a,IP:b`).
    /// For an address inside a network namespace, start it there (`Netns::run`).
    pub fn tls_basic_at(addr: &str, names: &str, user: &str, password: &str) -> TlsRegistry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("certs")).unwrap();
        let ca_file = d.join("certs/ca.crt");
        openssl(
            d,
            "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out certs/ca.crt -subj /CN=kiln-test-CA",
        );
        openssl(
            d,
            "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
        );
        // Go ignores the CN: the SANs are what it checks.
        fs::write(d.join("server.ext"), format!("subjectAltName={names}\n")).unwrap();
        openssl(
            d,
            "x509 -req -in server.csr -days 2 -CA certs/ca.crt -CAkey ca.key -extfile server.ext -out server.crt",
        );
        let htpasswd =
            run(Command::new(which("htpasswd").expect("htpasswd")).args(["-Bbn", user, password]));
        fs::write(d.join("htpasswd"), htpasswd).unwrap();
        let extra = format!(
            "  tls: {{certificate: {0}/server.crt, key: {0}/server.key}}\nauth:\n  htpasswd: {{realm: kiln-test, path: {0}/htpasswd}}\n",
            d.display()
        );
        let (addr, child) = serve_on(d, &extra, addr.to_string());
        TlsRegistry {
            addr,
            ca_file,
            log: d.join("registry.log"),
            child,
            dir,
        }
    }

    /// Token auth whose token server has no OAuth2: it answers POST with 405.
    pub fn token(user: &str, password: &str) -> TokenRegistry {
        Registry::token_with(user, password, None)
    }

    /// Token auth whose token server also grants for `refresh_token` (an
    /// identity token) by OAuth2 POST, or, with `post` false, answers POST
    /// with 405 and takes the refresh token as a Basic password on GET (as
    /// ACR's GET does).
    pub fn token_oauth(
        user: &str,
        password: &str,
        refresh_token: &str,
        post: bool,
    ) -> TokenRegistry {
        let oauth = OAuth {
            refresh_token: refresh_token.to_string(),
            post,
        };
        Registry::token_with(user, password, Some(oauth))
    }

    fn token_with(user: &str, password: &str, oauth: Option<OAuth>) -> TokenRegistry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // The registry trusts this self-signed cert; tokens carry it in x5c.
        openssl(
            d,
            "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout token.key -out token.crt -subj /CN=kiln-test-tokens",
        );
        openssl(d, "x509 -in token.crt -outform DER -out token.der");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let token_addr = listener.local_addr().unwrap().to_string();
        let realm = format!("http://{token_addr}/token");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let server = TokenServer {
            basic: format!(
                "Basic {}",
                base64(format!("{user}:{password}").as_bytes(), STD)
            ),
            user: user.to_string(),
            key: d.join("token.key"),
            x5c: base64(&fs::read(d.join("token.der")).unwrap(), STD),
            requests: requests.clone(),
            repositories: None,
            oauth,
        };
        let server = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // A client that hangs up early is its own problem.
                        let _ = server.answer(stream);
                    }
                }
            })
        };
        let extra = format!(
            "auth:\n  token: {{realm: \"{realm}\", service: {SERVICE}, issuer: {ISSUER}, rootcertbundle: {}}}\n",
            d.join("token.crt").display()
        );
        let (addr, child) = serve(d, &extra);
        TokenRegistry {
            addr,
            realm,
            log: d.join("registry.log"),
            requests,
            token_addr,
            stop,
            server: Some(server),
            child,
            dir,
        }
    }
}

impl TokenRegistry {
    /// Every request the token server has answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(&self.token_addr);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// Blobs uploaded, from a docker-registry 2.8 log at level info.
///
/// Each request logs up to three lines: `msg="authorized request"` and
/// `msg="response completed"` (both say `http.request.method=PUT`, so they
/// never contain `"PUT /v2/`), and one access-log line
/// `127.0.0.1 - - [date] "PUT /v2/NAME/blobs/uploads/UUID?_state=..&digest=.. HTTP/1.1" 201 0 ..`.
/// We count that access-log line when its status is 201: the PUT that
/// completes an upload session, one per blob. The POST that opens the
/// session, PATCHes, refused (401) attempts and mounts (a POST) don't count.
pub fn upload_count(log: &Path) -> usize {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|line| {
            let mut parts = line.split('"');
            let request = parts.nth(1).unwrap_or("");
            let status = parts.next().unwrap_or("");
            request.starts_with("PUT /v2/")
                && request.contains("/blobs/uploads/")
                && status.trim_start().starts_with("201 ")
        })
        .count()
}

/// Start docker-registry on a free loopback port with `extra` appended to
/// the `http:` section (indented) or after it; logs to dir/registry.log.
fn serve(dir: &Path, extra: &str) -> (String, Child) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    serve_on(dir, extra, format!("127.0.0.1:{port}"))
}

/// The same, on `addr`.
fn serve_on(dir: &Path, extra: &str, addr: String) -> (String, Child) {
    let config = dir.join("config.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: {addr}\n{extra}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let log_path = dir.join("registry.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut child = Command::new(which("docker-registry").expect("docker-registry"))
        .arg("serve")
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).is_err() {
        let log = || fs::read_to_string(&log_path).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("docker-registry exited with {status}:\n{}", log());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("registry did not start on {addr}:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (addr, child)
}

/// Run openssl in `dir` with whitespace-separated `args`.
fn openssl(dir: &Path, args: &str) {
    run(Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace()));
}

struct TokenServer {
    /// The whole Authorization header a correct client sends.
    basic: String,
    user: String,
    key: PathBuf,
    x5c: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    /// The repositories tokens may grant anything for (None: all). Docker
    /// Hub grants nothing for a repository that does not exist, so its
    /// registry answers 401 even with a token.
    repositories: Option<Vec<String>>,
    /// OAuth2 refresh-token grants; None: POST is answered 405.
    oauth: Option<OAuth>,
}

struct OAuth {
    /// The identity token the server takes.
    refresh_token: String,
    /// Grant by POST; if false, answer POST with 405.
    post: bool,
}

/// A request as the token server read it.
struct Incoming {
    method: String,
    target: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// What the token server answers and notes down.
struct Answer {
    status: &'static str,
    body: String,
    request: TokenRequest,
}

/// The largest request body the token server reads.
const MAX_BODY: usize = 64 << 10;

impl TokenServer {
    fn answer(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        self.answer_on(stream)
    }

    /// Answer one request on `stream` (plain, or TLS for the Docker Hub stand-in).
    fn answer_on<S: Read + Write>(&self, mut stream: S) -> std::io::Result<()> {
        let incoming = read_request(&mut stream)?;
        let path = incoming.target.split('?').next().unwrap_or("");
        let answer = if path != "/token" {
            Answer {
                status: "404 Not Found",
                body: r#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_string(),
                request: self.get_request(&incoming),
            }
        } else if incoming.method == "POST" {
            self.grant(&incoming)
        } else {
            self.get_token(&incoming)
        };
        let Answer {
            status,
            body,
            mut request,
        } = answer;
        request.status = status[..3].parse().unwrap_or(0);
        self.requests.lock().unwrap().push(request);
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()
    }

    /// How a GET's Authorization header fares: user:password, or (with
    /// OAuth2 set up) user:refresh-token as ACR takes it.
    fn auth_of(&self, authorization: Option<&str>) -> Auth {
        let refresh = self.oauth.as_ref().map(|o| {
            format!(
                "Basic {}",
                base64(format!("{}:{}", self.user, o.refresh_token).as_bytes(), STD)
            )
        });
        match authorization {
            None => Auth::Anonymous,
            Some(a) if a == self.basic || Some(a) == refresh.as_deref() => Auth::Accepted,
            Some(_) => Auth::Rejected,
        }
    }

    /// The record of a GET: its query's scopes and its Authorization.
    fn get_request(&self, incoming: &Incoming) -> TokenRequest {
        let query = incoming.target.split_once('?').map_or("", |(_, q)| q);
        TokenRequest {
            method: incoming.method.clone(),
            target: incoming.target.clone(),
            scopes: form_values(query, "scope"),
            auth: self.auth_of(incoming.authorization.as_deref()),
            basic: is_basic(incoming),
            grant_type: None,
            refresh_token: false,
            status: 0,
        }
    }

    /// The distribution token spec: GET /token?service=..&scope=.. with Basic auth or none.
    fn get_token(&self, incoming: &Incoming) -> Answer {
        let request = self.get_request(incoming);
        let query = incoming.target.split_once('?').map_or("", |(_, q)| q);
        let service = form_values(query, "service").pop().unwrap_or_default();
        if request.auth == Auth::Rejected {
            return Answer {
                status: "401 Unauthorized",
                body: r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_string(),
                request,
            };
        }
        let reply = self
            .jwt(request.auth, &service, &request.scopes)
            .map(|jwt| {
                serde_json::json!({
                    "token": jwt,
                    "access_token": jwt,
                    "expires_in": 300,
                    "issued_at": now_rfc3339(),
                })
            });
        reply_or_500(reply, request)
    }

    /// distribution's OAuth2 spec: POST /token with a form body; only the
    /// refresh-token grant is served.
    fn grant(&self, incoming: &Incoming) -> Answer {
        let form = String::from_utf8_lossy(&incoming.body).into_owned();
        let refresh_token = form_values(&form, "refresh_token").pop();
        let oauth = self.oauth.as_ref();
        let auth = match (&refresh_token, oauth) {
            (None, _) => Auth::Anonymous,
            (Some(t), Some(o)) if *t == o.refresh_token => Auth::Accepted,
            (Some(_), _) => Auth::Rejected,
        };
        let request = TokenRequest {
            method: incoming.method.clone(),
            target: incoming.target.clone(),
            scopes: form_values(&form, "scope")
                .iter()
                .flat_map(|s| s.split(' '))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            auth,
            basic: is_basic(incoming),
            grant_type: form_values(&form, "grant_type").pop(),
            refresh_token: refresh_token.is_some(),
            status: 0,
        };
        let refuse = |status, body: &str| Answer {
            status,
            body: body.to_string(),
            request: request.clone(),
        };
        if !oauth.is_some_and(|o| o.post) {
            return refuse(
                "405 Method Not Allowed",
                r#"{"errors":[{"code":"UNSUPPORTED"}]}"#,
            );
        }
        if request.grant_type.as_deref() != Some("refresh_token") {
            return refuse("400 Bad Request", r#"{"error":"unsupported_grant_type"}"#);
        }
        if auth != Auth::Accepted {
            return refuse("400 Bad Request", r#"{"error":"invalid_grant"}"#);
        }
        let service = form_values(&form, "service").pop().unwrap_or_default();
        let reply = self.jwt(auth, &service, &request.scopes).map(|jwt| {
            serde_json::json!({
                "access_token": jwt,
                "scope": request.scopes.join(" "),
                "expires_in": 300,
                "issued_at": now_rfc3339(),
            })
        });
        reply_or_500(reply, request)
    }

    /// A JWT for the granted part of `scopes`.
    fn jwt(&self, auth: Auth, service: &str, scopes: &[String]) -> std::io::Result<String> {
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|scope| {
                // type:name:actions; a name may hold a ':' (a port), so split the ends.
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                if self
                    .repositories
                    .as_ref()
                    .is_some_and(|known| !known.iter().any(|r| r == name))
                {
                    return None;
                }
                let actions: Vec<&str> = actions
                    .split(',')
                    .filter(|a| auth == Auth::Accepted || *a == "pull")
                    .collect();
                (!actions.is_empty())
                    .then(|| serde_json::json!({"type": kind, "name": name, "actions": actions}))
            })
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": if auth == Auth::Accepted { self.user.as_str() } else { "" },
            "aud": service,
            "exp": now + 300,
            "nbf": now,
            "iat": now,
            "jti": format!("{now}-{}", self.requests.lock().unwrap().len()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            base64(header.to_string().as_bytes(), URL),
            base64(claims.to_string().as_bytes(), URL)
        );
        let signature = self.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", base64(&signature, URL)))
    }

    /// RS256 is PKCS#1 v1.5 over SHA-256: what `openssl dgst -sign` makes with an RSA key.
    fn sign(&self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child.stdin.take().unwrap().write_all(data)?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(std::io::Error::other(format!("openssl dgst -sign: {err}")));
        }
        Ok(out.stdout)
    }
}

/// Read a request: its line, the headers the token server looks at, and a
/// body of Content-Length bytes.
fn read_request<S: Read>(stream: &mut S) -> std::io::Result<Incoming> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let mut authorization = None;
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(MAX_BODY)];
    reader.read_exact(&mut body)?;
    Ok(Incoming {
        method,
        target,
        authorization,
        body,
    })
}

fn is_basic(incoming: &Incoming) -> bool {
    incoming
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Basic "))
}

/// Every value of `key` in a query string or form body, decoded.
fn form_values(form: &str, key: &str) -> Vec<String> {
    form.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then(|| percent_decode(v))
        })
        .collect()
}

/// A 200 with `reply`, or a 500 saying why there is none (answered
/// anyway: a client left waiting would hang the test).
fn reply_or_500(reply: std::io::Result<serde_json::Value>, request: TokenRequest) -> Answer {
    match reply {
        Ok(body) => Answer {
            status: "200 OK",
            body: body.to_string(),
            request,
        },
        Err(e) => Answer {
            status: "500 Internal Server Error",
            body: serde_json::json!({"error": e.to_string()}).to_string(),
            request,
        },
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

const STD: bool = false;
const URL: bool = true;

/// Standard base64 with padding, or base64url without (JWT segments).
fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=="[..3 - chunk.len()]);
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
            }
            _ => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Docker Hub as seen from inside a network namespace (see netns.rs) whose
/// /etc/hosts maps `registry-1.docker.io` to `REGISTRY_IP`, `auth.docker.io`
/// to `AUTH_IP`, and `docker.io` and `index.docker.io` to `WEB_IP`, all over
/// TLS from one throwaway CA: docker-registry with token auth (realm
/// `https://auth.docker.io/token`, service `registry.docker.io`) as the API,
/// a token server as auth.docker.io, and docker.io answering every request
/// with a 301 to a web page, as it does. Start it inside the namespace
/// (`Netns::run`).
pub struct DockerHub {
    /// The CA certificate (PEM), for `--ca-file`.
    pub ca_file: PathBuf,
    pub log: PathBuf,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    /// Request lines docker.io was sent.
    web_requests: Arc<Mutex<Vec<String>>>,
    child: Child,
    pub dir: tempfile::TempDir,
}

pub const REGISTRY_IP: &str = "127.0.0.2";
pub const AUTH_IP: &str = "127.0.0.3";
pub const WEB_IP: &str = "127.0.0.4";

/// The /etc/hosts lines `DockerHub` expects.
pub const DOCKER_HUB_HOSTS: [(&str, &str); 4] = [
    (REGISTRY_IP, "registry-1.docker.io"),
    (AUTH_IP, "auth.docker.io"),
    (WEB_IP, "docker.io"),
    (WEB_IP, "index.docker.io"),
];

impl DockerHub {
    /// `repositories` are the ones that exist: tokens grant nothing for others.
    pub fn start(user: &str, password: &str, repositories: &[&str]) -> DockerHub {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("certs")).unwrap();
        openssl(
            d,
            "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out certs/ca.crt -subj /CN=kiln-test-hub-CA",
        );
        openssl(
            d,
            "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=docker.io",
        );
        fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:registry-1.docker.io,DNS:auth.docker.io,DNS:docker.io,DNS:index.docker.io\n",
        )
        .unwrap();
        openssl(
            d,
            "x509 -req -in server.csr -days 2 -CA certs/ca.crt -CAkey ca.key -extfile server.ext -out server.crt",
        );
        openssl(
            d,
            "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout token.key -out token.crt -subj /CN=kiln-test-tokens",
        );
        openssl(d, "x509 -in token.crt -outform DER -out token.der");
        let tls = tls_config(&d.join("server.crt"), &d.join("server.key"));

        let requests = Arc::new(Mutex::new(Vec::new()));
        let tokens = Arc::new(TokenServer {
            basic: format!(
                "Basic {}",
                base64(format!("{user}:{password}").as_bytes(), STD)
            ),
            user: user.to_string(),
            key: d.join("token.key"),
            x5c: base64(&fs::read(d.join("token.der")).unwrap(), STD),
            requests: requests.clone(),
            repositories: Some(repositories.iter().map(|r| r.to_string()).collect()),
            oauth: None,
        });
        tls_server(&format!("{AUTH_IP}:443"), tls.clone(), move |stream| {
            let _ = tokens.answer_on(stream);
        });

        let web_requests = Arc::new(Mutex::new(Vec::new()));
        let seen = web_requests.clone();
        tls_server(&format!("{WEB_IP}:443"), tls, move |mut stream| {
            let mut line = String::new();
            let mut reader = BufReader::new(&mut stream);
            if reader.read_line(&mut line).is_err() {
                return;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header.trim().is_empty() => break,
                    Ok(_) => {}
                }
            }
            drop(reader);
            seen.lock().unwrap().push(line.trim().to_string());
            let body = "<html><body>Moved</body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 301 Moved Permanently\r\nLocation: https://www.docker.com/\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
        });

        let extra = format!(
            "  tls: {{certificate: {0}/server.crt, key: {0}/server.key}}\nauth:\n  token: {{realm: \"https://auth.docker.io/token\", service: registry.docker.io, issuer: {ISSUER}, rootcertbundle: {0}/token.crt}}\n",
            d.display()
        );
        let (_, child) = serve_on(d, &extra, format!("{REGISTRY_IP}:443"));
        DockerHub {
            ca_file: d.join("certs/ca.crt"),
            log: d.join("registry.log"),
            requests,
            web_requests,
            child,
            dir,
        }
    }

    /// Every request auth.docker.io has answered so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Every request line docker.io (the web site) was sent.
    pub fn web_requests(&self) -> Vec<String> {
        self.web_requests.lock().unwrap().clone()
    }

    /// The registry's access-log lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for DockerHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The TLS servers' threads die with the test process (and their namespace).
    }
}

/// A rustls server config for one certificate chain and key (PEM files).
fn tls_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(config)
}

type TlsStream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// Accept TLS connections on `addr`, each answered by `handle` on its own thread.
fn tls_server(
    addr: &str,
    config: Arc<rustls::ServerConfig>,
    handle: impl Fn(TlsStream) + Send + Sync + 'static,
) {
    let listener = TcpListener::bind(addr).unwrap();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let handle = handle.clone();
            std::thread::spawn(move || handle(rustls::StreamOwned::new(conn, stream)));
        }
    });
}
