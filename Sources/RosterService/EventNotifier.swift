import Foundation
import Synchronization

/// Wakes event-stream subscribers when the mirror has new events.
///
/// The change stream calls ``notify()`` after each commit; each `/v1/events` connection reads
/// its own ``changes()`` stream. A wake-up carries no data: subscribers re-read the mirror.
public final class EventNotifier: Sendable {
    private struct Subscribers {
        var next = 0
        var continuations: [Int: AsyncStream<Void>.Continuation] = [:]
    }

    private let subscribers = Mutex(Subscribers())

    public init() {}

    /// Wakes every subscriber. Cheap and non-blocking: a subscriber that has not yet looked
    /// keeps one pending wake-up, however many notifications arrive meanwhile.
    public func notify() {
        let continuations = subscribers.withLock { Array($0.continuations.values) }
        for continuation in continuations { continuation.yield() }
    }

    /// A new subscription: yields once per wake-up (coalesced), from now on, until the
    /// consumer stops iterating or ``finishAll()`` is called.
    public func changes() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = subscribers.withLock { subscribers in
            let id = subscribers.next
            subscribers.next += 1
            subscribers.continuations[id] = continuation
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    /// How many subscriptions are open.
    public var subscriberCount: Int { subscribers.withLock { $0.continuations.count } }

    /// Ends every open subscription (at shutdown).
    public func finishAll() {
        let continuations = subscribers.withLock { subscribers in
            defer { subscribers.continuations.removeAll() }
            return Array(subscribers.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}
