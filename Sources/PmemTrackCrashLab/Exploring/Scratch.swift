import Glibc
import PmemTrack
import Synchronization

/// The scratch mapping that crash images are built in, and the durable
/// image of the crash point being explored.
///
/// An image is the durable image with some units replaced by their bytes at
/// the crash point. Each is built in place and undone after its check: the
/// units it applied, and every range the check wrote, found through the
/// scratch mapping's own write tracking (its dirty blocks, and the runs its
/// syncs flushed, which the observer notes) are copied back from the durable
/// image. A check therefore costs the units it applies and the blocks it
/// writes, not the mapping's size.
final class Scratch {
    /// Notes the runs that syncs of the scratch mapping flush; performs none.
    final class Observer: DurabilityObserver, @unchecked Sendable {
        let flushed = Mutex<[Range<Int>]>([])
        var forwardsFlushes: Bool { false }
        var collectsWholeMapping: Bool { false }
        func syncWillStart(_ range: Range<Int>, site: CallSite) {}
        func syncDidCollect() {}
        func didFlush(_ range: Range<Int>, bytes: UnsafeRawBufferPointer) { flushed.withLock { $0.append(range) } }
        func didDrain(_ ranges: [Range<Int>], succeeded: Bool) {}
        func syncDidEnd(_ range: Range<Int>, site: CallSite, error: PmemTrackError?) {}
        func crashPoint(_ label: String, site: CallSite) {}
    }

    let mapping: TrackedMapping
    let path: String
    private let observer = Observer()
    /// The durable image of the current crash point.
    let durable: UnsafeMutableRawBufferPointer

    init(length: Int, directory: String) throws(CrashLabError) {
        path = "\(directory)/pmemtrack-crashlab-scratch-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            mapping = try TrackedMapping(
                path: path, length: length, options: [.create, .exclusive],
                // mprotect: the dirty ranges asked after every image are then
                // an index walk, not a page-table scan of the whole mapping.
                configuration: .init(flushMode: .msync, tracking: .mprotect), observer: observer)
        } catch {
            throw .mapping(error, path: path)
        }
        unlink(path)
        durable = .allocate(byteCount: length, alignment: 64)
        durable.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        try? mapping.close()
        durable.deallocate()
    }

    /// Writes `bytes` at `offset` into the durable image and the scratch
    /// mapping alike.
    func commit(_ bytes: [UInt8], at offset: Int) {
        bytes.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: durable[offset..<(offset + source.count)]).copyMemory(from: source)
            UnsafeMutableRawBufferPointer(rebasing: mapping.bytes[offset..<(offset + source.count)]).copyMemory(from: source)
        }
    }

    /// After commits: forget the scratch mapping's dirty blocks, which all
    /// equal the durable image now.
    func settle() {
        _ = try? mapping.sync()
        observer.flushed.withLock { $0.removeAll() }
    }

    /// Copies the durable image back over `range`.
    func restore(_ range: Range<Int>) {
        UnsafeMutableRawBufferPointer(rebasing: mapping.bytes[range])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: durable[range]))
    }

    /// Undoes an image and its check: the applied units, then whatever the
    /// check wrote.
    func restore(applied: [Range<Int>]) {
        for range in applied { restore(range) }
        let flushed = observer.flushed.withLock { ranges in
            defer { ranges.removeAll(keepingCapacity: true) }
            return ranges
        }
        for range in flushed { restore(range) }
        for range in mapping.dirtyRanges() { restore(range) }
    }
}
