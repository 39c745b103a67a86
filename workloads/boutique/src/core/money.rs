//! Money as units + nanos (never floats), and conversion through EUR.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// An ISO 4217 code: three ASCII upper-case letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII by construction")
    }

    pub fn bytes(&self) -> [u8; 3] {
        self.0
    }
}

impl FromStr for Currency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(format!("invalid currency code {s:?}"))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount: `units` whole units and `nanos` billionths, with the sign of
/// both agreeing (as in Google's `google.type.Money`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub currency_code: Currency,
    pub units: i64,
    pub nanos: i32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MoneyError {
    CurrencyMismatch(Currency, Currency),
    Overflow,
    UnknownCurrency(Currency),
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::CurrencyMismatch(a, b) => write!(f, "cannot combine {a} and {b}"),
            MoneyError::Overflow => f.write_str("amount out of range"),
            MoneyError::UnknownCurrency(c) => write!(f, "unsupported currency {c}"),
        }
    }
}

impl Money {
    pub fn new(currency_code: Currency, units: i64, nanos: i32) -> Self {
        Self::from_nanos(currency_code, units as i128 * NANOS_PER_UNIT + nanos as i128).expect("in range")
    }

    pub fn zero(currency_code: Currency) -> Self {
        Self { currency_code, units: 0, nanos: 0 }
    }

    /// Parses `"19.99"` style decimals (at most 9 fractional digits).
    pub fn parse(currency_code: Currency, decimal: &str) -> Option<Self> {
        let (neg, digits) = match decimal.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, decimal),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() || frac.len() > 9 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let units: i128 = whole.parse().ok()?;
        let nanos: i128 = format!("{frac:0<9}").parse().ok()?;
        let total = units * NANOS_PER_UNIT + nanos;
        Self::from_nanos(currency_code, if neg { -total } else { total }).ok()
    }

    pub fn total_nanos(&self) -> i128 {
        self.units as i128 * NANOS_PER_UNIT + self.nanos as i128
    }

    pub fn from_nanos(currency_code: Currency, total: i128) -> Result<Self, MoneyError> {
        let units = i64::try_from(total / NANOS_PER_UNIT).map_err(|_| MoneyError::Overflow)?;
        let nanos = (total % NANOS_PER_UNIT) as i32;
        Ok(Self { currency_code, units, nanos })
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency_code != other.currency_code {
            return Err(MoneyError::CurrencyMismatch(self.currency_code, other.currency_code));
        }
        Self::from_nanos(self.currency_code, self.total_nanos() + other.total_nanos())
    }

    pub fn checked_mul(&self, quantity: u32) -> Result<Money, MoneyError> {
        Self::from_nanos(self.currency_code, self.total_nanos() * quantity as i128)
    }

    /// `"19.99"`-style rendering with two decimals (rounded half away from zero).
    pub fn to_decimal_string(&self) -> String {
        let cents = div_round(self.total_nanos(), 10_000_000);
        let sign = if cents < 0 { "-" } else { "" };
        let c = cents.abs();
        format!("{sign}{}.{:02}", c / 100, c % 100)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency_code, self.to_decimal_string())
    }
}

/// `n / d` rounded to the nearest integer, halves away from zero.
fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d.abs() {
        q + n.signum() * d.signum()
    } else {
        q
    }
}

/// Conversion rates per EUR, as decimal strings (the currency service's data).
pub const RATES_PER_EUR: &[(&str, &str)] = &[
    ("EUR", "1.0"),
    ("USD", "1.1305"),
    ("JPY", "126.40"),
    ("CAD", "1.5128"),
    ("GBP", "0.85970"),
    ("CHF", "1.1360"),
    ("AUD", "1.6098"),
    ("SEK", "10.5788"),
];

/// The currency table: rates kept as exact nanos per EUR.
#[derive(Clone, Debug)]
pub struct CurrencyTable {
    rates: Vec<(Currency, i128)>,
}

impl Default for CurrencyTable {
    fn default() -> Self {
        let rates = RATES_PER_EUR
            .iter()
            .map(|(c, r)| {
                let c: Currency = c.parse().expect("valid code");
                (c, Money::parse(c, r).expect("valid rate").total_nanos())
            })
            .collect();
        Self { rates }
    }
}

impl CurrencyTable {
    /// Supported codes, in table order.
    pub fn supported(&self) -> Vec<Currency> {
        self.rates.iter().map(|(c, _)| *c).collect()
    }

    pub fn is_supported(&self, c: Currency) -> bool {
        self.rate(c).is_some()
    }

    fn rate(&self, c: Currency) -> Option<i128> {
        self.rates.iter().find(|(x, _)| *x == c).map(|(_, r)| *r)
    }

    /// `amount / rate(from) * rate(to)`, exactly, rounded once to the nearest
    /// nano (halves away from zero).
    pub fn convert(&self, amount: &Money, to: Currency) -> Result<Money, MoneyError> {
        let from_rate = self.rate(amount.currency_code).ok_or(MoneyError::UnknownCurrency(amount.currency_code))?;
        let to_rate = self.rate(to).ok_or(MoneyError::UnknownCurrency(to))?;
        let n = amount.total_nanos().checked_mul(to_rate).ok_or(MoneyError::Overflow)?;
        Money::from_nanos(to, div_round(n, from_rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Money {
        Money::parse(Currency::USD, s).unwrap()
    }

    #[test]
    fn parse_add_multiply_render() {
        let m = usd("19.99");
        assert_eq!((m.units, m.nanos), (19, 990_000_000));
        assert_eq!(m.checked_mul(3).unwrap(), usd("59.97"));
        assert_eq!(m.checked_add(&usd("0.01")).unwrap(), usd("20"));
        assert_eq!(usd("-1.5").nanos, -500_000_000, "signs agree");
        assert_eq!(usd("0.005").to_decimal_string(), "0.01");
        assert_eq!(usd("-0.005").to_decimal_string(), "-0.01");
        assert_eq!(usd("8.99").to_string(), "USD 8.99");
        assert!(Money::parse(Currency::USD, "1.2.3").is_none());
        assert!(Money::parse(Currency::USD, "1.0000000001").is_none());
        let eur = Money::parse(Currency::EUR, "1").unwrap();
        assert_eq!(usd("1").checked_add(&eur), Err(MoneyError::CurrencyMismatch(Currency::USD, Currency::EUR)));
    }

    #[test]
    fn conversion_goes_through_eur_and_rounds_once() {
        let t = CurrencyTable::default();
        let eur = t.convert(&usd("1.1305"), Currency::EUR).unwrap();
        assert_eq!(eur, Money::parse(Currency::EUR, "1").unwrap());
        // 19.99 USD -> JPY: 19.99 / 1.1305 * 126.40 = 2235.0605926581... (checked with Python Decimal)
        let jpy = t.convert(&usd("19.99"), "JPY".parse().unwrap()).unwrap();
        assert_eq!((jpy.units, jpy.nanos), (2235, 60_592_658));
        // Identity and round trip within a nano.
        assert_eq!(t.convert(&usd("19.99"), Currency::USD).unwrap(), usd("19.99"));
        let cad = t.convert(&usd("100"), "CAD".parse().unwrap()).unwrap();
        let back = t.convert(&cad, Currency::USD).unwrap();
        assert!((back.total_nanos() - usd("100").total_nanos()).abs() <= 1);
        assert!(matches!(t.convert(&usd("1"), "XXX".parse().unwrap()), Err(MoneyError::UnknownCurrency(_))));
        assert_eq!(t.supported()[..4].iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["EUR", "USD", "JPY", "CAD"]);
    }

    #[test]
    fn currency_codes_are_validated() {
        assert!("usd".parse::<Currency>().is_err());
        assert!("US".parse::<Currency>().is_err());
        assert_eq!("JPY".parse::<Currency>().unwrap().to_string(), "JPY");
    }
}
