import Glibc
import PmemTrack

/// Tests an application's crash consistency: records a workload on a
/// ``TrackedMapping``, generates the crash images a power loss could leave at
/// each crash point, runs the application's own recovery on a private copy
/// of each, and reports every broken promise as a minimal, replayable image.
///
/// ```swift
/// @Test(arguments: [CrashModel.adr, .pageCache(sector: 512)])
/// func acknowledgedRecordsSurvive(model: CrashModel) throws {
///     let lab = try CrashLab<UInt64>(length: 1 << 20)
///     try lab.record { mapping, promises in
///         let log = try WriteAheadLog(mapping: mapping)
///         for i in 0..<16 {
///             let lsn = try log.append(Array("put k\(i)".utf8))
///             promises.begin(lsn)
///             try log.commit()
///             promises.acknowledge(lsn)
///         }
///     }
///     let report = try lab.explore(model: model) { image in
///         let log = try WriteAheadLog(mapping: image.mapping)   // the real recovery
///         try image.require(image.acknowledged.allSatisfy { $0 < log.nextLSN }, "an acknowledged record is lost")
///     }
///     report.recordIssues()
///     #expect(report.verdict == .passed)
/// }
/// ```
///
/// ## Crash points
/// Before each sync, inside it after each run's flush and before the drain
/// that makes it durable, after it, at each ``TrackedMapping/crashPoint(_:file:line:)``
/// the workload calls, and at its end. See ``CrashPointKind``.
///
/// ## Limits
/// The lab sees the mapping's bytes at crash points only. A value written
/// and overwritten between two crash points, and the order of stores inside
/// one cache line, are not observable: mark such steps with
/// ``TrackedMapping/crashPoint(_:file:line:)``. One recorded interleaving of
/// the workload's threads is explored, not others.
public final class CrashLab<Acknowledgement: Hashable & Sendable> {
    public let length: Int
    /// The recorded mapping's configuration: its flush mode and tracking mode.
    public let configuration: TrackedMapping.Configuration
    /// Where the recorded mapping's file is created (and removed).
    public let directory: String
    /// Where the scratch file for crash images is created (and removed).
    public let scratchDirectory: String
    private var recording: Recording<Acknowledgement>?

    /// - Parameters:
    ///   - length: The mapping's length in bytes.
    ///   - configuration: For the recorded mapping. Its flush path decides
    ///     which crash model fits: ``CrashModel/adr`` or ``CrashModel/eadr``
    ///     for persistent memory, ``CrashModel/pageCache(sector:)`` for files.
    ///   - directory: For the recorded mapping; default `$TMPDIR` or `/tmp`.
    public init(
        length: Int, configuration: TrackedMapping.Configuration = .init(), directory: String? = nil
    ) throws(CrashLabError) {
        guard length > 0 else { throw .invalidLength(length) }
        self.length = length
        self.configuration = configuration
        let temporary = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        self.directory = directory ?? temporary
        // Scratch images live in memory when they can: /dev/shm is tmpfs.
        self.scratchDirectory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : temporary
    }

    /// Runs `workload` on a new, zero-filled mapping and records it: the
    /// durable image as it evolves, the bytes that differ from it at each
    /// crash point, and the workload's promises. Replaces an earlier recording.
    ///
    /// The workload must not close the mapping. Its syncs and stores run at
    /// full speed; the recording copies each flushed run and, at each crash
    /// point, the dirty blocks that differ from the durable image.
    public func record(_ workload: (TrackedMapping, Promises<Acknowledgement>) throws -> Void) throws(CrashLabError) {
        let promises = Promises<Acknowledgement>()
        let recorder = Recorder(length: length, blockSize: configuration.blockSize, promiseEvents: { promises.count })
        let path = "\(directory)/pmemtrack-crashlab-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let mapping: TrackedMapping
        do {
            mapping = try TrackedMapping(
                path: path, length: length, options: [.create, .exclusive], configuration: configuration,
                observer: recorder)
        } catch {
            throw .mapping(error, path: path)
        }
        recorder.mapping = mapping
        defer {
            try? mapping.close()
            unlink(path)
        }
        do {
            try workload(mapping, promises)
        } catch {
            throw .workloadFailed("\(error)")
        }
        recorder.finish()
        recording = recorder.recording(of: promises)
    }

    /// How many crash points the last recording has, and how many bytes it keeps.
    public var recordedPoints: Int { recording?.points.count ?? 0 }
    public var recordedBytes: Int { recording?.recordedBytes ?? 0 }

    /// Generates the crash images `model` allows at each recorded crash point
    /// with `strategy`, runs `check` on each, and reports.
    ///
    /// `check` receives a private copy of the image (``CrashImage``); running
    /// the application's recovery on it and throwing on a broken promise is
    /// its whole job. Failures are grouped by cause (the crash point's call
    /// site and the place or type of the error), and the first image of each
    /// group is minimised by delta debugging before it is reported.
    ///
    /// - Throws: ``CrashLabError`` for invalid arguments, no recording, or a
    ///   scratch mapping that cannot be made. A failing image is a result,
    ///   not an error.
    /// - Parameter progress: Called after each crash point with the number
    ///   of points explored and the images checked so far (for a progress line).
    public func explore(
        model: CrashModel, strategy: CrashStrategy = .default, budget: CrashBudget = .unlimited,
        progress: ((_ pointsExplored: Int, _ imagesChecked: Int) -> Void)? = nil,
        check: @escaping (CrashImage<Acknowledgement>) throws -> Void
    ) throws(CrashLabError) -> CrashReport<Acknowledgement> {
        guard let recording else { throw .notRecorded }
        let model = try model.validated()
        let strategy = try strategy.validated()
        try budget.validate()
        let scratch = try Scratch(length: length, directory: scratchDirectory)
        let explorer = Explorer(recording: recording, model: model, scratch: scratch, check: check)
        var exploration = Exploration<Acknowledgement>(model: model, strategy: strategy, budget: budget)
        for (number, point) in recording.points.enumerated() {
            guard exploration.explore(point, with: explorer) else { break }
            progress?(number + 1, exploration.imagesChecked)
        }
        return exploration.report(pointsRecorded: recording.points.count, minimisationChecks: explorer.checksRun)
    }

    /// Re-runs the one image `id` names on the last recording (record the
    /// same workload first), and returns what `check` threw, or nil if it
    /// passed.
    ///
    /// - Throws: ``CrashLabError/replayMismatch(_:)`` if the recording has no
    ///   such crash point or units: the workload changed.
    public func replay(
        _ id: CrashStateID, check: @escaping (CrashImage<Acknowledgement>) throws -> Void
    ) throws(CrashLabError) -> (any Error)? {
        guard let recording else { throw .notRecorded }
        guard id.point < recording.points.count else {
            throw .replayMismatch("crash point \(id.point) of \(recording.points.count)")
        }
        let scratch = try Scratch(length: length, directory: scratchDirectory)
        let explorer = Explorer(recording: recording, model: id.model, scratch: scratch, check: check)
        let prepared = explorer.prepare(recording.points[id.point])
        guard prepared.fingerprint == id.fingerprint else {
            throw .replayMismatch("crash point \(id.point) has other uncertain units than when the ID was made")
        }
        var positions: [Int] = []
        for number in id.present {
            guard let position = prepared.units.firstIndex(where: { $0.unit.number == number }) else {
                throw .replayMismatch("unit \(number) is not uncertain at crash point \(id.point)")
            }
            positions.append(position)
        }
        return explorer.run(positions, in: prepared)
    }
}

/// When exploration stops: after so many images, or so much time, whichever
/// comes first. The report then says how far it got, and its verdict is
/// ``CrashReport/Verdict/notMeasured`` unless something failed.
public struct CrashBudget: Hashable, Sendable {
    public var images: Int?
    public var time: Duration?

    public init(images: Int? = nil, time: Duration? = nil) {
        self.images = images
        self.time = time
    }

    public static let unlimited = CrashBudget()
    public static func images(_ count: Int) -> CrashBudget { CrashBudget(images: count) }
    public static func time(_ duration: Duration) -> CrashBudget { CrashBudget(time: duration) }

    func validate() throws(CrashLabError) {
        if let images, images < 1 { throw .invalidBudget("\(images) images") }
        if let time, time <= .zero { throw .invalidBudget("\(time)") }
    }
}
