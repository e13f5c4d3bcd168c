import CPmemTrack

extension DirtyIndex {
    /// Whether every summary bit matches the word below it, for every tag.
    /// O(N/64). Only meaningful while no other thread changes the index.
    var summariesAreConsistent: Bool { pmt_index_check_invariants(raw) }

    /// With `PMEMTRACK_CHECK_INVARIANTS` defined at build time
    /// (`swift build -Xswiftc -DPMEMTRACK_CHECK_INVARIANTS`), traps when the
    /// summaries are inconsistent. Call it only where nothing can change the
    /// index: a racing clear may leave a summary bit set above an empty word
    /// for a moment, which is harmless but not "consistent".
    @inline(__always)
    func checkInvariantsIfEnabled() {
        #if PMEMTRACK_CHECK_INVARIANTS
        precondition(summariesAreConsistent, "dirty index summaries are inconsistent")
        #endif
    }
}
