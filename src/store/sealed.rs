//! Cache entries kiln writes for itself and reads back as untrusted: a
//! header naming what the entry holds and its format version, the body's
//! length, the body, and a sha256 over all of it. A file that is short,
//! long, of another kind or version, or whose digest does not match, reads
//! as absent: the caller rebuilds it.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::Result;

const HEADER: usize = 8 + 4 + 8;
const DIGEST: usize = 32;

/// `body` framed as a sealed entry of `kind` at format `version`.
pub fn seal(kind: &[u8; 8], version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len() + DIGEST);
    out.extend_from_slice(kind);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// The body of a sealed entry, if `bytes` is one of `kind` at `version`
/// and its digest matches.
pub fn open<'a>(kind: &[u8; 8], version: u32, bytes: &'a [u8]) -> Option<&'a [u8]> {
    let framed = bytes.len().checked_sub(DIGEST)?;
    let (sealed, digest) = bytes.split_at(framed);
    let body = sealed.get(HEADER..)?;
    let len = u64::from_le_bytes(sealed[12..20].try_into().ok()?);
    let fits = sealed[..8] == kind[..]
        && sealed[8..12] == version.to_le_bytes()
        && len == body.len() as u64;
    (fits && Sha256::digest(sealed)[..] == digest[..]).then_some(body)
}

/// Read the entry at `path` whole, in one read, if it is at most `max`
/// bytes; check it with `open` before use.
pub fn read(path: &Path, max: u64) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > max {
        return None;
    }
    let mut bytes = Vec::with_capacity(len as usize);
    (&mut file).take(max).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Write `body` sealed to `path`, put in place by a rename.
pub fn write(path: &Path, kind: &[u8; 8], version: u32, body: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        use crate::error::IoContext;
        std::fs::create_dir_all(dir).ctx("create directory", dir)?;
    }
    crate::tmp::write_atomic(path, &seal(kind, version, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: &[u8; 8] = b"testent\0";

    #[test]
    fn a_sealed_body_opens_and_any_change_to_it_does_not() {
        let body = b"the body of an entry".to_vec();
        let sealed = seal(KIND, 3, &body);
        assert_eq!(open(KIND, 3, &sealed), Some(&body[..]));
        assert_eq!(open(KIND, 4, &sealed), None, "another version");
        assert_eq!(open(b"otherent", 3, &sealed), None, "another kind");
        for cut in 0..sealed.len() {
            assert_eq!(open(KIND, 3, &sealed[..cut]), None, "cut at {cut}");
        }
        for at in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[at] ^= 0x01;
            assert_eq!(open(KIND, 3, &flipped), None, "bit flipped at {at}");
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(open(KIND, 3, &longer), None);
        assert_eq!(open(KIND, 3, &[]), None);
    }

    #[test]
    fn an_empty_body_round_trips_and_a_large_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/entry");
        write(&path, KIND, 1, b"").unwrap();
        let bytes = read(&path, 1 << 20).unwrap();
        assert_eq!(open(KIND, 1, &bytes), Some(&b""[..]));
        assert!(read(&path, 10).is_none(), "more than max");
        assert!(read(&dir.path().join("absent"), 1 << 20).is_none());
    }
}
