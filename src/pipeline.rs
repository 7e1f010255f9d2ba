//! The pipeline: one reader thread, N shard workers, one collector.

/// Flows are partitioned into this many logical shards, whatever the number
/// of worker threads; each worker owns `shard % threads == worker`. Caps and
/// eviction are per logical shard, so results never depend on `--threads`.
pub const LOGICAL_SHARDS: usize = 64;
