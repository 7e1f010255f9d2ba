#!/bin/sh
# tshark as the oracle for the EPM parsers: every tower named in an EPM
# response (ept_map / ept_lookup) of every shared capture, one JSON object per
# line, written to tests/data/epm_tshark.jsonl. tests/epm_parsers.rs compares
# exflow's parsers against it. tshark is not a test dependency: the output is
# committed. Re-run after adding a capture or upgrading tshark:
#
#     sh tests/support/epm_expected.sh
#
# Paths are relative to the crate root (the oracle lives in ../shared/tools).
set -eu
cd "$(dirname "$0")/../.."
out=tests/data/epm_tshark.jsonl
tmp="$out.tmp"
: > "$tmp"
for f in ../shared/captures/lab/*/*.pcap ../shared/captures/public/*/*; do
    case "$f" in
        *.pcap|*.pcapng) python3 ../shared/tools/epm_oracle.py "$f" >> "$tmp" ;;
    esac
done
mv "$tmp" "$out"
echo "$(wc -l < "$out") towers -> $out" >&2
