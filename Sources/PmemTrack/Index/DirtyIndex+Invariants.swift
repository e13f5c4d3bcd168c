import CPmemTrack

extension DirtyIndex {
    /// Whether every summary bit matches the word below it, for every tag.
    /// O(N/64). Only meaningful while no other thread changes the index.
    var summariesAreConsistent: Bool { pmt_index_check_invariants(raw) }

    /// With `PMEMTRACK_CHECK_INVARIANTS` defined at build time, traps when the
    /// summaries are inconsistent. Called by sync while it holds no locks.
    @inline(__always)
    func checkInvariantsIfEnabled() {
        #if PMEMTRACK_CHECK_INVARIANTS
        precondition(summariesAreConsistent, "dirty index summaries are inconsistent")
        #endif
    }
}
