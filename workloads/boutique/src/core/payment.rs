//! Payment: Luhn, card type, accepted brands, expiry against today's date.

use super::ids::uuid_like;
use super::money::Money;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardType {
    Visa,
    MasterCard,
    Amex,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreditCard {
    pub number: String,
    pub cvv: u32,
    pub expiration_year: i32,
    pub expiration_month: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PaymentError {
    InvalidNumber,
    Unaccepted(CardType),
    UnknownCardType,
    Expired { month: u32, year: i32 },
    InvalidExpiry,
    InvalidAmount,
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PaymentError::InvalidNumber => f.write_str("credit card number is invalid"),
            PaymentError::Unaccepted(t) => write!(f, "sorry, we cannot process {t:?} credit cards; only VISA or MasterCard is accepted"),
            PaymentError::UnknownCardType => f.write_str("credit card type is not recognised"),
            PaymentError::Expired { month, year } => {
                write!(f, "the credit card expired on {month:02}/{year}")
            }
            PaymentError::InvalidExpiry => f.write_str("credit card expiry date is invalid"),
            PaymentError::InvalidAmount => f.write_str("the amount to charge must be positive"),
        }
    }
}

fn digits(number: &str) -> Option<Vec<u8>> {
    let d: Vec<u8> = number.bytes().filter(|b| *b != b' ' && *b != b'-').map(|b| b.wrapping_sub(b'0')).collect();
    (d.iter().all(|&x| x <= 9) && (12..=19).contains(&d.len())).then_some(d)
}

pub fn luhn_valid(number: &str) -> bool {
    let Some(d) = digits(number) else {
        return false;
    };
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = x as u32;
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Brand from prefix and length.
pub fn card_type(number: &str) -> Option<CardType> {
    let d = digits(number)?;
    let prefix = |n: usize| d[..n].iter().fold(0u32, |acc, &x| acc * 10 + x as u32);
    match (d.len(), prefix(1), prefix(2), prefix(4)) {
        (13 | 16 | 19, 4, _, _) => Some(CardType::Visa),
        (16, _, 51..=55, _) | (16, _, _, 2221..=2720) => Some(CardType::MasterCard),
        (15, _, 34 | 37, _) => Some(CardType::Amex),
        _ => None,
    }
}

/// Today as (year, month), from the system clock (UTC).
pub fn current_year_month() -> (i32, u32) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, _) = civil_from_days((secs / 86_400) as i64);
    (y, m)
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + (m <= 2) as i64) as i32;
    (y, m, d)
}

/// Validates and "charges" the card; returns a transaction id derived from
/// the order. `today` is (year, month).
pub fn charge(card: &CreditCard, amount: &Money, order_id: &str, today: (i32, u32)) -> Result<String, PaymentError> {
    if amount.total_nanos() <= 0 {
        return Err(PaymentError::InvalidAmount);
    }
    if !luhn_valid(&card.number) {
        return Err(PaymentError::InvalidNumber);
    }
    match card_type(&card.number) {
        Some(CardType::Visa | CardType::MasterCard) => {}
        Some(other) => return Err(PaymentError::Unaccepted(other)),
        None => return Err(PaymentError::UnknownCardType),
    }
    if !(1..=12).contains(&card.expiration_month) || card.cvv > 9999 {
        return Err(PaymentError::InvalidExpiry);
    }
    if (card.expiration_year, card.expiration_month) < today {
        return Err(PaymentError::Expired { month: card.expiration_month, year: card.expiration_year });
    }
    let last4 = &card.number[card.number.len().saturating_sub(4)..];
    Ok(uuid_like(&[b"txn", order_id.as_bytes(), last4.as_bytes(), &amount.total_nanos().to_le_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::money::Currency;

    const LOAD_CARD: &str = "4432801561520454";

    fn card(number: &str, year: i32, month: u32) -> CreditCard {
        CreditCard { number: number.into(), cvv: 672, expiration_year: year, expiration_month: month }
    }

    #[test]
    fn luhn_and_types() {
        assert!(luhn_valid(LOAD_CARD));
        assert!(luhn_valid("4111 1111 1111 1111"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("abc"));
        assert_eq!(card_type(LOAD_CARD), Some(CardType::Visa));
        assert_eq!(card_type("5555555555554444"), Some(CardType::MasterCard));
        assert_eq!(card_type("2221000000000009"), Some(CardType::MasterCard));
        assert_eq!(card_type("378282246310005"), Some(CardType::Amex));
        assert_eq!(card_type("6011111111111117"), None);
    }

    #[test]
    fn charge_rules() {
        let amount = Money::new(Currency::USD, 10, 0);
        let today = (2026, 11);
        let tx = charge(&card(LOAD_CARD, 2039, 1), &amount, "o1", today).unwrap();
        assert_eq!(tx, charge(&card(LOAD_CARD, 2039, 1), &amount, "o1", today).unwrap(), "deterministic");
        assert_eq!(charge(&card("378282246310005", 2039, 1), &amount, "o", today), Err(PaymentError::Unaccepted(CardType::Amex)));
        assert_eq!(charge(&card("4111111111111112", 2039, 1), &amount, "o", today), Err(PaymentError::InvalidNumber));
        assert_eq!(charge(&card(LOAD_CARD, 2026, 10), &amount, "o", today), Err(PaymentError::Expired { month: 10, year: 2026 }));
        assert!(charge(&card(LOAD_CARD, 2026, 11), &amount, "o", today).is_ok(), "this month is still valid");
        assert_eq!(charge(&card(LOAD_CARD, 2039, 13), &amount, "o", today), Err(PaymentError::InvalidExpiry));
        assert_eq!(charge(&card(LOAD_CARD, 2039, 1), &Money::zero(Currency::USD), "o", today), Err(PaymentError::InvalidAmount));
    }

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
        let (y, m) = current_year_month();
        assert!(y >= 2024 && (1..=12).contains(&m));
    }
}
