import Synchronization
import SystemPackage

/// Flush failures of one mapping, numbered, so that every sync in flight
/// when a flush fails hears of it (as the kernel's errseq_t reports a
/// writeback error to every file description, since the 2018 fsync reports
/// from PostgreSQL).
///
/// A sync notes the sequence number when it begins. When it ends, any
/// failure recorded since then on bytes overlapping its range is its error
/// too, even if it then flushed the same blocks successfully itself.
final class FailureLog: Sendable {
    private struct Entry {
        var sequence: UInt64
        var errno: Errno
        var range: Range<Int>
    }

    private struct State {
        var sequence: UInt64 = 0
        var recent: [Entry] = []
    }

    /// Failures remembered; a sync that missed more than this many reports
    /// the newest one, whatever its range.
    private static let capacity = 64
    private let state = Mutex(State())

    var sequence: UInt64 { state.withLock { $0.sequence } }

    func record(_ errno: Errno, range: Range<Int>) {
        state.withLock { state in
            state.sequence += 1
            state.recent.append(Entry(sequence: state.sequence, errno: errno, range: range))
            if state.recent.count > Self.capacity { state.recent.removeFirst() }
        }
    }

    /// The first failure after `sequence` that overlaps `range`, if any.
    func failure(after sequence: UInt64, overlapping range: Range<Int>) -> PmemTrackError? {
        state.withLock { state in
            guard state.sequence > sequence else { return nil }
            if let oldest = state.recent.first, oldest.sequence > sequence + 1, let newest = state.recent.last {
                return .flushFailed(newest.errno, range: newest.range)
            }
            return state.recent.first { $0.sequence > sequence && $0.range.overlaps(range) }
                .map { .flushFailed($0.errno, range: $0.range) }
        }
    }
}
