import ArgumentParser

/// A size on the command line: a number of bytes with an optional binary
/// suffix, `K`, `M`, `G` or `T` (powers of 1024), as in `256M` or `1G`.
struct ByteCount: ExpressibleByArgument, CustomStringConvertible, Hashable {
    var bytes: Int

    init(bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let text = argument.uppercased().replacingOccurrences(of: "IB", with: "").replacingOccurrences(of: "B", with: "")
        let shifts: [Character: Int] = ["K": 10, "M": 20, "G": 30, "T": 40]
        var digits = Substring(text)
        var shift = 0
        if let last = text.last, let suffix = shifts[last] {
            shift = suffix
            digits = digits.dropLast()
        }
        guard let value = Int(digits), value > 0, value <= Int.max >> shift else { return nil }
        bytes = value << shift
    }

    var description: String { Self.format(bytes) }

    /// `bytes` in the largest binary unit that keeps it whole or at one decimal.
    static func format<T: BinaryInteger>(_ bytes: T) -> String {
        let value = Double(bytes)
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] where value >= Double(1 << shift) {
            let scaled = value / Double(1 << shift)
            return scaled == scaled.rounded() ? "\(Int(scaled)) \(unit)" : String(format: "%.1f %@", scaled, unit)
        }
        return "\(bytes) B"
    }
}
