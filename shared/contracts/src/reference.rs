//! Reference data every service agrees on: the flavours with their unit
//! prices and the countries served. Service-specific seeds (stock levels,
//! credit limits, card tokens) live in the service that owns them.

/// Flavours on sale and their unit prices in minor units.
pub const FLAVORS: [(&str, i64); 5] =
    [("vanilla", 500), ("chocolate", 550), ("mango", 600), ("rumraisin", 650), ("durian", 900)];

/// Countries served.
pub const COUNTRIES: [&str; 6] = ["sg", "my", "kr", "us", "id", "th"];

/// The sizes a flavour is sold in (payload 1.2 names them; 1.1 orders are tubs).
pub const SIZES: [&str; 3] = ["cup", "pint", "tub"];

/// The size of a line that names none.
pub const DEFAULT_SIZE: &str = "tub";

/// The currency of each country served (ISO 4217); prices are in its minor units.
pub const CURRENCIES: [(&str, &str); 6] =
    [("sg", "SGD"), ("my", "MYR"), ("kr", "KRW"), ("us", "USD"), ("id", "IDR"), ("th", "THB")];

/// The currency prices are in for a country, if it is served.
pub fn currency(country: &str) -> Option<&'static str> {
    CURRENCIES.iter().find(|(c, _)| *c == country).map(|(_, code)| *code)
}

/// The stock-keeping unit of a flavour in a size: `mango-pint`.
pub fn sku(flavor: &str, size: &str) -> String {
    format!("{flavor}-{size}")
}

/// The unit price of a flavour, if it is on sale.
pub fn unit_price(flavor: &str) -> Option<i64> {
    FLAVORS.iter().find(|(name, _)| *name == flavor).map(|(_, price)| *price)
}

/// True when Udders serves this country.
pub fn serves(country: &str) -> bool {
    COUNTRIES.contains(&country)
}

/// The product level of a subject for an order's lines: the flavour when
/// there is one, `mixed` when there are several, `none` when there is none.
pub fn product_level<'a>(mut flavors: impl Iterator<Item = &'a str>) -> String {
    match flavors.next() {
        None => "none".to_owned(),
        Some(first) if flavors.all(|f| f == first) => first.to_owned(),
        Some(_) => "mixed".to_owned(),
    }
}
