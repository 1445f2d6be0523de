//! Rules D3: exact decimal arithmetic. rust_decimal rounds a result it
//! cannot hold (more than 28 decimal places) instead of failing; these
//! functions fail instead, so no amount is ever silently rounded.

use rust_decimal::Decimal;

/// `a × b` exactly, or None.
pub fn exact_mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    let product = a.checked_mul(b)?;
    // A zero product comes back at scale 0, and is exact.
    (product.is_zero() || product.scale() == a.scale() + b.scale()).then_some(product)
}

/// `a + b` exactly, or None.
pub fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let sum = a.checked_add(b)?;
    // Adding zero returns the other operand as it is, and is exact.
    (a.is_zero() || b.is_zero() || sum.scale() == a.scale().max(b.scale())).then_some(sum)
}

/// `value` with at least `scale` decimal places (exact: only adds zeros).
pub(crate) fn at_scale(mut value: Decimal, scale: u32) -> Decimal {
    if value.scale() < scale {
        value.rescale(scale);
    }
    value
}
