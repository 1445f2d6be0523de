//! The distinct (waba, phone, user) pairs, each named once.

use crate::grow::{CapacityError, Chunked, Limit, Text, TextAt, length, next_index};
use crate::hash::HashKey;
use crate::intern::{Interner, Probe, SlotTable};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PairKey {
    pub waba: u32,
    pub phone: u32,
    pub user: u32,
}

/// The distinct (waba, phone, user) pairs, each string interned once.
#[derive(Clone, Debug)]
pub(super) struct Pairs {
    pub keys: Chunked<PairKey>,
    /// Each pair's names side by side in `text`: `(place, lengths)`, so
    /// comparing or reading a pair touches one place, not three interners.
    spans: Chunked<(TextAt, [u32; 3])>,
    text: Text,
    table: SlotTable,
    key: HashKey,
    pub wabas: Interner,
    pub phones: Interner,
    pub users: Interner,
}

fn pair_names_of<'t>(
    text: &'t Text,
    spans: &Chunked<(TextAt, [u32; 3])>,
    pair: u32,
) -> (&'t str, &'t str, &'t str) {
    let Some(&(at, [w, p, u])) = spans.get(pair as usize) else {
        return ("", "", "");
    };
    let (w, p, u) = (w as usize, p as usize, u as usize);
    let all = text.get(at, w + p + u);
    let (waba, rest) = all.split_at_checked(w).unwrap_or_default();
    let (phone, user) = rest.split_at_checked(p).unwrap_or_default();
    (waba, phone, user)
}

/// Which parts of a pair [`Pairs::intern`] saw for the first time.
pub(super) struct NewParts {
    pub waba: bool,
    pub user: bool,
}

impl Pairs {
    pub fn new(key: HashKey) -> Pairs {
        Pairs {
            keys: Chunked::default(),
            spans: Chunked::default(),
            text: Text::default(),
            table: SlotTable::default(),
            key,
            wabas: Interner::new(key),
            phones: Interner::new(key),
            users: Interner::new(key),
        }
    }

    pub fn names(&self, pair: u32) -> (&str, &str, &str) {
        pair_names_of(&self.text, &self.spans, pair)
    }

    /// The index of a pair, if it is here.
    pub fn lookup(&self, waba: &str, phone: &str, user: &str) -> Option<u32> {
        let hash = self.key.pair_hash(waba, phone, user);
        match self
            .table
            .find(hash, |p| self.names(p) == (waba, phone, user))
        {
            Probe::Found(p) => Some(p),
            Probe::Vacant(_) => None,
        }
    }

    /// [`Pairs::intern`], hashing the names itself.
    pub fn intern_names(
        &mut self,
        waba: &str,
        phone: &str,
        user: &str,
    ) -> Result<(u32, NewParts), CapacityError> {
        let hash = self.key.pair_hash(waba, phone, user);
        self.intern(hash, waba, phone, user)
    }

    /// The index of a pair (`hash == key.pair_hash(waba, phone, user)`).
    /// On an error the pair is not stored, though its names may be.
    pub fn intern(
        &mut self,
        hash: u64,
        waba: &str,
        phone: &str,
        user: &str,
    ) -> Result<(u32, NewParts), CapacityError> {
        let mut new = NewParts {
            waba: false,
            user: false,
        };
        let vacant = match self
            .table
            .find(hash, |p| self.names(p) == (waba, phone, user))
        {
            Probe::Found(pair) => return Ok((pair, new)),
            Probe::Vacant(vacant) => vacant,
        };
        let pair = next_index(self.keys.len(), Limit::Pairs)?;
        let lengths = [length(waba)?, length(phone)?, length(user)?];
        let at = self.text.push_all(&[waba, phone, user])?;
        let (waba, new_waba) = self.wabas.intern(waba)?;
        let (phone, _) = self.phones.intern(phone)?;
        let (user, new_user) = self.users.intern(user)?;
        (new.waba, new.user) = (new_waba, new_user);
        self.spans.push((at, lengths));
        self.keys.push(PairKey { waba, phone, user });
        self.table.insert(vacant, hash, pair);
        Ok((pair, new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_names_come_back_as_interned() {
        let key = HashKey::fixed();
        let mut pairs = Pairs::new(key);
        let mut intern = |w, p, u| pairs.intern(key.pair_hash(w, p, u), w, p, u).unwrap().0;
        let a = intern("W1", "P1", "55");
        let b = intern("W1", "P12", "5");
        let again = intern("W1", "P1", "55");
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_eq!(pairs.names(a), ("W1", "P1", "55"));
        assert_eq!(pairs.names(b), ("W1", "P12", "5"));
        assert_eq!(pairs.lookup("W1", "P12", "5"), Some(b));
        assert_eq!(pairs.lookup("W1", "P1", "5"), None);
    }
}
