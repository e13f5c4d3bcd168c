import CPmemTrack
import Foundation
import Testing
@testable import PmemTrack

/// What the userfaultfd backend promises beyond the shared contract: no VMA
/// splits, the kernel's own writes tracked, fork, and its choice and errors.
@Suite("userfaultfd backend", .enabled(if: Backends.userfaultfdAvailable))
struct UserfaultfdBackendTests {
    static let block = 4096

    @Test("1 GiB, every other page written, twice: one VMA, nothing lost, exactly the written blocks flushed",
          .tags(.exitTest, .stress))
    func everyOtherPageSplitsNothing() async {
        await #expect(processExitsWith: .success) {
            let file = TemporaryFile(in: "/dev/shm")
            let length = 1 << 30
            let image = try MediaImage(length: length)
            let map = try TrackedMapping.forTesting(path: file.path, length: length, flusher: image, tracking: .userfaultfd)
            unlink(file.path)
            try #require(map.trackingMode == .userfaultfd)
            let pages = Array(stride(from: 0, to: length / 4096, by: 2))
            for round in 1...2 {
                let before = map.statistics
                for page in pages {
                    map.bytes.storeBytes(of: UInt64(round << 40 | page), toByteOffset: page * 4096 + 8 * round, as: UInt64.self)
                }
                let vmas = ProcessMaps.vmaCount(within: [map.bytes])
                #expect(vmas == 1, "round \(round): the mapping is \(vmas) VMAs")
                try map.sync()
                let after = map.statistics
                #expect(after.blocksFlushed - before.blocksFlushed == UInt64(pages.count), "precision: flushed \(after.blocksFlushed - before.blocksFlushed)")
                #expect(after.writeFaults - before.writeFaults == UInt64(pages.count))
                #expect(map.dirtyRanges().isEmpty)
                let lost = image.withStableImage { media in
                    pages.first { page in
                        media.load(fromByteOffset: page * 4096 + 8 * round, as: UInt64.self) != UInt64(round << 40 | page)
                    }
                }
                #expect(lost == nil, "lost: page \(lost ?? -1) round \(round)")
            }
        }
    }

    /// The kernel's own stores into a clean block fault in the kernel and
    /// are tracked: no pin needed.
    @Test("read(2) and pread into a clean, unpinned range: the bytes are dirty, and durable after sync")
    func kernelWritesAreTracked() throws {
        let file = TemporaryFile(), input = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher, tracking: .userfaultfd)
        defer { try? map.close() }
        let fd = PinTests.source(input, count: 3 * Self.block)
        defer { close(fd) }
        #expect(read(fd, map.bytes.baseAddress! + Self.block + 100, 2 * Self.block) == 2 * Self.block)
        #expect(map.dirtyRanges() == [Self.block..<4 * Self.block])
        #expect(pread(fd, map.bytes.baseAddress! + 8 * Self.block, 10, 0) == 10)
        #expect(map.dirtyRanges() == [Self.block..<4 * Self.block, 8 * Self.block..<9 * Self.block])
        try map.sync()
        #expect(flusher.takeRuns() == [Self.block..<4 * Self.block, 8 * Self.block..<9 * Self.block])
        #expect(map.dirtyRanges().isEmpty)
        let contents = try #require(FileManager.default.contents(atPath: file.path))
        let expected = try #require(FileManager.default.contents(atPath: input.path))
        #expect(contents[(Self.block + 100)..<(3 * Self.block + 100)] == expected[0..<2 * Self.block])
        #expect(contents[(8 * Self.block)..<(8 * Self.block + 10)] == expected[0..<10])
    }

    @Test("pins keep their meaning: a pinned block is flushed by every sync and stays dirty until unpinned")
    func pins() throws {
        let file = TemporaryFile(), input = TemporaryFile()
        let flusher = RecordingFlusher()
        let map = try TrackedMapping.forTesting(path: file.path, length: 1 << 20, flusher: flusher, tracking: .userfaultfd)
        defer { try? map.close() }
        let fd = PinTests.source(input, count: Self.block)
        defer { close(fd) }
        try map.pin(offset: Self.block, length: Self.block)
        #expect(map.dirtyRanges() == [Self.block..<2 * Self.block])
        try map.sync()
        #expect(flusher.takeRuns() == [Self.block..<2 * Self.block])
        #expect(pread(fd, map.bytes.baseAddress! + Self.block, 16, 0) == 16)
        try map.sync()
        #expect(flusher.takeRuns() == [Self.block..<2 * Self.block], "still pinned: flushed again")
        #expect(map.dirtyRanges() == [Self.block..<2 * Self.block])
        try map.unpin(offset: Self.block, length: Self.block)
        try map.sync()
        #expect(map.dirtyRanges().isEmpty)
    }

    @Test("statistics: backend counters, write faults per clean block, and dirty blocks seen before any sync")
    func statistics() throws {
        let file = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .userfaultfd))
        defer { try? map.close() }
        #expect(map.trackingMode == .userfaultfd)
        map.bytes[0] = 1
        map.bytes[1] = 1
        map.bytes[5 * Self.block] = 1
        let stats = map.statistics
        #expect(stats.dirtyBlocks == 2 && stats.writeFaults == 2)
        #expect(stats.mprotect == nil && stats.userfaultfd != nil)
        try map.sync(offset: 0, length: 1)
        #expect(map.dirtyRanges() == [5 * Self.block..<6 * Self.block], "a ranged sync leaves the rest dirty")
        try map.sync()
        #expect(map.statistics.dirtyBlocks == 0 && map.statistics.writeFaults == 2)
    }

    /// The child of a fork loses the registration. Its own stores must be
    /// flushed by its own syncs: it re-arms and takes every block as dirty.
    @Test("fork: the child re-arms, and its own syncs make its stores durable; the parent keeps tracking", .tags(.exitTest))
    func fork() async {
        await #expect(processExitsWith: .success) {
            let file = TemporaryFile()
            let map = try TrackedMapping.forTesting(path: file.path, length: 64 * 4096, tracking: .userfaultfd)
            map.bytes[3 * 4096] = 3
            try map.sync()
            let pid = forkProcess()
            if pid == 0 {
                map.bytes[7 * 4096] = 77   // before any PmemTrack call in the child
                guard map.statistics.userfaultfd?.rearms == 1, map.dirtyRanges() == [0..<64 * 4096] else { _exit(3) }
                do { try map.sync() } catch { _exit(4) }
                guard map.dirtyRanges().isEmpty else { _exit(5) }
                map.bytes[9 * 4096] = 99   // after the re-arm: tracked exactly
                guard map.dirtyRanges() == [9 * 4096..<10 * 4096] else { _exit(6) }
                do { try map.sync(); try map.close() } catch { _exit(7) }
                _exit(0)
            }
            // Bounded: a child that hangs is killed, and the test fails.
            guard let status = waitForChild(pid, "the child to re-arm, write, sync and exit") else { return }
            try #require(status == 0, "child failed with wait status \(status)")
            let contents = try #require(FileManager.default.contents(atPath: file.path))
            #expect(contents[7 * 4096] == 77 && contents[9 * 4096] == 99, "the child's stores reached the file")
            // The parent's registration and descriptors are untouched.
            #expect(map.dirtyRanges().isEmpty, "the child's stores are not the parent's")
            map.bytes[11 * 4096] = 1
            #expect(map.dirtyRanges() == [11 * 4096..<12 * 4096], "the parent still tracks its own writes")
            #expect(map.statistics.userfaultfd?.rearms == 0)
            try map.sync()
            try map.close()
        }
    }
}

@Suite("Tracking mode")
struct TrackingModeTests {
    @Test("automatic picks userfaultfd where this kernel has it, else mprotect; mprotect when asked")
    func automaticChoice() throws {
        let file = TemporaryFile()
        let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
        defer { try? map.close() }
        #expect(map.trackingMode == (Backends.userfaultfdAvailable ? .userfaultfd : .mprotect))
        let other = TemporaryFile()
        let forced = try TrackedMapping(path: other.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .mprotect))
        defer { try? forced.close() }
        #expect(forced.trackingMode == .mprotect && forced.statistics.mprotect != nil)
    }

    @Test("kernels before 6.9 are refused for their PAGEMAP_SCAN bugs; later ones and odd strings are not")
    func kernelVersionGate() {
        for release in ["6.7.0", "6.8.12-arch1-1", "5.15.0-91-generic", "4.19.0"] {
            #expect(!UserfaultfdSupport.hasPagemapScanFixes(release: release), "\(release)")
        }
        for release in ["6.9.0", "6.18.44-fc-v857", "7.0.1", "10.2", "weird"] {
            #expect(UserfaultfdSupport.hasPagemapScanFixes(release: release), "\(release)")
        }
        // Detection accepted this kernel only if the gate did.
        #expect(!Backends.userfaultfdAvailable || UserfaultfdSupport.hasPagemapScanFixes(release: System.kernelRelease))
        #expect(!System.kernelRelease.isEmpty)
    }

    @Test("automatic leaves mappings over the userfaultfd limit to mprotect, and says so")
    func automaticSizeLimit() throws {
        let file = TemporaryFile()
        let length = TrackedMapping.TrackingMode.automaticUserfaultfdLimit + (1 << 20)
        let map = try TrackedMapping(path: file.path, length: length, options: [.create, .sparse])
        defer { try? map.close() }
        #expect(map.trackingMode == .mprotect)
        let choice = TrackedMapping.TrackingMode.automaticChoice(forPath: file.path)
        #expect(choice.mode == .mprotect && choice.reason.contains("larger than 4 GiB"))
        let small = TrackedMapping.TrackingMode.automaticChoice(forPath: NSTemporaryDirectory(), length: 1 << 30)
        #expect(small.mode == (Backends.userfaultfdAvailable ? .userfaultfd : .mprotect))
    }

    @Test("with PMEMTRACK_DISABLE_USERFAULTFD=1, userfaultfd is a typed error that leaves no file, and automatic falls back",
          .tags(.exitTest))
    func disabledByEnvironment() async {
        await #expect(processExitsWith: .success) {
            setenv("PMEMTRACK_DISABLE_USERFAULTFD", "1", 1)
            let file = TemporaryFile()
            do {
                _ = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create], configuration: .init(tracking: .userfaultfd))
                Issue.record("expected an error")
            } catch let error as PmemTrackError {
                #expect(error == .trackingUnavailable(.disabledByEnvironment), "\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: file.path), "a failed open leaves no file")
            let map = try TrackedMapping(path: file.path, length: 1 << 20, options: [.create])
            #expect(map.trackingMode == .mprotect)
            map.bytes[4096] = 1
            #expect(map.dirtyRanges() == [4096..<8192])
            try map.close()
        }
    }

    @Test("the DAX self-test passes on tmpfs and ext4, and a child that hangs is killed at the deadline",
          .enabled(if: Backends.userfaultfdAvailable))
    func directAccessSelfTest() {
        for directory in ["/dev/shm", NSTemporaryDirectory()] {
            // The deadline only turns a hung child into a failure: a generous bound.
            let result = DirectAccessSelfTest.run(in: directory, deadlineMilliseconds: Int32(Bound.wait.seconds * 1000), hang: false)
            #expect(throws: Never.self, "\(directory)") { try result.get() }
        }
        let hung = DirectAccessSelfTest.run(in: "/dev/shm", deadlineMilliseconds: 200, hang: true)
        #expect(throws: DirectAccessSelfTest.Failure(why: "the child did not finish within 200 ms and was killed")) { try hung.get() }
    }
}
