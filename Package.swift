// swift-tools-version: 6.1
//
// PmemTrack: exact dirty-block tracking and flushing for memory-mapped
// persistent memory and ordinary files.
//
// Linux only. Write tracking uses Linux interfaces: userfaultfd with
// asynchronous write-protect and the PAGEMAP_SCAN ioctl, or SIGSEGV-based
// tracking that reads the Linux signal frame; flushing uses libpmem. SwiftPM
// has no "Linux only" platform entry, so `platforms` names none: that is not
// a claim of support elsewhere, and the build fails on other systems. (The
// manifest does not refuse them itself: it is compiled for the host, and
// refusing a macOS host would also refuse cross-compiling to Linux.)
//
// Library users build only swift-system. swift-argument-parser is used by the
// `pmemtrack` command-line tool alone: a package that depends on the
// PmemTrack library product has it cloned but compiles none of it.
// swift-property-based is used by the tests alone and is not even fetched.
// swift-metrics is used by the PmemTrackMetrics product alone, behind the
// package trait `Metrics`: a package that does not enable the trait never
// resolves it. To use the product:
//
//     .package(url: "…/PmemTrack.git", from: "…", traits: ["Metrics"])
//
// and, here, `swift build --traits Metrics` / `swift test --traits Metrics`.

import PackageDescription

let package = Package(
    name: "PmemTrack",
    products: [
        .library(name: "PmemTrack", targets: ["PmemTrack"]),
        .executable(name: "pmemtrack", targets: ["PmemTrackCLI"]),
        // Test support: crash simulation for applications' own tests. It
        // depends on nothing but PmemTrack, so a package that uses only the
        // PmemTrack product resolves and builds nothing more for it.
        .library(name: "PmemTrackCrashLab", targets: ["PmemTrackCrashLab"]),
        // Each mapping's syncs reported to swift-metrics. Empty unless the
        // `Metrics` trait is enabled.
        .library(name: "PmemTrackMetrics", targets: ["PmemTrackMetrics"]),
    ],
    traits: [
        .trait(
            name: "Metrics",
            description: "Builds the PmemTrackMetrics product on swift-metrics. Off by default: users of the other products never resolve swift-metrics."
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibpmem",
            pkgConfig: "libpmem",
            providers: [.apt(["libpmem-dev"])]
        ),
        .target(
            name: "CPmemTrack",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "PmemTrack",
            dependencies: [
                "CPmemTrack",
                "CLibpmem",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(name: "PmemTrackCrashLab", dependencies: ["PmemTrack"]),
        .target(
            name: "PmemTrackMetrics",
            dependencies: [
                "PmemTrack",
                .product(name: "Metrics", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
            ]
        ),
        // The `pmemtrack` tool: example workloads, the flush-set growth
        // experiment and a report of what the system offers.
        .executableTarget(
            name: "PmemTrackCLI",
            dependencies: [
                "PmemTrack",
                "ExampleWorkloads",
                "CrashZoo",
                "PmemTrackCrashLab",
                "CPmemTrack",
                "CLibpmem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Examples: data structures an application would keep in a tracked
        // mapping, and a small program for each.
        .target(name: "ExampleWorkloads", dependencies: ["PmemTrack"], path: "Examples/Workloads"),
        // The crash lab's bug zoo and the examples' crash scenarios, for the
        // tests and `pmemtrack crash`.
        .target(
            name: "CrashZoo", dependencies: ["ExampleWorkloads", "PmemTrack", "PmemTrackCrashLab"],
            path: "Examples/CrashZoo"),
        .executableTarget(name: "QuickStart", dependencies: ["PmemTrack"], path: "Examples/QuickStart"),
        .executableTarget(
            name: "WriteAheadLogExample", dependencies: ["ExampleWorkloads", "PmemTrack"], path: "Examples/WriteAheadLog"),
        .executableTarget(
            name: "KeyValueStoreExample", dependencies: ["ExampleWorkloads", "PmemTrack"], path: "Examples/KeyValueStore"),
        .executableTarget(
            name: "RandomWriteExample", dependencies: ["ExampleWorkloads", "PmemTrack"], path: "Examples/RandomWrite"),
        // Test-only: crashes on purpose with the Swift crash handler enabled.
        .executableTarget(
            name: "pmemtrack-crash-fixture",
            dependencies: ["PmemTrack"],
            path: "Tests/CrashFixture"
        ),
        .testTarget(
            name: "PmemTrackTests",
            dependencies: [
                "PmemTrack",
                "CPmemTrack",
                // The bad-input table has the crash lab's arguments as rows
                // (and runs the built `pmemtrack` tool for the tool's).
                "PmemTrackCrashLab",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "CrashLabTests",
            dependencies: ["PmemTrackCrashLab", "PmemTrack", "ExampleWorkloads", "CrashZoo"]
        ),
        .testTarget(
            name: "PmemTrackMetricsTests",
            dependencies: [
                "PmemTrackMetrics",
                "PmemTrack",
                .product(name: "MetricsTestKit", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
            ]
        ),
        .testTarget(
            name: "ToolTests",
            dependencies: ["ExampleWorkloads", "PmemTrackCLI", "PmemTrack"]
        ),
    ]
)
