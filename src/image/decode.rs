//! Reading a layer blob back: undo its compression, and tolerate a tar
//! stream that ends early with zeros only.

use std::io::{self, Read};

use crate::oci::Compression as Kind;

/// A reader that undoes `kind`; gzip may have several members.
pub fn decoder<'a, R: io::BufRead + 'a>(
    input: R,
    kind: Kind,
) -> io::Result<Box<dyn io::Read + 'a>> {
    Ok(match kind {
        Kind::None => Box::new(input),
        Kind::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Kind::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// Some writers (umoci 0.4) end a layer without the last entry's padding or
/// the two zero blocks; the digests already vouch for the bytes, so supply
/// the zeros rather than refuse the layer.
pub struct ZeroTail<R> {
    inner: R,
    zeros_left: usize,
}

impl<R> ZeroTail<R> {
    pub fn new(inner: R) -> Self {
        ZeroTail {
            inner,
            zeros_left: 512 + 1024,
        }
    }
}

impl<R: Read> Read for ZeroTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let n = buf.len().min(self.zeros_left);
        buf[..n].fill(0);
        self.zeros_left -= n;
        Ok(n)
    }
}
