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
    let c = meta.to_ascii_lowercase();
    let known = match c.as_str() {
        "marketing" | "marketing_lite" | "group_marketing" => Category::Marketing,
        "utility" | "group_utility" => Category::Utility,
        "authentication" => Category::Authentication,
        "authentication_international" | "authentication-international" => {
            Category::AuthenticationInternational
        }
        "service" | "group_service" => Category::Service,
        "referral_conversion" => Category::FreeEntryPoint,
        _ => return c,
    };
    known.as_str().to_owned()
}

/// Two-category exports: the direction is the category.
fn direction(meta: &str) -> Option<String> {
    match meta.to_ascii_uppercase().as_str() {
        "BUSINESS_INITIATED" => Some(Category::BusinessInitiated.as_str().to_owned()),
        "USER_INITIATED" => Some(Category::UserInitiated.as_str().to_owned()),
        _ => None,
    }
}
