//! Storage that grows without stopping its owner: fixed-size chunks that are
//! never moved, so that the millionth push costs what the first did. A
//! vector that doubles copies everything it holds (hundreds of milliseconds
//! at a million messages, on this machine), and the service's writer would
//! hold every request meanwhile.

use std::ops::{Index, IndexMut};

/// What outgrew the ledger's 32-bit indices and lengths.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Limit {
    #[error("more than 4294967295 message ids")]
    Messages,
    #[error("more than 4294967295 pairs")]
    Pairs,
    #[error("more than 4294967295 distinct names of one kind")]
    Strings,
    #[error("a string of more than 4294967295 bytes")]
    Bytes,
    #[error("a message id of more than 16777215 bytes")]
    IdBytes,
    #[error("messages of more than 16777216 WABAs")]
    Wabas,
}

/// A table of the ledger is full: it indexes its entries with `u32`s.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the ledger cannot hold {what}")]
pub struct CapacityError {
    pub what: Limit,
}

/// The index of a table's next entry, given its length: below `u32::MAX`,
/// which a [`crate::intern::SlotTable`] slot could not tell from empty.
pub(crate) fn next_index(len: usize, what: Limit) -> Result<u32, CapacityError> {
    u32::try_from(len)
        .ok()
        .filter(|&i| i < u32::MAX)
        .ok_or(CapacityError { what })
}

/// The length of a stored string as the ledger keeps it.
pub(crate) fn length(s: &str) -> Result<u32, CapacityError> {
    u32::try_from(s.len()).map_err(|_| CapacityError { what: Limit::Bytes })
}

/// Elements per chunk of a [`Chunked`].
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

/// A vector in chunks of [`CHUNK`] elements. The first chunk grows as a
/// `Vec` does (small tables stay small); later ones are allocated whole.
#[derive(Clone, Debug)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(value),
            _ => {
                let mut chunk = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK)
                };
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> CHUNK_BITS)?.get(i & (CHUNK - 1))
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

impl<T: Default> Chunked<T> {
    /// Element `i`, pushing defaults up to it first if it is not there.
    pub fn at(&mut self, i: usize) -> &mut T {
        while self.len <= i {
            self.push(T::default());
        }
        &mut self[i]
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

/// Bytes per chunk of a [`Text`] (a longer string gets a chunk of its own).
const TEXT_CHUNK: usize = 1 << 18;

/// Where a string lives in a [`Text`]: its chunk in the high half, its
/// offset in the low half.
pub(crate) type TextAt = u64;

/// Strings stored end to end in chunks; no string spans two.
#[derive(Clone, Debug, Default)]
pub(crate) struct Text {
    chunks: Vec<String>,
}

impl Text {
    /// Stores `s`; [`Text::get`] with the place and length gives it back.
    pub fn push(&mut self, s: &str) -> Result<TextAt, CapacityError> {
        self.push_all(&[s])
    }

    /// Stores `parts` end to end, as one string of at most `u32::MAX`
    /// bytes (so that every offset fits [`TextAt`]'s low half).
    pub fn push_all(&mut self, parts: &[&str]) -> Result<TextAt, CapacityError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let too_long = CapacityError { what: Limit::Bytes };
        if u32::try_from(len).is_err() {
            return Err(too_long);
        }
        let fits = self
            .chunks
            .last()
            .is_some_and(|chunk| chunk.len() + len <= TEXT_CHUNK.max(chunk.capacity()));
        if !fits {
            let chunk = if self.chunks.is_empty() {
                String::new()
            } else {
                String::with_capacity(TEXT_CHUNK.max(len))
            };
            self.chunks.push(chunk);
        }
        let index = self.chunks.len() - 1;
        // Chunks hold at least a string each: 2^32 of them is past memory.
        let index = u32::try_from(index).map_err(|_| too_long)?;
        let chunk = &mut self.chunks[index as usize];
        // A chunk stops taking strings at `max(TEXT_CHUNK, its one string)`
        // bytes, both within `u32::MAX`.
        let offset = u32::try_from(chunk.len()).map_err(|_| too_long)?;
        for part in parts {
            chunk.push_str(part);
        }
        Ok(u64::from(index) << 32 | u64::from(offset))
    }

    /// The chunk holding `at`, and the offset in it.
    fn chunk_of(&self, at: TextAt) -> Option<(&str, usize)> {
        let chunk = self.chunks.get((at >> 32) as usize)?;
        Some((chunk, (at & 0xFFFF_FFFF) as usize))
    }

    /// The `len` bytes at `at` (empty if they are not there).
    pub fn get(&self, at: TextAt, len: usize) -> &str {
        self.chunk_of(at)
            .and_then(|(chunk, offset)| chunk.get(offset..offset + len))
            .unwrap_or_default()
    }

    /// The first byte at `at`, if any (to fetch its cache line early).
    pub fn first_byte(&self, at: TextAt) -> Option<u8> {
        let (chunk, offset) = self.chunk_of(at)?;
        chunk.as_bytes().get(offset).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_keeps_every_element_across_chunks() {
        let mut v = Chunked::default();
        for i in 0..3 * CHUNK + 5 {
            v.push(i);
        }
        assert_eq!(v.len(), 3 * CHUNK + 5);
        assert_eq!(v[CHUNK - 1], CHUNK - 1);
        assert_eq!(v[CHUNK], CHUNK);
        assert_eq!(v.get(3 * CHUNK + 4), Some(&(3 * CHUNK + 4)));
        assert_eq!(v.get(3 * CHUNK + 5), None);
        v[7] = 70;
        assert_eq!(v.iter().nth(7), Some(&70));
        assert_eq!(v.iter().count(), 3 * CHUNK + 5);
        // Later chunks were allocated whole, never moved.
        assert!(v.chunks[1..].iter().all(|c| c.capacity() == CHUNK));
    }

    #[test]
    fn text_gives_back_every_string_including_long_ones() {
        let mut text = Text::default();
        let long = "x".repeat(TEXT_CHUNK + 3);
        let mut placed = Vec::new();
        for i in 0..100_000 {
            let s = if i == 50_000 {
                long.clone()
            } else {
                format!("wamid.{i}")
            };
            placed.push((text.push(&s).unwrap(), s));
        }
        for (at, s) in &placed {
            assert_eq!(text.get(*at, s.len()), s);
        }
        assert_eq!(text.first_byte(placed[1].0), Some(b'w'));
        assert!(text.chunks.len() > 2);
        assert_eq!(text.get(u64::MAX, 3), "");
    }

    #[test]
    fn indices_stop_below_u32_max() {
        assert_eq!(next_index(7, Limit::Pairs), Ok(7));
        assert_eq!(
            next_index(u32::MAX as usize - 1, Limit::Pairs),
            Ok(u32::MAX - 1)
        );
        let full = CapacityError { what: Limit::Pairs };
        assert_eq!(next_index(u32::MAX as usize, Limit::Pairs), Err(full));
        assert_eq!(next_index(usize::MAX, Limit::Pairs), Err(full));
        assert_eq!(
            full.to_string(),
            "the ledger cannot hold more than 4294967295 pairs"
        );
    }
}
