//! The proxy's tables of pending queries and connections.

/// Entries by key in a slab: a few hundred at most, each found at once by its index, and much
/// less code in the static binary than a BTreeMap or a HashMap. A key is a slot's index and
/// that slot's generation, so the key of an entry that has gone (a connection closed, a query
/// answered) never finds a newer one in its slot.
pub(super) struct Table<T> {
    slots: Vec<(u32, Option<T>)>,
    /// Empty slots, reused first.
    free: Vec<u32>,
    len: usize,
}

impl<T> Table<T> {
    pub(super) fn new() -> Table<T> {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Keep `value`; its key.
    pub(super) fn insert(&mut self, value: T) -> u64 {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push((0, None));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let generation = match self.slots.get_mut(index as usize) {
            Some(slot) => {
                slot.1 = Some(value);
                slot.0
            }
            None => 0, // cannot be: the index is of a slot there
        };
        self.len += 1;
        u64::from(generation) << 32 | u64::from(index)
    }

    pub(super) fn slot(&self, key: u64) -> Option<&(u32, Option<T>)> {
        let slot = self.slots.get((key & 0xffff_ffff) as usize)?;
        (u64::from(slot.0) == key >> 32).then_some(slot)
    }

    pub(super) fn get(&self, key: u64) -> Option<&T> {
        self.slot(key)?.1.as_ref()
    }

    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut T> {
        let slot = self.slots.get_mut((key & 0xffff_ffff) as usize)?;
        if u64::from(slot.0) != key >> 32 {
            return None;
        }
        slot.1.as_mut()
    }

    pub(super) fn remove(&mut self, key: u64) -> Option<T> {
        let index = key & 0xffff_ffff;
        let slot = self.slots.get_mut(index as usize)?;
        if u64::from(slot.0) != key >> 32 {
            return None;
        }
        let value = slot.1.take()?;
        // The next entry in this slot gets another key.
        slot.0 = slot.0.wrapping_add(1);
        self.free.push(index as u32);
        self.len -= 1;
        Some(value)
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) {
        for index in 0..self.slots.len() {
            let Some((generation, Some(value))) = self.slots.get_mut(index) else {
                continue;
            };
            if !keep(value) {
                let key = u64::from(*generation) << 32 | index as u64;
                self.remove(key);
            }
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, (generation, value))| {
                let key = u64::from(*generation) << 32 | index as u64;
                value.as_ref().map(|v| (key, v))
            })
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|(_, value)| value.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    pub(super) fn a_table_finds_by_key_and_never_by_a_stale_one() {
        let mut table = Table::new();
        let a = table.insert("a");
        let b = table.insert("b");
        assert_eq!(
            (table.get(a), table.get(b), table.len()),
            (Some(&"a"), Some(&"b"), 2)
        );
        assert_eq!(table.remove(a), Some("a"));
        assert_eq!(table.remove(a), None);
        // The slot is reused, under another key: the old key finds nothing.
        let c = table.insert("c");
        assert_ne!(c, a);
        assert_eq!((table.get(a), table.get(c)), (None, Some(&"c")));
        assert!(table.get_mut(a).is_none());
        table.retain(|v| *v != "b");
        assert_eq!((table.get(b), table.len()), (None, 1));
        let keys: Vec<u64> = table.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![c]);
        assert_eq!(table.get(u64::MAX), None);
    }
}
