/// A sync stream that survives the directory going away: it reconnects with capped
/// exponential backoff and resumes from the last cookie it delivered, and starts over
/// without a cookie when the server says a refresh is required.
///
/// Connection problems are reported as events, never as the end of the sequence; only a
/// configuration error (which retrying cannot fix) or cancellation ends it with an error.
public struct ResilientSyncStream: AsyncSequence, Sendable {
    public enum Event: Sendable, Equatable {
        /// Connected and bound; a refresh from `resumingFrom` (nil: a full refresh) follows.
        case connected(resumingFrom: [UInt8]?)
        /// A message of the underlying sync stream.
        case sync(SyncEvent)
        /// The connection failed or dropped; the next attempt comes after `retryIn`.
        case disconnected(LDAPError, retryIn: Duration)
    }
    public typealias Element = Event

    public let configuration: LDAPConfiguration
    public let request: SyncRequest
    public let backoff: Backoff

    /// `request.cookie` is where the first connection resumes from.
    public init(configuration: LDAPConfiguration, request: SyncRequest, backoff: Backoff = Backoff()) {
        self.configuration = configuration
        self.request = request
        self.backoff = backoff
    }

    public func makeAsyncIterator() -> Iterator { Iterator(self) }

    public struct Iterator: AsyncIteratorProtocol {
        private let configuration: LDAPConfiguration
        private var request: SyncRequest
        private var backoff: Backoff
        private var stream: LDAPSyncStream?
        private var events: LDAPSyncStream.Events.Iterator?
        private var delay: Duration?
        private var finished = false

        init(_ sequence: ResilientSyncStream) {
            configuration = sequence.configuration
            request = sequence.request
            backoff = sequence.backoff
        }

        /// The cookie the next connection would resume from.
        public var cookie: [UInt8]? { request.cookie }

        public mutating func next() async throws -> Event? {
            while !finished {
                try Task.checkCancellation()
                guard var events else {
                    if let delay {
                        self.delay = nil
                        try await Task.sleep(for: delay)
                    }
                    do {
                        let stream = try await LDAPSyncStream.start(configuration, request)
                        self.stream = stream
                        self.events = stream.events.makeAsyncIterator()
                        return .connected(resumingFrom: request.cookie)
                    } catch let error as LDAPError where error.operation != .configure {
                        return disconnected(error)
                    }
                }
                do {
                    guard let event = try await events.next() else {
                        // The server ended the stream (refresh-only done, or refresh required).
                        self.events = nil
                        stream = nil
                        if request.mode == .refreshOnly { finished = true }
                        continue
                    }
                    self.events = events
                    switch event {
                    case .cookie(let cookie): request.cookie = cookie
                    case .refreshRequired: request.cookie = nil
                    case .refreshDone: backoff.reset()
                    default: break
                    }
                    return .sync(event)
                } catch let error as LDAPError {
                    self.events = nil
                    stream?.cancel()
                    stream = nil
                    if error.code == .unwillingToPerform, request.cookie != nil {
                        // The server refuses the cookie (e.g. "consumer state is newer than
                        // provider" after it lost its latest state in a crash): reload.
                        request.cookie = nil
                        return .sync(.refreshRequired)
                    }
                    return disconnected(error)
                }
            }
            return nil
        }

        /// The next event if it already arrived with the last one (its cookie, usually),
        /// without waiting for the server.
        public mutating func nextIfBuffered() -> Event? {
            guard var events, let event = events.nextIfBuffered() else { return nil }
            self.events = events
            switch event {
            case .cookie(let cookie): request.cookie = cookie
            case .refreshRequired: request.cookie = nil
            default: break
            }
            return .sync(event)
        }

        private mutating func disconnected(_ error: LDAPError) -> Event {
            let wait = backoff.nextDelay()
            delay = wait
            return .disconnected(error, retryIn: wait)
        }
    }
}

extension LDAPError: Equatable {
    public static func == (lhs: LDAPError, rhs: LDAPError) -> Bool {
        lhs.code == rhs.code && lhs.operation == rhs.operation && lhs.diagnosticMessage == rhs.diagnosticMessage
            && lhs.target == rhs.target
    }
}
