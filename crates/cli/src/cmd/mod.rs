//! One module per CLI command.

pub mod keys;
pub mod sanitize;
pub mod seal;
