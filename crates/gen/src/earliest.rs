//! An entry of a `BinaryHeap` (a max-heap) that pops the smallest key
//! first, ordered by its key alone: the reorder buffer, the duplicates
//! waiting to be written again and the simulation's schedule all use it.

use std::cmp::Ordering;

pub(crate) struct Earliest<K, T> {
    pub key: K,
    pub item: T,
}

impl<K: Ord, T> PartialEq for Earliest<K, T> {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl<K: Ord, T> Eq for Earliest<K, T> {}
impl<K: Ord, T> PartialOrd for Earliest<K, T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<K: Ord, T> Ord for Earliest<K, T> {
    fn cmp(&self, o: &Self) -> Ordering {
        o.key.cmp(&self.key)
    }
}
