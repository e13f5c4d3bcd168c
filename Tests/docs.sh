#!/usr/bin/env bash
# Builds the PmemTrack module's DocC documentation with the toolchain's docc,
# warnings as errors: a broken symbol link or an undocumented parameter fails.
# No package plugin is involved, so library users resolve nothing for it.
#
#   bash Tests/docs.sh [OUTPUT]     (default .build/docs/PmemTrack.doccarchive)
set -euo pipefail
cd "$(dirname "$0")/.."
output="${1:-.build/docs/PmemTrack.doccarchive}"
graphs="$(mktemp -d)"
trap 'rm -rf "$graphs"' EXIT

swift build --target PmemTrack -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc "$graphs/all"
# The module's own symbol graphs (its extensions of other modules' types too),
# not those of its dependencies.
mkdir -p "$graphs/own"
cp "$graphs"/all/PmemTrack.symbols.json "$graphs/own/"
cp "$graphs"/all/PmemTrack@*.symbols.json "$graphs/own/" 2>/dev/null || true

mkdir -p "$(dirname "$output")"
docc convert Sources/PmemTrack/PmemTrack.docc \
    --additional-symbol-graph-dir "$graphs/own" \
    --fallback-display-name PmemTrack \
    --fallback-bundle-identifier org.pmemtrack.PmemTrack \
    --warnings-as-errors \
    --output-path "$output"
echo "docs: $output"
