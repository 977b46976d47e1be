//! Hashing while bytes pass: a writer and a reader that feed SHA-256 and
//! count, so a layer is digested in the same pass that writes it.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, the `sha256:` digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex_digest(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Read to the end, then return the `sha256:` digest and the byte count.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((hex_digest(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    hex_digest(h)
}

fn hex_digest(hasher: Sha256) -> String {
    let bytes = hasher.finalize();
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in bytes.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `sha256:` and 12 hex digits, for progress lines.
pub fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}

/// A content digest as a descriptor carries it, always `sha256:` and 64
/// lowercase hex digits: anything else is refused when it is parsed (from
/// a manifest, an index, a reference), so no later step meets a digest it
/// cannot turn into a path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, String> {
        match crate::oci::sha256_hex(text) {
            Some(_) => Ok(Digest(text.to_string())),
            // Debug quotes and escapes it: the text came from an image.
            None => Err(format!(
                "{text:?} is not a sha256 digest (sha256: and 64 lowercase hex digits)"
            )),
        }
    }

    /// A digest kiln computed itself (a hasher's output, or one checked
    /// against the bytes it names): not parsed again.
    pub fn computed(text: String) -> Digest {
        debug_assert!(crate::oci::sha256_hex(&text).is_some(), "{text}");
        Digest(text)
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(sha256(bytes))
    }

    /// The 64 hex digits, a blob's file name.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Digest {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Digest> for String {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl PartialEq<Digest> for &str {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.0
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn writer_and_reader_agree_with_known_digest() {
        assert_eq!(sha256(b""), EMPTY);
        let mut w = HashWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, digest, n) = w.finish();
        assert_eq!((inner.as_slice(), n), (&b"abc"[..], 3));
        assert_eq!(digest, sha256(b"abc"));
        let (digest2, n2) = HashReader::new(&b"abc"[..]).finish().unwrap();
        assert_eq!((digest2, n2), (digest, 3));
    }

    #[test]
    fn only_sha256_digests_parse() {
        let good = format!("sha256:{}", "a".repeat(64));
        let d = Digest::parse(&good).unwrap();
        assert_eq!(d.hex(), "a".repeat(64));
        assert_eq!(d, good);
        for bad in [
            "sha512:abcd",
            "sha256:ABCDEF",
            "sha256:../../etc/passwd",
            "",
            "sha256:",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        let json = format!("\"{good}\"");
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"md5:00\"").is_err());
        assert_eq!(Digest::of(b"hello").as_str(), sha256(b"hello"));
    }
}
