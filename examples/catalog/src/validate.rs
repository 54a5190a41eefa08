//! Checks done before a request reaches the database.

use crate::error::CatalogError;
use crate::model::{ListQuery, ProductUpdate, TENANTS};

/// Default page size of a listing.
const DEFAULT_LIMIT: u32 = 20;
/// Largest page size of a listing.
const MAX_LIMIT: u32 = 100;
/// Longest product name accepted by an update, in characters.
const MAX_NAME_CHARS: usize = 200;

/// Sort orders of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sort {
    Id,
    Name,
    NameDesc,
    Price,
    PriceDesc,
}

impl Sort {
    fn parse(sort: &str) -> Result<Self, CatalogError> {
        match sort {
            "id" => Ok(Self::Id),
            "name" => Ok(Self::Name),
            "-name" => Ok(Self::NameDesc),
            "price" => Ok(Self::Price),
            "-price" => Ok(Self::PriceDesc),
            other => Err(CatalogError::InvalidQuery(format!(
                "unknown sort `{other}` (expected id, name, -name, price or -price)"
            ))),
        }
    }

    /// The SQL `ORDER BY` clause; ties are always broken by ascending id.
    pub(crate) fn order_by(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Name => "name, id",
            Self::NameDesc => "name DESC, id",
            Self::Price => "price_cents, id",
            Self::PriceDesc => "price_cents DESC, id",
        }
    }
}

/// A [`ListQuery`] with defaults applied and every parameter checked.
#[derive(Debug, Clone)]
pub(crate) struct ValidQuery {
    pub(crate) category: Option<String>,
    pub(crate) search: Option<String>,
    pub(crate) sort: Sort,
    pub(crate) page: u32,
    pub(crate) limit: u32,
}

impl ValidQuery {
    /// Number of rows to skip for this page.
    pub(crate) fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.limit)
    }
}

/// Returns the tenant if it is one of [`TENANTS`].
pub(crate) fn tenant(tenant: &str) -> Result<&'static str, CatalogError> {
    TENANTS
        .into_iter()
        .find(|known| *known == tenant)
        .ok_or_else(|| CatalogError::UnknownTenant(tenant.to_owned()))
}

/// `None` for absent or empty strings.
fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|value| !value.is_empty()).cloned()
}

/// Applies defaults and checks a listing query.
pub(crate) fn list_query(query: &ListQuery) -> Result<ValidQuery, CatalogError> {
    let sort = match non_empty(query.sort.as_ref()) {
        Some(sort) => Sort::parse(&sort)?,
        None => Sort::Id,
    };
    let page = query.page.unwrap_or(1);
    if page == 0 {
        return Err(CatalogError::InvalidQuery("page is 1-based, got 0".into()));
    }
    Ok(ValidQuery {
        category: non_empty(query.category.as_ref()),
        search: non_empty(query.search.as_ref()),
        sort,
        page,
        limit: query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    })
}

/// Checks the fields of an update that need no database (the category does).
pub(crate) fn update(update: &ProductUpdate) -> Result<(), CatalogError> {
    if let Some(name) = &update.name {
        if name.trim().is_empty() {
            return Err(CatalogError::InvalidUpdate("name must not be empty".into()));
        }
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(CatalogError::InvalidUpdate(format!(
                "name must be at most {MAX_NAME_CHARS} characters, got {chars}"
            )));
        }
    }
    match update.price_cents {
        Some(price) if price < 0 => Err(CatalogError::InvalidUpdate(format!(
            "price_cents must not be negative, got {price}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sort: Option<&str>, page: Option<u32>, limit: Option<u32>) -> ListQuery {
        ListQuery {
            sort: sort.map(str::to_owned),
            page,
            limit,
            ..ListQuery::default()
        }
    }

    #[test]
    fn defaults_apply() {
        let valid = list_query(&ListQuery::default()).expect("default query is valid");
        assert_eq!((valid.page, valid.limit, valid.sort), (1, 20, Sort::Id));
        assert_eq!(valid.offset(), 0);
    }

    #[test]
    fn limit_is_clamped() {
        let high = list_query(&query(None, None, Some(1_000))).expect("valid");
        let low = list_query(&query(None, None, Some(0))).expect("valid");
        assert_eq!((high.limit, low.limit), (100, 1));
    }

    #[test]
    fn offset_does_not_overflow() {
        let valid = list_query(&query(None, Some(u32::MAX), Some(100))).expect("valid");
        assert_eq!(valid.offset(), i64::from(u32::MAX - 1) * 100);
    }

    #[test]
    fn page_zero_and_unknown_sort_are_rejected() {
        for bad in [query(None, Some(0), None), query(Some("price desc"), None, None)] {
            assert!(matches!(list_query(&bad), Err(CatalogError::InvalidQuery(_))));
        }
    }

    #[test]
    fn empty_strings_mean_absent() {
        let empty = ListQuery {
            category: Some(String::new()),
            search: Some(String::new()),
            sort: Some(String::new()),
            ..ListQuery::default()
        };
        let valid = list_query(&empty).expect("valid");
        assert_eq!((valid.category, valid.search, valid.sort), (None, None, Sort::Id));
    }

    #[test]
    fn update_fields_are_checked() {
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        for name in ["", "   ", long.as_str()] {
            let bad = ProductUpdate {
                name: Some(name.into()),
                ..ProductUpdate::default()
            };
            assert!(matches!(update(&bad), Err(CatalogError::InvalidUpdate(_))));
        }
        let negative = ProductUpdate {
            price_cents: Some(-1),
            ..ProductUpdate::default()
        };
        assert!(matches!(update(&negative), Err(CatalogError::InvalidUpdate(_))));
        let max = ProductUpdate {
            name: Some("é".repeat(MAX_NAME_CHARS)),
            price_cents: Some(0),
            ..ProductUpdate::default()
        };
        assert!(update(&max).is_ok());
    }

    #[test]
    fn tenants_are_checked() {
        assert_eq!(tenant("globex").expect("known"), "globex");
        assert!(matches!(tenant("Globex"), Err(CatalogError::UnknownTenant(t)) if t == "Globex"));
    }
}
