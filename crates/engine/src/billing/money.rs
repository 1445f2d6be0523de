//! Rules D3: exact decimal arithmetic. rust_decimal rounds a result it
//! cannot hold (more than 28 decimal places) instead of failing; these
//! functions fail instead, so no amount is ever silently rounded.

use rust_decimal::Decimal;

/// `a × b` exactly, or None.
pub fn exact_mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    let product = a.checked_mul(b)?;
    // A zero factor gives a zero product at scale 0, exact; a zero product
    // of two others is an underflow (rounded away), not exact.
    (a.is_zero() || b.is_zero() || product.scale() == a.scale() + b.scale()).then_some(product)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_too_small_to_hold_is_not_exact() {
        let tiny = Decimal::new(1, 28);
        assert_eq!(exact_mul(tiny, Decimal::new(1548, 4)), None);
        assert_eq!(exact_mul(Decimal::ZERO, tiny), Some(Decimal::ZERO));
        assert_eq!(
            exact_mul(Decimal::new(5, 2), Decimal::new(3, 1)),
            Some(Decimal::new(15, 3))
        );
    }
}
