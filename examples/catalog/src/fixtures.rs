//! Deterministic generation of the seed data: same input, same catalog, every start.

use crate::model::{Product, TENANTS};

/// A category template: slug, display name, and the nouns its products are named after.
struct CategoryTemplate {
    id: &'static str,
    name: &'static str,
    nouns: [&'static str; 4],
}

const fn template(id: &'static str, name: &'static str, nouns: [&'static str; 4]) -> CategoryTemplate {
    CategoryTemplate { id, name, nouns }
}

/// All category templates; each tenant uses a different window of [`CATEGORIES_PER_TENANT`].
const TEMPLATES: [CategoryTemplate; 16] = [
    template("books", "Books", ["Novel", "Atlas", "Cookbook", "Journal"]),
    template("games", "Games", ["Board Game", "Puzzle", "Card Deck", "Dice Set"]),
    template("garden", "Garden", ["Trowel", "Planter", "Hose", "Seed Kit"]),
    template("kitchen", "Kitchen", ["Skillet", "Kettle", "Knife Set", "Blender"]),
    template("toys", "Toys", ["Robot", "Kite", "Yo-yo", "Plush Bear"]),
    template("electronics", "Electronics", ["Headphones", "Speaker", "Charger", "Webcam"]),
    template("outdoors", "Outdoors", ["Tent", "Lantern", "Backpack", "Compass"]),
    template("office", "Office", ["Stapler", "Notebook", "Desk Lamp", "Pen Set"]),
    template("music", "Music", ["Ukulele", "Metronome", "Harmonica", "Guitar Strings"]),
    template("sports", "Sports", ["Football", "Yoga Mat", "Jump Rope", "Dumbbell"]),
    template("beauty", "Beauty", ["Face Cream", "Hair Brush", "Perfume", "Lip Balm"]),
    template("pets", "Pets", ["Dog Bed", "Cat Tree", "Leash", "Chew Toy"]),
    template("tools", "Tools", ["Hammer", "Wrench", "Drill", "Screwdriver"]),
    template("home", "Home", ["Blanket", "Cushion", "Candle", "Vase"]),
    template("automotive", "Automotive", ["Car Wax", "Floor Mats", "Jump Starter", "Tire Gauge"]),
    template("baby", "Baby", ["Rattle", "Stroller", "Bib", "Teether"]),
];

/// Number of categories each tenant has.
pub(crate) const CATEGORIES_PER_TENANT: usize = 12;

const ADJECTIVES: [&str; 16] = [
    "Rustic",
    "Sleek",
    "Classic",
    "Compact",
    "Deluxe",
    "Vintage",
    "Ergonomic",
    "Handmade",
    "Rugged",
    "Modern",
    "Cozy",
    "Premium",
    "Portable",
    "Bright",
    "Quiet",
    "Smart",
];

/// SplitMix64: a tiny, good-enough, fully deterministic generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` is small, so the modulo bias is negligible).
    fn below(&mut self, bound: usize) -> usize {
        // Truncation is intended: the result is below `bound`, which is a usize.
        (self.next() % bound as u64) as usize
    }
}

/// The `k`-th category template of the tenant at `tenant_index` in [`TENANTS`]:
/// tenants use overlapping but different windows of [`TEMPLATES`].
fn tenant_template(tenant_index: usize, k: usize) -> &'static CategoryTemplate {
    &TEMPLATES[(tenant_index * 2 + k) % TEMPLATES.len()]
}

/// `(slug, display name)` of every category of the tenant at `tenant_index`.
pub(crate) fn categories(tenant_index: usize) -> impl Iterator<Item = (&'static str, &'static str)> {
    (0..CATEGORIES_PER_TENANT).map(move |k| {
        let template = tenant_template(tenant_index, k);
        (template.id, template.name)
    })
}

/// Short code in product names telling tenants apart, e.g. `AC` for `acme`.
fn tenant_code(tenant: &str) -> String {
    tenant.chars().take(2).collect::<String>().to_uppercase()
}

/// The product `id` of the tenant at `tenant_index`; a pure function of its arguments.
pub(crate) fn product(tenant_index: usize, id: u64) -> Product {
    let tenant = TENANTS[tenant_index];
    let mut rng = SplitMix64(((tenant_index as u64 + 1) << 48) ^ id);
    let category = tenant_template(tenant_index, rng.below(CATEGORIES_PER_TENANT));
    let adjective = ADJECTIVES[rng.below(ADJECTIVES.len())];
    let noun = category.nouns[rng.below(category.nouns.len())];
    let price_cents = (rng.below(500) as i64 + 1) * 100 - 1;
    Product {
        id,
        tenant: tenant.to_owned(),
        name: format!("{adjective} {noun} {}-{id}", tenant_code(tenant)),
        category: category.id.to_owned(),
        price_cents,
        description: format!(
            "A {} {} from the {tenant} {} range.",
            adjective.to_lowercase(),
            noun.to_lowercase(),
            category.name.to_lowercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(product(1, 42), product(1, 42));
    }

    #[test]
    fn products_belong_to_their_tenant_categories() {
        for tenant_index in 0..TENANTS.len() {
            let slugs: Vec<_> = categories(tenant_index).map(|(slug, _)| slug).collect();
            assert_eq!(slugs.len(), CATEGORIES_PER_TENANT);
            for id in 1..=200 {
                let product = product(tenant_index, id);
                assert!(slugs.contains(&product.category.as_str()), "{product:?}");
                assert!(product.price_cents > 0 && product.price_cents < 50_000);
            }
        }
    }

    #[test]
    fn tenants_have_different_category_sets() {
        let acme: Vec<_> = categories(0).collect();
        let initech: Vec<_> = categories(2).collect();
        assert_ne!(acme, initech);
    }
}
