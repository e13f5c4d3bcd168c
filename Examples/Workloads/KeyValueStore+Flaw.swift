extension KeyValueStore {
    /// A seeded crash-consistency bug: one decision of the store made wrong,
    /// for the crash lab's bug zoo (`Examples/CrashZoo`) to find. Each case
    /// names what the flawed store does; the code it changes is marked
    /// "Flaw" where the store makes that decision.
    ///
    /// A store opened with `flaw: nil` (the default) is the correct store,
    /// and runs exactly the code it runs without this type. A flawed store
    /// is for crash tests only: after a crash it can tear a batch, return a
    /// value nobody put, or refuse to open. Open a flawed store's file with
    /// the same flaw: ``batchCommitWordUnaligned`` changes the format.
    public enum Flaw: String, CaseIterable, Sendable {
        /// ``KeyValueStore/putAtomically(_:)`` updates the slots in place
        /// without writing the redo record first: a crash between two slots,
        /// or before the commit, leaves part of the batch.
        case batchAppliedInPlace
        /// ``KeyValueStore/putAtomically(_:)`` makes its redo record and the
        /// commit word that commits it durable with one sync, in no order:
        /// the commit word can survive without the record.
        case batchCommitWordSyncedWithEntries
        /// ``KeyValueStore/putAtomically(_:)`` keeps its commit word 4 bytes
        /// past its place, at offset 508: across an 8-byte word, a cache line
        /// and a sector boundary, so that a crash can tear it.
        case batchCommitWordUnaligned
        /// A value longer than ``KeyValueStore/maximumValueSize`` is made
        /// durable by the same sync as the slot that points to it, not before
        /// it: the pointer can survive without its target.
        case largeValueSyncedWithPointer
    }
}
