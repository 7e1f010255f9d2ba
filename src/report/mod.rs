//! Renderers: JSON, NDJSON, text.
