//! The store's schema, as numbered migrations applied in order, each in
//! one transaction with its row in `schema_migrations` (docs/spec/store.md
//! lists the tables). A migration is never edited once released: a change
//! is a new one, written for both backends.

/// One step of the schema, in each backend's SQL.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// A migration a store was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub version: u32,
    pub name: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "log_and_quarantine",
        sqlite: include_str!("../migrations/sqlite/0001_log_and_quarantine.sql"),
        postgres: include_str!("../migrations/postgres/0001_log_and_quarantine.sql"),
    },
    Migration {
        version: 2,
        name: "published_invoices_and_records",
        sqlite: include_str!("../migrations/sqlite/0002_published_invoices_and_records.sql"),
        postgres: include_str!("../migrations/postgres/0002_published_invoices_and_records.sql"),
    },
];

/// The schema version this wabill writes.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The migrations after `version`, in order.
pub fn pending(version: u32) -> impl Iterator<Item = &'static Migration> {
    MIGRATIONS.iter().filter(move |m| m.version > version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_one_by_one_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
        assert_eq!(latest() as usize, MIGRATIONS.len());
    }
}
