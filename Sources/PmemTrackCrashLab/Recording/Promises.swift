import Synchronization

/// What the recorded workload promised its user, in the order it did:
/// the oracle that each crash image is checked against.
///
/// Call ``begin(_:)`` when an operation starts (its data may or may not
/// survive a crash before it is acknowledged), and ``acknowledge(_:)`` when
/// the workload tells its user the operation is done: from then on its data
/// must survive every crash. Acknowledging without `begin` is fine.
public final class Promises<Acknowledgement: Hashable & Sendable>: Sendable {
    enum Event: Sendable {
        case began(Acknowledgement)
        case acknowledged(Acknowledgement)
    }

    let events = Mutex<[Event]>([])

    init() {}

    /// An operation whose data may survive a crash from now on.
    public func begin(_ operation: Acknowledgement) {
        events.withLock { $0.append(.began(operation)) }
    }

    /// An operation the workload has told its user is durable: its data must
    /// survive every crash from now on.
    public func acknowledge(_ operation: Acknowledgement) {
        events.withLock { $0.append(.acknowledged(operation)) }
    }

    var count: Int { events.withLock { $0.count } }
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
