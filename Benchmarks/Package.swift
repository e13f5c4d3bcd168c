// swift-tools-version: 6.1
//
// PmemTrack's benchmarks: a separate package, so that the library's users
// never resolve package-benchmark. It depends on the root package by path.
//
// Run with ./run.sh (full) or ./run.sh --smoke (CI); see README.md.

import PackageDescription

let package = Package(
    name: "PmemTrackBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "PmemTrack", path: ".."),
        // ordo-one's package-benchmark, under the name its plugin asks for
        // (it warns about the older "package-benchmark" identity). The
        // MallocInterposer trait alone: the default traits also pull in a
        // runtime interposer that this machine cannot fetch.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The baselines, in C: a minimal fault handler and the raw flush work.
        .target(
            name: "BenchmarkBaselines",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("pmem")]
        ),
        // Fixtures, dirty patterns, timing and configuration shared by the suites.
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                "BenchmarkBaselines",
                .product(name: "PmemTrack", package: "PmemTrack"),
                .product(name: "Benchmark", package: "benchmark"),
            ]
        ),
    ]
)

// One executable per suite, in Benchmarks/<Name>, as package-benchmark expects.
// CrashLab measures the crash lab, a library product of its own.
for suite in ["FaultCost", "SyncCost", "SizeScaling", "EndToEnd", "IndexOps", "CrashLab"] {
    let crashLab: [Target.Dependency] = suite == "CrashLab" ? [.product(name: "PmemTrackCrashLab", package: "PmemTrack")] : []
    package.targets.append(
        .executableTarget(
            name: suite,
            dependencies: [
                "BenchmarkSupport",
                "BenchmarkBaselines",
                .product(name: "PmemTrack", package: "PmemTrack"),
                .product(name: "Benchmark", package: "benchmark"),
            ] + crashLab,
            path: "Benchmarks/\(suite)",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}
