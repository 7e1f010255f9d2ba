//! Application protocols.
