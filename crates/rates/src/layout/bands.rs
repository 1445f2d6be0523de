//! Rules C4: volume-tier ladders.

use super::*;

/// Volume-tier bands as read, each with its line.
pub(crate) type BandsRead = BTreeMap<(MarketId, Category), Vec<(Band, u64)>>;

/// Rules C4: tiers only for utility and authentication; per market and
/// category the bands, by `from`, start at 0 or 1, follow each other without
/// gap or overlap, and only the last, which is open, has no upper bound.
/// The bands go into `card` whatever their problems.
pub(crate) fn check_bands(
    source: &str,
    book: &RateBook,
    bands: BandsRead,
    card: &mut RateCard,
    problems: &mut Vec<RatesError>,
) {
    let mut keyed: Vec<_> = bands.into_iter().collect();
    keyed.sort_by(|a, b| (book.market_name(a.0.0), a.0.1).cmp(&(book.market_name(b.0.0), b.0.1)));
    for ((market, category), mut list) in keyed {
        list.sort_by_key(|(b, _)| (b.from, b.to.is_none(), b.to));
        let ladder = Ladder {
            source,
            market: book.market_name(market),
            category,
        };
        ladder.check(&list, problems);
        card.tiers.insert(
            (market, category),
            list.into_iter().map(|(b, _)| b).collect(),
        );
    }
}

/// One market and category's bands, for the problems that name them.
struct Ladder<'a> {
    source: &'a str,
    market: &'a str,
    category: Category,
}

impl Ladder<'_> {
    /// `list` is sorted by `from`, each band with its line.
    fn check(&self, list: &[(Band, u64)], problems: &mut Vec<RatesError>) {
        let Some((first, line)) = list.first() else {
            return;
        };
        let (market, category) = (self.market.to_owned(), self.category);
        if !tierable(category) {
            problems.push(self.problem(*line, Problem::TiersNotAllowed { market, category }));
            return;
        }
        if first.from > 1 {
            problems.push(self.problem(
                *line,
                Problem::BandStart {
                    market,
                    category,
                    band: first.into(),
                },
            ));
        }
        for pair in list.windows(2) {
            if let [before, after] = pair {
                problems.extend(self.check_neighbours(before, after));
            }
        }
        if let Some((last, line)) = list.last()
            && last.to.is_some()
        {
            problems.push(self.problem(
                *line,
                Problem::LastBandClosed {
                    market: self.market.to_owned(),
                    category,
                    band: last.into(),
                },
            ));
        }
    }

    /// Two bands in a row: the first must be closed, the second start just
    /// after it.
    fn check_neighbours(
        &self,
        (before, before_line): &(Band, u64),
        (after, after_line): &(Band, u64),
    ) -> Option<RatesError> {
        let (market, category) = (self.market.to_owned(), self.category);
        let (before_b, after_b) = (before.into(), after.into());
        match before.to {
            None => Some(self.problem(
                *before_line,
                Problem::OpenBandNotLast {
                    market,
                    category,
                    band: before_b,
                },
            )),
            Some(to) if after.from <= to => Some(self.problem(
                *after_line,
                Problem::BandOverlap {
                    market,
                    category,
                    before: before_b,
                    after: after_b,
                },
            )),
            Some(to) if after.from > to.saturating_add(1) => Some(self.problem(
                *after_line,
                Problem::BandGap {
                    market,
                    category,
                    before: before_b,
                    after: after_b,
                    expected: to.saturating_add(1),
                },
            )),
            Some(_) => None,
        }
    }

    fn problem(&self, line: u64, problem: Problem) -> RatesError {
        row_error(self.source, line, problem)
    }
}
