//! Rules section 1: the pricing eras and the timeline that chooses one by
//! local date. What each era does is in [`crate::rules`].

use jiff::civil::Date;

use crate::time::Instant;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EraKind {
    Cbp2022,
    Cbp2023,
    Pmp2025,
    Pmp2026,
}

impl EraKind {
    /// Every era, in the order a timeline must keep.
    pub const ALL: [EraKind; 4] = [
        EraKind::Cbp2022,
        EraKind::Cbp2023,
        EraKind::Pmp2025,
        EraKind::Pmp2026,
    ];

    pub fn parse(s: &str) -> Option<EraKind> {
        EraKind::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The era ids in timeline order, comma-separated, for messages.
    pub fn names() -> String {
        EraKind::ALL.map(EraKind::as_str).join(", ")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EraKind::Cbp2022 => "cbp-2022",
            EraKind::Cbp2023 => "cbp-2023",
            EraKind::Pmp2025 => "pmp-2025",
            EraKind::Pmp2026 => "pmp-2026",
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
        "era {later} cannot follow {earlier}: eras keep their order ({order}); move, add or remove them, never swap them"
    )]
    OutOfOrder {
        earlier: &'static str,
        later: &'static str,
        /// [`EraKind::names`].
        order: String,
    },
    #[error("era {era} from {from} is outside the years wabill's instants hold (1678 to 2261)")]
    OutOfRange { era: &'static str, from: Date },
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
        for (i, (from, era)) in entries.iter().enumerate() {
            if entries[..i].iter().any(|(_, e)| e == era) {
                return Err(TimelineError::Repeated(era.as_str()));
            }
            // Local midnight in any zone must be an Instant (nanoseconds
            // in an i64: 1677-09-21 to 2262-04-11).
            if !(1678..=2261).contains(&from.year()) {
                return Err(TimelineError::OutOfRange {
                    era: era.as_str(),
                    from: *from,
                });
            }
        }
        for w in entries.windows(2) {
            // Conversation eras hand over to per-message ones, never back:
            // the pair state one era leaves is what the next one reads.
            if w[1].1 <= w[0].1 {
                return Err(TimelineError::OutOfOrder {
                    earlier: w[0].1.as_str(),
                    later: w[1].1.as_str(),
                    order: EraKind::names(),
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
        let d = |y, m| Date::constant(y, m, 1);
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
        self.entries
            .first()
            .expect("Timeline::new refuses an empty timeline")
            .0
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
    Date::constant(2023, 3, 1)
}

/// Rules B7: from this local date service conversations are free.
pub fn free_service_from() -> Date {
    Date::constant(2024, 11, 1)
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
        self.starts
            .first()
            .expect("Timeline::new refuses an empty timeline")
            .0
    }

    /// The era in force at `at`; None before the first era.
    pub fn era_at(&self, at: Instant) -> Option<EraKind> {
        let i = self.starts.partition_point(|(start, _)| *start <= at);
        i.checked_sub(1).map(|i| self.starts[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_era_date_no_instant_can_hold_is_refused_not_moved() {
        let timeline = |year| {
            Timeline::new(vec![
                (Date::constant(2022, 2, 1), EraKind::Cbp2022),
                (Date::constant(year, 1, 1), EraKind::Cbp2023),
            ])
        };
        assert!(timeline(2261).is_ok());
        assert_eq!(
            timeline(2300),
            Err(TimelineError::OutOfRange {
                era: "cbp-2023",
                from: Date::constant(2300, 1, 1)
            })
        );
    }
}
