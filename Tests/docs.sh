#!/usr/bin/env bash
# Builds the PmemTrack module's DocC documentation with the toolchain's docc,
# warnings as errors: a broken symbol link or an undocumented parameter fails,
# and so does a public symbol without a doc comment.
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

# Every public symbol has a doc comment: the module's own symbols in its
# symbol graph, not the members it inherits from the standard library's
# protocols (which the graph marks as synthesized).
python3 - "$graphs/own/PmemTrack.symbols.json" <<'PYTHON'
import json, sys
graph = json.load(open(sys.argv[1]))
public = [s for s in graph["symbols"]
          if s.get("accessLevel") in ("public", "open") and "::SYNTHESIZED::" not in s["identifier"]["precise"]]
missing = sorted(".".join(s["pathComponents"]) for s in public if not s.get("docComment"))
print(f"docs: {len(public)} public symbols, {len(missing)} without a doc comment")
if missing:
    print("undocumented:", *missing, sep="\n  ", file=sys.stderr)
    sys.exit(1)
PYTHON
echo "docs: $output"
