import PmemTrack

/// One crash image, handed to the check: a private copy of what the mapping
/// could hold after a crash at ``point``, and what the workload had promised
/// by then.
///
/// Run the application's real recovery on ``mapping`` (or on ``bytes``, the
/// same memory) and throw if a promise is broken; ``require(_:_:fileID:line:)``
/// throws with a message. The lab restores the image afterwards, whatever
/// the recovery wrote. Do not close ``mapping``, and do not keep it past the
/// check.
public struct CrashImage<Acknowledgement: Hashable & Sendable> {
    /// A mapping of a scratch file holding the image. Its syncs are observed,
    /// not performed.
    public let mapping: TrackedMapping
    /// The image's bytes: `mapping.bytes`.
    public var bytes: UnsafeMutableRawBufferPointer { mapping.bytes }
    /// Operations acknowledged before the crash: their data must survive.
    public let acknowledged: [Acknowledgement]
    /// Operations begun and not acknowledged: their data may survive, or not.
    public let inFlight: [Acknowledgement]
    /// Where the workload was.
    public let point: CrashPoint
    public let model: CrashModel

    /// Throws ``CrashCheckFailure`` with `message` unless `condition` holds.
    /// Failures are grouped by the place of this call.
    public func require(
        _ condition: Bool, _ message: @autoclosure () -> String, fileID: String = #fileID, line: Int = #line
    ) throws(CrashCheckFailure) {
        guard condition else { throw CrashCheckFailure(message: message(), fileID: fileID, line: line) }
    }
}

/// A promise that a crash image broke, thrown by ``CrashImage/require(_:_:fileID:line:)``.
public struct CrashCheckFailure: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public let fileID: String
    public let line: Int

    public init(message: String, fileID: String = #fileID, line: Int = #line) {
        self.message = message
        self.fileID = fileID
        self.line = line
    }

    public var description: String { "\(message) (\(fileID):\(line))" }
}

/// An uncertain unit of a crash point: a cache line, 8-byte word, page or
/// sector of the mapping, by the model.
public struct CrashUnit: Hashable, Sendable, CustomStringConvertible {
    /// The unit's number: its byte offset divided by the unit size.
    public let number: Int
    /// Its bytes in the mapping.
    public let range: Range<Int>

    public var description: String {
        "0x\(String(range.lowerBound, radix: 16))..<0x\(String(range.upperBound, radix: 16))"
    }
}
