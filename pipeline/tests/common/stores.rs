//! The two stores a contract test runs on: a SQLite file in a temporary directory and a fresh
//! DynamoDB table on the local AWS server; and [`on_both_stores!`](crate::on_both_stores), which
//! makes one test of each from one check.

use std::path::{Path, PathBuf};

use curflow::store::dynamodb::DynamoStore;
use curflow::store::{SqliteStore, Store};

use super::Wait;

/// Which store a test runs on.
#[derive(Clone)]
pub enum Kind {
    Sqlite(PathBuf),
    Dynamo(String),
}

impl Kind {
    pub fn sqlite(dir: &Path) -> Self {
        Kind::Sqlite(dir.join("s.sqlite"))
    }

    /// A new table (named after the test binary's prefix) on the local AWS server.
    pub fn dynamo() -> Self {
        let table = super::unique_name("curflow-contract");
        let store = DynamoStore::connect(&table, &super::aws_settings()).wait().unwrap();
        assert!(store.create_table_if_missing().wait().unwrap());
        Kind::Dynamo(table)
    }

    /// The `--store` argument.
    pub fn location(&self) -> String {
        match self {
            Kind::Sqlite(p) => p.to_str().unwrap().to_string(),
            Kind::Dynamo(t) => format!("dynamodb://{t}"),
        }
    }

    /// A handle of its own on the store (its own connection or client, as a second process has).
    pub fn open(&self) -> Box<dyn Store> {
        match self {
            Kind::Sqlite(p) => Box::new(SqliteStore::open(p).unwrap()),
            Kind::Dynamo(t) => Box::new(DynamoStore::connect(t, &super::aws_settings()).wait().unwrap()),
        }
    }
}

/// Two tests running `$check(&Kind)` on each store: SQLite in a temporary directory, DynamoDB on
/// the local server.
#[macro_export]
macro_rules! on_both_stores {
    ($check:ident: $sqlite:ident, $dynamodb:ident) => {
        #[test]
        fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $check(&common::stores::Kind::sqlite(dir.path()));
        }

        #[test]
        fn $dynamodb() {
            $check(&common::stores::Kind::dynamo());
        }
    };
}
