#!/usr/bin/env bash
# What a package that depends on PmemTrack resolves and builds. Two
# throwaway consumer packages, beside a copy-free path dependency on this one:
#   1. one that uses only the PmemTrack library: it must resolve neither
#      swift-metrics nor swift-property-based, and compile neither the crash
#      lab nor the metrics product;
#   2. one that enables the `Metrics` trait and uses PmemTrackMetrics: it
#      resolves swift-metrics and reports a sync through it.
#
#   bash Tests/packaging.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap "rm -rf $work" EXIT

consumer() {   # NAME DEPENDENCY PRODUCT MAIN
    mkdir -p "$work/$1/Sources/$1"
    cat >"$work/$1/Package.swift" <<MANIFEST
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "$1",
    dependencies: [$2],
    targets: [.executableTarget(name: "$1", dependencies: [.product(name: "$3", package: "main")])]
)
MANIFEST
    printf '%s\n' "$4" >"$work/$1/Sources/$1/main.swift"
}

fail() { echo "packaging: $*" >&2; exit 1; }

# Builds and runs consumer NAME, which must print "flushed 1"; sets
# `checkouts` to the packages it resolved.
build_and_run() {
    (cd "$work/$1" && swift build -q 2>&1 | tail -20)
    output="$(cd "$work/$1" && swift run -q "$1")"
    [ "$output" = "flushed 1" ] || fail "$1 printed '$output'"
    checkouts="$(ls "$work/$1/.build/checkouts" 2>/dev/null | tr '\n' ' ')"
    echo "    resolved: $checkouts"
}

echo "==> a library user: PmemTrack only"
consumer LibraryUser ".package(name: \"main\", path: \"$root\")" PmemTrack '
import Glibc
import PmemTrack
let path = "/tmp/pmemtrack-packaging-\(getpid())"
defer { unlink(path) }
let map = try TrackedMapping(path: path, length: 1 << 20, options: [.create])
map.bytes[0] = 1
print("flushed", try map.sync().blocks)
try map.close()'
build_and_run LibraryUser
for unwanted in swift-metrics swift-property-based; do
    case " $checkouts " in *" $unwanted "*) fail "a PmemTrack-only user resolved $unwanted" ;; esac
done
# SwiftPM makes a directory for every target of the graph; a compiled one has
# object files in it.
for module in PmemTrackCrashLab PmemTrackMetrics; do
    if find "$work/LibraryUser/.build" -path "*/$module.build/*.o" | grep -q .; then
        fail "a PmemTrack-only user compiled $module"
    fi
done

echo "==> a metrics user: the Metrics trait and PmemTrackMetrics"
consumer MetricsUser ".package(name: \"main\", path: \"$root\", traits: [\"Metrics\"])" PmemTrackMetrics '
import Glibc
import PmemTrack
import PmemTrackMetrics
let path = "/tmp/pmemtrack-packaging-metrics-\(getpid())"
defer { unlink(path) }
let map = try TrackedMapping(path: path, length: 1 << 20, options: [.create])
let metrics = MappingMetrics(map)
map.bytes[0] = 1
print("flushed", try map.sync().blocks)
metrics.detach()
try map.close()'
build_and_run MetricsUser
case " $checkouts " in *" swift-metrics "*) ;; *) fail "the metrics user did not resolve swift-metrics" ;; esac
echo "packaging: ok"
