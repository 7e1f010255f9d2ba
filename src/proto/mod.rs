//! Application protocols: recognizers and parsers that label flows.

pub mod wellknown;
