//! Reading cards: every layout, every problem with its line.

use super::*;
use crate::test_support::pmp_meta;

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
    let (Some(brazil), Some(india)) = (book.market_id("Brazil"), book.market_id("India")) else {
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
        ["x.csv, line 3: market \"Brazil\", category marketing is priced twice (first on line 2)"]
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
