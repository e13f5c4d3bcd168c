import PmemTrack

/// Walks a recording's crash points in order, generates each point's crash
/// images with a strategy, and runs the check on each in the scratch mapping.
///
/// ## Cost
/// Per crash point: its commits applied to the durable image, and one pass
/// over its snapshot to find the units that differ. Per image: a hash of the
/// units it applies (identical images are skipped), the units copied in, the
/// check, and the restore (see ``Scratch``).
final class Explorer<Acknowledgement: Hashable & Sendable> {
    typealias Check = (CrashImage<Acknowledgement>) throws -> Void

    /// An uncertain unit of the point being explored.
    struct Unit {
        let unit: CrashUnit
        /// Where its crash-point bytes are in `current`.
        let offset: Int
        /// Hash of its crash-point bytes XOR hash of its durable bytes: what
        /// applying it does to the image's hash.
        let delta: UInt64
    }

    /// The point being explored, ready for images.
    struct Prepared {
        let recorded: RecordedPoint
        let units: [Unit]
        /// The units' crash-point bytes, one after the other.
        let current: [UInt8]
        let promises: PromiseState<Acknowledgement>
        let acknowledgedSinceLastSync: [Acknowledgement]
        var fingerprint: UInt32 {
            var hash = ImageHash.seed
            for unit in units { hash = ImageHash.mix(hash ^ UInt64(unit.unit.number)) }
            return UInt32(truncatingIfNeeded: hash ^ (hash >> 32))
        }
    }

    let recording: Recording<Acknowledgement>
    let model: CrashModel
    let scratch: Scratch
    let check: Check
    private var commitsApplied = 0
    private var promises = PromiseState<Acknowledgement>()
    /// The promises at the last sync that completed before the current point.
    private var atLastCompletedSync = PromiseState<Acknowledgement>()
    private var acknowledgedAtLastCompletedSync = Set<Acknowledgement>()
    private var acknowledgedIndexed = 0
    /// The hash of the durable image, kept current as commits apply.
    private var durableHash: UInt64
    /// Checks run, minimisation and replays included.
    private(set) var checksRun = 0

    init(recording: Recording<Acknowledgement>, model: CrashModel, scratch: Scratch, check: @escaping Check) {
        self.recording = recording
        self.model = model
        self.scratch = scratch
        self.check = check
        durableHash = ImageHash.ofZeros(length: recording.length, unitSize: model.isSnapshotOnly ? 64 : model.unitSize)
    }

    /// Units of the image hash: the model's, or lines for snapshot-only
    /// models, whose images count as all units present.
    private var hashUnit: Int { model.isSnapshotOnly ? 64 : model.unitSize }

    /// Brings the durable image to `point` (points must come in order) and
    /// finds its uncertain units.
    func prepare(_ point: RecordedPoint) -> Prepared {
        precondition(point.commits >= commitsApplied, "crash points are explored in recording order")
        while commitsApplied < point.commits {
            let commit = recording.commits[commitsApplied]
            let range = commit.offset..<(commit.offset + commit.bytes.count)
            let old = hashOfDurable(covering: range)
            scratch.commit(commit.bytes, at: commit.offset)
            durableHash ^= old ^ hashOfDurable(covering: range)
            commitsApplied += 1
        }
        scratch.settle()
        promises.advance(to: point.events, in: recording.events)
        // Both advance with the points, so each event is applied once.
        atLastCompletedSync.advance(to: point.eventsAtLastCompletedSync, in: recording.events)
        while acknowledgedIndexed < atLastCompletedSync.acknowledged.count {
            acknowledgedAtLastCompletedSync.insert(atLastCompletedSync.acknowledged[acknowledgedIndexed])
            acknowledgedIndexed += 1
        }
        let earlier = acknowledgedAtLastCompletedSync

        let unitSize = hashUnit
        var units: [Unit] = []
        var current: [UInt8] = []
        let durable = UnsafeRawBufferPointer(scratch.durable)
        for piece in recording.snapshots[point.snapshot].pieces {
            piece.bytes.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let end = min(offset + unitSize, bytes.count)
                    let range = (piece.offset + offset)..<(piece.offset + end)
                    let now = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
                    let then = UnsafeRawBufferPointer(rebasing: durable[range])
                    if !now.elementsEqual(then) {
                        let number = range.lowerBound / unitSize
                        units.append(Unit(
                            unit: CrashUnit(number: number, range: range), offset: current.count,
                            delta: ImageHash.ofUnit(number, now) ^ ImageHash.ofUnit(number, then)))
                        current.append(contentsOf: now)
                    }
                    offset = end
                }
            }
        }
        return Prepared(
            recorded: point, units: units, current: current, promises: promises,
            acknowledgedSinceLastSync: promises.acknowledged.filter { !earlier.contains($0) })
    }

    /// The hash of what a check sees: the durable image with `present`
    /// applied, and the promises in force (the same image after another
    /// acknowledgement is another check).
    func hash(of present: [Int], in point: Prepared) -> UInt64 {
        var hash = durableHash ^ ImageHash.mix(ImageHash.seed &+ UInt64(point.recorded.events))
        if model.isSnapshotOnly {
            for unit in point.units { hash ^= unit.delta }
        } else {
            for i in present { hash ^= point.units[i].delta }
        }
        return hash
    }

    /// Builds the image with the units at positions `present` (every unit,
    /// for snapshot-only models), runs the check, restores the scratch
    /// mapping, and returns the check's error, if any.
    func run(_ present: [Int], in point: Prepared) -> (any Error)? {
        let positions = model.isSnapshotOnly ? Array(point.units.indices) : present
        var applied: [Range<Int>] = []
        applied.reserveCapacity(positions.count)
        point.current.withUnsafeBytes { current in
            for i in positions {
                let unit = point.units[i]
                let count = unit.unit.range.count
                UnsafeMutableRawBufferPointer(rebasing: scratch.mapping.bytes[unit.unit.range])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: current[unit.offset..<(unit.offset + count)]))
                applied.append(unit.unit.range)
            }
        }
        let image = CrashImage(
            mapping: scratch.mapping, acknowledged: point.promises.acknowledged, inFlight: point.promises.inFlight,
            point: point.recorded.point, model: model)
        checksRun += 1
        var failure: (any Error)?
        do { try check(image) } catch { failure = error }
        scratch.restore(applied: applied)
        return failure
    }

    private func hashOfDurable(covering range: Range<Int>) -> UInt64 {
        let unit = hashUnit
        var hash: UInt64 = 0
        var start = range.lowerBound / unit * unit
        let durable = UnsafeRawBufferPointer(scratch.durable)
        while start < range.upperBound {
            let end = min(start + unit, durable.count)
            hash ^= ImageHash.ofUnit(start / unit, UnsafeRawBufferPointer(rebasing: durable[start..<end]))
            start = end
        }
        return hash
    }
}

/// Image hashes that update in O(units changed): the hash of an image is
/// the XOR of a 64-bit hash of each of its units (number and bytes).
enum ImageHash {
    static let seed: UInt64 = 0x243F_6A88_85A3_08D3

    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func ofUnit(_ number: Int, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash = mix(seed ^ UInt64(bitPattern: Int64(number)))
        var offset = 0
        while offset + 8 <= bytes.count {
            hash = mix(hash ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        while offset < bytes.count {
            hash = mix(hash ^ UInt64(bytes[offset]))
            offset += 1
        }
        return hash
    }

    /// The hash of an all-zero image.
    static func ofZeros(length: Int, unitSize: Int) -> UInt64 {
        let zeros = [UInt8](repeating: 0, count: unitSize)
        var hash: UInt64 = 0
        zeros.withUnsafeBytes { zeros in
            var start = 0
            while start < length {
                let end = min(start + unitSize, length)
                hash ^= ofUnit(start / unitSize, UnsafeRawBufferPointer(rebasing: zeros[0..<(end - start)]))
                start = end
            }
        }
        return hash
    }
}
