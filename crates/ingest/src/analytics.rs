//! Exports of Meta's analytics (the Graph API's JSON for
//! `pricing_analytics` and `conversation_analytics`), read into the plain
//! counts that reconciliation compares (cli.md `wabill reconcile
//! --analytics`).

use serde::Deserialize;
use serde_json::Value;
use wabill_engine::market::Region;
use wabill_engine::reconcile::MetaCount;
use wabill_engine::tariff::Category;
use wabill_engine::time::Instant;
use wabill_engine::verdict::rate_category;

/// What is wrong with an analytics export, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error(
        "no data points: expected the Graph API's answer with `pricing_analytics` or `conversation_analytics` (or its `data` array)"
    )]
    NoData,
    #[error("no WABA id: the answer's `id`, or --waba")]
    NoWaba,
    #[error("{path}: {reason}")]
    Point { path: String, reason: String },
}

#[derive(Deserialize)]
struct Point {
    start: Option<Value>,
    end: Option<Value>,
    country: Option<String>,
    pricing_category: Option<String>,
    conversation_category: Option<String>,
    pricing_type: Option<String>,
    conversation_type: Option<String>,
    conversation_direction: Option<String>,
    volume: Option<Value>,
    conversation: Option<Value>,
}

/// Reads one export. `waba` names the WABA when the export does not (its
/// top-level `id`).
pub fn parse_analytics(text: &str, waba: Option<&str>) -> Result<Vec<MetaCount>, AnalyticsError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| AnalyticsError::Json(e.to_string()))?;
    let waba = doc
        .get("id")
        .and_then(Value::as_str)
        .or(waba)
        .ok_or(AnalyticsError::NoWaba)?
        .to_owned();
    let (name, data) = ["pricing_analytics", "conversation_analytics"]
        .into_iter()
        .find_map(|k| Some((k, doc.get(k)?.get("data")?)))
        .or_else(|| Some(("analytics", doc.get("data")?)))
        .ok_or(AnalyticsError::NoData)?;
    let conversations = name == "conversation_analytics";
    let mut out = Vec::new();
    for (i, group) in data.as_array().into_iter().flatten().enumerate() {
        let points = group.get("data_points").and_then(Value::as_array);
        for (j, raw) in points.into_iter().flatten().enumerate() {
            let path = format!("{name}.data[{i}].data_points[{j}]");
            out.push(count(raw, &waba, conversations, &path)?);
        }
    }
    if out.is_empty() && data.as_array().is_none_or(Vec::is_empty) {
        return Err(AnalyticsError::NoData);
    }
    Ok(out)
}

fn count(
    raw: &Value,
    waba: &str,
    conversations: bool,
    path: &str,
) -> Result<MetaCount, AnalyticsError> {
    let bad = |reason: String| AnalyticsError::Point {
        path: path.to_owned(),
        reason,
    };
    let p = Point::deserialize(raw).map_err(|e| bad(e.to_string()))?;
    let seconds = |v: &Option<Value>, key: &str| -> Result<Instant, AnalyticsError> {
        let s = match v {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        s.and_then(|s| jiff::Timestamp::from_second(s).ok())
            .and_then(Instant::from_timestamp)
            .ok_or_else(|| bad(format!("`{key}` is not a Unix time")))
    };
    let volume = match p.volume.as_ref().or(p.conversation.as_ref()) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| bad("`volume` (or `conversation`) is not a count".to_owned()))?;
    let region = match &p.country {
        None => None,
        Some(c) => Some(
            Region::parse(c)
                .ok_or_else(|| bad(format!("country {c:?} is not ISO 3166 alpha-2")))?,
        ),
    };
    let kind = p
        .pricing_type
        .or(p.conversation_type)
        .map(|k| k.to_ascii_uppercase());
    let free_entry =
        conversations && matches!(kind.as_deref(), Some("FREE_ENTRY" | "FREE_ENTRY_POINT"));
    let category = if free_entry {
        Some(Category::FreeEntryPoint.as_str().to_owned())
    } else {
        p.pricing_category
            .or(p.conversation_category)
            .map(|c| category_name(&c))
            .or_else(|| p.conversation_direction.and_then(|d| direction(&d)))
    };
    Ok(MetaCount {
        waba: waba.to_owned(),
        start: seconds(&p.start, "start")?,
        end: seconds(&p.end, "end")?,
        region,
        category,
        volume,
    })
}

/// Meta's category as wabill names it; a value wabill does not know is
/// kept, lower-cased.
fn category_name(meta: &str) -> String {
    rate_category(meta).map_or_else(|| meta.to_ascii_lowercase(), |c| c.as_str().to_owned())
}

/// Two-category exports: the direction is the category.
fn direction(meta: &str) -> Option<String> {
    rate_category(meta)
        .filter(|c| matches!(c, Category::BusinessInitiated | Category::UserInitiated))
        .map(|c| c.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, waba: Option<&str>) -> Vec<(i64, Option<String>, Option<String>, u64)> {
        match parse_analytics(text, waba) {
            Ok(counts) => counts
                .into_iter()
                .map(|c| {
                    let region = c.region.map(|r| r.as_str().to_owned());
                    (
                        c.start.timestamp().as_second(),
                        region,
                        c.category,
                        c.volume,
                    )
                })
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn conversation_analytics_of_both_models_read_as_counts() {
        // Two categories (2022): the direction is the category; a free entry
        // conversation is `free_entry_point`; the count is `conversation`.
        let v1 = r#"{"conversation_analytics":{"data":[{"data_points":[
            {"start":1643702400,"end":1646121600,"conversation":8500,"conversation_type":"REGULAR","conversation_direction":"BUSINESS_INITIATED","country":"BR"},
            {"start":1643702400,"end":1646121600,"conversation":"250","conversation_type":"FREE_ENTRY_POINT","country":"BR"}]}]},"id":"W1"}"#;
        assert_eq!(
            read(v1, None),
            [
                (
                    1643702400,
                    Some("BR".into()),
                    Some("business_initiated".into()),
                    8500
                ),
                (
                    1643702400,
                    Some("BR".into()),
                    Some("free_entry_point".into()),
                    250
                ),
            ]
        );
        // Four categories, the bare `data` form with --waba, a category
        // wabill does not know kept lower-cased.
        let v2 = r#"{"data":[{"data_points":[
            {"start":"1688169600","end":1688256000,"conversation":3,"conversation_category":"AUTHENTICATION","country":"US"},
            {"start":1688169600,"end":1688256000,"conversation":1,"conversation_category":"MARKETING_PREMIUM"}]}]}"#;
        assert_eq!(
            read(v2, Some("W1")),
            [
                (
                    1688169600,
                    Some("US".into()),
                    Some("authentication".into()),
                    3
                ),
                (1688169600, None, Some("marketing_premium".into()), 1),
            ]
        );
    }

    #[test]
    fn pricing_analytics_keep_the_category_of_a_free_entry_point_message() {
        let text = r#"{"id":"W1","pricing_analytics":{"data":[{"data_points":[
            {"start":1754265600,"end":1754352000,"volume":2,"pricing_type":"FREE_ENTRY_POINT","pricing_category":"MARKETING","country":"IN"},
            {"start":1754265600,"end":1754352000,"volume":1,"pricing_category":"AUTHENTICATION_INTERNATIONAL","country":"IN"}]}]}}"#;
        assert_eq!(
            read(text, None),
            [
                (1754265600, Some("IN".into()), Some("marketing".into()), 2),
                (
                    1754265600,
                    Some("IN".into()),
                    Some("authentication_international".into()),
                    1
                ),
            ]
        );
    }

    #[test]
    fn an_export_without_a_waba_data_or_readable_points_is_refused_naming_the_point() {
        assert_eq!(
            parse_analytics(r#"{"data":[]}"#, None),
            Err(AnalyticsError::NoWaba)
        );
        assert_eq!(
            parse_analytics(r#"{"id":"W1"}"#, None),
            Err(AnalyticsError::NoData)
        );
        assert!(matches!(
            parse_analytics("[1", None),
            Err(AnalyticsError::Json(_))
        ));
        let bad = r#"{"id":"W1","pricing_analytics":{"data":[{"data_points":[{"start":1,"end":2,"volume":1,"country":"Brazil"}]}]}}"#;
        match parse_analytics(bad, None) {
            Err(AnalyticsError::Point { path, reason }) => {
                assert_eq!(path, "pricing_analytics.data[0].data_points[0]");
                assert!(reason.contains("Brazil"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
