extension TrackedMapping {
    /// Pins the blocks overlapping `offset..<offset+length` for a writer that
    /// cannot fault: the kernel (`read(2)`, `pread`, `recv`, `io_uring`,
    /// O_DIRECT) or a device doing DMA.
    ///
    /// The blocks are marked dirty and made writable before this returns.
    /// While any pin covers a block, every sync flushes it but never
    /// write-protects it or marks it clean, so stores the external writer
    /// makes at any time are in the next sync. Pins nest: a block stays
    /// pinned until each pin over it is undone with ``unpin(offset:length:)``.
    /// Unpinning leaves the blocks dirty; the next sync cleans them.
    ///
    /// With ``TrackingMode/mprotect``, such writers fail with `EFAULT` on a
    /// clean block without a pin: it is read-only until a CPU store faults
    /// on it. With ``TrackingMode/userfaultfd`` the kernel's own writes fault
    /// in the kernel and are tracked without a pin; a pin is still needed
    /// for a device writing through a long-term pin (an io_uring registered
    /// buffer, RDMA), which the kernel reports once, when the page is pinned.
    ///
    /// - Throws: ``PmemTrackError/rangeOutOfBounds(offset:length:mappingLength:)``,
    ///   ``PmemTrackError/closed``, or ``PmemTrackError/system(_:operation:)``
    ///   if the blocks could not be made writable (nothing is pinned then).
    public func pin(offset: Int, length: Int) throws(PmemTrackError) {
        try whileOpen { () throws(PmemTrackError) in
            let blocks = try blocks(offset: offset, length: length)
            guard !blocks.isEmpty else { return }
            try withBlocksLocked(blocks) { () throws(PmemTrackError) in
                // DIRTY before writable, as on the fault path.
                index.set(.dirty, blocks)
                if case .failure(let errno) = tracker.makeWritable(blocks) {
                    throw .system(errno, operation: "mprotect")
                }
                pins.add(blocks)
                index.set(.pinned, blocks)
            }
        }
    }

    /// Undoes one ``pin(offset:length:)`` of the same range. The blocks stay
    /// dirty and writable until the next sync flushes and protects them.
    ///
    /// - Throws: ``PmemTrackError/notPinned(offset:length:)`` if some block
    ///   of the range is not pinned (nothing changes then), or as `pin`.
    public func unpin(offset: Int, length: Int) throws(PmemTrackError) {
        try whileOpen { () throws(PmemTrackError) in
            let blocks = try blocks(offset: offset, length: length)
            guard !blocks.isEmpty else { return }
            try withBlocksLocked(blocks) { () throws(PmemTrackError) in
                guard pins.covers(blocks) else { throw .notPinned(offset: offset, length: length) }
                for block in pins.remove(blocks) { index.clear(.pinned, block..<(block + 1)) }
            }
        }
    }

    /// Pins `offset..<offset+length`, calls `body` with those bytes, and
    /// unpins them, also when `body` throws.
    ///
    /// ```swift
    /// let n = try map.withPinnedRange(offset: 0, length: 4096) { buffer in
    ///     read(fd, buffer.baseAddress, buffer.count)   // the kernel writes here
    /// }
    /// try map.sync()
    /// ```
    public func withPinnedRange<Result>(
        offset: Int, length: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Result
    ) throws -> Result {
        try pin(offset: offset, length: length)
        defer { try? unpin(offset: offset, length: length) }
        return try body(UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
    }

    /// Runs `body` holding the locks of `blocks`, with asynchronous signals
    /// blocked as the sync engine does.
    private func withBlocksLocked(_ blocks: Range<UInt64>, _ body: () throws(PmemTrackError) -> Void) throws(PmemTrackError) {
        let savedMask = System.blockAsyncSignals()
        defer { System.restoreSignalMask(savedMask) }
        index.lock(blocks)
        defer { index.unlock(blocks) }
        try body()
    }
}
