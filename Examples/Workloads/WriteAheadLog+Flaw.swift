extension WriteAheadLog {
    /// A seeded crash-consistency bug: one decision of the log made wrong,
    /// for the crash lab's bug zoo (`Examples/CrashZoo`) to find. Each case
    /// names what the flawed log does; the code it changes is marked
    /// "Flaw" where the log makes that decision.
    ///
    /// A log opened with `flaw: nil` (the default) is the correct log, and
    /// runs exactly the code it runs without this type. A flawed log is for
    /// crash tests only: after a crash it can lose acknowledged records,
    /// return bytes nobody appended, or refuse to open. Open a flawed log's
    /// file with the same flaw: ``checksumSkipsPayload`` changes the format.
    public enum Flaw: String, CaseIterable, Sendable {
        /// ``WriteAheadLog/commit()`` syncs the records of the previous commit
        /// and leaves its own to the next one: it returns, and its caller
        /// acknowledges, before they are durable.
        case commitReturnsBeforeSync
        /// ``WriteAheadLog/commit()`` syncs only the last record appended, not
        /// every record since the last commit: the rest of a group is left
        /// out of the ranged sync.
        case commitSyncsLastRecordOnly
        /// ``WriteAheadLog/commit()`` syncs whole blocks from the one holding
        /// its first byte, and rounds their number down: one block short,
        /// unless the bytes end on a block boundary.
        case commitSyncRoundsDown
        /// Every header update overwrites the first slot instead of the slot
        /// the last update did not use: an update torn at the sector or line
        /// boundary the slot straddles, or between two of its words, leaves
        /// no valid header.
        case headerAlwaysInFirstSlot
        /// A record's CRC-32C covers its LSN, epoch and length but not its
        /// payload, which recovery returns all the same.
        case checksumSkipsPayload
        /// Header updates (a new log's and truncation's) are stored but never
        /// synced, and commits sync only records: recovery reads header slots
        /// that nothing made durable.
        case headerNeverSynced
    }
}
