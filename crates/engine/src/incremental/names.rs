//! The names that rating reads, copied out of the ledger while a pair is
//! derived, so that [`super::Billed::rate`] needs no ledger. A name never
//! changes once its index is given, so a copy stays true.

use rustc_hash::FxHashMap;

use crate::billing::Record;
use crate::ledger::{Ledger, PairKey};
use crate::market::Region;
use crate::names::Names;

/// Each table by the ledger's index of what it names.
#[derive(Default)]
pub(super) struct CopiedNames {
    pairs: Vec<Option<PairKey>>,
    wabas: Vec<Option<String>>,
    phones: Vec<Option<String>>,
    /// The user's digits and region.
    users: Vec<Option<(String, Region)>>,
    /// The ids of the messages that opened records of one pair starting at
    /// the same instant: the only ids rating compares
    /// ([`crate::billing::rate`]'s `record_order`).
    tied_openers: FxHashMap<u32, String>,
}

/// Rating asked for a name that derivation did not copy.
const COPIED: &str = "Billed::derive copies the names of each pair it derives";

/// Puts `make()` at `index` unless something is there.
fn put<T>(table: &mut Vec<Option<T>>, index: u32, make: impl FnOnce() -> T) {
    let i = index as usize;
    if table.len() <= i {
        table.resize_with(i + 1, || None);
    }
    if table[i].is_none() {
        table[i] = Some(make());
    }
}

fn get<T>(table: &[Option<T>], index: u32) -> &T {
    table
        .get(index as usize)
        .and_then(Option::as_ref)
        .expect(COPIED)
}

impl CopiedNames {
    pub fn copy_pair(&mut self, ledger: &Ledger, pair: u32) {
        if self.pairs.get(pair as usize).is_some_and(Option::is_some) {
            return;
        }
        let key = ledger.pair(pair);
        let (waba, phone, user) = ledger.pair_names(pair);
        put(&mut self.pairs, pair, || key);
        put(&mut self.wabas, key.waba, || waba.to_owned());
        put(&mut self.phones, key.phone, || phone.to_owned());
        put(&mut self.users, key.user, || {
            (user.to_owned(), ledger.region(key.user))
        });
    }

    /// Copies WABA `waba`'s name (a month's WABA: rules P6 files a moved
    /// phone's records under WABAs its pairs are not of).
    pub fn copy_waba(&mut self, ledger: &Ledger, waba: u32) {
        put(&mut self.wabas, waba, || ledger.waba_name(waba).to_owned());
    }

    /// Copies the opener ids of `records` (one pair's, in one month) that
    /// start at the same instant as another of them.
    pub fn copy_tied_openers(&mut self, ledger: &Ledger, records: &[Record]) {
        let mut starts: Vec<(i64, u32)> =
            records.iter().map(|r| (r.start.0, r.opened_by)).collect();
        starts.sort_unstable();
        for pair in starts.windows(2) {
            if pair[0].0 == pair[1].0 {
                for (_, msg) in pair {
                    self.tied_openers
                        .entry(*msg)
                        .or_insert_with(|| ledger.message_id(*msg).to_owned());
                }
            }
        }
    }
}

impl Names for CopiedNames {
    fn pair(&self, pair: u32) -> PairKey {
        *get(&self.pairs, pair)
    }

    fn pair_names(&self, pair: u32) -> (&str, &str, &str) {
        let key = self.pair(pair);
        (
            self.waba_name(key.waba),
            self.phone_name(key.phone),
            &get(&self.users, key.user).0,
        )
    }

    fn waba_name(&self, waba: u32) -> &str {
        get::<String>(&self.wabas, waba)
    }

    fn phone_name(&self, phone: u32) -> &str {
        get::<String>(&self.phones, phone)
    }

    fn region(&self, user: u32) -> Region {
        get(&self.users, user).1
    }

    fn message_id(&self, msg: u32) -> &str {
        self.tied_openers.get(&msg).expect(COPIED)
    }
}
