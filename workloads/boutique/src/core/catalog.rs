//! The product catalog: 9 products, prices in USD.

use serde::Serialize;

use super::money::{Currency, Money};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Product {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub picture: &'static str,
    pub price_usd: Money,
    pub categories: &'static [&'static str],
}

const fn usd(units: i64, nanos: i32) -> Money {
    Money { currency_code: Currency::USD, units, nanos }
}

/// The catalog, in its canonical order.
pub const PRODUCTS: [Product; 9] = [
    Product {
        id: "OLJCESPC7Z",
        name: "Sunglasses",
        description: "Add a modern touch to your outfits with these sleek aviator sunglasses.",
        picture: "/static/img/products/sunglasses.jpg",
        price_usd: usd(19, 990_000_000),
        categories: &["accessories"],
    },
    Product {
        id: "66VCHSJNUP",
        name: "Tank Top",
        description: "Perfectly cropped cotton tank, with a scooped neckline.",
        picture: "/static/img/products/tank-top.jpg",
        price_usd: usd(18, 990_000_000),
        categories: &["clothing", "tops"],
    },
    Product {
        id: "1YMWWN1N4O",
        name: "Watch",
        description: "This gold-tone stainless steel watch will work with most of your outfits.",
        picture: "/static/img/products/watch.jpg",
        price_usd: usd(109, 990_000_000),
        categories: &["accessories"],
    },
    Product {
        id: "L9ECAV7KIM",
        name: "Loafers",
        description: "A neat addition to your summer wardrobe.",
        picture: "/static/img/products/loafers.jpg",
        price_usd: usd(89, 990_000_000),
        categories: &["footwear"],
    },
    Product {
        id: "2ZYFJ3GM2N",
        name: "Hairdryer",
        description: "This lightweight hairdryer has 3 heat and speed settings. It's perfect for travel.",
        picture: "/static/img/products/hairdryer.jpg",
        price_usd: usd(24, 990_000_000),
        categories: &["hair", "beauty"],
    },
    Product {
        id: "0PUK6V6EV0",
        name: "Candle Holder",
        description: "This small but intricate candle holder is an excellent gift.",
        picture: "/static/img/products/candle-holder.jpg",
        price_usd: usd(18, 990_000_000),
        categories: &["decor", "home"],
    },
    Product {
        id: "LS4PSXUNUM",
        name: "Salt & Pepper Shakers",
        description: "Add some flavor to your kitchen.",
        picture: "/static/img/products/salt-and-pepper-shakers.jpg",
        price_usd: usd(18, 490_000_000),
        categories: &["kitchen"],
    },
    Product {
        id: "9SIQT8TOJO",
        name: "Bamboo Glass Jar",
        description: "This bamboo glass jar can hold 57 oz (1.7 l) and is perfect for any kitchen.",
        picture: "/static/img/products/bamboo-glass-jar.jpg",
        price_usd: usd(5, 490_000_000),
        categories: &["kitchen"],
    },
    Product {
        id: "6E92ZMYYFZ",
        name: "Mug",
        description: "A simple mug with a mustard interior.",
        picture: "/static/img/products/mug.jpg",
        price_usd: usd(8, 990_000_000),
        categories: &["kitchen"],
    },
];

pub fn list_products() -> &'static [Product] {
    &PRODUCTS
}

pub fn get_product(id: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.id == id)
}

/// Index of a product in the catalog (a compact handle for fixed layouts).
pub fn product_index(id: &str) -> Option<usize> {
    PRODUCTS.iter().position(|p| p.id == id)
}

/// Products whose name or description contains `query` (case-insensitive).
pub fn search_products(query: &str) -> Vec<&'static Product> {
    let q = query.to_lowercase();
    PRODUCTS.iter().filter(|p| p.name.to_lowercase().contains(&q) || p.description.to_lowercase().contains(&q)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_search() {
        assert_eq!(list_products().len(), 9);
        assert_eq!(get_product("1YMWWN1N4O").unwrap().name, "Watch");
        assert!(get_product("NOPE").is_none());
        assert_eq!(product_index("6E92ZMYYFZ"), Some(8));
        let kitchen: Vec<_> = search_products("KITCHEN").iter().map(|p| p.id).collect();
        assert_eq!(kitchen, ["LS4PSXUNUM", "9SIQT8TOJO"]);
        assert_eq!(search_products("mug")[0].id, "6E92ZMYYFZ");
        assert_eq!(get_product("LS4PSXUNUM").unwrap().price_usd.to_decimal_string(), "18.49");
    }
}
