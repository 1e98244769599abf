//! The `warden` binary's integration tests, in one test binary (link time on 2 cores):
//! - `offline`: the contract where no server is needed (exit codes, one-line errors);
//! - `e2e`: the real `warden` driving a real `wardend` process on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e;
mod offline;
