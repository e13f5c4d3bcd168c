import Synchronization

/// What the recorded workload promised its user, in the order it did:
/// the oracle that each crash image is checked against.
///
/// Call ``begin(_:)`` when an operation starts (its data may or may not
/// survive a crash before it is acknowledged), and ``acknowledge(_:)`` when
/// the workload tells its user the operation is done: from then on its data
/// must survive every crash. Acknowledging without `begin` is fine.
public final class Promises<Acknowledgement: Hashable & Sendable>: Sendable {
    @usableFromInline
    enum Event: Sendable {
        case began(Acknowledgement)
        case acknowledged(Acknowledgement)
    }

    @usableFromInline
    let events = Mutex<[Event]>([])
    /// `events.count`, readable without the lock and without the generic
    /// type's metadata: the recorder reads it at every crash point.
    @usableFromInline
    let eventCount = Atomic<Int>(0)

    init() {}

    /// An operation whose data may survive a crash from now on.
    ///
    /// Inlinable, like ``acknowledge(_:)``: a workload calls them once per
    /// operation, and specialized for its type they cost a lock and an append.
    @inlinable
    public func begin(_ operation: Acknowledgement) {
        append(.began(operation))
    }

    /// An operation the workload has told its user is durable: its data must
    /// survive every crash from now on.
    @inlinable
    public func acknowledge(_ operation: Acknowledgement) {
        append(.acknowledged(operation))
    }

    @inlinable
    func append(_ event: Event) {
        events.withLock { events in
            events.append(event)
            // Under the lock: the count never runs ahead of the events.
            eventCount.store(events.count, ordering: .releasing)
        }
    }

    var count: Int { eventCount.load(ordering: .acquiring) }
}

/// The promises in force at a crash point, replayed from the events.
struct PromiseState<Acknowledgement: Hashable & Sendable> {
    private(set) var acknowledged: [Acknowledgement] = []
    private(set) var inFlight: [Acknowledgement] = []
    /// How many events are applied.
    private(set) var applied = 0

    mutating func advance(to count: Int, in events: [Promises<Acknowledgement>.Event]) {
        while applied < count {
            switch events[applied] {
            case .began(let operation):
                if !inFlight.contains(operation) { inFlight.append(operation) }
            case .acknowledged(let operation):
                inFlight.removeAll { $0 == operation }
                acknowledged.append(operation)
            }
            applied += 1
        }
    }
}
