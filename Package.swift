// swift-tools-version: 6.1
//
// PmemTrack: exact dirty-block tracking and flushing for memory-mapped
// persistent memory and ordinary files.
//
// Library users resolve only swift-system. The property-based testing package
// is used by the test target alone, and SwiftPM's target-based dependency
// resolution never fetches it for packages that depend on PmemTrack.

import PackageDescription

let package = Package(
    name: "PmemTrack",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "PmemTrack", targets: ["PmemTrack"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
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
        .executableTarget(
            name: "pmemtrack-quickstart",
            dependencies: ["PmemTrack"],
            path: "Examples/QuickStart"
        ),
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
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
    ]
)
