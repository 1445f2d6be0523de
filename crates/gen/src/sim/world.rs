//! The fixed part of the model: WABAs, their business phones and the user
//! population, each user with a home (usual) business phone.

use std::collections::HashSet;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::countries::{self, TEMPLATES, Tpl};

pub(crate) struct Phone {
    pub waba: u32,
    pub id: u64,
    pub display: u64,
    /// Users whose home (usual) business phone this is: `lo..hi`.
    pub lo: u32,
    pub hi: u32,
}

/// Everything that is fixed once built: businesses and the user population.
pub(crate) struct World {
    pub wabas: Vec<u64>,
    pub phones: Vec<Phone>,
    phone_cum: Vec<u64>,
    pub users: Vec<u64>,
    pub home: Vec<u32>,
    /// Key mixed into message ids (per seed).
    pub key: u64,
}

impl World {
    pub(crate) fn build(seed: u64, wabas: u32, users: u32) -> World {
        // one stream for the whole world: the draws below keep their order
        let mut rng = Pcg64::seed_from_u64(seed ^ 0x0057_4F52_4C44);
        let users = users.max(1);
        let Businesses {
            waba_ids,
            mut phones,
            weights,
        } = businesses(&mut rng, wabas.max(1));
        let (phone_cum, home) = assign_home_phones(&mut phones, &weights, users);
        let numbers = user_numbers(&mut rng, users);
        World {
            wabas: waba_ids,
            phones,
            phone_cum,
            users: numbers,
            home,
            key: rng.random::<u64>(),
        }
    }

    /// A business phone, weighted by its share of the traffic.
    pub(super) fn pick_phone(&self, rng: &mut Pcg64) -> u32 {
        let total = self.phone_cum.last().copied().unwrap_or(1);
        let r = rng.random_range(0..total);
        let i = self.phone_cum.partition_point(|&c| c <= r);
        i.min(self.phones.len() - 1) as u32
    }
}

/// WABAs and their phones; `weights[i]` is phone `i`'s share of the traffic.
struct Businesses {
    waba_ids: Vec<u64>,
    phones: Vec<Phone>,
    weights: Vec<u64>,
}

/// Unique WABA and phone ids.
#[derive(Default)]
struct IdPool {
    used: HashSet<u64>,
}

impl IdPool {
    fn fresh(&mut self, rng: &mut Pcg64) -> u64 {
        loop {
            let v = rng.random_range(100_000_000_000_000u64..120_000_000_000_000);
            if self.used.insert(v) {
                return v;
            }
        }
    }
}

/// `wabas` WABAs with one to three phones each, numbered in a business
/// country; earlier WABAs carry more traffic.
fn businesses(rng: &mut Pcg64, wabas: u32) -> Businesses {
    let mut ids = IdPool::default();
    let business: Vec<&Tpl> = TEMPLATES
        .iter()
        .filter(|t| countries::BUSINESS_ISOS.contains(&t.iso))
        .collect();
    let mut b = Businesses {
        waba_ids: Vec::with_capacity(wabas as usize),
        phones: Vec::new(),
        weights: Vec::new(),
    };
    for w in 0..wabas {
        b.waba_ids.push(ids.fresh(rng));
        let n = rng.random_range(1..=3u32);
        let waba_weight = 1200 / u64::from(w + 1) + 60;
        for s in phone_split(n) {
            let display = business_number(rng, &business);
            b.phones.push(Phone {
                waba: w,
                id: ids.fresh(rng),
                display,
                lo: 0,
                hi: 0,
            });
            b.weights.push(waba_weight * s);
        }
    }
    b
}

/// How a WABA's traffic is shared among its `n` phones (percent).
fn phone_split(n: u32) -> &'static [u64] {
    match n {
        1 => &[100],
        2 => &[60, 40],
        _ => &[50, 30, 20],
    }
}

/// A display number in one of the business countries.
fn business_number(rng: &mut Pcg64, business: &[&Tpl]) -> u64 {
    let tpl = business[rng.random_range(0..business.len())];
    let prefix = rng.random_range(0..tpl.prefixes.len());
    countries::number(tpl, prefix, rng.random::<u64>())
}

/// Gives each phone a contiguous range of users in proportion to its weight
/// (sets `lo..hi`); returns the cumulative weights (for [`World::pick_phone`])
/// and each user's home phone.
fn assign_home_phones(phones: &mut [Phone], weights: &[u64], users: u32) -> (Vec<u64>, Vec<u32>) {
    let total: u64 = weights.iter().sum();
    let mut phone_cum = Vec::with_capacity(weights.len());
    let mut acc = 0u64;
    let mut home = vec![0u32; users as usize];
    for (i, (p, w)) in phones.iter_mut().zip(weights).enumerate() {
        let lo = (u128::from(users) * u128::from(acc) / u128::from(total)) as u32;
        acc += w;
        let hi = (u128::from(users) * u128::from(acc) / u128::from(total)) as u32;
        p.lo = lo;
        p.hi = hi;
        for h in &mut home[lo as usize..hi as usize] {
            *h = i as u32;
        }
        phone_cum.push(acc);
    }
    (phone_cum, home)
}

/// The user population: numbers in weighted countries, unique as far as
/// possible (after 50 tries a repeat is accepted rather than looping when
/// the number space is nearly full).
fn user_numbers(rng: &mut Pcg64, users: u32) -> Vec<u64> {
    let mut cum = Vec::with_capacity(TEMPLATES.len());
    let mut acc = 0u64;
    for t in TEMPLATES {
        acc += u64::from(t.weight);
        cum.push(acc);
    }
    let mut seen: HashSet<u64> = HashSet::with_capacity(users as usize);
    let mut nums = Vec::with_capacity(users as usize);
    for _ in 0..users {
        let mut tries = 0;
        loop {
            let r = rng.random_range(0..acc);
            let ti = cum.partition_point(|&c| c <= r);
            let tpl = &TEMPLATES[ti.min(TEMPLATES.len() - 1)];
            let prefix = rng.random_range(0..tpl.prefixes.len());
            let n = countries::number(tpl, prefix, rng.random::<u64>());
            tries += 1;
            if seen.insert(n) || tries > 50 {
                nums.push(n);
                break;
            }
        }
    }
    nums
}
