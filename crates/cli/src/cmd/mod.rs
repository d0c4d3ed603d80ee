//! One module per CLI command.

pub mod admin;
pub mod audit;
pub mod keys;
pub mod purge;
pub mod receipt;
pub mod sanitize;
pub mod seal;
pub mod serve;
