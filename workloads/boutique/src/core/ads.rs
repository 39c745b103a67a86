//! Ads by context category, else one ad chosen from the request.

use serde::Serialize;

use super::ids::fnv1a;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ad {
    pub redirect_url: &'static str,
    pub text: &'static str,
}

/// (category, ads) - six categories.
const ADS: &[(&str, &[Ad])] = &[
    ("clothing", &[Ad { redirect_url: "/product/66VCHSJNUP", text: "Tank top for sale. 20% off." }]),
    ("accessories", &[Ad { redirect_url: "/product/1YMWWN1N4O", text: "Watch for sale. Buy one, get second kit for free" }]),
    ("footwear", &[Ad { redirect_url: "/product/L9ECAV7KIM", text: "Loafers for sale. Buy one, get second one for free" }]),
    ("hair", &[Ad { redirect_url: "/product/2ZYFJ3GM2N", text: "Hairdryer for sale. 50% off." }]),
    ("decor", &[Ad { redirect_url: "/product/0PUK6V6EV0", text: "Candle holder for sale. 30% off." }]),
    (
        "kitchen",
        &[
            Ad { redirect_url: "/product/9SIQT8TOJO", text: "Bamboo glass jar for sale. 10% off." },
            Ad { redirect_url: "/product/6E92ZMYYFZ", text: "Mug for sale. Buy two, get the third one for free" },
        ],
    ),
];

/// Ads for the context's categories; with none matching, one ad picked by a
/// hash of `seed` (Google's service picks at random).
pub fn get_ads(context: &[&str], seed: &str) -> Vec<Ad> {
    let matched: Vec<Ad> = ADS.iter().filter(|(c, _)| context.contains(c)).flat_map(|(_, ads)| ads.iter().cloned()).collect();
    if !matched.is_empty() {
        return matched;
    }
    let all: Vec<&Ad> = ADS.iter().flat_map(|(_, ads)| ads.iter()).collect();
    vec![all[(fnv1a(&[seed.as_bytes()]) % all.len() as u64) as usize].clone()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_category_or_one() {
        assert_eq!(get_ads(&["kitchen"], "s").len(), 2);
        assert_eq!(get_ads(&["footwear", "hair"], "s").len(), 2);
        let one = get_ads(&[], "session-1");
        assert_eq!(one.len(), 1);
        assert_eq!(one, get_ads(&["nothing"], "session-1"));
        assert_eq!(ADS.len(), 6);
    }
}
