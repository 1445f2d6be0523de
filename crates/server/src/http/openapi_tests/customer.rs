//! A customer invoice sample for the document's checks.

/// A customer invoice with one item in each list.
pub(super) fn sample() -> wabill_engine::customers::CustomerInvoice {
    use wabill_engine::customers::*;
    let day = jiff::civil::date(2026, 3, 1);
    let month = wabill_engine::time::Month::of(day);
    let d = rust_decimal::Decimal::ONE;
    CustomerInvoice {
        customer: "C1".into(),
        name: Some("Acme".into()),
        month,
        currency: "USD".into(),
        subscription: vec![SubscriptionCharge {
            plan: "p".into(),
            version_from: day,
            period: Period::Year,
            period_from: day,
            period_to: day,
            from: day,
            to: day,
            days: 31,
            whole_days: 31,
            instalment: true,
            price: d,
            amount: d,
        }],
        wabas: vec![PassThrough {
            waba: "W1".into(),
            month,
            timezone: "UTC".into(),
            currency: "INR".into(),
            provider: Some(wabill_engine::carriers::Provider::Dialog360),
            part: Some((Some(day), None)),
            conversations: Default::default(),
            messages: Default::default(),
            meta_amount: d,
            conversions: vec![Conversion {
                from: "INR".into(),
                to: "USD".into(),
                rate: d,
                effective_from: day,
                amount: d,
                converted: d,
            }],
            amount: d,
            included_units: 1,
            extra_units: 1,
        }],
        pass_through: d,
        included: vec![IncludedPool {
            plan: "p".into(),
            version_from: day,
            from: day,
            to: day,
            allowance: 1,
            used_before: 0,
            used: 1,
            left: 0,
        }],
        extra: vec![ExtraLine {
            plan: "p".into(),
            version_from: day,
            category: wabill_engine::tariff::Category::Marketing,
            unit_price: d,
            quantity: 1,
            amount: d,
        }],
        markup: vec![MarkupLine {
            plan: "p".into(),
            version_from: day,
            rate: d,
            base: d,
            amount: d,
        }],
        platform_total: d,
        total: d,
        amount_due: d,
    }
}

/// The `customer` of a quote.
pub(super) fn quote() -> super::super::quote::CustomerAnswer {
    super::super::quote::CustomerAnswer {
        currency: "USD".into(),
        id: "C1".into(),
        included: false,
        markup: "0".into(),
        meta_price: "0.0625".into(),
        platform_price: "0.0100".into(),
        price: "0.0725".into(),
    }
}
