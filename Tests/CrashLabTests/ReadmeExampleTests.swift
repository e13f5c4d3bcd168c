// The README's crash-test example, verbatim: it must compile and pass.
import PmemTrack
import PmemTrackCrashLab
import Testing

/// The structure under test: a counter kept as (sequence, value, checksum)
/// in two alternating slots; recovery takes the newest valid slot.
struct DurableCounter {
    let mapping: TrackedMapping
    private(set) var value: UInt64 = 0
    private var sequence: UInt64 = 0

    static func checksum(_ sequence: UInt64, _ value: UInt64) -> UInt64 {
        (sequence &* 0x9E37_79B9_7F4A_7C15) ^ value ^ 0xC0FFEE
    }

    /// Recovery: the newest slot whose checksum holds.
    init(mapping: TrackedMapping) {
        self.mapping = mapping
        for slot in [0, 64] {
            let sequence = mapping.bytes.load(fromByteOffset: slot, as: UInt64.self)
            let value = mapping.bytes.load(fromByteOffset: slot + 8, as: UInt64.self)
            let check = mapping.bytes.load(fromByteOffset: slot + 16, as: UInt64.self)
            if check == Self.checksum(sequence, value), sequence > self.sequence {
                (self.sequence, self.value) = (sequence, value)
            }
        }
    }

    mutating func increment() throws {
        sequence += 1
        value += 1
        let slot = Int(sequence % 2) * 64          // never overwrite the newest slot
        mapping.bytes.storeBytes(of: sequence, toByteOffset: slot, as: UInt64.self)
        mapping.bytes.storeBytes(of: value, toByteOffset: slot + 8, as: UInt64.self)
        mapping.bytes.storeBytes(of: Self.checksum(sequence, value), toByteOffset: slot + 16, as: UInt64.self)
        try mapping.sync(offset: slot, length: 24)
    }
}

@Test(arguments: [CrashModel.adr, .adrTornWords, .eadr, .pageCache(sector: 512)])
func counterNeverGoesBack(model: CrashModel) throws {
    let lab = try CrashLab<UInt64>(length: 1 << 16)
    try lab.record { mapping, promises in
        var counter = DurableCounter(mapping: mapping)
        for _ in 0..<20 {
            promises.begin(counter.value + 1)      // may survive a crash from here on
            try counter.increment()
            promises.acknowledge(counter.value)    // must survive from here on
        }
    }
    let report = try lab.explore(model: model) { image in
        let counter = DurableCounter(mapping: image.mapping)   // the real recovery code
        let floor = image.acknowledged.max() ?? 0
        let ceiling = (image.acknowledged + image.inFlight).max() ?? 0
        try image.require(counter.value >= floor, "counter fell to \(counter.value) after \(floor) was acknowledged")
        try image.require(counter.value <= ceiling, "counter \(counter.value) was never written")
    }
    report.recordIssues()
    #expect(report.verdict == .passed)
}
