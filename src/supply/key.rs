//! Signing and verifying keys: an EC P-256 private key in PEM (PKCS#8, plain
//! or passphrase-encrypted as `openssl genpkey ... -aes-256-cbc` writes it,
//! or SEC1 `EC PRIVATE KEY`), and its public key (SPKI PEM). Neither the key
//! nor the passphrase is ever put in a message.

use std::path::{Path, PathBuf};

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};

use crate::error::{Error, Result};

/// The environment variable holding the passphrase of an encrypted key.
pub const PASSWORD_ENV: &str = "KILN_SIGN_PASSWORD";

/// Keys are a few hundred bytes; anything past this is not one.
const MAX_KEY_FILE: u64 = 64 << 10;

#[derive(Clone)]
pub struct Key {
    signing: SigningKey,
    /// Where it was read from, for messages.
    pub path: PathBuf,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.path.display())
    }
}

fn read_pem(path: &Path, what: &str) -> Result<String> {
    let fail = |msg: String| Error::Usage {
        what: format!("{what} {}", path.display()),
        msg,
        hint: None,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    if !meta.is_file() || meta.len() > MAX_KEY_FILE {
        return Err(fail("is not a PEM key file".into()));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    String::from_utf8(bytes).map_err(|_| fail("is not a PEM key file".into()))
}

impl Key {
    /// Read the private key at `path`; an encrypted one takes its
    /// passphrase from `password` (the caller reads KILN_SIGN_PASSWORD).
    pub fn read(path: &Path, password: Option<&str>) -> Result<Key> {
        let pem = read_pem(path, "--sign-key")?;
        let fail = |msg: &str, hint: &str| Error::Usage {
            what: format!("--sign-key {}", path.display()),
            msg: msg.to_string(),
            hint: Some(hint.to_string()),
        };
        let secret = if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            let Some(password) = password else {
                return Err(fail(
                    "is encrypted, and KILN_SIGN_PASSWORD is not set",
                    "set KILN_SIGN_PASSWORD to the key's passphrase (from the CI's secret store)",
                ));
            };
            p256::SecretKey::from_pkcs8_encrypted_pem(&pem, password.as_bytes()).map_err(|_| {
                fail(
                    "cannot be decrypted with KILN_SIGN_PASSWORD, or is not an EC P-256 key",
                    "check the passphrase; kiln reads PKCS#8 keys encrypted with PBES2 (openssl genpkey -aes-256-cbc)",
                )
            })?
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            p256::SecretKey::from_pkcs8_pem(&pem).map_err(|_| {
                fail(
                    "is not an EC P-256 private key",
                    "make one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem",
                )
            })?
        } else if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            p256::SecretKey::from_sec1_pem(&pem).map_err(|_| {
                fail(
                    "is not an EC P-256 private key",
                    "make one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem",
                )
            })?
        } else {
            return Err(fail(
                "is not a PEM private key (PKCS#8 `PRIVATE KEY` or `ENCRYPTED PRIVATE KEY`)",
                "make one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem",
            ));
        };
        Ok(Key {
            signing: SigningKey::from(secret),
            path: path.to_path_buf(),
        })
    }

    /// An ECDSA P-256 SHA-256 signature of `message`, DER-encoded. The
    /// nonce comes from the key and the message (RFC 6979): the same
    /// message gives the same bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.signing.sign(message);
        sig.to_der().as_bytes().to_vec()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(*self.signing.verifying_key())
    }
}

/// A verifying key (`--key PUB.pem`).
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn read(path: &Path) -> Result<PublicKey> {
        let pem = read_pem(path, "--key")?;
        let key = p256::PublicKey::from_public_key_pem(&pem).map_err(|_| Error::Usage {
            what: format!("--key {}", path.display()),
            msg: "is not an EC P-256 public key (PEM `PUBLIC KEY`)".into(),
            hint: Some("write it with: openssl pkey -in key.pem -pubout -out pub.pem".into()),
        })?;
        Ok(PublicKey(VerifyingKey::from(key)))
    }

    /// Whether `der` is a valid signature of `message` by this key.
    pub fn verifies(&self, message: &[u8], der: &[u8]) -> bool {
        match Signature::from_der(der) {
            Ok(sig) => self.0.verify(message, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// A fixed key for unit tests.
#[cfg(test)]
pub(crate) fn test_key() -> Key {
    let bytes = [7u8; 32];
    Key {
        signing: SigningKey::from_bytes(&bytes.into()).unwrap(),
        path: PathBuf::from("test"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_deterministic_and_verify() {
        let key = test_key();
        let a = key.sign(b"payload");
        assert_eq!(a, key.sign(b"payload"));
        assert!(key.public().verifies(b"payload", &a));
        assert!(!key.public().verifies(b"payloaD", &a));
        assert!(format!("{key:?}").starts_with("Key("));
    }

    #[test]
    fn what_is_not_a_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "hello").unwrap();
        let e = Key::read(&path, None).unwrap_err().to_string();
        assert!(e.contains("not a PEM private key"), "{e}");
    }
}
