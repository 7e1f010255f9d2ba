//! Synthetic captures: a pcap writer and packet builders for tests and benchmarks.
