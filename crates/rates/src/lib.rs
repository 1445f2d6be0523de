//! Rate cards and market maps (rules D1, D2): the CSV layouts, and Meta's
//! published cards and maps, embedded in the binary (see `data/README.md`).
//!
//! A card is read in any of three layouts, told apart by its header: the
//! project's long layout (`market,category,price,tier_from,tier_to`), its wide
//! layout (`market,<category>,…`), and Meta's published layout (a row per
//! market, a column per category, optional tier and `Currency` columns,
//! human-written header names). [`import_card`] validates a card against the
//! rate book and timeline it would join (`wabill rates import`).
//!
//! Pure: everything here reads text handed to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use rust_decimal::Decimal;
use wabill_engine::era::{EraKind, Timeline};
use wabill_engine::market::{MarketId, MarketMap, Region};
use wabill_engine::rates::{Band, Category, Family, RateBook, RateCard};

mod error;
mod import;
mod layout;
mod shipped;

pub use error::*;
pub use import::*;
pub use layout::*;
pub use shipped::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_file_names_carry_family_currency_and_date() {
        assert_eq!(
            card_meta_from_name("data/meta-cbp-2022_USD_2022-02-01.csv"),
            Some(CardMeta {
                family: Family::Cbp2022,
                currency: "USD".into(),
                effective_from: Date::constant(2022, 2, 1),
            })
        );
        assert_eq!(
            card_meta_from_name("my-pmp_EUR_2026-10-01.csv").map(|m| m.family),
            Some(Family::Pmp)
        );
        assert_eq!(card_meta_from_name("my-card.csv"), None);
        assert_eq!(
            map_date_from_name("meta-markets-2025-10-01.csv"),
            Some(Date::constant(2025, 10, 1))
        );
        assert_eq!(map_date_from_name("my-map.csv"), None);
    }

    #[test]
    fn card_files_may_say_what_they_are_in_comment_lines() {
        let text = "# family: cbp-2022\n# currency: EUR\n# effective_from: 2023-01-01\nmarket,business_initiated\n";
        assert_eq!(
            card_meta_from_header(text, "x.csv"),
            Ok(CardHeader {
                family: Some(Family::Cbp2022),
                currency: Some("EUR".to_owned()),
                effective_from: Some(Date::constant(2023, 1, 1)),
            })
        );
        assert!(card_meta_from_header("# family: nbp\n", "x.csv").is_err());
        assert_eq!(
            card_meta_from_header("market,x\n", "x.csv"),
            Ok(CardHeader::default())
        );
    }

    #[test]
    fn every_shipped_card_and_map_parses() {
        let book = shipped().map_err(|e| e.to_string());
        let book = match book {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(book.cards().len(), SHIPPED_CARDS.len());
        assert_eq!(book.maps().len(), SHIPPED_MAPS.len());
        let brazil = book.market_id("Brazil");
        let card = book.card_at(Family::Cbp2022, "USD", Date::constant(2022, 3, 7));
        let rate = card
            .zip(brazil)
            .and_then(|(c, m)| c.rate(m, Category::BusinessInitiated));
        assert_eq!(rate.map(|r| r.to_string()), Some("0.0500".to_owned()));
    }

    #[test]
    fn d2_every_market_of_the_2022_map_is_priced_by_the_2022_card() {
        let Ok(book) = shipped() else {
            panic!("shipped data")
        };
        let map = book.map_at(Date::constant(2022, 2, 1));
        let card = book.card_at(Family::Cbp2022, "USD", Date::constant(2022, 2, 1));
        let (Some(map), Some(card)) = (map, card) else {
            panic!("2022 map and card")
        };
        for market in map.regions.values().chain([&book.other_market()]) {
            for category in [Category::BusinessInitiated, Category::UserInitiated] {
                assert!(
                    card.rate(*market, category).is_some(),
                    "{} {}",
                    book.market_name(*market),
                    category.as_str()
                );
            }
        }
    }

    #[test]
    fn bad_rates_are_rejected_with_file_and_line() {
        let mut book = RateBook::new();
        let meta = CardMeta {
            family: Family::Cbp2022,
            currency: "USD".into(),
            effective_from: Date::constant(2022, 2, 1),
        };
        let err = parse_card(
            "market,business_initiated,user_initiated\nBrazil,0.05,-0.01\n",
            &meta,
            "x.csv",
            &mut book,
        );
        assert_eq!(
            err.map(|_| ()).map_err(|e| e.to_string()),
            Err("x.csv, line 2: rate -0.01 is negative".to_owned())
        );
        let err = parse_card(
            "market,business_initiated\nBrazil,1e-2\n",
            &meta,
            "x.csv",
            &mut book,
        );
        assert!(err.is_err());
    }

    fn pmp_meta(date: Date) -> CardMeta {
        CardMeta {
            family: Family::Pmp,
            currency: "USD".into(),
            effective_from: date,
        }
    }

    fn problems_of(text: &str, meta: &CardMeta) -> Vec<String> {
        let scan = scan_card(text, "x.csv", &mut RateBook::new());
        let mut out: Vec<String> = scan.problems.iter().map(ToString::to_string).collect();
        if let Err(e) = parse_card(text, meta, "x.csv", &mut RateBook::new()) {
            assert_eq!(
                out.first(),
                Some(&e.to_string()),
                "parse_card reports the first"
            );
        } else {
            out.clear();
        }
        out
    }

    fn shipped_book() -> RateBook {
        match shipped() {
            Ok(book) => book,
            Err(e) => panic!("{e}"),
        }
    }

    /// A Meta-layout card pricing every market of the map in force on
    /// `date`, and Other, at `$0.0100` in each of `columns`.
    fn complete_meta_card(book: &RateBook, date: Date, columns: &[&str]) -> String {
        let mut markets: BTreeSet<&str> = BTreeSet::from(["Other"]);
        if let Some(map) = book.map_at(date) {
            markets.extend(map.regions.values().map(|m| book.market_name(*m)));
        }
        let mut text = format!("Market,{}\n", columns.join(","));
        for m in markets {
            let cells = vec!["$0.0100"; columns.len()];
            text.push_str(&format!("\"{m}\",{}\n", cells.join(",")));
        }
        text
    }

    fn import(
        text: &str,
        source: &str,
        flags: &CardFlags,
        timeline: &Timeline,
    ) -> Result<Imported, Invalid> {
        let mut book = shipped_book();
        let context = ImportContext {
            timeline,
            platform_currency: "USD",
        };
        import_card(text, source, flags, context, &mut book)
    }

    fn pmp_flags(date: Date) -> CardFlags {
        CardFlags {
            family: Some(Family::Pmp),
            currency: Some("USD".into()),
            effective_from: Some(date),
        }
    }

    fn problem_texts(invalid: &Invalid) -> Vec<String> {
        invalid.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn meta_layout_headers_rates_and_tier_columns() {
        let text = "\u{feff}Market , Currency,MARKETING,Utility,Authentication-International,\"Utility tier 0-100,000\",\"Utility  tier 100,001:1,000,000\",\"Utility tier 1,000,001+\",authentication tier 1:1000,Authentication tier 1001:MAX\n\
                    Brazil,USD,$0.0625,0.0080,,0.0080,$0.0075,0.0070,,\n\
                    India,usd,0.0107,0.0014,$0.0280,,,,0.0014,0.0012\n";
        let mut book = RateBook::new();
        let card = match parse_card(
            text,
            &pmp_meta(Date::constant(2026, 10, 1)),
            "m.csv",
            &mut book,
        ) {
            Ok(card) => card,
            Err(e) => panic!("{e}"),
        };
        let (Some(brazil), Some(india)) = (book.market_id("Brazil"), book.market_id("India"))
        else {
            panic!("markets")
        };
        let rate = |m, c| card.rate(m, c).map(|r| r.to_string());
        assert_eq!(rate(brazil, Category::Marketing).as_deref(), Some("0.0625"));
        assert_eq!(rate(brazil, Category::Utility).as_deref(), Some("0.0080"));
        assert_eq!(rate(brazil, Category::AuthenticationInternational), None);
        assert_eq!(
            rate(india, Category::AuthenticationInternational).as_deref(),
            Some("0.0280")
        );
        let bands = |m, c| -> Vec<String> {
            card.tiers
                .get(&(m, c))
                .into_iter()
                .flatten()
                .map(|b| format!("{} {}", Bounds::from(b), b.price))
                .collect()
        };
        assert_eq!(
            bands(brazil, Category::Utility),
            [
                "0-100000 0.0080",
                "100001-1000000 0.0075",
                "1000001+ 0.0070"
            ]
        );
        assert!(bands(india, Category::Utility).is_empty());
        assert_eq!(
            bands(india, Category::Authentication),
            ["1-1000 0.0014", "1001+ 0.0012"]
        );
        assert!(bands(brazil, Category::Authentication).is_empty());
    }

    #[test]
    fn meta_layout_names_conversation_categories_with_hyphens_and_spaces() {
        let text = "market,Business-Initiated,User Initiated\nBrazil,0.0500,$0.0300\n";
        let meta = CardMeta {
            family: Family::Cbp2022,
            currency: "USD".into(),
            effective_from: Date::constant(2022, 2, 1),
        };
        let mut book = RateBook::new();
        let card = parse_card(text, &meta, "c.csv", &mut book).map_err(|e| e.to_string());
        let brazil = book.market_id("Brazil");
        let rate = card
            .ok()
            .zip(brazil)
            .and_then(|(c, m)| c.rate(m, Category::UserInitiated));
        assert_eq!(rate.map(|r| r.to_string()).as_deref(), Some("0.0300"));
    }

    #[test]
    fn tier_column_names_and_bounds() {
        assert_eq!(
            normalize(" Authentication - International "),
            "authentication_international"
        );
        assert_eq!(
            tier_bounds("100,001_1,000,000"),
            Some((100_001, Some(1_000_000)))
        );
        assert_eq!(tier_bounds("1:max"), Some((1, None)));
        assert_eq!(tier_bounds("80,000,001+"), Some((80_000_001, None)));
        assert_eq!(tier_bounds("1,00_2"), None);
        assert_eq!(tier_bounds("1000,000+"), None);
        assert_eq!(tier_bounds("5000"), None);
        assert_eq!(
            column("Utility tier 1-100", false),
            Ok(Column::Tier {
                category: Category::Utility,
                from: 1,
                to: Some(100)
            })
        );
    }

    #[test]
    fn column_problems_name_the_column() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        assert_eq!(
            problems_of("Market,Marketing,Region\nBrazil,0.1,LATAM\n", &meta),
            [
                "x.csv, line 1: unknown column \"Region\" (expected market, currency, effective_from, effective_to, a category such as utility, or a tier column such as \"utility tier 1-1000\")"
            ]
        );
        assert_eq!(
            problems_of(
                "Market,Marketing tier 1+,Utility tier 1-,Utility tier 10-1,Utility,UTILITY,\nBrazil,0.1,0.1,0.1,0.1,0.1,\n",
                &meta
            ),
            [
                "x.csv, line 1: tier column \"Marketing tier 1+\": volume tiers are only for utility and authentication (rules C4), not marketing",
                "x.csv, line 1: tier column \"Utility tier 1-\": the bounds must read <from>-<to>, <from>:<to>, <from>:MAX or <from>+",
                "x.csv, line 1: tier column \"Utility tier 10-1\": the upper bound is below the lower",
                "x.csv, line 1: column \"UTILITY\" repeats column \"Utility\"",
                "x.csv, line 1: column 7 has no name",
            ]
        );
        assert_eq!(
            problems_of("Country,Marketing\nBrazil,0.1\n", &meta)
                .last()
                .map(String::as_str),
            Some("x.csv, line 1: no `market` column")
        );
        assert_eq!(
            problems_of("market\nBrazil\n", &meta),
            ["x.csv, line 1: no category columns"]
        );
    }

    #[test]
    fn every_row_problem_is_reported_with_its_line() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let text = "# a comment\nMarket,Currency,Marketing,Utility,Effective_From,Effective To\n\
                    Brazil,USD,-0.01,1e-2,2026-10-01,2026-09-30\n\
                    Brazil,EUR,0.1.2,$-1,01/10/2026,\n\
                    ,USD,0.1,0.1,,\n\
                    India,USD,0.1\n\
                    India,USD,99999999999999999999999999999999,0.1,,\n";
        assert_eq!(
            problems_of(text, &meta),
            [
                "x.csv, line 3: rate -0.01 is negative",
                "x.csv, line 3: rate \"1e-2\" is not a decimal number",
                "x.csv, line 3: effective_to 2026-09-30 is before effective_from 2026-10-01",
                "x.csv, line 4: currency EUR disagrees with USD (the Currency column on line 3)",
                "x.csv, line 4: rate \"0.1.2\" is not a decimal number",
                "x.csv, line 4: rate $-1 is negative",
                "x.csv, line 4: effective_from \"01/10/2026\" is not a date (YYYY-MM-DD)",
                "x.csv, line 5: empty market",
                "x.csv, line 6: the row has 3 fields, the header 6",
                "x.csv, line 7: rate \"99999999999999999999999999999999\" is out of range",
            ]
        );
    }

    #[test]
    fn long_layout_row_problems() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let text = "market,category,price,tier_from,tier_to\n\
                    Brazil,utility,0.1,,\n\
                    Brazil,Utility,0.2,,\n\
                    Brazil,promotion,0.1,,\n\
                    Brazil,utility,0.1,,100\n\
                    Brazil,utility,0.1,100,10\n\
                    Brazil,utility,0.1,1.5,\n";
        assert_eq!(
            problems_of(text, &meta),
            [
                "x.csv, line 3: market \"Brazil\", category utility is priced twice (first on line 2)",
                "x.csv, line 4: unknown category \"promotion\"",
                "x.csv, line 5: tier_to without tier_from",
                "x.csv, line 6: tier_to is below tier_from",
                "x.csv, line 7: tier bound \"1.5\" is not a whole number",
            ]
        );
        assert_eq!(
            problems_of("Market,Marketing\nBrazil,0.1\nBrazil,0.2\n", &meta),
            [
                "x.csv, line 3: market \"Brazil\", category marketing is priced twice (first on line 2)"
            ]
        );
    }

    #[test]
    fn c4_band_ladders_are_checked() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let head = "market,category,price,tier_from,tier_to\n";
        let check = |rows: &str| problems_of(&format!("{head}{rows}"), &meta);
        // Valid ladders start at 0 or 1, are contiguous and end open.
        assert!(check("A,utility,0.3,0,100\nA,utility,0.2,101,\n").is_empty());
        assert!(check("A,utility,0.2,101,\nA,utility,0.3,1,100\n").is_empty());
        assert!(check("A,authentication,0.1,1,\n").is_empty());
        assert_eq!(
            check("A,utility,0.3,2,100\nA,utility,0.2,101,\n"),
            ["x.csv, line 2: market \"A\", category utility: the first band 2-100 starts above 1"]
        );
        assert_eq!(
            check("A,utility,0.3,1,100\nA,utility,0.2,102,\n"),
            [
                "x.csv, line 3: market \"A\", category utility: gap between bands 1-100 and 102+ (the next band must start at 101)"
            ]
        );
        assert_eq!(
            check("A,utility,0.3,1,100\nA,utility,0.2,100,\n"),
            ["x.csv, line 3: market \"A\", category utility: bands 1-100 and 100+ overlap"]
        );
        assert_eq!(
            check("A,utility,0.3,1,\nA,utility,0.2,101,\n"),
            ["x.csv, line 2: market \"A\", category utility: band 1+ is open but not the last"]
        );
        assert_eq!(
            check("A,utility,0.3,1,100\nA,utility,0.2,101,200\n"),
            [
                "x.csv, line 3: market \"A\", category utility: the last band 101-200 is closed (messages beyond it would have no price; leave its upper bound empty)"
            ]
        );
        assert_eq!(
            check("A,marketing,0.3,1,100\nA,marketing,0.2,101,\n"),
            [
                "x.csv, line 2: market \"A\", category marketing: volume tiers are only for utility and authentication (rules C4)"
            ]
        );
        // Meta's layout: a market's empty cell leaves a gap in its ladder.
        assert_eq!(
            problems_of(
                "Market,Utility tier 1-10,Utility tier 11-20,Utility tier 21+\nA,0.3,,0.1\nB,0.3,0.2,0.1\n",
                &meta
            ),
            [
                "x.csv, line 2: market \"A\", category utility: gap between bands 1-10 and 21+ (the next band must start at 11)"
            ]
        );
    }

    #[test]
    fn parse_card_refuses_a_currency_column_that_disagrees_with_the_card() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let err = parse_card(
            "Market,Currency,Marketing\nBrazil,EUR,0.1\n",
            &meta,
            "x.csv",
            &mut RateBook::new(),
        );
        assert_eq!(
            err.map(|_| ()).map_err(|e| e.to_string()),
            Err("x.csv, line 2: currency EUR disagrees with USD (the card's currency)".to_owned())
        );
        assert_eq!(
            card_currency_from_columns("Market,Currency,Marketing\nBrazil,eur,0.1\n", "x.csv"),
            Some("EUR".to_owned())
        );
        assert_eq!(
            card_currency_from_columns("market,marketing\nBrazil,0.1\n", "x.csv"),
            None
        );
    }

    #[test]
    fn a_card_whose_rows_cannot_be_read_reports_that_alone() {
        let timeline = Timeline::meta_default();
        let date = Date::constant(2026, 10, 1);
        for (text, problem) in [
            ("", "x.csv, line 1: no `market` column"),
            (
                "Country,Marketing\nBrazil,0.1\n",
                "x.csv, line 1: no `market` column",
            ),
            ("market\nBrazil\n", "x.csv, line 1: no category columns"),
        ] {
            let Err(invalid) = import(text, "x.csv", &pmp_flags(date), &timeline) else {
                panic!("{text:?} is no card")
            };
            assert_eq!(
                problem_texts(&invalid).last().map(String::as_str),
                Some(problem)
            );
            assert!(
                !problem_texts(&invalid)
                    .iter()
                    .any(|p| p.contains("no rate for")),
                "{text:?}"
            );
        }
    }

    #[test]
    fn layouts_are_told_apart_by_the_header() {
        let layout = |text: &str| scan_card(text, "x.csv", &mut RateBook::new()).layout;
        assert_eq!(
            layout("market,category,price,tier_from,tier_to\n"),
            Layout::Long
        );
        assert_eq!(layout("market,category,price\n"), Layout::Long);
        assert_eq!(layout("market,marketing,utility\n"), Layout::Wide);
        assert_eq!(layout("Market,Marketing\n"), Layout::Meta);
        assert_eq!(layout("market,currency,marketing\n"), Layout::Meta);
    }

    #[test]
    fn a_complete_meta_card_imports_with_its_report() {
        let book = shipped_book();
        let date = Date::constant(2026, 10, 1);
        let text = complete_meta_card(
            &book,
            date,
            &["Marketing", "Utility", "Authentication", "Service"],
        );
        let text = text.replace(
            "Market,Marketing,Utility,Authentication,Service\n",
            "Market,Marketing,Utility,Authentication,Service,Utility tier 1-1000,Utility tier 1001+\n",
        );
        // Every row needs the two tier cells; only Brazil fills them.
        let text: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| match i {
                0 => format!("{l}\n"),
                _ if l.starts_with("\"Brazil\"") => format!("{l},0.0090,0.0080\n"),
                _ => format!("{l},,\n"),
            })
            .collect();
        let timeline = Timeline::meta_default();
        let imported = match import(
            &text,
            "acme-pmp_USD_2026-10-01.csv",
            &CardFlags::default(),
            &timeline,
        ) {
            Ok(i) => i,
            Err(e) => panic!("{:?}", problem_texts(&e)),
        };
        assert_eq!(imported.layout, Layout::Meta);
        assert_eq!(imported.family_from, Origin::FileName);
        assert_eq!(imported.card.family, Family::Pmp);
        assert_eq!(imported.markets_priced, 47);
        assert_eq!(imported.map.as_ref().map(|m| m.markets), Some(47));
        assert_eq!(
            imported.required,
            [
                Category::Authentication,
                Category::Marketing,
                Category::Service,
                Category::Utility
            ]
        );
        assert_eq!(imported.tiered.len(), 1);
        assert_eq!(imported.tiered[0].market, "Brazil");
        assert_eq!(
            imported.replaces.as_deref(),
            Some("meta-pmp_USD_2026-10-01.csv")
        );
        assert_eq!(imported.next, None);
        assert_eq!(
            imported.warnings,
            [Warning::Replaces("meta-pmp_USD_2026-10-01.csv".to_owned())]
        );
    }

    #[test]
    fn d2_a_missing_market_or_category_is_named() {
        let book = shipped_book();
        let date = Date::constant(2026, 10, 1);
        let text = complete_meta_card(&book, date, &["Marketing", "Utility", "Authentication"])
            .lines()
            .filter(|l| !l.starts_with("\"Kenya\"") && !l.starts_with("\"Nigeria\""))
            .collect::<Vec<_>>()
            .join("\n");
        let timeline = Timeline::meta_default();
        let Err(invalid) = import(&text, "acme.csv", &pmp_flags(date), &timeline) else {
            panic!("a card without service rates on 2026-10-01 is invalid")
        };
        let problems = problem_texts(&invalid);
        // Service is priced from pmp-2026 on: every market misses it, one
        // problem per market.
        assert_eq!(problems.len(), 47, "{problems:#?}");
        assert!(problems.contains(
            &"acme.csv: no rate for market \"Nigeria\", categories authentication, marketing, service, utility (market map of 2026-10-01)"
                .to_owned()
        ));
        assert!(problems.contains(
            &"acme.csv: no rate for market \"Other\", category service (market map of 2026-10-01)"
                .to_owned()
        ));
        assert!(
            !problems.iter().any(|p| p.contains("Kenya")),
            "Kenya is no market"
        );
        // Under pmp-2025 service is free: no rate needed, only Nigeria is missing.
        let date = Date::constant(2026, 4, 1);
        let text = complete_meta_card(&book, date, &["Marketing", "Utility", "Authentication"])
            .lines()
            .filter(|l| !l.starts_with("\"Nigeria\""))
            .collect::<Vec<_>>()
            .join("\n");
        let Err(invalid) = import(&text, "acme.csv", &pmp_flags(date), &timeline) else {
            panic!("Nigeria is missing")
        };
        assert_eq!(
            problem_texts(&invalid),
            [
                "acme.csv: no rate for market \"Nigeria\", categories authentication, marketing, utility (market map of 2025-10-01)",
            ]
        );
        // A timeline whose pmp-2026 starts earlier needs service earlier.
        let early = Timeline::new(vec![
            (Date::constant(2022, 2, 1), EraKind::Cbp2022),
            (Date::constant(2025, 7, 1), EraKind::Pmp2025),
            (Date::constant(2026, 1, 1), EraKind::Pmp2026),
        ]);
        let Ok(early) = early else { panic!("timeline") };
        let until = Some(Date::constant(2026, 7, 1));
        assert!(required_categories(Family::Pmp, date, until, &early).contains(&Category::Service));
        assert!(
            !required_categories(Family::Pmp, date, until, &timeline).contains(&Category::Service)
        );
        // A card with no next card prices pmp-2026 traffic too.
        assert!(
            required_categories(Family::Pmp, date, None, &timeline).contains(&Category::Service)
        );
    }

    #[test]
    fn a_market_with_bands_only_counts_as_priced() {
        let book = shipped_book();
        let date = Date::constant(2025, 7, 1);
        let header = "Market,Marketing,Utility,Authentication";
        let complete = complete_meta_card(&book, date, &["Marketing", "Utility", "Authentication"]);
        // Brazil without a utility list rate, with or without a ladder.
        let card = |ladder: &str| -> String {
            complete
                .lines()
                .map(|l| match l {
                    l if l == header => format!("{l},Utility tier 1+\n"),
                    "\"Brazil\",$0.0100,$0.0100,$0.0100" => {
                        format!("\"Brazil\",$0.0100,,$0.0100,{ladder}\n")
                    }
                    l => format!("{l},\n"),
                })
                .collect()
        };
        let timeline = Timeline::meta_default();
        let Err(invalid) = import(&card(""), "a.csv", &pmp_flags(date), &timeline) else {
            panic!("Brazil utility is missing")
        };
        assert_eq!(
            problem_texts(&invalid),
            ["a.csv: no rate for market \"Brazil\", category utility (market map of 2022-02-01)"]
        );
        let imported = import(&card("0.0100"), "a.csv", &pmp_flags(date), &timeline);
        assert!(
            imported.is_ok(),
            "{:?}",
            imported.err().map(|e| problem_texts(&e))
        );
    }

    #[test]
    fn identity_comes_from_options_header_name_then_currency_column() {
        let timeline = Timeline::meta_default();
        let Err(invalid) = import(
            "Market,Marketing\nBrazil,0.1\n",
            "card.csv",
            &CardFlags::default(),
            &timeline,
        ) else {
            panic!("no identity")
        };
        let problems = problem_texts(&invalid);
        assert_eq!(
            problems[..3],
            [
                "card.csv: the card's family is unknown: give --family, a `# family: …` header line, or a file name such as my-pmp_USD_2026-10-01.csv",
                "card.csv: the card's currency is unknown: give --currency, a `# currency: …` header line, a Currency column, or a file name such as my-pmp_USD_2026-10-01.csv",
                "card.csv: the card's effective date is unknown: give --effective-from, a `# effective_from: …` header line, or a file name such as my-pmp_USD_2026-10-01.csv",
            ]
        );
        // The Currency column says the currency; a header line the rest;
        // an option wins over the file, with a warning.
        let text = "# family: cbp-2022\n# effective_from: 2022-02-01\nMarket,Currency,Business Initiated,User Initiated\nBrazil,usd,0.1,0.1\n";
        let flags = CardFlags {
            effective_from: Some(Date::constant(2022, 3, 1)),
            ..CardFlags::default()
        };
        let result = import(text, "my-cbp-2023_EUR_2024-01-01.csv", &flags, &timeline);
        let Err(invalid) = result else {
            panic!("incomplete card")
        };
        assert_eq!(
            invalid.problems.first().map(ToString::to_string).as_deref(),
            Some(
                "my-cbp-2023_EUR_2024-01-01.csv, line 4: currency USD disagrees with EUR (from the file name)"
            )
        );
        assert!(invalid.warnings.contains(&Warning::Overridden {
            flag: "effective-from",
            given: "2022-03-01".into(),
            found: "2022-02-01".into(),
            said_by: Origin::HeaderLine,
        }));
        let Err(invalid) = import(text, "card.csv", &flags, &timeline) else {
            panic!("incomplete card")
        };
        // Family from the header line (cbp-2022: business/user initiated),
        // currency from the column: only the missing markets remain.
        assert!(
            invalid
                .problems
                .iter()
                .all(|p| matches!(p.reason(), Problem::MissingRate { .. }))
        );
        let flags = CardFlags {
            currency: Some("usd".into()),
            ..flags
        };
        let Err(invalid) = import(text, "card.csv", &flags, &timeline) else {
            panic!("bad currency")
        };
        assert!(
            problem_texts(&invalid).contains(
                &"card.csv: currency \"usd\" is not an ISO 4217 code (three capital letters)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn warnings_do_not_make_a_card_invalid() {
        let book = shipped_book();
        let date = Date::constant(2025, 7, 1);
        let mut text = complete_meta_card(
            &book,
            date,
            &[
                "Marketing",
                "Utility",
                "Authentication",
                "Service",
                "Business-Initiated",
            ],
        );
        // No other EUR card: this one applies into pmp-2026, so it prices
        // service too.
        text.push_str("\"india\",0.1,0.1,0.1,0.1,0.1\nAtlantis,0.1,0.1,0.1,0.1,0.1\n");
        let text = text.replacen("Market,", "Market,Effective From,", 1);
        let text: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| match i {
                0 => format!("{l}\n"),
                1 => l.replacen(',', ",2025-08-01,", 1) + "\n",
                _ => l.replacen(',', ",,", 1) + "\n",
            })
            .collect();
        let timeline = Timeline::meta_default();
        let flags = CardFlags {
            currency: Some("EUR".into()),
            ..pmp_flags(Date::constant(2025, 6, 15))
        };
        let imported = match import(&text, "x.csv", &flags, &timeline) {
            Ok(i) => i,
            Err(e) => panic!("{:?}", problem_texts(&e)),
        };
        let warnings: Vec<String> = imported.warnings.iter().map(ToString::to_string).collect();
        let lines = text.lines().count();
        assert_eq!(
            warnings,
            [
                format!("line {}: market \"india\" is not in the market map (did you mean \"India\"?); its rates will never be used", lines - 1),
                format!("line {lines}: market \"Atlantis\" is not in the market map; its rates will never be used"),
                "category business_initiated is never priced with pmp cards; its rates will never be used".to_owned(),
                "no era of the timeline prices with pmp cards on 2025-06-15 (era in force: cbp-2023)".to_owned(),
                "line 2: effective_from/effective_to do not include the card's date 2025-06-15; the card's date is what applies".to_owned(),
                "the card is in EUR but platform.currency is USD: this configuration would refuse it".to_owned(),
            ]
        );
        assert_eq!(
            imported.next.map(|n| (n.effective_from, n.source)),
            None,
            "no EUR card follows"
        );
    }

    #[test]
    fn the_next_card_of_the_family_is_reported() {
        let book = shipped_book();
        let date = Date::constant(2026, 2, 1);
        let text = complete_meta_card(&book, date, &["Marketing", "Utility", "Authentication"]);
        let timeline = Timeline::meta_default();
        let imported =
            import(&text, "x.csv", &pmp_flags(date), &timeline).map_err(|e| problem_texts(&e));
        let Ok(imported) = imported else {
            panic!("{imported:?}")
        };
        assert_eq!(imported.replaces, None);
        assert_eq!(
            imported.next,
            Some(NextCard {
                effective_from: Date::constant(2026, 4, 1),
                source: "meta-pmp_USD_2026-04-01.csv".to_owned()
            })
        );
    }

    #[test]
    fn every_shipped_card_imports_as_valid() {
        let timeline = Timeline::meta_default();
        for (name, text) in SHIPPED_CARDS {
            let result = import(text, name, &CardFlags::default(), &timeline);
            let Ok(imported) = result else {
                panic!("{name}: {:?}", result.err().map(|e| problem_texts(&e)))
            };
            assert_eq!(imported.replaces.as_deref(), Some(*name));
        }
    }

    #[test]
    fn the_long_layout_written_reads_back_the_same() {
        let text = "Market,Marketing,Utility,\"Utility tier 0-100,000\",Utility tier 100001+\nBrazil,$0.0625,0.00800,0.0080,0.0070\n\"Rest of Central & Eastern Europe, East\",0.10,0.2,,\n";
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let mut book = RateBook::new();
        let card = match parse_card(text, &meta, "m.csv", &mut book) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let long = match to_long_layout(&card, &book) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            long,
            "# family: pmp\n# currency: USD\n# effective_from: 2026-10-01\n\
             market,category,price,tier_from,tier_to\n\
             Brazil,marketing,0.0625,,\n\
             Brazil,utility,0.00800,,\n\
             Brazil,utility,0.0080,0,100000\n\
             Brazil,utility,0.0070,100001,\n\
             \"Rest of Central & Eastern Europe, East\",marketing,0.10,,\n\
             \"Rest of Central & Eastern Europe, East\",utility,0.2,,\n"
        );
        let header = card_meta_from_header(&long, "out.csv");
        assert_eq!(
            header,
            Ok(CardHeader {
                family: Some(Family::Pmp),
                currency: Some("USD".into()),
                effective_from: Some(Date::constant(2026, 10, 1)),
            })
        );
        let again = match parse_card(&long, &meta, "out.csv", &mut book) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(again.rates, card.rates);
        assert_eq!(again.tiers, card.tiers);
    }
}
