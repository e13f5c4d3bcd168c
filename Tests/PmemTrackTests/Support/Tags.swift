import Testing

extension Tag {
    /// Takes more than a few seconds: the oracle stress runs, long
    /// concurrency tests, gigabyte mappings, thousands of cycles.
    @Tag static var stress: Self
    /// Has exit tests: runs (part of) its body in a child process.
    @Tag static var exitTest: Self
}
