import ArgumentParser
import PmemTrack

/// `--tracking`: the tracking backend of the mappings a command makes.
enum TrackingOption: String, CaseIterable, ExpressibleByArgument {
    case automatic, userfaultfd, mprotect

    var mode: TrackedMapping.TrackingMode {
        switch self {
        case .automatic: .automatic
        case .userfaultfd: .userfaultfd
        case .mprotect: .mprotect
        }
    }

    /// The name of a backend in use (never automatic).
    static func name(of mode: TrackedMapping.TrackingMode) -> String {
        switch mode {
        case .automatic: "automatic"
        case .userfaultfd: "userfaultfd"
        case .mprotect: "mprotect"
        }
    }
}
