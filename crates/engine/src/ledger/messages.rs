//! The message table: per message (a WABA and an id, rules F6), the
//! canonical copy of each kind of event F6 keeps, in a record of one cache
//! line.

use std::num::NonZeroU32;

use crate::grow::{CapacityError, Chunked, Limit, Text, TextAt, next_index};
use crate::hash::HashKey;
use crate::intern::{Probe, SlotTable};

/// One event's contribution to a message: time, pair and a small payload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub at: i64,
    pub pair: u32,
    pub flag: u8,
}

/// A `u32` other than `u32::MAX`, stored inverted in a [`NonZeroU32`] so
/// that an `Option` of it takes no room of its own.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct NonMaxU32(NonZeroU32);

impl NonMaxU32 {
    pub(super) fn new(value: u32) -> Option<NonMaxU32> {
        NonZeroU32::new(!value).map(NonMaxU32)
    }

    pub(super) fn get(self) -> u32 {
        !self.0.get()
    }
}

/// The copy of an event a message keeps in one slot, if any: an
/// `Option<Slot>` in 16 bytes. A plain `Option<Slot>` takes 24 (no field of
/// a `Slot` has a value to spare), which would make a [`Message`] 88 bytes
/// instead of one 64-byte cache line; here the `None` lives in the niche of
/// the pair index, which never reaches `u32::MAX` ([`next_index`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Kept(Option<Packed>);

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Packed {
    at: i64,
    pair: NonMaxU32,
    flag: u8,
}

impl Kept {
    /// The slot's copy, if it has one.
    pub fn get(self) -> Option<Slot> {
        self.0.map(|p| Slot {
            at: p.at,
            pair: p.pair.get(),
            flag: p.flag,
        })
    }

    pub fn new(slot: Slot) -> Kept {
        let pair = NonMaxU32::new(slot.pair)
            .expect("pair indices stay below u32::MAX: next_index refuses more");
        Kept(Some(Packed {
            at: slot.at,
            pair,
            flag: slot.flag,
        }))
    }
}

pub(super) const SEEN_INBOUND: u8 = 1;
pub(super) const SEEN_OUTBOUND: u8 = 2;
pub(super) const SEEN_SENT: u8 = 4;
pub(super) const SEEN_DELIVERED: u8 = 8;
pub(super) const SEEN_READ: u8 = 16;
pub(super) const SEEN_FAILED: u8 = 32;

/// What the ledger knows of one message (a WABA's id): 64 bytes, so that
/// folding an event touches one cache line of it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Message {
    /// The inbound message with this id; `flag` 1 = entry point.
    pub inbound: Kept,
    /// The outbound record; `flag` = template category code (0 = none).
    pub outbound: Kept,
    /// The earliest `delivered`/`read` status (F2, F8).
    pub delivery: Kept,
    /// The place in [`Messages::ids`] of the message's key: its WABA
    /// ([`WABA_BYTES`]), then its id.
    id_at: TextAt,
    /// Meta's verdict's record in the ledger's verdicts, if it has one.
    pub(super) verdict: Option<NonMaxU32>,
    /// The id's length (ids are at most [`MAX_ID_BYTES`] long).
    id_len: [u8; 3],
    /// Which kinds of event (`SEEN_*`) the id has had.
    pub(super) seen: u8,
}

/// The longest message id the ledger holds: its length takes three bytes
/// of a message record, so that the verdict's index fits in the same
/// cache line.
pub(crate) const MAX_ID_BYTES: usize = (1 << 24) - 1;

/// `id`'s length, if the ledger can hold it.
pub(crate) fn id_length(id: &str) -> Result<[u8; 3], CapacityError> {
    if id.len() > MAX_ID_BYTES {
        return Err(CapacityError {
            what: Limit::IdBytes,
        });
    }
    let [a, b, c, _] = (id.len() as u32).to_le_bytes();
    Ok([a, b, c])
}

impl Message {
    fn id_len(&self) -> usize {
        let [a, b, c] = self.id_len;
        u32::from_le_bytes([a, b, c, 0]) as usize
    }
}

/// Bytes of a message's key before its id: the index of its WABA, six bits
/// to a byte, as ASCII. Stored beside the id, which a lookup reads anyway,
/// it costs no cache line of its own and no room in the record.
const WABA_BYTES: usize = 4;

/// How many WABAs message keys can tell apart: [`WABA_BYTES`] of six bits.
pub(crate) const MAX_WABAS: usize = 1 << 24;

/// The WABA index `waba` as its key prefix; an error past [`MAX_WABAS`].
fn waba_prefix(waba: u32) -> Result<[u8; WABA_BYTES], CapacityError> {
    if waba as usize >= MAX_WABAS {
        return Err(CapacityError { what: Limit::Wabas });
    }
    Ok([0, 6, 12, 18].map(|shift| b'0' + ((waba >> shift) & 63) as u8))
}

/// A message's whole key (WABA prefix and id).
fn key_of<'s>(ids: &'s Text, m: &Message) -> &'s str {
    ids.get(m.id_at, WABA_BYTES + m.id_len())
}

/// Whether a stored key is `prefix` and `id`.
fn same_key(stored: &str, prefix: &[u8; WABA_BYTES], id: &str) -> bool {
    stored.len() == WABA_BYTES + id.len()
        && stored.as_bytes().get(..WABA_BYTES) == Some(prefix)
        && stored.get(WABA_BYTES..) == Some(id)
}

const _: () = assert!(size_of::<Message>() == 64, "a message is one cache line");

/// Message ids and their records: the ids in one arena, the records in one
/// chunked vector, a table from hash to record index; none of them stops to
/// grow.
#[derive(Clone)]
pub(crate) struct Messages {
    ids: Text,
    pub records: Chunked<Message>,
    table: SlotTable,
    key: HashKey,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("len", &self.records.len())
            .finish()
    }
}

fn id_of<'s>(ids: &'s Text, m: &Message) -> &'s str {
    key_of(ids, m).get(WABA_BYTES..).unwrap_or_default()
}

impl Messages {
    pub fn new(key: HashKey) -> Messages {
        Messages {
            ids: Text::default(),
            records: Chunked::default(),
            table: SlotTable::default(),
            key,
        }
    }

    pub fn id(&self, msg: u32) -> &str {
        id_of(&self.ids, &self.records[msg as usize])
    }

    /// The index of message `msg`'s WABA.
    pub fn waba(&self, msg: u32) -> u32 {
        let key = key_of(&self.ids, &self.records[msg as usize]).as_bytes();
        (0..WABA_BYTES).fold(0, |waba, i| {
            waba | (u32::from(key.get(i).map_or(0, |b| b - b'0')) << (6 * i))
        })
    }

    /// Sizes the table for `n` ids, if it is still empty.
    pub(super) fn reserve(&mut self, n: usize) {
        self.table.reserve(n);
    }

    /// The hash of WABA `waba`'s message `id` under the ledger's key, as
    /// [`Messages::intern`] takes it.
    pub(super) fn hash(&self, waba: &str, id: &str) -> u64 {
        self.key.message_hash(waba, id)
    }

    /// Reads what [`Messages::intern`] of `hash` will read first: its slot,
    /// the record it names and that record's id. The value only makes the
    /// reads happen.
    pub fn touch(&self, hash: u64) -> u64 {
        let Some(index) = self.table.home(hash) else {
            return 0;
        };
        let Some(record) = self.records.get(index as usize) else {
            return 0;
        };
        let first = self.ids.first_byte(record.id_at);
        u64::from(index) ^ u64::from(first.unwrap_or(0))
    }

    /// The record index of WABA `waba`'s message `id` (`hash` is
    /// [`Messages::hash`] of the WABA's name and `id`), if the ledger has it.
    pub(crate) fn lookup(&self, waba: u32, id: &str, hash: u64) -> Option<u32> {
        let prefix = waba_prefix(waba).ok()?;
        let Self { ids, records, .. } = self;
        match self.table.find(hash, |i| {
            same_key(key_of(ids, &records[i as usize]), &prefix, id)
        }) {
            Probe::Found(i) => Some(i),
            Probe::Vacant(_) => None,
        }
    }

    /// The record index of WABA `waba`'s message `id` (`hash` as for
    /// [`Messages::lookup`]), and whether new.
    pub(super) fn intern(
        &mut self,
        waba: u32,
        id: &str,
        hash: u64,
    ) -> Result<(u32, bool), CapacityError> {
        let prefix = waba_prefix(waba)?;
        let Self {
            ids,
            records,
            table,
            ..
        } = self;
        let vacant = match table.find(hash, |i| {
            same_key(key_of(ids, &records[i as usize]), &prefix, id)
        }) {
            Probe::Found(i) => return Ok((i, false)),
            Probe::Vacant(vacant) => vacant,
        };
        let index = next_index(records.len(), Limit::Messages)?;
        let id_len = id_length(id)?;
        let prefix = std::str::from_utf8(&prefix).unwrap_or_default();
        records.push(Message {
            inbound: Kept::default(),
            outbound: Kept::default(),
            delivery: Kept::default(),
            id_at: ids.push_all(&[prefix, id])?,
            verdict: None,
            id_len,
            seen: 0,
        });
        table.insert(vacant, hash, index);
        Ok((index, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_longer_than_a_message_record_can_say_is_a_capacity_error() {
        let mut messages = Messages::new(HashKey::fixed());
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let hash = messages.hash("W", &long);
        assert_eq!(
            messages.intern(0, &long, hash),
            Err(CapacityError {
                what: Limit::IdBytes
            })
        );
        let longest = "y".repeat(MAX_ID_BYTES);
        let hash = messages.hash("W", &longest);
        assert_eq!(messages.intern(0, &longest, hash), Ok((0, true)));
        assert_eq!(messages.id(0).len(), MAX_ID_BYTES);
    }

    #[test]
    fn a_kept_copy_comes_back_as_stored_and_an_empty_slot_as_none() {
        assert_eq!(size_of::<Kept>(), 16);
        assert_eq!(Kept::default().get(), None);
        for pair in [0, 1, 7, u32::MAX - 1] {
            let slot = Slot {
                at: i64::MIN,
                pair,
                flag: 3,
            };
            assert_eq!(Kept::new(slot).get(), Some(slot));
        }
    }

    #[test]
    fn the_message_table_finds_every_id_through_growth_and_touch_changes_nothing() {
        let mut messages = Messages::new(HashKey::fixed());
        let ids: Vec<String> = (0..5000).map(|i| format!("wamid.{i:x}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let hash = messages.hash("W", id);
            assert_eq!(messages.intern(0, id, hash), Ok((i as u32, true)));
        }
        for (i, id) in ids.iter().enumerate().rev() {
            let hash = messages.hash("W", id);
            let _ = messages.touch(hash);
            assert_eq!(messages.intern(0, id, hash), Ok((i as u32, false)));
            assert_eq!(messages.id(i as u32), id);
        }
        // Ids whose hashes share the home slot and the tag still differ.
        let mut crowded = Messages::new(HashKey::fixed());
        assert_eq!(crowded.intern(0, "a", 7), Ok((0, true)));
        assert_eq!(crowded.intern(0, "b", 7), Ok((1, true)));
        assert_eq!(crowded.intern(0, "a", 7), Ok((0, false)));
        assert_eq!(crowded.intern(0, "b", 7), Ok((1, false)));
        assert_eq!(crowded.records.len(), 2);
    }

    #[test]
    fn one_id_in_two_wabas_is_two_messages_and_each_knows_its_waba() {
        let mut messages = Messages::new(HashKey::fixed());
        let last = (1 << 24) - 1;
        for (i, waba) in [0u32, 1, 63, 64, 4095, 4096, last].into_iter().enumerate() {
            // One hash for all: only the keys tell them apart.
            assert_eq!(messages.intern(waba, "wamid.x", 7), Ok((i as u32, true)));
            assert_eq!(messages.waba(i as u32), waba);
            assert_eq!(messages.id(i as u32), "wamid.x");
        }
        assert_eq!(messages.intern(4096, "wamid.x", 7), Ok((5, false)));
        assert_eq!(messages.lookup(63, "wamid.x", 7), Some(2));
        assert_eq!(messages.lookup(5, "wamid.x", 7), None);
        assert_eq!(
            messages.intern(1 << 24, "wamid.x", 7),
            Err(CapacityError { what: Limit::Wabas })
        );
    }

    /// `n` distinct 65-byte ASCII ids that all hash alike under the old
    /// unkeyed hash, rustc-hash 2's `FxBuildHasher`. Its `hash_bytes` keeps
    /// two lanes `s0, s1` (starting at two constants) and folds each 16-byte
    /// block `(x, y)` of all but the last byte as
    /// `t = mix(s0 ^ x, C ^ y); (s0, s1) = (s1, t)`, where `mix(a, b)` is the
    /// 128-bit product of `a` and `b` with its halves XOR-ed: zero whenever
    /// `a` is. The lane `s0` a block meets is the `t` of two blocks before,
    /// so with blocks B1 B2 B3 B4 and one last byte:
    /// - B1 = "wamid.HB" + 8 digits, the digits searched so that its
    ///   `t1 = mix(SEED1 ^ x1, C ^ y1)` reads as 8 printable ASCII bytes;
    /// - B2 is fixed;
    /// - B3 = those 8 bytes of `t1`, then 8 free bytes: `s0 ^ x3 = 0`, so
    ///   its `t` is 0 whatever the free bytes are, and B3 leaves nothing
    ///   of them behind;
    /// - B4 and the last byte are fixed, and with them the 16 bytes
    ///   (49..65) XOR-ed into the lanes at the end.
    ///
    /// Every id then has the same 64-bit hash, so one tag and one home
    /// slot: the free bytes count the ids.
    fn colliding_ids(n: usize) -> Vec<String> {
        const SEED1: u64 = 0x243f_6a88_85a3_08d3;
        const C: u64 = 0xa409_3822_299f_31d0;
        let mix = |a: u64, b: u64| {
            let full = u128::from(a) * u128::from(b);
            (full as u64) ^ ((full >> 64) as u64)
        };
        let word = |s: &str| u64::from_le_bytes(s.as_bytes().try_into().unwrap());
        let (b1, t1) = (0u64..)
            .find_map(|k| {
                let digits = format!("{k:08}");
                let t1 = mix(SEED1 ^ word("wamid.HB"), C ^ word(&digits)).to_le_bytes();
                let printable = t1.iter().all(|b| b.is_ascii_graphic());
                printable.then(|| (format!("wamid.HB{digits}"), t1))
            })
            .unwrap();
        let t1 = std::str::from_utf8(&t1).unwrap().to_owned();
        (0..n)
            .map(|i| format!("{b1}gLNTUxMTk5OTk5MD{t1}{i:08x}AwMRUCABIYFjNFQjB"))
            .collect()
    }

    /// Whether interning `n` ids took work linear in `n`: probes past the
    /// home slot, in all, fewer than two per id.
    fn linear(displacement: u64, n: usize) -> bool {
        displacement < 2 * n as u64
    }

    #[test]
    fn ids_crafted_to_collide_under_the_unkeyed_hash_do_not_slow_a_keyed_table() {
        const N: usize = 2000;
        let ids = colliding_ids(N);
        assert!(ids.iter().all(|id| id.len() == 65));
        let unkeyed = |id: &str| std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, id);
        assert!(ids.iter().all(|id| unkeyed(id) == unkeyed(&ids[0])));
        let displacement = |hash: &dyn Fn(&str) -> u64| {
            let mut messages = Messages::new(HashKey::fixed());
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(messages.intern(0, id, hash(id)), Ok((i as u32, true)));
            }
            messages.table.displacement()
        };
        // Under the old hash the table is one run from one home slot: each
        // id probes past every id before it, N²/2 probes in all.
        let old = displacement(&unkeyed);
        assert_eq!(old, (N * (N - 1) / 2) as u64);
        assert!(!linear(old, N));
        // Under a key the crafter does not know, they spread.
        let key = HashKey::new([0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210]);
        let keyed = displacement(&|id| key.message_hash("W", id));
        assert!(linear(keyed, N), "{keyed} probes for {N} ids");

        // And so through a ledger, whose validator hashes the ids.
        let mut ledger = crate::ledger::Ledger::new(crate::config::EngineConfig::new(), key);
        for id in &ids {
            let mut e = crate::ledger::fold::tests::ev(
                crate::event::EventBody::Inbound { referral: false },
                "",
                crate::ledger::fold::tests::MARCH_2022,
            );
            e.id = id.clone().into();
            assert_eq!(ledger.ingest(&[e]).map(|o| o.accepted), Ok(1));
        }
        let through_ledger = ledger.messages.table.displacement();
        assert!(
            linear(through_ledger, N),
            "{through_ledger} probes for {N} ids"
        );
    }
}
