//! What businesses send: message templates and their categories, failure
//! reasons Meta reports, and the ads that open entry-point conversations.

/// Message templates: (name, category). Category index 0 marketing, 1 utility,
/// 2 authentication.
pub(crate) static TEMPLATES_MSG: &[(&str, u8)] = &[
    ("summer_sale", 0),
    ("new_collection_launch", 0),
    ("abandoned_cart_reminder", 0),
    ("weekend_promo_20off", 0),
    ("loyalty_points_offer", 0),
    ("order_update", 1),
    ("shipping_confirmation", 1),
    ("appointment_reminder", 1),
    ("payment_receipt", 1),
    ("delivery_eta", 1),
    ("otp_login", 2),
    ("verification_code", 2),
];
pub(crate) static CATEGORIES: &[&str] = &["marketing", "utility", "authentication"];
pub(crate) static CATEGORIES_UP: &[&str] = &["MARKETING", "UTILITY", "AUTHENTICATION"];

/// Failure reasons: (code, title).
pub(crate) static ERRORS: &[(u32, &str)] = &[
    (131_026, "Message undeliverable."),
    (131_047, "Re-engagement message"),
    (131_000, "Something went wrong"),
    (130_429, "Rate limit hit"),
    (131_051, "Unsupported message type"),
];
pub(crate) const ERR_REENGAGEMENT: u8 = 1;

/// Ads a WABA runs (Click to WhatsApp): per WABA this many creatives.
pub(crate) const ADS_PER_WABA: u32 = 4;
