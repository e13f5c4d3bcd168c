import Synchronization

/// The mutex a userfaultfd mapping's collects hold from their scan until
/// the blocks it reported are DIRTY, guarding the backend's descriptors and
/// scan vector. It also counts the threads waiting for it, so that a test
/// can see a collect blocked here.
final class CollectLock<State>: @unchecked Sendable {
    private let mutex: Mutex<State>
    private let waitingThreads = Atomic(0)

    init(_ state: sending State) { mutex = Mutex(state) }

    /// Threads waiting to take the lock now.
    var waiting: Int { waitingThreads.load(ordering: .relaxed) }

    func withLock<T, E: Error>(_ body: (inout sending State) throws(E) -> sending T) throws(E) -> sending T {
        if let result = try mutex.withLockIfAvailable(body) { return result }
        waitingThreads.wrappingAdd(1, ordering: .relaxed)
        return try mutex.withLock { (state: inout sending State) throws(E) -> sending T in
            waitingThreads.wrappingSubtract(1, ordering: .relaxed)
            return try body(&state)
        }
    }
}
