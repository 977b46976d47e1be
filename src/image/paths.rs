//! Paths in byte order, each with a value: the maps behind `FsView`.
//!
//! While layers are applied a map is a `BTreeMap` (paths come and go). A
//! view loaded from the base index is read where it lies: the index's
//! records stay in the buffer they were read into, front-coded, every
//! `RESTART`th path whole, and a lookup binary-searches those and reads at
//! most `RESTART` records. Unpacking 135,000 paths into strings and values
//! touched about 20 MB of fresh memory, and on a virtual machine each new
//! page costs a fault of microseconds: that was most of a warm build's
//! start. Writing to a packed map unpacks it first.
//!
//! A record: the bytes its path shares with the previous one (a varint),
//! the rest of the path (length-prefixed), then the value as its codec
//! writes it. Every record is checked when the map is loaded, so reading
//! one later cannot fail.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every this many records a path is written whole.
pub const RESTART: usize = 32;
/// Longest path a packed map may hold: far past what a runtime can create.
const MAX_PATH: usize = 64 << 10;

#[derive(Debug, Clone)]
pub enum Paths<V> {
    Open(BTreeMap<String, V>),
    Packed(Packed<V>),
}

/// How a value is read from a record; `layers` bounds layer numbers in it.
pub type ReadValue<V> = fn(&mut Reader, usize) -> Option<V>;

/// Records in `buf` up to `end`; `restarts` holds the offset of every
/// `RESTART`th one, the first record's first.
#[derive(Clone)]
pub struct Packed<V> {
    buf: Arc<Vec<u8>>,
    end: usize,
    restarts: Vec<usize>,
    len: usize,
    layers: usize,
    value: ReadValue<V>,
}

impl<V> std::fmt::Debug for Packed<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} paths)", self.len)
    }
}

impl<V> Default for Paths<V> {
    fn default() -> Self {
        Paths::Open(BTreeMap::new())
    }
}

impl<V: Clone + PartialEq> PartialEq for Paths<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: Clone> Packed<V> {
    /// Check the `count` records `r` is at, in `buf`, and keep them where
    /// they are. None unless each path is
    /// absolute, UTF-8, under `MAX_PATH`, after the one before it, written
    /// whole at each restart, and each value reads.
    pub fn load(
        buf: &Arc<Vec<u8>>,
        r: &mut Reader,
        count: usize,
        layers: usize,
        value: ReadValue<V>,
    ) -> Option<Packed<V>> {
        let mut restarts = Vec::with_capacity(count.div_ceil(RESTART));
        let mut path: Vec<u8> = Vec::new();
        for i in 0..count {
            let at = r.offset(buf)?;
            let (shared, tail) = r.path_parts()?;
            if i % RESTART == 0 {
                if shared != 0 {
                    return None;
                }
                restarts.push(at);
            }
            // The new path sorts after the old one when, past what they
            // share, its rest sorts after the old one's.
            let after = i == 0 || path.get(shared..)? < tail;
            // Cut on a character boundary, a UTF-8 rest makes a UTF-8 path.
            let boundary = path.get(shared).is_none_or(|b| b & 0xc0 != 0x80);
            let utf8 = tail.is_ascii() || std::str::from_utf8(tail).is_ok();
            if !(after && boundary && utf8) || shared + tail.len() > MAX_PATH {
                return None;
            }
            path.truncate(shared);
            path.extend_from_slice(tail);
            if path.first() != Some(&b'/') {
                return None;
            }
            value(r, layers)?;
        }
        Some(Packed {
            buf: Arc::clone(buf),
            end: r.offset(buf)?,
            restarts,
            len: count,
            layers,
            value,
        })
    }

    /// The whole path written at restart `i`.
    fn restart_path(&self, i: usize) -> &[u8] {
        let mut r = Reader::new(&self.buf[self.restarts[i]..self.end]);
        r.path_parts().map_or(&[][..], |(_, tail)| tail)
    }

    /// Records from the last restart not after `path`.
    fn cursor_near(&self, path: &str) -> Cursor<'_, V> {
        let (mut lo, mut hi) = (0, self.restarts.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.restart_path(mid) <= path.as_bytes() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.cursor(lo.saturating_sub(1))
    }

    fn cursor(&self, block: usize) -> Cursor<'_, V> {
        let at = self.restarts.get(block).copied().unwrap_or(self.end);
        Cursor {
            packed: self,
            r: Reader::new(&self.buf[at..self.end]),
            left: self.len.saturating_sub(block * RESTART),
            path: Vec::new(),
        }
    }

    fn get(&self, path: &str) -> Option<V> {
        let mut cursor = self.cursor_near(path);
        while let Some((p, v)) = cursor.next_ref() {
            match p.cmp(path.as_bytes()) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Some(v),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

/// Reads records in order; each was checked when the map was loaded.
struct Cursor<'a, V> {
    packed: &'a Packed<V>,
    r: Reader<'a>,
    left: usize,
    path: Vec<u8>,
}

impl<V: Clone> Cursor<'_, V> {
    fn next_ref(&mut self) -> Option<(&[u8], V)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (shared, tail) = self.r.path_parts()?;
        self.path.truncate(shared);
        self.path.extend_from_slice(tail);
        let value = (self.packed.value)(&mut self.r, self.packed.layers)?;
        Some((&self.path, value))
    }
}

impl<'a, V: Clone> Iterator for Cursor<'a, V> {
    type Item = (Cow<'a, str>, V);

    fn next(&mut self) -> Option<Self::Item> {
        let (path, value) = self.next_ref()?;
        let path = std::str::from_utf8(path).ok()?.to_string();
        Some((Cow::Owned(path), value))
    }
}

impl<V: Clone> Paths<V> {
    pub fn len(&self) -> usize {
        match self {
            Paths::Open(map) => map.len(),
            Paths::Packed(p) => p.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, path: &str) -> Option<V> {
        match self {
            Paths::Open(map) => map.get(path).cloned(),
            Paths::Packed(p) => p.get(path),
        }
    }

    pub fn contains_key(&self, path: &str) -> bool {
        match self {
            Paths::Open(map) => map.contains_key(path),
            Paths::Packed(p) => p.get(path).is_some(),
        }
    }

    /// Every path with its value, in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (Cow<'_, str>, V)> + '_> {
        match self {
            Paths::Open(map) => Box::new(
                map.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.clone())),
            ),
            Paths::Packed(p) => Box::new(p.cursor(0)),
        }
    }

    /// The paths not less than `start`, in order.
    pub fn from<'a>(&'a self, start: &str) -> Box<dyn Iterator<Item = (Cow<'a, str>, V)> + 'a> {
        match self {
            Paths::Open(map) => Box::new(
                map.range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.clone())),
            ),
            Paths::Packed(p) => {
                let start = start.to_string();
                Box::new(p.cursor_near(&start).skip_while(move |(k, _)| **k < *start))
            }
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = Cow<'_, str>> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    pub fn insert(&mut self, path: String, value: V) -> Option<V> {
        self.open().insert(path, value)
    }

    pub fn remove(&mut self, path: &str) -> Option<V> {
        match self {
            Paths::Packed(p) if p.get(path).is_none() => None,
            _ => self.open().remove(path),
        }
    }

    /// The map as a `BTreeMap`, unpacked if it was packed.
    fn open(&mut self) -> &mut BTreeMap<String, V> {
        if let Paths::Packed(p) = self {
            let map = p.cursor(0).map(|(k, v)| (k.into_owned(), v)).collect();
            *self = Paths::Open(map);
        }
        match self {
            Paths::Open(map) => map,
            Paths::Packed(_) => unreachable!("unpacked above"),
        }
    }
}

impl<V> FromIterator<(String, V)> for Paths<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        Paths::Open(iter.into_iter().collect())
    }
}

/// Write the paths and values of `map` as records, each value by `put_value`.
pub fn pack<V: Clone>(
    w: &mut Vec<u8>,
    map: &Paths<V>,
    put_value: &mut dyn FnMut(&mut Vec<u8>, &V),
) {
    put(w, map.len() as u64);
    let mut prev = String::new();
    for (i, (path, value)) in map.iter().enumerate() {
        let shared = if i % RESTART == 0 {
            0
        } else {
            let common = prev
                .bytes()
                .zip(path.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            // Cut on a character boundary, so each part is UTF-8 on its own.
            (0..=common)
                .rev()
                .find(|n| path.is_char_boundary(*n))
                .unwrap_or(0)
        };
        put(w, shared as u64);
        put_bytes(w, &path.as_bytes()[shared..]);
        put_value(w, &value);
        prev.clear();
        prev.push_str(&path);
    }
}

pub fn put(w: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        w.push(n as u8 | 0x80);
        n >>= 7;
    }
    w.push(n as u8);
}

pub fn put_bytes(w: &mut Vec<u8>, bytes: &[u8]) {
    put(w, bytes.len() as u64);
    w.extend_from_slice(bytes);
}

/// Reads integers as LEB128 varints and length-prefixed byte strings;
/// every read is bounded by what is left.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Where the reader is in `buf`; None unless it reads a part of it.
    fn offset(&self, buf: &[u8]) -> Option<usize> {
        let at = (self.rest.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
        (at.checked_add(self.rest.len())? <= buf.len()).then_some(at)
    }

    #[inline]
    pub fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(*first)
    }

    #[inline]
    pub fn num(&mut self) -> Option<u64> {
        // Most numbers in an index (modes aside) fit in one byte.
        if let Some((&b, rest)) = self.rest.split_first() {
            if b < 0x80 {
                self.rest = rest;
                return Some(u64::from(b));
            }
        }
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A count of items, each at least a byte long: no more than what is left.
    pub fn count(&mut self) -> Option<usize> {
        usize::try_from(self.num()?)
            .ok()
            .filter(|n| *n <= self.rest.len())
    }

    #[inline]
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.num()?).ok()?;
        if len > self.rest.len() {
            return None;
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(bytes)
    }

    pub fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_string)
    }

    /// A record's path: bytes shared with the previous one, and the rest.
    #[inline]
    fn path_parts(&mut self) -> Option<(usize, &'a [u8])> {
        let shared = usize::try_from(self.num()?).ok()?;
        Some((shared, self.bytes()?))
    }
}

#[cfg(test)]
mod tests;
