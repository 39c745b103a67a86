//! Recommendations: up to 5 products not in the request's list.

use super::ids::fnv1a;

pub const MAX_RECOMMENDATIONS: usize = 5;

/// Picks up to 5 of `all_products` not in `exclude`. Google's service picks
/// at random; here the pick is a rotation seeded by the user and the
/// excluded set, so every mode answers the same request identically.
pub fn recommend(user_id: &str, all_products: &[&str], exclude: &[&str]) -> Vec<String> {
    let candidates: Vec<&str> = all_products.iter().copied().filter(|p| !exclude.contains(p)).collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let mut seed_parts: Vec<&[u8]> = vec![user_id.as_bytes()];
    seed_parts.extend(exclude.iter().map(|e| e.as_bytes()));
    let start = (fnv1a(&seed_parts) % candidates.len() as u64) as usize;
    candidates.iter().cycle().skip(start).take(MAX_RECOMMENDATIONS.min(candidates.len())).map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::PRODUCTS;

    #[test]
    fn excludes_and_bounds() {
        let all: Vec<&str> = PRODUCTS.iter().map(|p| p.id).collect();
        let r = recommend("u1", &all, &["OLJCESPC7Z", "66VCHSJNUP"]);
        assert_eq!(r.len(), 5);
        assert!(r.iter().all(|p| p != "OLJCESPC7Z" && p != "66VCHSJNUP"));
        let mut dedup = r.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 5, "no duplicates");
        assert_eq!(r, recommend("u1", &all, &["OLJCESPC7Z", "66VCHSJNUP"]), "deterministic");
        assert_eq!(recommend("u", &all, &all[..7]).len(), 2);
        assert!(recommend("u", &all, &all).is_empty());
    }
}
