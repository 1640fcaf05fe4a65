//! A compact binary form of scanned cost lines, for the sorted runs a period's lines spill to
//! when they outgrow their share of `memory-limit-mb` (the application's `process::spill`).
//!
//! A line in memory is ~290 bytes (a [`CostKey`] of twelve shared names and nine 16-byte
//! decimals); written here it is ~40: each name is a number in a dictionary the stream builds as
//! it goes (a name's text is written once, the first time it appears), a date is its day number,
//! only the non-zero measures are written (most lines have no true-up or upfront fee), each as
//! its sign, scale and magnitude in as few bytes as it needs. Decoding shares each name's text
//! between every line that carries it ([`Name`]), as the scan does. Amounts round-trip bit for bit
//! (scale and sign of zero included).
//!
//! Only what the scan makes is written: a line with an attribution or an unattributed reason is
//! refused ([`std::io::ErrorKind::InvalidInput`]); a stream that ends inside a line or holds an
//! impossible value reads as [`std::io::ErrorKind::InvalidData`] (spill files are the process's
//! own, so this is a bug or a damaged disk, never the user's input).

use std::io::{self, Read, Write};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::aggregate::{Amounts, CostKey, CostLine};
use crate::billing::Billing;
use crate::fxhash::FxBuild;
use crate::name::Name;
use crate::period::BillingPeriod;

/// Writes lines; each stream starts its own dictionary.
#[derive(Default)]
pub struct LineEncoder {
    names: std::collections::HashMap<Name, u32, FxBuild>,
    buf: Vec<u8>,
}

/// Reads what a [`LineEncoder`] wrote, in the same order.
#[derive(Default)]
pub struct LineDecoder {
    names: Vec<Name>,
    text: Vec<u8>,
}

/// Bit of the flags byte: the line has a tenant.
const HAS_TENANT: u8 = 1;

impl LineEncoder {
    /// Appends `line` to `out`.
    pub fn write(&mut self, line: &CostLine, out: &mut impl Write) -> io::Result<()> {
        if line.attribution.is_some() || line.unattributed_reason.is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "only scanned lines are spilled"));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let k = &line.key;
        buf.push(if k.tenant.is_some() { HAS_TENANT } else { 0 });
        buf.extend_from_slice(&line.period.year().to_le_bytes());
        buf.push(line.period.month() as u8);
        buf.extend_from_slice(&k.usage_date.num_days_from_ce().to_le_bytes());
        if let Some(tenant) = &k.tenant {
            self.name(tenant, &mut buf);
        }
        for name in [
            &k.service,
            &k.usage_type,
            &k.usage_unit,
            &k.operation,
            &k.resource_id,
            &k.line_item_type,
            &k.currency,
            &k.account_id,
            &k.account_name,
            &k.region,
            k.billing.text(),
        ] {
            self.name(name, &mut buf);
        }
        let values = decimals(&line.amounts);
        let mask = values.iter().enumerate().fold(0u16, |m, (i, v)| if is_plain_zero(v) { m } else { m | (1 << i) });
        buf.extend_from_slice(&mask.to_le_bytes());
        for v in values.iter().filter(|v| !is_plain_zero(v)) {
            put_decimal(&mut buf, v);
        }
        put_varint(&mut buf, line.amounts.line_items);
        let written = out.write_all(&buf);
        self.buf = buf;
        written
    }

    /// The name's number, with its text the first time.
    fn name(&mut self, name: &Name, buf: &mut Vec<u8>) {
        let next = self.names.len() as u32;
        match self.names.get(name) {
            Some(&id) => put_varint(buf, u64::from(id)),
            None => {
                self.names.insert(name.clone(), next);
                put_varint(buf, u64::from(next));
                put_varint(buf, name.len() as u64);
                buf.extend_from_slice(name.as_bytes());
            }
        }
    }
}

impl LineDecoder {
    /// The next line; `None` at the end of the stream (between two lines).
    pub fn read(&mut self, input: &mut impl Read) -> io::Result<Option<CostLine>> {
        let mut flags = [0u8; 1];
        match input.read_exact(&mut flags) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let year = i32::from_le_bytes(array(input)?);
        let [month] = array::<1>(input)?;
        let period = BillingPeriod::new(year, u32::from(month)).ok_or_else(|| invalid("a month"))?;
        let days = i32::from_le_bytes(array(input)?);
        let usage_date = NaiveDate::from_num_days_from_ce_opt(days).ok_or_else(|| invalid("a day"))?;
        let tenant = if flags[0] & HAS_TENANT != 0 { Some(self.name(input)?) } else { None };
        let mut n = || self.name(input);
        let key = CostKey {
            usage_date,
            tenant,
            service: n()?,
            usage_type: n()?,
            usage_unit: n()?,
            operation: n()?,
            resource_id: n()?,
            line_item_type: n()?,
            currency: n()?,
            account_id: n()?,
            account_name: n()?,
            region: n()?,
            billing: Billing::from_text(n()?),
        };
        let mask = u16::from_le_bytes(array(input)?);
        let mut values = [Decimal::ZERO; MEASURES];
        for (i, v) in values.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *v = decimal(input)?;
            }
        }
        let line_items = varint(input)?;
        Ok(Some(CostLine::new(period, key, amounts(values, line_items))))
    }

    fn name(&mut self, input: &mut impl Read) -> io::Result<Name> {
        let id = usize::try_from(varint(input)?).map_err(|_| invalid("a name number"))?;
        if let Some(name) = self.names.get(id) {
            return Ok(name.clone());
        }
        if id != self.names.len() {
            return Err(invalid("a name number"));
        }
        let len = usize::try_from(varint(input)?).map_err(|_| invalid("a name's length"))?;
        self.text.resize(len, 0);
        input.read_exact(&mut self.text)?;
        let text = std::str::from_utf8(&self.text).map_err(|_| invalid("UTF-8 text"))?;
        let name = Name::from(text);
        self.names.push(name.clone());
        Ok(name)
    }
}

/// Decimal measures of [`Amounts`], in the order written.
const MEASURES: usize = 9;

fn decimals(a: &Amounts) -> [Decimal; MEASURES] {
    [
        a.unblended_cost,
        a.net_unblended_cost,
        a.amortized_cost,
        a.ri_sp_trueup,
        a.ri_sp_upfront_fees,
        a.usage_amount,
        a.pricing_quantity,
        a.list_cost,
        a.contracted_cost,
    ]
}

fn amounts(v: [Decimal; MEASURES], line_items: u64) -> Amounts {
    let [
        unblended_cost,
        net_unblended_cost,
        amortized_cost,
        ri_sp_trueup,
        ri_sp_upfront_fees,
        usage_amount,
        pricing_quantity,
        list_cost,
        contracted_cost,
    ] = v;
    Amounts {
        unblended_cost,
        net_unblended_cost,
        amortized_cost,
        ri_sp_trueup,
        ri_sp_upfront_fees,
        usage_amount,
        pricing_quantity,
        line_items,
        list_cost,
        contracted_cost,
    }
}

/// `0` at scale 0, positive: what a measure without a value holds (not written). A zero with a
/// scale or a sign is written, so that every value comes back bit for bit.
fn is_plain_zero(v: &Decimal) -> bool {
    v.serialize() == Decimal::ZERO.serialize()
}

/// Bit of a decimal's first byte: negative (the low five bits are its scale, at most 28).
const NEGATIVE: u8 = 0x80;

/// A decimal as its sign and scale in one byte, then its 96-bit magnitude as a varint: a cost of
/// 12 places is ~7 bytes instead of [`Decimal::serialize`]'s 16.
fn put_decimal(buf: &mut Vec<u8>, v: &Decimal) {
    let sign = if v.is_sign_negative() { NEGATIVE } else { 0 };
    buf.push(sign | v.scale() as u8);
    let mut m = v.mantissa().unsigned_abs();
    while m >= 0x80 {
        buf.push((m as u8) | 0x80);
        m >>= 7;
    }
    buf.push(m as u8);
}

fn decimal(input: &mut impl Read) -> io::Result<Decimal> {
    let [head] = array::<1>(input)?;
    let scale = u32::from(head & !NEGATIVE);
    let mut m = 0u128;
    for shift in (0..=96).step_by(7) {
        let [b] = array::<1>(input)?;
        m |= u128::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if m >> 96 != 0 || scale > 28 {
                break;
            }
            // `Decimal::serialize`'s layout (flags: scale in byte 2, sign in bit 31; then the
            // magnitude's low, middle and high words): `from_parts` would drop a zero's sign.
            let mut bytes = [0u8; 16];
            bytes[2] = scale as u8;
            bytes[3] = head & NEGATIVE;
            bytes[4..].copy_from_slice(&m.to_le_bytes()[..12]);
            return Ok(Decimal::deserialize(bytes));
        }
    }
    Err(invalid("a decimal"))
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn varint(input: &mut impl Read) -> io::Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let [b] = array::<1>(input)?;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(invalid("a number"))
}

/// `N` bytes; the stream ending inside them is damage, not an end.
fn array<const N: usize>(input: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    input
        .read_exact(&mut b)
        .map_err(|e| if e.kind() == io::ErrorKind::UnexpectedEof { invalid("the rest of a line") } else { e })?;
    Ok(b)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("spilled cost lines: expected {what}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::billing::BillingParts;
    use crate::testing::cost_key;

    fn lines() -> Vec<CostLine> {
        let period = BillingPeriod::new(2026, 11).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let mut shared = cost_key(day, None, "AWSLambda", "Request");
        shared.resource_id = Name::from("arn:aws:lambda:eu-west-1:1:function:fn-é");
        shared.billing = Billing::new(BillingParts {
            account_id: "123456789012",
            provider: "AWS",
            invoice_id: "INV-1",
            ..BillingParts::default()
        });
        let full = Amounts {
            unblended_cost: Decimal::new(-123_456_789_012_345, 12),
            net_unblended_cost: Decimal::new(1, 12),
            amortized_cost: Decimal::MAX,
            ri_sp_trueup: Decimal::MIN,
            ri_sp_upfront_fees: Decimal::new(5, 0),
            usage_amount: Decimal::new(7, 10),
            pricing_quantity: Decimal::new(-7, 10),
            line_items: u64::MAX,
            list_cost: Decimal::new(1, 28),
            contracted_cost: Decimal::new(-0, 7),
        };
        let mut negative_zero = full;
        negative_zero.unblended_cost = Decimal::ZERO;
        negative_zero.unblended_cost.set_sign_negative(true);
        vec![
            CostLine::new(period, cost_key(day, Some("acct-1"), "AmazonEC2", "BoxUsage"), full),
            CostLine::new(period, shared.clone(), Amounts { line_items: 1, ..Amounts::default() }),
            CostLine::new(period, shared.clone(), negative_zero),
            CostLine::new(period, cost_key(day, Some("acct-1"), "AmazonS3", "BoxUsage"), full),
            CostLine::new(BillingPeriod::new(-3, 1).unwrap(), shared, Amounts::default()),
        ]
    }

    fn encoded(lines: &[CostLine]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = LineEncoder::default();
        for l in lines {
            encoder.write(l, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn lines_come_back_exactly_with_their_names_shared() {
        let lines = lines();
        let bytes = encoded(&lines);
        let (mut input, mut decoder) = (bytes.as_slice(), LineDecoder::default());
        let mut back = Vec::new();
        while let Some(l) = decoder.read(&mut input).unwrap() {
            back.push(l);
        }
        assert_eq!(back, lines);
        for (a, b) in back.iter().zip(&lines) {
            assert_eq!(decimals(&a.amounts).map(|d| d.serialize()), decimals(&b.amounts).map(|d| d.serialize()));
        }
        assert!(std::ptr::eq(back[0].key.usage_type.as_ptr(), back[3].key.usage_type.as_ptr()), "one text per name");
        assert!(bytes.len() < 2 * 290, "{} bytes", bytes.len());
    }

    #[test]
    fn a_cut_stream_is_damage_and_attributed_lines_are_refused() {
        let bytes = encoded(&lines());
        for cut in [1, 7, bytes.len() - 1] {
            let (mut input, mut decoder) = (&bytes[..cut], LineDecoder::default());
            let e = loop {
                match decoder.read(&mut input) {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("a stream cut at {cut} read as whole"),
                    Err(e) => break e,
                }
            };
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
        let mut reason = lines().remove(1);
        reason.unattributed_reason = Some("no usage evidence".into());
        let e = LineEncoder::default().write(&reason, &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
