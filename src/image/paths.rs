//! Paths in byte order, each with a value: the map behind `FsView`.
//!
//! While layers are applied it is a `BTreeMap` (paths come and go). A view
//! loaded from the base index is read only, so it is kept frozen: every
//! path in one buffer and the values in one vector, found by binary
//! search. A base of 100,000 paths then loads and frees as three
//! allocations instead of 100,000 strings and their tree nodes, which was
//! most of a warm build's start. Writing to a frozen map thaws it first.

use std::collections::BTreeMap;
use std::ops::Range;

#[derive(Debug, Clone)]
pub enum Paths<V> {
    Open(BTreeMap<String, V>),
    Frozen(Frozen<V>),
}

/// Sorted, distinct paths laid end to end in `names`; path `i` ends at `ends[i]`.
#[derive(Debug, Clone)]
pub struct Frozen<V> {
    names: String,
    ends: Vec<usize>,
    values: Vec<V>,
}

impl<V> Default for Paths<V> {
    fn default() -> Self {
        Paths::Open(BTreeMap::new())
    }
}

impl<V: PartialEq> PartialEq for Paths<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V> Default for Frozen<V> {
    fn default() -> Self {
        Frozen {
            names: String::new(),
            ends: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<V> Frozen<V> {
    /// A map of the paths laid end to end in `names` (path `i` ending at
    /// `ends[i]`) and their values; None unless the names are UTF-8, each
    /// absolute, and sorted and distinct. One check of the whole buffer,
    /// for a decoder that fills it path by path.
    pub fn from_parts(names: Vec<u8>, ends: Vec<usize>, values: Vec<V>) -> Option<Self> {
        if ends.len() != values.len() || ends.last().copied().unwrap_or(0) != names.len() {
            return None;
        }
        let mut start = 0;
        let mut prev: &[u8] = &[];
        for (i, &end) in ends.iter().enumerate() {
            let name = names.get(start..end)?;
            if name.first() != Some(&b'/') || (i > 0 && name <= prev) {
                return None;
            }
            (prev, start) = (name, end);
        }
        // Each name starts with `/`, so UTF-8 as a whole is UTF-8 name by name.
        let names = String::from_utf8(names).ok()?;
        Some(Frozen {
            names,
            ends,
            values,
        })
    }

    fn span(&self, i: usize) -> Range<usize> {
        if i >= self.ends.len() {
            return 0..0;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }

    fn name(&self, i: usize) -> &str {
        &self.names[self.span(i)]
    }

    /// The position of the first path not less than `path`, and whether it is `path`.
    fn find(&self, path: &str) -> (usize, bool) {
        let (mut lo, mut hi) = (0, self.ends.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(mid).cmp(path) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return (mid, true),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        (lo, false)
    }

    fn iter_from(&self, start: usize) -> impl DoubleEndedIterator<Item = (&str, &V)> {
        (start..self.ends.len()).map(|i| (self.name(i), &self.values[i]))
    }
}

impl<V> Paths<V> {
    pub fn len(&self) -> usize {
        match self {
            Paths::Open(map) => map.len(),
            Paths::Frozen(f) => f.ends.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, path: &str) -> Option<&V> {
        match self {
            Paths::Open(map) => map.get(path),
            Paths::Frozen(f) => match f.find(path) {
                (i, true) => Some(&f.values[i]),
                _ => None,
            },
        }
    }

    pub fn contains_key(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Every path with its value, in order.
    pub fn iter(&self) -> Box<dyn DoubleEndedIterator<Item = (&str, &V)> + '_> {
        self.from("")
    }

    /// The paths not less than `start`, in order.
    pub fn from<'a>(
        &'a self,
        start: &str,
    ) -> Box<dyn DoubleEndedIterator<Item = (&'a str, &'a V)> + 'a> {
        match self {
            Paths::Open(map) => Box::new(
                map.range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
                    .map(|(k, v)| (k.as_str(), v)),
            ),
            Paths::Frozen(f) => Box::new(f.iter_from(f.find(start).0)),
        }
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    pub fn insert(&mut self, path: String, value: V) -> Option<V> {
        self.open().insert(path, value)
    }

    pub fn remove(&mut self, path: &str) -> Option<V> {
        match self {
            Paths::Frozen(f) if f.find(path).1 => self.open().remove(path),
            Paths::Frozen(_) => None,
            Paths::Open(map) => map.remove(path),
        }
    }

    /// The map as a `BTreeMap`, thawed if it was frozen.
    fn open(&mut self) -> &mut BTreeMap<String, V> {
        if let Paths::Frozen(f) = self {
            let f = std::mem::take(f);
            let mut map = BTreeMap::new();
            let mut start = 0;
            for (end, value) in f.ends.into_iter().zip(f.values) {
                map.insert(f.names[start..end].to_string(), value);
                start = end;
            }
            *self = Paths::Open(map);
        }
        match self {
            Paths::Open(map) => map,
            Paths::Frozen(_) => unreachable!("thawed above"),
        }
    }
}

impl<V> std::ops::Index<&str> for Paths<V> {
    type Output = V;

    fn index(&self, path: &str) -> &V {
        self.get(path).expect("no such path in the view")
    }
}

impl<'a, V> IntoIterator for &'a Paths<V> {
    type Item = (&'a str, &'a V);
    type IntoIter = Box<dyn DoubleEndedIterator<Item = (&'a str, &'a V)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<V> FromIterator<(String, V)> for Paths<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        Paths::Open(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(paths: &[&str]) -> (Paths<usize>, Paths<usize>) {
        let open: Paths<usize> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (p.to_string(), i))
            .collect();
        let (mut names, mut ends, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (path, value) in open.iter() {
            names.extend_from_slice(path.as_bytes());
            ends.push(names.len());
            values.push(*value);
        }
        let frozen = Frozen::from_parts(names, ends, values).expect("sorted");
        (open, Paths::Frozen(frozen))
    }

    #[test]
    fn frozen_and_open_answer_alike() {
        let paths = ["/", "/a", "/a/b", "/a-b", "/a0", "/é", "/z/y/x", "/a/b/c"];
        let (open, frozen) = both(&paths);
        assert!(open == frozen);
        for probe in paths
            .iter()
            .copied()
            .chain(["", "/b", "/a/", "/zz", "/ ", "~"])
        {
            assert_eq!(open.get(probe), frozen.get(probe), "{probe}");
            let a: Vec<_> = open.from(probe).collect();
            let b: Vec<_> = frozen.from(probe).collect();
            assert_eq!(a, b, "from {probe}");
            let a: Vec<_> = open.from(probe).rev().take(2).collect();
            let b: Vec<_> = frozen.from(probe).rev().take(2).collect();
            assert_eq!(a, b, "from {probe}, reversed");
        }
        assert_eq!(frozen.len(), paths.len());
    }

    #[test]
    fn a_frozen_map_thaws_on_write() {
        let (mut open, mut frozen) = both(&["/a", "/b", "/c"]);
        assert_eq!(frozen.remove("/x"), None);
        assert!(matches!(frozen, Paths::Frozen(_)), "a miss does not thaw");
        assert_eq!(frozen.remove("/b"), open.remove("/b"));
        frozen.insert("/d".into(), 9);
        open.insert("/d".into(), 9);
        assert!(open == frozen);
    }

    #[test]
    fn parts_are_taken_only_when_sorted_absolute_and_utf8() {
        let ok =
            Frozen::from_parts(b"/a/b/\xc3\xa9".to_vec(), vec![2, 4, 7], vec![1, 2, 3]).unwrap();
        assert_eq!(Paths::Frozen(ok).get("/\u{e9}"), Some(&3));
        let bad: [(&[u8], Vec<usize>, Vec<i32>); 7] = [
            (b"/\xc3/\xa9", vec![2, 4], vec![1, 2]),
            (b"/b/a", vec![2, 4], vec![1, 2]),
            (b"/a/a", vec![2, 4], vec![1, 2]),
            (b"/aa", vec![1, 3], vec![1, 2]),
            (b"/a/b", vec![2, 4], vec![1]),
            (b"/a/b", vec![2, 3], vec![1, 2]),
            (b"/a/b", vec![4, 2], vec![1, 2]),
        ];
        for (names, ends, values) in bad {
            assert!(
                Frozen::from_parts(names.to_vec(), ends.clone(), values).is_none(),
                "{names:?} {ends:?}"
            );
        }
    }
}
