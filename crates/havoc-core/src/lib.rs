pub mod hash;
pub mod sql;
