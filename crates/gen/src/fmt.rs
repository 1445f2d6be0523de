//! Allocation-free byte formatting helpers (numbers, dates, ids).

/// Appends the decimal digits of `v`.
#[inline]
pub(crate) fn push_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends `v` zero-padded to `width` digits (v must fit).
#[inline]
pub(crate) fn push_padded(b: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let w = width.min(tmp.len());
    let mut i = w;
    while i > 0 {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    b.extend_from_slice(&tmp[..w]);
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian date of a day number (days since 1970-01-01).
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends an RFC 3339 timestamp (no quotes) for Unix milliseconds `ms`, shown in
/// the fixed offset `offset_min` (0 writes `Z`), with `frac` sub-second digits
/// (0, 3, 6 or 9; digits beyond milliseconds are zeros).
pub(crate) fn push_rfc3339(b: &mut Vec<u8>, ms: u64, offset_min: i32, frac: u8, zulu: bool) {
    let secs = (ms / 1000) as i64 + i64::from(offset_min) * 60;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    push_padded(b, y.max(0) as u64, 4);
    b.push(b'-');
    push_padded(b, m as u64, 2);
    b.push(b'-');
    push_padded(b, d as u64, 2);
    b.push(b'T');
    push_padded(b, (sod / 3600) as u64, 2);
    b.push(b':');
    push_padded(b, (sod / 60 % 60) as u64, 2);
    b.push(b':');
    push_padded(b, (sod % 60) as u64, 2);
    if frac > 0 {
        b.push(b'.');
        push_padded(b, ms % 1000, 3);
        for _ in 3..frac {
            b.push(b'0');
        }
    }
    if offset_min == 0 && zulu {
        b.push(b'Z');
    } else {
        b.push(if offset_min < 0 { b'-' } else { b'+' });
        let a = offset_min.unsigned_abs();
        push_padded(b, u64::from(a / 60), 2);
        b.push(b':');
        push_padded(b, u64::from(a % 60), 2);
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends standard base64 (with padding) of `raw`.
pub(crate) fn push_base64(b: &mut Vec<u8>, raw: &[u8]) {
    let mut chunks = raw.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        b.extend_from_slice(&[
            B64[(n >> 18) as usize & 63],
            B64[(n >> 12) as usize & 63],
            B64[(n >> 6) as usize & 63],
            B64[n as usize & 63],
        ]);
    }
    match chunks.remainder() {
        [a] => {
            let n = u32::from(*a) << 16;
            b.extend_from_slice(&[B64[(n >> 18) as usize & 63], B64[(n >> 12) as usize & 63]]);
            b.extend_from_slice(b"==");
        }
        [a, c] => {
            let n = (u32::from(*a) << 16) | (u32::from(*c) << 8);
            b.extend_from_slice(&[
                B64[(n >> 18) as usize & 63],
                B64[(n >> 12) as usize & 63],
                B64[(n >> 6) as usize & 63],
            ]);
            b.push(b'=');
        }
        _ => {}
    }
}

const HEX_UP: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LO: &[u8; 16] = b"0123456789abcdef";

/// Writes the low `n` nibbles of `v` as hex into `out` (most significant first).
#[inline]
pub(crate) fn hex_into(out: &mut [u8], v: u64, upper: bool) {
    let tab = if upper { HEX_UP } else { HEX_LO };
    let n = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        let shift = 4 * (n - 1 - i);
        *o = if shift >= 64 {
            b'0'
        } else {
            tab[((v >> shift) & 15) as usize]
        };
    }
}

/// A bijective 64-bit mixer (splitmix64 finaliser).
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    x
}

/// Number of decimal digits of `v`.
#[inline]
pub(crate) fn digits(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Appends a realistic Cloud API message id: `wamid.` + base64 of
/// `1C 18 <len> <user digits> 15 02 00 <dir> 18 <hexlen> <hex id> 00`, the
/// structure of real ids (direction 0x12 inbound with a 20-char id, 0x11
/// outbound with an 18-char id). `msg` makes it unique (bijective mix).
pub(crate) fn push_wamid(b: &mut Vec<u8>, user: u64, msg: u64, inbound: bool, key: u64) {
    let mut raw = [0u8; 64];
    raw[0] = 0x1c;
    raw[1] = 0x18;
    let nd = digits(user);
    raw[2] = nd as u8;
    let mut u = user;
    for i in (0..nd).rev() {
        raw[3 + i] = b'0' + (u % 10) as u8;
        u /= 10;
    }
    let mut n = 3 + nd;
    let hexlen = if inbound { 20 } else { 18 };
    raw[n..n + 6].copy_from_slice(&[
        0x15,
        0x02,
        0x00,
        if inbound { 0x12 } else { 0x11 },
        0x18,
        hexlen as u8,
    ]);
    n += 6;
    let unique = mix(msg ^ key);
    let head = mix(unique ^ 0x5851_F42D_4C95_7F2D);
    let headlen = hexlen - 16;
    hex_into(&mut raw[n..n + headlen], head, true);
    n += headlen;
    hex_into(&mut raw[n..n + 16], unique, true);
    n += 16;
    raw[n] = 0;
    n += 1;
    b.extend_from_slice(b"wamid.");
    push_base64(b, &raw[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_roundtrip() {
        for z in [-1000i64, -1, 0, 1, 19_052, 19_417, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2022, 3, 1), 19_052);
    }

    #[test]
    fn rfc3339() {
        let mut b = Vec::new();
        push_rfc3339(&mut b, 1_646_647_200_123, 0, 0, true);
        assert_eq!(b, b"2022-03-07T10:00:00Z");
        b.clear();
        push_rfc3339(&mut b, 1_646_647_200_123, 330, 3, true);
        assert_eq!(b, b"2022-03-07T15:30:00.123+05:30");
        b.clear();
        push_rfc3339(&mut b, 1_646_647_200_123, -180, 6, true);
        assert_eq!(b, b"2022-03-07T07:00:00.123000-03:00");
        b.clear();
        push_rfc3339(&mut b, 1_646_647_200_000, 0, 0, false);
        assert_eq!(b, b"2022-03-07T10:00:00+00:00");
    }

    #[test]
    fn base64_and_wamid() {
        let mut b = Vec::new();
        push_base64(
            &mut b,
            b"\x1c\x18\x0b16503879439\x15\x02\x00\x12\x18\x143A4A6599AEE03810144F\x00",
        );
        assert_eq!(
            b,
            b"HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
        );
        b.clear();
        push_wamid(&mut b, 5_511_987_654_321, 7, false, 42);
        assert!(
            b.starts_with(b"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEj"),
            "{}",
            String::from_utf8_lossy(&b)
        );
        assert!((50..=66).contains(&b.len()), "{}", b.len());
    }

    #[test]
    fn numbers() {
        let mut b = Vec::new();
        push_u64(&mut b, 0);
        b.push(b' ');
        push_u64(&mut b, 18_446_744_073_709_551_615);
        b.push(b' ');
        push_padded(&mut b, 7, 3);
        assert_eq!(b, b"0 18446744073709551615 007");
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
    }
}
