import Dispatch
import Synchronization

/// A bounded queue from a producer running on a blocking thread (a libldap loop) to one
/// async consumer. The producer blocks when `capacity` items wait unread, so a slow
/// consumer holds back the network read instead of letting memory grow; the consumer
/// suspends without blocking a thread when the queue is empty.
///
/// Items are usually batches of entries, so the hand-off costs little per entry.
final class HandoffChannel<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var head = 0
        var consumer: CheckedContinuation<Element?, any Error>?
        var completion: Result<Void, any Error>?
        var cancelled = false
        var producerBlocked = false
        var count: Int { items.count - head }
    }

    private enum SendAction { case resume(CheckedContinuation<Element?, any Error>), wait, done, stop }
    private enum TakeOutcome { case item(Element, wake: Bool), end(Result<Void, any Error>), wait }

    private let state = Mutex(State())
    private let producerWakeup = DispatchSemaphore(value: 0)
    private let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// Whether the consumer has gone away; the producer should stop its work.
    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Hands one item to the consumer, blocking the calling thread while the queue is full.
    /// Returns false when the consumer has cancelled: the producer should stop.
    @discardableResult
    func send(_ item: Element) -> Bool {
        let action: SendAction = state.withLock { state in
            if state.cancelled || state.completion != nil { return .stop }
            if let consumer = state.consumer {
                state.consumer = nil
                return .resume(consumer)
            }
            state.items.append(item)
            if state.count >= capacity {
                state.producerBlocked = true
                return .wait
            }
            return .done
        }
        switch action {
        case .resume(let consumer):
            consumer.resume(returning: item)
            return true
        case .wait:
            producerWakeup.wait()
            return !isCancelled
        case .done:
            return true
        case .stop:
            return false
        }
    }

    /// Ends the stream after the queued items: normally, or with an error.
    func finish(throwing error: (any Error)? = nil) {
        let consumer: CheckedContinuation<Element?, any Error>? = state.withLock { state in
            guard state.completion == nil else { return nil }
            state.completion = error.map { .failure($0) } ?? .success(())
            defer { state.consumer = nil }
            return state.consumer
        }
        if let consumer {
            if let error { consumer.resume(throwing: error) } else { consumer.resume(returning: nil) }
        }
    }

    /// Called by the consumer when it stops reading; unblocks the producer.
    func cancel() {
        let wake: Bool = state.withLock { state in
            state.cancelled = true
            state.items.removeAll()
            state.head = 0
            defer { state.producerBlocked = false }
            return state.producerBlocked
        }
        if wake { producerWakeup.signal() }
    }

    /// The next item, nil at the end, or the producer's error.
    func next() async throws -> Element? {
        if let ready = try takeReady() { return ready }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Element?, any Error>) in
                let outcome: TakeOutcome = state.withLock { state in
                    if state.count > 0 {
                        let item = popLocked(&state)
                        return .item(item, wake: releaseProducerLocked(&state))
                    }
                    if let completion = state.completion { return .end(completion) }
                    if state.cancelled { return .end(.failure(CancellationError())) }
                    state.consumer = continuation
                    return .wait
                }
                switch outcome {
                case .item(let item, let wake):
                    if wake { producerWakeup.signal() }
                    continuation.resume(returning: item)
                case .end(.success): continuation.resume(returning: nil)
                case .end(.failure(let error)): continuation.resume(throwing: error)
                case .wait: break
                }
            }
        } onCancel: {
            let consumer = state.withLock { state -> CheckedContinuation<Element?, any Error>? in
                defer { state.consumer = nil }
                return state.consumer
            }
            cancel()
            consumer?.resume(throwing: CancellationError())
        }
    }

    private func takeReady() throws -> Element? {
        let wake: Bool
        let item: Element?
        (item, wake) = try state.withLock { state throws -> (Element?, Bool) in
            if state.count > 0 {
                let item = popLocked(&state)
                return (item, releaseProducerLocked(&state))
            }
            if case .failure(let error)? = state.completion { throw error }
            return (nil, false)
        }
        if wake { producerWakeup.signal() }
        return item
    }

    /// Whether a blocked producer may go on now that an item was taken.
    private func releaseProducerLocked(_ state: inout State) -> Bool {
        guard state.producerBlocked, state.count < capacity else { return false }
        state.producerBlocked = false
        return true
    }

    private func popLocked(_ state: inout State) -> Element {
        let item = state.items[state.head]
        state.head += 1
        if state.head == state.items.count {
            state.items.removeAll(keepingCapacity: true)
            state.head = 0
        } else if state.head > 64 && state.head * 2 > state.items.count {
            state.items.removeFirst(state.head)
            state.head = 0
        }
        return item
    }
}
