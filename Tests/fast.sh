#!/usr/bin/env bash
# Runs the tests except those with the given tags (default: stress), in
# seconds rather than minutes: a tag filter for the command line.
#
# Swift Testing 6.3's command line selects tests by ID only (--filter and
# --skip take regular expressions on test IDs; "tag:stress" or ".stress" is
# matched as an ID, not a tag). So this lists the tests with their tags from
# the test binary's own event stream (the experimental "_tags" field) and
# skips the IDs of the tagged ones (a tagged suite: all of its tests).
#
#   swift build --build-tests --traits Metrics
#   bash Tests/fast.sh [TAG...]          (default: stress; e.g. stress exitTest)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=.build/debug/PmemTrackPackageTests.xctest
listing="$(mktemp)"
trap 'rm -f "$listing"' EXIT

SWT_EXPERIMENTAL_EVENT_STREAM_FIELDS_ENABLED=1 "$binary" --testing-library swift-testing --list-tests \
    --event-stream-version 0 --event-stream-output-path "$listing" > /dev/null

skip="$(python3 - "$listing" "${@:-stress}" <<'PYTHON'
import json, re, sys
tags = {"." + tag.lstrip(".") for tag in sys.argv[2:]}
ids = []
for line in open(sys.argv[1]):
    record = json.loads(line)
    if record.get("kind") == "test" and tags & set(record["payload"].get("_tags", [])):
        ids.append(record["payload"]["id"])
if not ids:
    sys.exit(f"fast.sh: no test is tagged {' or '.join(sorted(tags))}")
print("|".join("^" + re.escape(id) for id in sorted(ids)))
PYTHON
)"
exec "$binary" --testing-library swift-testing --skip "$skip"
