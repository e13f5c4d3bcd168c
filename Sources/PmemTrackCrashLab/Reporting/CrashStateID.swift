/// The name of one crash image: the model, the crash point, a fingerprint
/// of the point's uncertain units, and the units present. Printed with each
/// failure; ``CrashLab/replay(_:check:)`` re-runs exactly that image.
///
/// Its text form is `model/p<point>/<fingerprint>/+<units>`, for example
/// `adr/p17/5c0ffee1/+64,66-67`, where units are unit numbers (byte offset
/// divided by the unit size) and `+` with nothing after it means none.
public struct CrashStateID: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    public let model: CrashModel
    public let point: Int
    /// A hash of the point's uncertain units, to notice a changed workload.
    public let fingerprint: UInt32
    /// The unit numbers present in the image, ascending.
    public let present: [Int]

    init(model: CrashModel, point: Int, fingerprint: UInt32, present: [Int]) {
        self.model = model
        self.point = point
        self.fingerprint = fingerprint
        self.present = present.sorted()
    }

    public var description: String {
        var parts: [String] = []
        var i = 0
        while i < present.count {
            var j = i
            while j + 1 < present.count && present[j + 1] == present[j] + 1 { j += 1 }
            parts.append(i == j ? "\(present[i])" : "\(present[i])-\(present[j])")
            i = j + 1
        }
        let hex = String(fingerprint, radix: 16)
        return "\(model)/p\(point)/\(String(repeating: "0", count: 8 - hex.count) + hex)/+\(parts.joined(separator: ","))"
    }

    /// Parses ``description``; nil if `text` is not a replay ID.
    public init?(_ text: String) {
        let fields = text.split(separator: "/", omittingEmptySubsequences: false)
        guard fields.count == 4, let model = try? CrashModel(parsing: String(fields[0])),
              fields[1].first == "p", let point = Int(fields[1].dropFirst()), point >= 0,
              fields[2].count == 8, let fingerprint = UInt32(fields[2], radix: 16),
              fields[3].first == "+"
        else { return nil }
        var present: [Int] = []
        for range in fields[3].dropFirst().split(separator: ",") {
            let bounds = range.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), low >= 0 else { return nil }
            let high = bounds.count == 2 ? Int(bounds[1]) : low
            guard let high, high >= low, high - low < 1 << 24, present.last.map({ $0 < low }) ?? true else { return nil }
            present.append(contentsOf: low...high)
        }
        self.init(model: model, point: point, fingerprint: fingerprint, present: present)
    }
}
