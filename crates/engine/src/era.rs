//! Rules section 1: pricing eras, chosen by local date, and the rules each
//! era applies to a delivered business message.

use jiff::civil::Date;

use crate::conversation::{Delivered, Free, PairState, PairView};
use crate::rates::{Category, Family};
use crate::time::Instant;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EraKind {
    Cbp2022,
    Cbp2023,
    Pmp2025,
    Pmp2026,
}

impl EraKind {
    pub fn parse(s: &str) -> Option<EraKind> {
        match s {
            "cbp-2022" => Some(EraKind::Cbp2022),
            "cbp-2023" => Some(EraKind::Cbp2023),
            "pmp-2025" => Some(EraKind::Pmp2025),
            "pmp-2026" => Some(EraKind::Pmp2026),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EraKind::Cbp2022 => "cbp-2022",
            EraKind::Cbp2023 => "cbp-2023",
            EraKind::Pmp2025 => "pmp-2025",
            EraKind::Pmp2026 => "pmp-2026",
        }
    }

    /// The rules of this era.
    pub fn rules(self) -> &'static dyn EraRules {
        match self {
            EraKind::Cbp2022 => &crate::cbp2022::Cbp2022,
            EraKind::Cbp2023 => &crate::cbp2023::Cbp2023,
            EraKind::Pmp2025 => &crate::pmp::PMP_2025,
            EraKind::Pmp2026 => &crate::pmp::PMP_2026,
        }
    }
}

/// The era timeline (rules section 1): each era applies from local midnight
/// of its date until the next one's. Configuration, validated on build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    entries: Vec<(Date, EraKind)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimelineError {
    #[error("the era timeline is empty")]
    Empty,
    #[error("era {0} is listed twice")]
    Repeated(&'static str),
    #[error(
        "era {later} cannot follow {earlier}: eras keep their order (cbp-2022, cbp-2023, pmp-2025, pmp-2026); move, add or remove them, never swap them"
    )]
    OutOfOrder {
        earlier: &'static str,
        later: &'static str,
    },
    #[error("era {later} from {later_from} does not start after {earlier} from {earlier_from}")]
    Unordered {
        earlier: &'static str,
        earlier_from: Date,
        later: &'static str,
        later_from: Date,
    },
}

impl Timeline {
    pub fn new(entries: Vec<(Date, EraKind)>) -> Result<Timeline, TimelineError> {
        if entries.is_empty() {
            return Err(TimelineError::Empty);
        }
        for (i, (_, era)) in entries.iter().enumerate() {
            if entries[..i].iter().any(|(_, e)| e == era) {
                return Err(TimelineError::Repeated(era.as_str()));
            }
        }
        for w in entries.windows(2) {
            // Conversation eras hand over to per-message ones, never back:
            // the pair state one era leaves is what the next one reads.
            if w[1].1 <= w[0].1 {
                return Err(TimelineError::OutOfOrder {
                    earlier: w[0].1.as_str(),
                    later: w[1].1.as_str(),
                });
            }
            if w[1].0 <= w[0].0 {
                return Err(TimelineError::Unordered {
                    earlier: w[0].1.as_str(),
                    earlier_from: w[0].0,
                    later: w[1].1.as_str(),
                    later_from: w[1].0,
                });
            }
        }
        Ok(Timeline { entries })
    }

    /// Rules section 1, the default timeline.
    pub fn meta_default() -> Timeline {
        let d = |y, m| Date::new(y, m, 1).unwrap_or(Date::MIN);
        Timeline {
            entries: vec![
                (d(2022, 2), EraKind::Cbp2022),
                (d(2023, 6), EraKind::Cbp2023),
                (d(2025, 7), EraKind::Pmp2025),
                (d(2026, 10), EraKind::Pmp2026),
            ],
        }
    }

    pub fn first_date(&self) -> Date {
        self.entries.first().map_or(Date::MIN, |e| e.0)
    }

    /// `(from, era)` in date order.
    pub fn entries(&self) -> &[(Date, EraKind)] {
        &self.entries
    }

    /// The date `era` starts on, if the timeline has it.
    pub fn start_of(&self, era: EraKind) -> Option<Date> {
        self.entries.iter().find(|e| e.1 == era).map(|e| e.0)
    }

    /// The era in force on local date `date`.
    pub fn era_on(&self, date: Date) -> Option<EraKind> {
        self.entries.iter().rfind(|e| e.0 <= date).map(|e| e.1)
    }

    /// What-if timelines: `era` alone, from the first date of this one, so
    /// it applies to all the traffic this timeline accepts.
    pub fn only(&self, era: EraKind) -> Timeline {
        Timeline {
            entries: vec![(self.first_date(), era)],
        }
    }
}

/// Rules A2: from this local date a free entry point conversation lasts 72 h.
pub fn fep_72h_from() -> Date {
    Date::new(2023, 3, 1).unwrap_or(Date::MIN)
}

/// Rules B7: from this local date service conversations are free.
pub fn free_service_from() -> Date {
    Date::new(2024, 11, 1).unwrap_or(Date::MIN)
}

/// A timeline resolved to instants in one WABA's zone.
#[derive(Clone, Debug)]
pub struct EraClock {
    starts: Vec<(Instant, EraKind)>,
    /// From this instant a free entry point conversation lasts 72 h (rules A2).
    pub fep_72h_from: Instant,
    /// From this instant service conversations are free (rules B7).
    pub free_service_from: Instant,
}

impl EraClock {
    pub fn new(timeline: &Timeline, tz: &jiff::tz::TimeZone) -> EraClock {
        let starts = timeline
            .entries
            .iter()
            .map(|(date, era)| (crate::time::local_midnight(*date, tz), *era))
            .collect();
        EraClock {
            starts,
            fep_72h_from: crate::time::local_midnight(fep_72h_from(), tz),
            free_service_from: crate::time::local_midnight(free_service_from(), tz),
        }
    }

    pub fn first_start(&self) -> Instant {
        self.starts.first().map_or(Instant(i64::MIN), |s| s.0)
    }

    /// The era in force at `at`; None before the first era.
    pub fn era_at(&self, at: Instant) -> Option<EraKind> {
        let i = self.starts.partition_point(|(start, _)| *start <= at);
        i.checked_sub(1).map(|i| self.starts[i].1)
    }
}

/// Which free tier a record may take a slot of.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FreeTierPool {
    /// Rules A5/B7: per WABA and local month.
    Waba,
    /// Rules section 5: per business phone number and local month.
    Phone,
}

/// The rules of one era. An era sees the pair's state (open conversations,
/// free entry point window, customer service window, entry points) and
/// decides what a delivery does. Eras share the pair state, so conversations
/// opened under one era stay open into the next (rules B7a, C6).
pub trait EraRules: Sync {
    /// The rate card family this era prices with.
    fn family(&self) -> Family;

    /// Whether the era prices delivered messages one by one (rules section
    /// 4) rather than conversations.
    fn per_message(&self) -> bool {
        false
    }

    /// Applies one delivered business message, in delivery order.
    fn deliver(&self, state: &mut PairState, msg: &Delivered, view: &PairView<'_>);

    /// The free tier a record of `category`, free by rule as `free`, may
    /// take a slot of (rules A5, B7, section 5).
    fn free_tier_pool(&self, category: Category, free: Free) -> Option<FreeTierPool>;

    /// Whether records of `category`, free by rule as `free`, show unit
    /// price 0 whatever the card says, needing no rate (rules D2: a category
    /// a rule makes free).
    fn priced_at_zero(&self, category: Category, _free: Free) -> bool {
        category == Category::FreeEntryPoint
    }
}
