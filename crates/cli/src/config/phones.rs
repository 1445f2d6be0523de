//! `[[phone]]` (cli.md "Providers over time"): which provider carried a
//! business phone number and which WABA paid, over dated periods (rules
//! P6), checked into the engine's phone histories.

use anyhow::{anyhow, bail};
use serde::Deserialize;
use wabill_engine::carriers::{Carrier, PhoneHistory, Provider};
use wabill_engine::config::EngineConfig;

use super::date;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PhoneFile {
    id: String,
    carriers: Vec<CarrierFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CarrierFile {
    provider: String,
    waba: String,
    from: Option<String>,
}

/// Every `[[phone]]`, after the WABAs (their zones are compared).
pub(super) fn phones(phones: &[PhoneFile], engine: &mut EngineConfig) -> anyhow::Result<()> {
    for (i, p) in phones.iter().enumerate() {
        let key = format!("phone[{i}]");
        if p.id.is_empty() {
            bail!("{key}.id: must not be empty");
        }
        if engine.phones.contains_key(&p.id) {
            bail!("{key}.id: phone {:?} is configured twice", p.id);
        }
        if p.carriers.is_empty() {
            bail!("{key}.carriers: a phone needs at least one period");
        }
        let mut carriers = Vec::new();
        for (j, c) in p.carriers.iter().enumerate() {
            let key = format!("{key}.carriers[{j}]");
            let provider = Provider::parse(&c.provider).ok_or_else(|| {
                anyhow!(
                    "{key}.provider: {:?} is not meta, 360dialog or zendesk",
                    c.provider
                )
            })?;
            if c.waba.is_empty() {
                bail!("{key}.waba: must not be empty");
            }
            let from = match &c.from {
                Some(d) => Some(date(d, &format!("{key}.from"))?),
                None if j == 0 => None,
                None => bail!("{key}.from: missing (only the first period may omit it)"),
            };
            if let (Some(Carrier { from: last, .. }), Some(from)) = (carriers.last(), from)
                && last.is_some_and(|l: jiff::civil::Date| l >= from)
            {
                bail!("{key}.from: the periods must be in date order, each from a later date");
            }
            carriers.push(Carrier {
                from,
                provider,
                waba: c.waba.clone(),
            });
        }
        // One zone for the phone: its windows and eras read one clock.
        let zone = |waba: &str| engine.waba(waba).timezone_name.clone();
        let first = zone(&carriers[0].waba);
        if let Some(other) = carriers.iter().find(|c| zone(&c.waba) != first) {
            bail!(
                "{key}.carriers: WABA {:?} is in {} but {:?} is in {first}; the WABAs of one phone must share a time zone",
                other.waba,
                zone(&other.waba),
                carriers[0].waba
            );
        }
        engine
            .phones
            .insert(p.id.clone(), PhoneHistory { carriers });
    }
    Ok(())
}

/// Rules P6 with section 8: a number keeps its windows and conversations
/// across a move, so the WABAs of one `[[phone]]` are one customer's (or
/// no customer's): another customer would read and change them.
pub(super) fn one_customer_per_phone(engine: &EngineConfig) -> anyhow::Result<()> {
    let mut phones: Vec<_> = engine.phones.iter().collect();
    phones.sort_by(|a, b| a.0.cmp(b.0));
    for (phone, history) in phones {
        // A change of provider alone moves no state between WABAs.
        if history
            .carriers
            .iter()
            .all(|c| c.waba == history.carriers[0].waba)
        {
            continue;
        }
        let mut owners: Vec<(&str, &str)> = Vec::new();
        for c in &history.carriers {
            for customer in &engine.customers.customers {
                if customer.wabas.iter().any(|m| m.waba == c.waba)
                    && !owners.iter().any(|(id, _)| *id == customer.id)
                {
                    owners.push((&customer.id, &c.waba));
                }
            }
        }
        if let [(a, wa), (b, wb), ..] = owners[..] {
            bail!(
                "phone {phone:?}: its WABAs belong to two customers ({wa:?} to {a:?}, {wb:?} to {b:?}); \
                 a number keeps its windows and conversations across a move, so its WABAs must be one customer's"
            );
        }
    }
    Ok(())
}
