/// Which crash images of a crash point the lab generates, given the point's
/// `n` uncertain units (lines, pages or sectors, by the model), numbered in
/// flush order: ascending in the mapping, the order in which a sync walks
/// its runs.
///
/// Strategies combine with ``+(_:_:)``; images that two of them both
/// generate are checked once. Snapshot-only models (``CrashModel/eadr``,
/// ``CrashModel/processCrash``) have one image per crash point whatever the
/// strategy.
public struct CrashStrategy: Hashable, Sendable, CustomStringConvertible {
    enum Part: Hashable, Sendable {
        case bounded(Int)
        /// k = 2 up to 64 units (at most 4,162 images), k = 1 above.
        case boundedByUnits
        case prefixes
        case reversePrefixes
        case omitOne
        case random(count: Int, seed: UInt64)
    }

    /// At or below this many units, every subset; above it, `parts`.
    let exhaustiveLimit: Int?
    let parts: [Part]

    /// Every one of the 2^n images when n ≤ `limit`. Above the limit this
    /// strategy alone generates nothing, and the report says so: the crash
    /// point is not covered. (The default limit, 12, is 4,096 images.)
    public static func exhaustive(limit: Int = 12) -> CrashStrategy {
        CrashStrategy(exhaustiveLimit: limit, parts: [])
    }

    /// Every image with at most `k` units present, and every image with at
    /// most `k` absent: small subsets catch a commit mark that became
    /// durable without its data; their complements catch all-but-one-line
    /// states when n is large (Chipmunk's bound, k = 2, both ways).
    public static func bounded(k: Int) -> CrashStrategy { CrashStrategy(exhaustiveLimit: nil, parts: [.bounded(k)]) }

    /// The first i units present, for i from 0 to n: a crash part-way
    /// through writing back in flush order (pmreorder's accumulative engine).
    public static let prefixes = CrashStrategy(exhaustiveLimit: nil, parts: [.prefixes])

    /// The last i units present, for i from 0 to n: write-back in the
    /// reverse order.
    public static let reversePrefixes = CrashStrategy(exhaustiveLimit: nil, parts: [.reversePrefixes])

    /// All units present but one, for each unit (ALICE's ordering check).
    public static let omitOne = CrashStrategy(exhaustiveLimit: nil, parts: [.omitOne])

    /// `count` images with each unit present with probability 1/2, from a
    /// generator seeded with `seed` and the crash point's number: the same
    /// seed gives the same images.
    public static func random(count: Int, seed: UInt64 = 0) -> CrashStrategy {
        CrashStrategy(exhaustiveLimit: nil, parts: [.random(count: count, seed: seed)])
    }

    /// Exhaustive up to 12 units; above, bounded (k = 2 up to 64 units, so
    /// at most 4,162 images, and k = 1 beyond), prefixes, reverse prefixes,
    /// omit-one and 256 seeded random images: about 4n + 260 images for
    /// large n.
    public static let `default` = CrashStrategy(
        exhaustiveLimit: 12,
        parts: [.boundedByUnits, .prefixes, .reversePrefixes, .omitOne, .random(count: 256, seed: 0)])

    /// Both strategies: exhaustive below the larger limit, and both sets of
    /// images above it.
    public static func + (lhs: CrashStrategy, rhs: CrashStrategy) -> CrashStrategy {
        let limit = [lhs.exhaustiveLimit, rhs.exhaustiveLimit].compactMap { $0 }.max()
        return CrashStrategy(exhaustiveLimit: limit, parts: lhs.parts + rhs.parts.filter { !lhs.parts.contains($0) })
    }

    func validated() throws(CrashLabError) -> CrashStrategy {
        if let limit = exhaustiveLimit, !(0...24).contains(limit) {
            throw .invalidStrategy("exhaustive limit \(limit) is not from 0 to 24")
        }
        for part in parts {
            switch part {
            case .bounded(let k) where k < 0: throw .invalidStrategy("bounded k \(k) is negative")
            case .random(let count, _) where count < 1: throw .invalidStrategy("random count \(count) is below 1")
            default: continue
            }
        }
        if exhaustiveLimit == nil && parts.isEmpty { throw .invalidStrategy("no strategy") }
        return self
    }

    /// What this strategy does at a point with `n` units, for reports.
    func name(forUnits n: Int) -> String {
        if let limit = exhaustiveLimit, n <= limit { return "exhaustive" }
        if parts.isEmpty { return "none (n > \(exhaustiveLimit ?? 0))" }
        return parts.map { part in
            part == .boundedByUnits ? Self.name(.bounded(n <= 64 ? 2 : 1)) : Self.name(part)
        }.joined(separator: "+")
    }

    /// Whether the strategy checks every image of a point with `n` units.
    func isExhaustive(forUnits n: Int) -> Bool {
        if let limit = exhaustiveLimit, n <= limit { return true }
        // Bounded k covers every subset once k reaches half of n.
        return parts.contains { part in
            switch part {
            case .bounded(let k): return 2 * k + 1 >= n
            case .boundedByUnits: return n <= 5
            default: return false
            }
        }
    }

    private static func name(_ part: Part) -> String {
        switch part {
        case .bounded(let k): return "bounded(\(k))"
        case .boundedByUnits: return "bounded(2 up to 64 units, else 1)"
        case .prefixes: return "prefixes"
        case .reversePrefixes: return "reversePrefixes"
        case .omitOne: return "omitOne"
        case .random(let count, let seed): return "random(\(count), seed \(seed))"
        }
    }

    public var description: String {
        var names = parts.map(Self.name)
        if let limit = exhaustiveLimit { names.insert("exhaustive(≤\(limit))", at: 0) }
        return names.joined(separator: " + ")
    }

    /// Calls `body` with each subset of `0..<n` this strategy generates at
    /// crash point `point`, as ascending unit positions, until it returns
    /// false. Subsets may repeat across parts; the explorer skips images it
    /// has checked.
    func forEachSubset(units n: Int, point: Int, _ body: ([Int]) -> Bool) {
        if let limit = exhaustiveLimit, n <= limit {
            for mask in 0..<(1 << n) {
                guard body((0..<n).filter { mask & (1 << $0) != 0 }) else { return }
            }
            return
        }
        for part in parts {
            guard Self.forEachSubset(of: part, units: n, point: point, body) else { return }
        }
    }

    private static func forEachSubset(of part: Part, units n: Int, point: Int, _ body: ([Int]) -> Bool) -> Bool {
        switch part {
        case .boundedByUnits:
            return forEachSubset(of: .bounded(n <= 64 ? 2 : 1), units: n, point: point, body)
        case .bounded(let k):
            let all = Array(0..<n)
            for size in 0...min(k, n) {
                guard forEachCombination(size: size, of: n, { chosen in
                    body(chosen) && (size == n - size || body(all.filter { !chosen.contains($0) }))
                }) else { return false }
            }
            return true
        case .prefixes:
            for i in 0...n { guard body(Array(0..<i)) else { return false } }
            return true
        case .reversePrefixes:
            for i in 0...n { guard body(Array((n - i)..<n)) else { return false } }
            return true
        case .omitOne:
            for i in 0..<n { guard body((0..<n).filter { $0 != i }) else { return false } }
            return true
        case .random(let count, let seed):
            var generator = SplitMix64(seed: seed ^ (UInt64(point) &* 0x9E37_79B9_7F4A_7C15))
            for _ in 0..<count {
                var subset: [Int] = []
                var bits: UInt64 = 0
                for unit in 0..<n {
                    if unit % 64 == 0 { bits = generator.next() }
                    if bits & (1 << UInt64(unit % 64)) != 0 { subset.append(unit) }
                }
                guard body(subset) else { return false }
            }
            return true
        }
    }

    /// Each `size`-element subset of `0..<n`, in lexicographic order.
    private static func forEachCombination(size: Int, of n: Int, _ body: ([Int]) -> Bool) -> Bool {
        var chosen = Array(0..<size)
        while true {
            guard body(chosen) else { return false }
            var i = size - 1
            while i >= 0 && chosen[i] == n - size + i { i -= 1 }
            if i < 0 { return true }
            chosen[i] += 1
            for j in (i + 1)..<size { chosen[j] = chosen[j - 1] + 1 }
        }
    }
}

/// A small, fast, seedable generator (SplitMix64, Steele, Lea and Flood,
/// OOPSLA 2014): the same seed gives the same sequence on every platform.
/// Package-wide: the `pmemtrack` tool's workloads use it too.
package struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
