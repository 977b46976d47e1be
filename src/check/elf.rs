//! Just enough of ELF to name a program's interpreter (PT_INTERP, such as
//! /lib64/ld-linux-x86-64.so.2): the file the kernel opens before the
//! program, and whose absence makes `exec` fail with "no such file or
//! directory" although the program is there. Reads only a bounded head of
//! the file and never trusts an offset it has not checked.

use std::io::Read;

/// Bytes of a file's head read to find its interpreter. The program
/// headers and the interpreter's name sit in the first page or two of
/// every linker's output; a file that puts them further is not judged.
pub const HEAD: u64 = 64 << 10;

/// The longest interpreter name accepted, Linux's PATH_MAX.
const MAX_INTERP: u64 = 4096;

const PT_INTERP: u32 = 3;

#[derive(Debug, PartialEq, Eq)]
pub enum Elf {
    /// Not an ELF file (a script, data, or too short to say).
    Other,
    /// An ELF file with no interpreter: statically linked, or a head that
    /// could not be read far enough to tell.
    NoInterp,
    /// The absolute path the kernel loads first.
    Interp(String),
}

/// The first `HEAD` bytes of `reader`.
pub fn read_head(reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    reader.take(HEAD).read_to_end(&mut head)?;
    Ok(head)
}

/// What the head of a file says about its interpreter. Any input, however
/// short or malformed, gives an answer without panicking.
pub fn interpreter(head: &[u8]) -> Elf {
    if head.len() < 16 || &head[..4] != b"\x7fELF" {
        return Elf::Other;
    }
    let wide = match head[4] {
        1 => false,
        2 => true,
        _ => return Elf::Other,
    };
    let little = match head[5] {
        1 => true,
        2 => false,
        _ => return Elf::Other,
    };
    let r = Reader { head, little };
    find_interp(&r, wide).unwrap_or(Elf::NoInterp)
}

fn find_interp(r: &Reader, wide: bool) -> Option<Elf> {
    // e_phoff, e_phentsize and e_phnum, by class.
    let (phoff, phentsize, phnum) = if wide {
        (r.u64(0x20)?, r.u16(0x36)?, r.u16(0x38)?)
    } else {
        (u64::from(r.u32(0x1c)?), r.u16(0x2a)?, r.u16(0x2c)?)
    };
    let min_entry = if wide { 56 } else { 32 };
    if u64::from(phentsize) < min_entry {
        return None;
    }
    for i in 0..u64::from(phnum) {
        let at = phoff.checked_add(i.checked_mul(u64::from(phentsize))?)?;
        if r.u32(at)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (r.u64(at.checked_add(8)?)?, r.u64(at.checked_add(32)?)?)
        } else {
            (
                u64::from(r.u32(at.checked_add(4)?)?),
                u64::from(r.u32(at.checked_add(16)?)?),
            )
        };
        if size == 0 || size > MAX_INTERP {
            return None;
        }
        let bytes = r.bytes(offset, size)?;
        let name = bytes.split(|b| *b == 0).next().unwrap_or_default();
        let name = std::str::from_utf8(name).ok()?;
        return (!name.is_empty()).then(|| Elf::Interp(name.to_string()));
    }
    Some(Elf::NoInterp)
}

struct Reader<'a> {
    head: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn bytes(&self, at: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(at).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.head.get(start..end)
    }

    fn array<const N: usize>(&self, at: u64) -> Option<[u8; N]> {
        self.bytes(at, N as u64)?.try_into().ok()
    }

    fn u16(&self, at: u64) -> Option<u16> {
        let b = self.array(at)?;
        Some(match self.little {
            true => u16::from_le_bytes(b),
            false => u16::from_be_bytes(b),
        })
    }

    fn u32(&self, at: u64) -> Option<u32> {
        let b = self.array(at)?;
        Some(match self.little {
            true => u32::from_le_bytes(b),
            false => u32::from_be_bytes(b),
        })
    }

    fn u64(&self, at: u64) -> Option<u64> {
        let b = self.array(at)?;
        Some(match self.little {
            true => u64::from_le_bytes(b),
            false => u64::from_be_bytes(b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERP64: &[u8] = b"/lib64/ld-linux-x86-64.so.2\0";

    /// A little-endian ELF64 executable: the file header, two program
    /// headers (PT_LOAD, then PT_INTERP when `interp`), and the name.
    fn elf64(interp: Option<&[u8]>) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // ELFCLASS64
        f[5] = 1; // little-endian
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        f[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        f[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
        let name_at = 64 + 2 * 56;
        let mut load = vec![0u8; 56];
        load[..4].copy_from_slice(&1u32.to_le_bytes());
        f.extend(load);
        let mut second = vec![0u8; 56];
        if let Some(name) = interp {
            second[..4].copy_from_slice(&PT_INTERP.to_le_bytes());
            second[8..16].copy_from_slice(&(name_at as u64).to_le_bytes());
            second[32..40].copy_from_slice(&(name.len() as u64).to_le_bytes());
        } else {
            second[..4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        }
        f.extend(second);
        f.extend(interp.unwrap_or_default());
        f
    }

    /// A big-endian ELF32 executable with one PT_INTERP header.
    fn elf32_be(name: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 52];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 1; // ELFCLASS32
        f[5] = 2; // big-endian
        f[0x1c..0x20].copy_from_slice(&52u32.to_be_bytes()); // e_phoff
        f[0x2a..0x2c].copy_from_slice(&32u16.to_be_bytes()); // e_phentsize
        f[0x2c..0x2e].copy_from_slice(&1u16.to_be_bytes()); // e_phnum
        let mut ph = vec![0u8; 32];
        ph[..4].copy_from_slice(&PT_INTERP.to_be_bytes());
        ph[4..8].copy_from_slice(&84u32.to_be_bytes());
        ph[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
        f.extend(ph);
        f.extend(name);
        f
    }

    #[test]
    fn reads_the_interpreter_of_a_dynamic_elf64() {
        assert_eq!(
            interpreter(&elf64(Some(INTERP64))),
            Elf::Interp("/lib64/ld-linux-x86-64.so.2".into())
        );
    }

    #[test]
    fn a_static_elf_has_none() {
        assert_eq!(interpreter(&elf64(None)), Elf::NoInterp);
    }

    #[test]
    fn reads_a_big_endian_elf32() {
        assert_eq!(
            interpreter(&elf32_be(b"/lib/ld.so.1\0")),
            Elf::Interp("/lib/ld.so.1".into())
        );
    }

    #[test]
    fn scripts_and_garbage_are_not_elf() {
        assert_eq!(interpreter(b"#!/bin/sh\necho hi\n"), Elf::Other);
        assert_eq!(interpreter(b""), Elf::Other);
        assert_eq!(interpreter(b"\x7fELF"), Elf::Other);
        let mut bad_class = elf64(Some(INTERP64));
        bad_class[4] = 9;
        assert_eq!(interpreter(&bad_class), Elf::Other);
    }

    #[test]
    fn every_truncation_and_corruption_is_answered_without_panic() {
        let whole = elf64(Some(INTERP64));
        for len in 0..whole.len() {
            let _ = interpreter(&whole[..len]);
        }
        // Cut inside the name: the name is not there to read.
        assert_eq!(interpreter(&whole[..whole.len() - 4]), Elf::NoInterp);
        for at in 0..whole.len() {
            for byte in [0x00, 0x7f, 0xff] {
                let mut f = whole.clone();
                f[at] = byte;
                let _ = interpreter(&f);
            }
        }
        // Offsets and counts at their largest.
        let mut huge = whole.clone();
        huge[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(interpreter(&huge), Elf::NoInterp);
        let mut many = whole.clone();
        many[0x38..0x3a].copy_from_slice(&u16::MAX.to_le_bytes());
        let _ = interpreter(&many);
        let mut far = whole;
        far[64 + 56 + 8..64 + 56 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(interpreter(&far), Elf::NoInterp);
    }

    #[test]
    fn the_head_read_is_bounded() {
        let endless = std::io::repeat(0x41);
        assert_eq!(read_head(endless).unwrap().len() as u64, HEAD);
    }
}
