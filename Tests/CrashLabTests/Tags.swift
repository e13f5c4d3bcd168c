import Testing

// The same tags as PmemTrackTests' (Support/Tags.swift), which this target
// cannot import.
extension Tag {
    /// Takes more than a few seconds.
    @Tag static var stress: Self
    /// Has exit tests: runs (part of) its body in a child process.
    @Tag static var exitTest: Self
}
