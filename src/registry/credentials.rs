//! Registry credentials, found where users already keep them:
//! KILN_REGISTRY_USERNAME/PASSWORD (for the push registry, in CI),
//! $REGISTRY_AUTH_FILE, docker's config.json (credHelpers > credsStore >
//! auths) and podman's auth.json. Secrets never reach a log or an error.
//!
//! An entry may hold an identity token instead of a password (`identitytoken`
//! in config.json and auth.json, or a helper answering for user `<token>`):
//! an OAuth2 refresh token, as ACR and other OAuth2 token services issue.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

#[derive(Clone, PartialEq)]
pub struct Credential {
    pub username: String,
    /// A password, or an identity token: `kind` says which.
    pub secret: String,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Password,
    /// An OAuth2 refresh token: exchanged at the registry's token service,
    /// never sent to the registry itself.
    IdentityToken,
}

impl Credential {
    pub fn password(username: impl Into<String>, secret: impl Into<String>) -> Credential {
        Credential {
            username: username.into(),
            secret: secret.into(),
            kind: Kind::Password,
        }
    }

    /// `<token>` as the user name means none (docker's marker for identity tokens).
    pub fn identity_token(username: impl Into<String>, token: impl Into<String>) -> Credential {
        let username = username.into();
        Credential {
            username: if username == TOKEN_USERNAME {
                String::new()
            } else {
                username
            },
            secret: token.into(),
            kind: Kind::IdentityToken,
        }
    }

    pub fn is_identity_token(&self) -> bool {
        self.kind == Kind::IdentityToken
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Password => "password",
            Kind::IdentityToken => "identity token",
        };
        write!(f, "Credential({}, {what} <redacted>)", self.username)
    }
}

/// docker's user name for an identity token: what a credential helper answers
/// with, and what config.json may hold in `auth` beside `identitytoken`.
const TOKEN_USERNAME: &str = "<token>";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Where to look, resolved once from the environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// KILN_REGISTRY_USERNAME/PASSWORD and the one registry they are for.
    pub env: Option<(String, Credential)>,
    pub files: Vec<PathBuf>,
}

impl Sources {
    /// The usual places; `env_host` is the registry the KILN_REGISTRY_* variables are for.
    pub fn from_env(env_host: Option<&str>) -> Sources {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let env = match (
            env_host,
            var("KILN_REGISTRY_USERNAME"),
            var("KILN_REGISTRY_PASSWORD"),
        ) {
            (Some(host), Some(username), Some(secret)) => {
                Some((host.to_string(), Credential::password(username, secret)))
            }
            _ => None,
        };
        let home = var("HOME").map(PathBuf::from);
        let mut files = Vec::new();
        if let Some(f) = var("REGISTRY_AUTH_FILE") {
            files.push(PathBuf::from(f));
        }
        match (var("DOCKER_CONFIG"), &home) {
            (Some(dir), _) => files.push(PathBuf::from(dir).join("config.json")),
            (None, Some(h)) => files.push(h.join(".docker/config.json")),
            _ => {}
        }
        if let Some(dir) = var("XDG_RUNTIME_DIR") {
            files.push(PathBuf::from(dir).join("containers/auth.json"));
        }
        if let Some(h) = &home {
            files.push(h.join(".config/containers/auth.json"));
        }
        Sources { env, files }
    }

    /// The credential for `host`, or None for anonymous access.
    pub fn lookup(&self, host: &str) -> Result<Option<Credential>, String> {
        if let Some((env_host, cred)) = &self.env {
            if env_host == host || (super::is_docker_hub(env_host) && super::is_docker_hub(host)) {
                return Ok(Some(cred.clone()));
            }
        }
        for path in &self.files {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let file: ConfigFile = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "`{}` is not valid JSON ({e}); fix or remove it",
                    path.display()
                )
            })?;
            if let Some(helper) = file
                .cred_helpers
                .iter()
                .find(|(k, _)| key_matches(k, host))
                .map(|(_, v)| v)
            {
                return run_helper(helper, host);
            }
            if let Some(helper) = &file.creds_store {
                if let Some(cred) = run_helper(helper, host)? {
                    return Ok(Some(cred));
                }
            }
            if let Some(entry) = file
                .auths
                .iter()
                .find(|(k, _)| key_matches(k, host))
                .map(|(_, v)| v)
            {
                return decode(entry)
                    .map(Some)
                    .map_err(|m| format!("`{}`: {m}", path.display()));
            }
        }
        Ok(None)
    }
}

/// `auths` keys are written many ways: `host`, `https://host`, `https://host/v1/`.
fn key_matches(key: &str, host: &str) -> bool {
    let stripped = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let key_host = stripped.split('/').next().unwrap_or("");
    let hub = super::is_docker_hub;
    key_host == host || (hub(key_host) && hub(host))
}

fn decode(entry: &AuthEntry) -> Result<Credential, String> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        // The user name docker keeps beside the token (often `<token>` or a
        // zero UUID) goes along if the token service wants a GET instead.
        let username = match &entry.username {
            Some(u) => u.clone(),
            None => auth_username(entry),
        };
        return Ok(Credential::identity_token(username, token));
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Credential::password(u.clone(), p.clone()));
    }
    decode_auth(entry)
}

/// The user part of `auth` beside an identity token: docker writes
/// `<token>:`, a zero UUID and a colon, or a bare name. Only a fallback
/// GET uses it, so an odd value is no reason to refuse the token.
fn auth_username(entry: &AuthEntry) -> String {
    let decoded = entry
        .auth
        .as_deref()
        .and_then(|a| {
            base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .ok()
        })
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&decoded);
    text.split(':').next().unwrap_or_default().to_string()
}

/// The `auth` field: base64 of `user:password`.
fn decode_auth(entry: &AuthEntry) -> Result<Credential, String> {
    let auth = entry
        .auth
        .as_deref()
        .ok_or("an auths entry has neither `auth`, username/password nor `identitytoken`")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| "an `auth` value is not base64".to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "an `auth` value is not UTF-8".to_string())?;
    let (username, secret) = text
        .split_once(':')
        .ok_or("an `auth` value is not `user:password`")?;
    Ok(Credential::password(username, secret))
}

/// Run `docker-credential-NAME get`. "credentials not found" means anonymous;
/// any other failure is an error (guessing would hide a broken setup).
fn run_helper(name: &str, host: &str) -> Result<Option<Credential>, String> {
    let program = format!("docker-credential-{name}");
    // docker keys Docker Hub's credentials by its v1 index URL, whichever name was used.
    let server = if super::is_docker_hub(host) {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run credential helper `{program}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("credential helper `{program}`: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "credential helper `{program}` failed for `{host}` ({})",
            out.status
        ));
    }
    #[derive(Deserialize)]
    struct Reply {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let reply: Reply = serde_json::from_slice(&out.stdout)
        .map_err(|_| format!("credential helper `{program}` gave a reply that is not its JSON"))?;
    Ok(Some(from_helper(reply.username, reply.secret)))
}

/// docker's convention: a helper answering for user `<token>` holds an identity token.
fn from_helper(username: String, secret: String) -> Credential {
    if username == TOKEN_USERNAME {
        Credential::identity_token(username, secret)
    } else {
        Credential::password(username, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: Vec<PathBuf>) -> Sources {
        Sources { env: None, files }
    }

    #[test]
    fn auths_keys_and_encodings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"username":"u","password":"p"}}}}}}"#),
        )
        .unwrap();
        let s = sources(vec![path]);
        assert_eq!(s.lookup("docker.io").unwrap().unwrap().username, "bob");
        // The API host kiln sends Docker Hub requests to finds the same entry.
        assert_eq!(
            s.lookup("registry-1.docker.io").unwrap().unwrap().username,
            "bob"
        );
        assert_eq!(s.lookup("127.0.0.1:5000").unwrap().unwrap().secret, "p");
        assert_eq!(s.lookup("ghcr.io").unwrap(), None);
    }

    #[test]
    fn env_credentials_are_for_one_host_only() {
        let s = Sources {
            env: Some(("127.0.0.1:5000".into(), Credential::password("ci", "x"))),
            files: vec![],
        };
        assert!(s.lookup("127.0.0.1:5000").unwrap().is_some());
        assert!(s.lookup("docker.io").unwrap().is_none());
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credential::password("u", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        let t = Credential::identity_token("u", "refresh-abc123");
        let shown = format!("{t:?}");
        assert!(!shown.contains("refresh-abc123"), "{shown}");
        assert!(shown.contains("identity token"), "{shown}");
    }

    /// Write `text` as a config file in `dir` and look `host` up in it.
    fn lookup_in(dir: &tempfile::TempDir, name: &str, text: &str, host: &str) -> Credential {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        sources(vec![path]).lookup(host).unwrap().unwrap()
    }

    #[test]
    fn identity_tokens_in_config_files() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        // What `az acr login` writes to docker's config.json.
        let acr = lookup_in(
            &dir,
            "config.json",
            &format!(
                r#"{{"auths":{{"myreg.azurecr.io":{{"auth":"{}","identitytoken":"eyJ.refresh.tok"}}}}}}"#,
                b64("00000000-0000-0000-0000-000000000000:")
            ),
            "myreg.azurecr.io",
        );
        assert_eq!(
            acr,
            Credential::identity_token("00000000-0000-0000-0000-000000000000", "eyJ.refresh.tok")
        );
        // docker's marker user `<token>` means no user name.
        let marker = lookup_in(
            &dir,
            "marker.json",
            &format!(
                r#"{{"auths":{{"https://reg.example":{{"auth":"{}","identitytoken":"t1"}}}}}}"#,
                b64("<token>:")
            ),
            "reg.example",
        );
        assert_eq!(marker, Credential::identity_token("", "t1"));
        // podman's auth.json: the same key, no `auth` at all.
        let podman = lookup_in(
            &dir,
            "auth.json",
            r#"{"auths":{"reg.example":{"identitytoken":"t2"}}}"#,
            "reg.example",
        );
        assert_eq!(podman, Credential::identity_token("", "t2"));
        // A user name given beside the token is kept; a password is not used.
        let named = lookup_in(
            &dir,
            "named.json",
            r#"{"auths":{"reg.example":{"username":"bob","password":"pw","identitytoken":"t3"}}}"#,
            "reg.example",
        );
        assert_eq!(named, Credential::identity_token("bob", "t3"));
        // An `auth` that is no user:password pair does not hide the token.
        let bare = lookup_in(
            &dir,
            "bare.json",
            &format!(
                r#"{{"auths":{{"reg.example":{{"auth":"{}","identitytoken":"t4"}}}}}}"#,
                b64("alice")
            ),
            "reg.example",
        );
        assert_eq!(bare, Credential::identity_token("alice", "t4"));
        // An empty identitytoken is no token: the password stands.
        let empty = lookup_in(
            &dir,
            "empty.json",
            &format!(
                r#"{{"auths":{{"reg.example":{{"auth":"{}","identitytoken":""}}}}}}"#,
                b64("bob:pw")
            ),
            "reg.example",
        );
        assert_eq!(empty, Credential::password("bob", "pw"));
    }

    #[test]
    fn helper_replies_for_token_users_are_identity_tokens() {
        assert_eq!(
            from_helper("<token>".into(), "refresh".into()),
            Credential::identity_token("", "refresh")
        );
        assert_eq!(
            from_helper("bob".into(), "pw".into()),
            Credential::password("bob", "pw")
        );
    }

    #[test]
    fn a_missing_helper_is_an_error_not_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"credHelpers":{"example.test":"kiln-no-such-helper"}}"#,
        )
        .unwrap();
        let err = sources(vec![path]).lookup("example.test").unwrap_err();
        assert!(
            err.contains("docker-credential-kiln-no-such-helper"),
            "{err}"
        );
    }
}
