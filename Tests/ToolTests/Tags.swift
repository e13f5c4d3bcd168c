import Testing

// The stress tag of PmemTrackTests (Support/Tags.swift), which this target
// cannot import.
extension Tag {
    /// Takes more than a few seconds.
    @Tag static var stress: Self
}
