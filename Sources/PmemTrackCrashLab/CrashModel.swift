/// What a power loss (or a process crash) can leave of a mapping: the
/// crash images the lab generates at each crash point.
///
/// Each model names the hardware or kernel behaviour it simulates. All of
/// them start from the same two images of a crash point: the durable image
/// (every run whose drain succeeded, with the bytes it had when flushed) and
/// the current image (every store made so far). The units that differ
/// between the two are the uncertain units; a model says how big a unit is
/// and which combinations of them a crash can leave.
public struct CrashModel: Hashable, Sendable, CustomStringConvertible {
    /// The simulated system.
    public enum Kind: String, Hashable, Sendable {
        case adr, eadr, pageCache, processCrash
    }

    public let kind: Kind
    /// Bytes per uncertain unit; 0 where the model has no uncertain units.
    public let unitSize: Int

    /// Persistent memory on a platform with ADR (asynchronous DRAM refresh):
    /// the memory controller's write-pending queue survives a power loss,
    /// the CPU caches do not.
    ///
    /// An image is the durable image plus any subset of the 64-byte cache
    /// lines changed since their last drained flush, flushed or not: a dirty
    /// line can be evicted, and so become durable, at any moment before its
    /// flush, and a flush (`clwb`, `clflushopt`) is only known to be complete
    /// after the fence that drains it. Units are whole lines, so an aligned
    /// 8-byte word never tears.
    ///
    /// Sources: Intel, "eADR: New Opportunities for Persistent Memory
    /// Applications" (2021) for the ADR power-fail domain; libpmem2(7),
    /// GRANULARITY, for cache-line granularity; Raad et al., "Persistency
    /// Semantics of the Intel-x86 Architecture" (POPL 2020) for flushes being
    /// ordered only by a later fence.
    public static let adr = CrashModel(kind: .adr, unitSize: 64)

    /// ``adr``, with each 8-byte word of a line its own unit: stores to one
    /// line may reach the media partly. Stores to one line persist in program
    /// order, which PmemTrack cannot observe, so this over-approximates; use
    /// it for data that must survive any tearing above 8 bytes. PMDK's copy
    /// routines promise 8-byte atomic stores for aligned buffers and nothing
    /// larger (pmem2_get_memmove_fn(3)).
    public static let adrTornWords = CrashModel(kind: .adr, unitSize: 8)

    /// Persistent memory on a platform with eADR: the CPU caches are in the
    /// power-fail domain, so every store that completed survives, in program
    /// order. The only image is the crash point's snapshot; generating
    /// subsets would reorder stores that the hardware keeps in order (Intel,
    /// "eADR", 2021; libpmem2(7), BYTE granularity).
    public static let eadr = CrashModel(kind: .eadr, unitSize: 0)

    /// An ordinary file through the page cache (msync, fdatasync): any subset
    /// of the pages dirtied since their last successful sync, because the
    /// kernel writes dirty pages back whenever and in whatever order it likes,
    /// and only a completed sync makes earlier writes durable (the worst case
    /// dm-log-writes replays, Documentation/admin-guide/device-mapper/
    /// log-writes.rst). A failed sync leaves its pages uncertain: Linux may
    /// have written some of them and marks them clean anyway (Rebello et al.,
    /// "Can Applications Recover from fsync Failures?", ATC 2020).
    ///
    /// - Parameter sector: With a sector size (512 or 4096 bytes... any power
    ///   of two from 512 to the page size), a page write in flight may also
    ///   tear: each sector of a dirty page is its own unit, as PostgreSQL's
    ///   `full_page_writes` documentation assumes. nil: pages never tear.
    public static func pageCache(sector: Int? = nil) -> CrashModel {
        CrashModel(kind: .pageCache, unitSize: sector ?? pageSize)
    }

    /// A process crash (SIGKILL, a trap) with the system still up: every
    /// store to a shared file mapping or persistent memory survives. The only
    /// image is the crash point's snapshot; it tests recovery from states in
    /// the middle of an operation.
    public static let processCrash = CrashModel(kind: .processCrash, unitSize: 0)

    /// The page size the page-cache model assumes.
    public static let pageSize = 4096

    init(kind: Kind, unitSize: Int) {
        self.kind = kind
        self.unitSize = unitSize
    }

    /// Whether an image is the crash point's snapshot only.
    var isSnapshotOnly: Bool { unitSize == 0 }

    /// Checks a model built from user input (``init(parsing:)``, or a sector
    /// size given to ``pageCache(sector:)``).
    func validated() throws(CrashLabError) -> CrashModel {
        if kind == .pageCache {
            guard unitSize >= 512, unitSize <= Self.pageSize, unitSize & (unitSize - 1) == 0 else {
                throw .invalidSectorSize(unitSize)
            }
        }
        return self
    }

    /// `adr`, `adr-words`, `eadr`, `page-cache`, `page-cache-512`, `process-crash`:
    /// the names used in replay IDs and by `pmemtrack crash --model`.
    public var description: String {
        switch kind {
        case .adr: return unitSize == 64 ? "adr" : "adr-words"
        case .eadr: return "eadr"
        case .pageCache: return unitSize == Self.pageSize ? "page-cache" : "page-cache-\(unitSize)"
        case .processCrash: return "process-crash"
        }
    }

    /// Parses ``description``.
    public init(parsing text: String) throws(CrashLabError) {
        switch text {
        case "adr": self = .adr
        case "adr-words": self = .adrTornWords
        case "eadr": self = .eadr
        case "page-cache": self = .pageCache()
        case "process-crash": self = .processCrash
        default:
            guard text.hasPrefix("page-cache-"), let sector = Int(text.dropFirst("page-cache-".count)) else {
                throw .unknownModel(text)
            }
            self = try CrashModel.pageCache(sector: sector).validated()
        }
    }
}
