//! Registry credentials, found where users already keep them:
//! KILN_REGISTRY_USERNAME/PASSWORD (for the push registry, in CI),
//! $REGISTRY_AUTH_FILE, docker's config.json (credHelpers > credsStore >
//! auths) and podman's auth.json. Secrets never reach a log or an error.

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
    pub secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({}, <redacted>)", self.username)
    }
}

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
                Some((host.to_string(), Credential { username, secret }))
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
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Credential {
            username: u.clone(),
            secret: p.clone(),
        });
    }
    let auth = entry
        .auth
        .as_deref()
        .ok_or("an auths entry has neither `auth` nor username/password")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| "an `auth` value is not base64".to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "an `auth` value is not UTF-8".to_string())?;
    let (username, secret) = text
        .split_once(':')
        .ok_or("an `auth` value is not `user:password`")?;
    Ok(Credential {
        username: username.to_string(),
        secret: secret.to_string(),
    })
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
    Ok(Some(Credential {
        username: reply.username,
        secret: reply.secret,
    }))
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
            env: Some((
                "127.0.0.1:5000".into(),
                Credential {
                    username: "ci".into(),
                    secret: "x".into(),
                },
            )),
            files: vec![],
        };
        assert!(s.lookup("127.0.0.1:5000").unwrap().is_some());
        assert!(s.lookup("docker.io").unwrap().is_none());
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credential {
            username: "u".into(),
            secret: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
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
