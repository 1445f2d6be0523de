//! `import_card` and the long layout it writes.

use super::*;
use crate::test_support::pmp_meta;

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
        currencies: &["USD".to_owned()],
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
    assert!(
        problems.contains(
            &"acme.csv: no rate for market \"Other\", category service (market map of 2026-10-01)"
                .to_owned()
        )
    );
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
    assert!(!required_categories(Family::Pmp, date, until, &timeline).contains(&Category::Service));
    // A card with no next card prices pmp-2026 traffic too.
    assert!(required_categories(Family::Pmp, date, None, &timeline).contains(&Category::Service));
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
    assert!(problem_texts(&invalid).contains(
        &"card.csv: currency \"usd\" is not an ISO 4217 code (three capital letters)".to_owned()
    ));
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
            "the card is in EUR but no WABA is billed in it (the configuration bills in USD): this configuration would refuse it".to_owned(),
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
