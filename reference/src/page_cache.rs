//! A guest_memfd file's page cache as the model keeps it: folios by first
//! file index, each with its order and what the caller tracks of it.
//!
//! A sorted vector, not a `BTreeMap`: the checker runs the model millions
//! of times on page caches of one to a few dozen folios, and a map's node
//! allocations and pointer chasing cost more there than the shifts of a
//! short vector. Its storage is kept across [`PageCache::clear`], so a
//! caller that reuses one allocates nothing per query. The one long case
//! (a 2M folio split into 512 order-0 folios in a lifecycle scenario)
//! costs 512 insertions into a vector of at most a few hundred entries.

/// Folios by first file index: `(index, order, state)`, ascending.
#[derive(Debug, Clone, Default)]
pub struct PageCache<V> {
    folios: Vec<(u64, u32, V)>,
}

impl<V: Copy> PageCache<V> {
    /// This page cache made equal to `other`, reusing its storage.
    pub fn copy_from(&mut self, other: &PageCache<V>) {
        self.folios.clone_from(&other.folios);
    }

    /// Drops every folio, keeping the storage.
    pub fn clear(&mut self) {
        self.folios.clear();
    }

    /// Position of the first folio starting at or after `index`.
    fn at_or_after(&self, index: u64) -> usize {
        self.folios.partition_point(|f| f.0 < index)
    }

    /// The folio holding file page `index`: (first index, order, state).
    pub fn holding(&self, index: u64) -> Option<(u64, u32, V)> {
        let i = self.folios.partition_point(|f| f.0 <= index);
        let &f = self.folios.get(i.checked_sub(1)?)?;
        (index - f.0 < 1u64 << f.1.min(63)).then_some(f)
    }

    /// First index of the folio holding file page `index`, if any.
    pub fn folio_of(&self, index: u64) -> Option<u64> {
        self.holding(index).map(|f| f.0)
    }

    /// The first folio starting in `[from, end)`: (index, order, state).
    pub fn first_in(&self, from: u64, end: u64) -> Option<(u64, u32, V)> {
        self.folios
            .get(self.at_or_after(from))
            .filter(|f| f.0 < end)
            .copied()
    }

    /// The folios touching file pages `[start, end)`, in index order:
    /// the one holding `start`, if any, then each starting before `end`.
    pub fn touching(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u32, V)> + '_ {
        // Past every folio starting at or before `start`; the last of
        // those is the one holding it, if any folio does.
        let mut from = self.folios.partition_point(|f| f.0 <= start);
        if let Some(i) = from.checked_sub(1)
            && start - self.folios[i].0 < 1u64 << self.folios[i].1.min(63)
        {
            from = i;
        }
        self.folios[from..]
            .iter()
            .take_while(move |f| f.0 < end)
            .copied()
    }

    /// The folio starting at `index`: (order, state).
    pub fn get(&self, index: u64) -> Option<(u32, V)> {
        let i = self.at_or_after(index);
        self.folios
            .get(i)
            .filter(|f| f.0 == index)
            .map(|f| (f.1, f.2))
    }

    /// Puts a folio at `index` (replacing one that starts there).
    pub fn insert(&mut self, index: u64, order: u32, state: V) {
        let i = self.at_or_after(index);
        match self.folios.get_mut(i) {
            Some(f) if f.0 == index => *f = (index, order, state),
            _ => self.folios.insert(i, (index, order, state)),
        }
    }

    /// Takes the folio starting at `index` out: (order, state).
    pub fn remove(&mut self, index: u64) -> Option<(u32, V)> {
        let i = self.at_or_after(index);
        if self.folios.get(i).is_some_and(|f| f.0 == index) {
            let f = self.folios.remove(i);
            Some((f.1, f.2))
        } else {
            None
        }
    }

    /// Every folio's first index, ascending.
    pub fn starts(&self) -> impl Iterator<Item = u64> + '_ {
        self.folios.iter().map(|f| f.0)
    }

    /// Whether a folio of `2^order` pages at `index` would overlap one
    /// already held.
    pub fn overlaps(&self, index: u64, order: u32) -> bool {
        let end = index.saturating_add(1u64 << order.min(63));
        self.folio_of(index).is_some() || self.first_in(index, end).is_some()
    }

    /// Adds a folio of `2^order` pages at `index` unless it overlaps one
    /// already held (then `false`, nothing changed). A page cache given
    /// in index order, as queries give it, is appended to without a
    /// search.
    pub fn add(&mut self, index: u64, order: u32, state: V) -> bool {
        let after_last = self
            .folios
            .last()
            .is_none_or(|l| index > l.0 && index - l.0 >= 1u64 << l.1.min(63));
        if after_last {
            self.folios.push((index, order, state));
        } else if self.overlaps(index, order) {
            return false;
        } else {
            self.insert(index, order, state);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_folio_holding_a_page() {
        let mut pc = PageCache::default();
        pc.insert(512, 9, 'a');
        pc.insert(3, 0, 'b');
        pc.insert(0, 0, 'c');
        assert_eq!(pc.starts().collect::<Vec<_>>(), [0, 3, 512]);
        assert_eq!(pc.folio_of(1023), Some(512));
        assert_eq!(pc.folio_of(1024), None);
        assert_eq!(pc.folio_of(4), None);
        assert_eq!(pc.folio_of(3), Some(3));
        assert_eq!(pc.holding(700), Some((512, 9, 'a')));
        assert_eq!(pc.first_in(1, 512), Some((3, 0, 'b')));
        assert_eq!(pc.first_in(4, 512), None);
        assert!(pc.overlaps(0, 9) && pc.overlaps(1000, 0) && !pc.overlaps(4, 0));
        pc.insert(3, 0, 'd');
        assert_eq!(pc.get(3), Some((0, 'd')));
        assert_eq!(pc.remove(3), Some((0, 'd')));
        assert_eq!(pc.remove(3), None);
        assert_eq!(pc.get(3), None);
        pc.clear();
        assert_eq!(pc.folio_of(512), None);
        // add(): appended in order, searched out of order, refused on overlap.
        assert!(pc.add(0, 0, 'a') && pc.add(512, 9, 'b') && pc.add(5, 0, 'c'));
        assert!(!pc.add(513, 0, 'd') && !pc.add(0, 9, 'e') && !pc.add(5, 0, 'f'));
        assert_eq!(pc.starts().collect::<Vec<_>>(), [0, 5, 512]);
        assert!(pc.add(1024, 0, 'g') && !pc.add(1024, 0, 'h'));
    }

    #[test]
    fn the_folios_touching_a_range_are_the_ones_holding_its_pages() {
        let mut pc = PageCache::default();
        for (i, o) in [(0, 0), (2, 1), (8, 3), (512, 9), (1030, 0)] {
            assert!(pc.add(i, o, o));
        }
        // Against the definition: every folio holding a page of the range.
        for start in 0..1100 {
            for end in [start + 1, start + 2, start + 7, start + 600] {
                let want: Vec<_> =
                    (start..end)
                        .filter_map(|p| pc.holding(p))
                        .fold(Vec::new(), |mut v, f| {
                            if v.last() != Some(&f) {
                                v.push(f);
                            }
                            v
                        });
                let got: Vec<_> = pc.touching(start, end).collect();
                assert_eq!(got, want, "[{start}, {end})");
            }
        }
        assert_eq!(pc.touching(3, 9).map(|f| f.0).collect::<Vec<_>>(), [2, 8]);
        assert_eq!(pc.touching(1024, 1030).count(), 0);
    }
}
