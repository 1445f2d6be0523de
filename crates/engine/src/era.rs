//! Rules section 1: pricing eras, chosen by local date, and the rules each
//! era applies to a delivered business message.

use jiff::civil::Date;

use crate::conversation::{Delivered, PairState, PairView};
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

    /// The rules of this era, or None where wabill does not implement it yet.
    pub fn rules(self) -> Option<&'static dyn EraRules> {
        match self {
            EraKind::Cbp2022 => Some(&crate::cbp2022::Cbp2022),
            EraKind::Cbp2023 | EraKind::Pmp2025 | EraKind::Pmp2026 => None,
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
}

/// A timeline resolved to instants in one WABA's zone.
#[derive(Clone, Debug)]
pub struct EraClock {
    starts: Vec<(Instant, EraKind)>,
    /// From this instant a free entry point conversation lasts 72 h (rules A2).
    pub fep_72h_from: Instant,
}

impl EraClock {
    pub fn new(timeline: &Timeline, tz: &jiff::tz::TimeZone) -> EraClock {
        let starts = timeline
            .entries
            .iter()
            .map(|(date, era)| (crate::time::local_midnight(*date, tz), *era))
            .collect();
        let march_2023 = Date::new(2023, 3, 1).unwrap_or(Date::MIN);
        EraClock {
            starts,
            fep_72h_from: crate::time::local_midnight(march_2023, tz),
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

/// What a delivered business message did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DeliveryEffect {
    /// It opened a new conversation (its index in the pair's list).
    Opened(usize),
    /// It joined an open conversation at no charge.
    Joined(usize),
}

/// The rules of one era. An era sees the pair's state (open conversations,
/// customer service window, entry points) and decides what a delivery does.
/// Eras share the pair state, so conversations opened under one era stay open
/// into the next (rules B7a).
pub trait EraRules: Sync {
    fn kind(&self) -> EraKind;

    /// The rate card family this era prices with.
    fn family(&self) -> Family;

    /// Applies one delivered business message, in delivery order.
    fn deliver(
        &self,
        state: &mut PairState,
        msg: &Delivered,
        view: &PairView<'_>,
    ) -> DeliveryEffect;

    /// Whether a conversation of `category` opened at `start` may take a free
    /// tier slot (rules A5/B7).
    fn free_tier_eligible(&self, category: Category, start: Instant) -> bool;
}
