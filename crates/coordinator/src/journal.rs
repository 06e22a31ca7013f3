//! A map that can undo a write: the way a coordinator shard reverts its in-memory state when
//! the records of a request could not be appended (Kafka's coordinators keep their state in
//! "timeline" collections for the same reason).
//!
//! Between [`JournaledMap::begin`] and [`JournaledMap::commit`] every mutation first saves the
//! entry's previous value (once per key); [`JournaledMap::revert`] puts those values back.
//! Reads cost nothing extra, and a write costs one clone of each entry it touches, not of the
//! whole map.

use std::collections::btree_map::{self, BTreeMap};
use std::ops::RangeBounds;

#[derive(Debug, Clone)]
pub struct JournaledMap<K: Ord + Clone, V: Clone> {
    map: BTreeMap<K, V>,
    /// `Some` while a write is open: each touched key's value before the write (`None`: absent).
    undo: Option<BTreeMap<K, Option<V>>>,
}

impl<K: Ord + Clone, V: Clone> Default for JournaledMap<K, V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            undo: None,
        }
    }
}

impl<K: Ord + Clone, V: Clone> JournaledMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts recording what mutations overwrite.
    pub fn begin(&mut self) {
        self.undo = Some(BTreeMap::new());
    }

    /// Keeps every change since [`Self::begin`].
    pub fn commit(&mut self) {
        self.undo = None;
    }

    /// Undoes every change since [`Self::begin`].
    pub fn revert(&mut self) {
        if let Some(undo) = self.undo.take() {
            for (k, old) in undo {
                match old {
                    Some(v) => {
                        self.map.insert(k, v);
                    }
                    None => {
                        self.map.remove(&k);
                    }
                }
            }
        }
    }

    fn save(&mut self, key: &K) {
        if let Some(undo) = &mut self.undo {
            if !undo.contains_key(key) {
                undo.insert(key.clone(), self.map.get(key).cloned());
            }
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.get(key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.contains_key(key)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let owned = self.map.get_key_value(key).map(|(k, _)| k.clone())?;
        self.save(&owned);
        self.map.get_mut(key)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.save(&key);
        self.map.insert(key, value)
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let owned = self.map.get_key_value(key).map(|(k, _)| k.clone())?;
        self.save(&owned);
        self.map.remove(key)
    }

    /// The value at `key`, inserted by `make` first if absent.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.save(&key);
        self.map.entry(key).or_insert_with(make)
    }

    /// Keeps only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let doomed: Vec<K> = self
            .map
            .iter()
            .filter(|(k, v)| !keep(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }

    pub fn iter(&self) -> btree_map::Iter<'_, K, V> {
        self.map.iter()
    }
    pub fn keys(&self) -> btree_map::Keys<'_, K, V> {
        self.map.keys()
    }
    pub fn values(&self) -> btree_map::Values<'_, K, V> {
        self.map.values()
    }
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> btree_map::Range<'_, K, V> {
        self.map.range(range)
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every key, for callers that then mutate entries one by one.
    pub fn key_list(&self) -> Vec<K> {
        self.map.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_restores_changed_added_and_removed_entries() {
        let mut m = JournaledMap::new();
        m.insert("a", 1);
        m.insert("b", 2);
        m.begin();
        *m.get_mut("a").unwrap() = 10;
        *m.get_mut("a").unwrap() = 11;
        m.remove("b");
        m.insert("c", 3);
        *m.get_or_insert_with("d", || 4) += 1;
        m.retain(|_, v| *v != 3);
        m.revert();
        let now: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(now, vec![("a", 1), ("b", 2)]);
    }

    #[test]
    fn commit_keeps_changes_and_stops_recording() {
        let mut m = JournaledMap::new();
        m.begin();
        m.insert(1, "x");
        m.commit();
        m.insert(2, "y");
        m.revert(); // nothing open: nothing to undo
        assert_eq!(m.len(), 2);
    }
}
