import ExampleWorkloads
import PmemTrack
import PmemTrackCrashLab

/// The zoo's workloads on the write-ahead log: groups of records, each
/// committed and then acknowledged, and truncations between them, laid out
/// so that the flaw under test matters. The buggy and the correct log run
/// the same steps. Acknowledgements are LSNs.
///
/// The check is the log's recovery: every acknowledged record not truncated
/// is there, and every record it returns was appended, with its bytes.
struct LogZoo {
    enum Step {
        /// Appends records with these payload sizes, commits, acknowledges.
        case group([Int])
        /// `truncate(before: nextLSN - keeping)`; 0 empties and rewinds the log.
        case truncate(keeping: Int)
    }

    let steps: [Step]
    /// Payload sizes by LSN, from LSN 1.
    let sizes: [Int]

    init(bug: WriteAheadLog.Flaw) {
        switch bug {
        case .commitReturnsBeforeSync:
            steps = [.group([40]), .group([40]), .group([40])]
        case .commitSyncsLastRecordOnly, .commitSyncRoundsDown:
            // A group across a block boundary: the first record fills block
            // 1 (4096 bytes with its header), the second starts block 2.
            steps = [.group([4072, 40]), .group([40])]
        case .checksumSkipsPayload:
            // The second record's header ends block 1 (at 8160); its payload
            // runs into block 2, another line and page.
            steps = [.group([4040]), .group([100])]
        case .headerAlwaysInFirstSlot:
            steps = [.group([40, 40]), .truncate(keeping: 1), .group([40]), .truncate(keeping: 0), .group([40])]
        case .headerNeverSynced:
            // The rewind's header says where the new records start; without
            // it, recovery reads them with the old header.
            steps = [.group([40]), .truncate(keeping: 0), .group([40])]
        }
        sizes = steps.flatMap { step -> [Int] in
            if case .group(let sizes) = step { return sizes }
            return []
        }
    }

    /// Record `lsn`'s payload: its name, then a filler byte. Records of
    /// more than 512 bytes are filled with zeros, so that their many lines
    /// do not differ from a zeroed file and add no uncertain units.
    func payload(_ lsn: UInt64) -> [UInt8] {
        let name = Array("record \(lsn) ".utf8)
        let size = sizes[Int(lsn) - 1]
        return name + Array(repeating: size > 512 ? 0 : 0xA0 | UInt8(lsn & 0xF), count: size - name.count)
    }

    func run(_ mapping: TrackedMapping, _ promises: Promises<UInt64>, flaw: WriteAheadLog.Flaw?) throws {
        let log = try WriteAheadLog(mapping: mapping, flaw: flaw)
        for step in steps {
            switch step {
            case .group(let sizes):
                var group: [UInt64] = []
                for _ in sizes {
                    let lsn = try log.append(payload(log.nextLSN))
                    promises.begin(lsn)
                    group.append(lsn)
                }
                try log.commit()
                group.forEach(promises.acknowledge)
            case .truncate(let keeping):
                try log.truncate(before: log.nextLSN - UInt64(keeping))
            }
        }
    }

    func check(_ image: CrashImage<UInt64>, flaw: WriteAheadLog.Flaw?) throws {
        let log = try WriteAheadLog(mapping: image.mapping, flaw: flaw)
        let promised = Set(image.acknowledged + image.inFlight)
        for lsn in image.acknowledged where lsn >= log.firstLSN {
            try image.require(lsn < log.nextLSN, "acknowledged record \(lsn) lost")
        }
        try log.forEachRecord { lsn, bytes in
            try image.require(promised.contains(lsn), "record \(lsn) that nobody appended")
            try image.require(bytes.elementsEqual(payload(lsn)), "record \(lsn) holds other bytes")
        }
    }
}
