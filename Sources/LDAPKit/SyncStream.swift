import CLDAP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What to follow with an RFC 4533 content synchronization.
public struct SyncRequest: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// Bring the client up to date, then end.
        case refreshOnly
        /// Bring the client up to date, then keep sending changes as they happen.
        case refreshAndPersist
    }

    public var base: String
    public var scope: LDAPScope
    public var filter: String
    public var attributes: [String]?
    public var mode: Mode
    /// The cookie from an earlier session: the server sends only what changed since.
    public var cookie: [UInt8]?

    public init(base: String, scope: LDAPScope = .subtree, filter: String = "(objectClass=*)",
                attributes: [String]? = nil, mode: Mode = .refreshAndPersist, cookie: [UInt8]? = nil) {
        self.base = base
        self.scope = scope
        self.filter = filter
        self.attributes = attributes
        self.mode = mode
        self.cookie = cookie
    }
}

/// One message of a sync stream. Apply events in order; after applying everything before
/// a `.cookie`, store that cookie: resuming from it later replays nothing already applied.
public enum SyncEvent: Sendable, Equatable {
    /// An entry added to the content (or first seen in a full refresh), with its attributes.
    case add(EntryUUID, LDAPEntry)
    /// An entry that changed, with all its requested attributes.
    case modify(EntryUUID, LDAPEntry)
    /// An entry unchanged since the cookie (present phase; only its DN is known).
    case present(EntryUUID, dn: String)
    /// An entry deleted, renamed out of scope, or no longer matching the filter. The DN is
    /// given when the server sent one.
    case delete(EntryUUID, dn: String?)
    /// Entries unchanged since the cookie, reported as a set.
    case presentIDs([EntryUUID])
    /// Entries deleted while the client was away, reported as a set.
    case deleteIDs([EntryUUID])
    /// The refresh is complete. When `presentPhase` is true the server listed what is
    /// still there instead of what was deleted: every entry the client holds that was not
    /// reported (add, modify, present) during this refresh is gone.
    case refreshDone(presentPhase: Bool)
    /// A new cookie covering every event before it.
    case cookie([UInt8])
    /// The server cannot resume from the cookie: the client must reload everything. A
    /// stream from `LDAPSyncStream` ends after this event.
    case refreshRequired
}

/// An RFC 4533 sync session on its own connection, through libldap's `ldap_sync_*` API.
/// Iterate `events` once; it ends after a refresh-only sync, after `.refreshRequired`,
/// or with an `LDAPError` when the connection fails (see `ResilientSyncStream` for
/// reconnecting).
public final class LDAPSyncStream: Sendable {
    /// The events, in the order the server sent them.
    public let events: Events
    private let channel: HandoffChannel<[SyncEvent]>
    private let socket: SocketInterrupter

    /// Connects as configured and starts the sync; the refresh runs while you iterate.
    public static func start(_ configuration: LDAPConfiguration, _ request: SyncRequest) async throws -> LDAPSyncStream {
        let handle = try await LDAPHandle.open(configuration, label: "sync")
        return LDAPSyncStream(handle: handle, request: request)
    }

    private init(handle: LDAPHandle, request: SyncRequest) {
        let channel = HandoffChannel<[SyncEvent]>(capacity: 16)
        let socket = SocketInterrupter()
        self.channel = channel
        self.socket = socket
        self.events = Events(channel: channel, onCancel: { socket.interrupt() })
        handle.start { handle in
            socket.set(cldap_descriptor(handle.raw))
            let session = SyncSession(handle: handle, request: request, channel: channel)
            session.run()
            socket.set(-1)
            handle.closeNow()
        }
    }

    /// Stops the stream: the blocked network read is interrupted and the connection closed.
    public func cancel() {
        channel.cancel()
        socket.interrupt()
    }

    deinit { cancel() }

    /// The stream's events as an `AsyncSequence`.
    public struct Events: AsyncSequence, Sendable {
        public typealias Element = SyncEvent
        let channel: HandoffChannel<[SyncEvent]>
        let onCancel: @Sendable () -> Void

        public func makeAsyncIterator() -> Iterator { Iterator(channel: channel, onCancel: onCancel) }

        public struct Iterator: AsyncIteratorProtocol {
            let channel: HandoffChannel<[SyncEvent]>
            let onCancel: @Sendable () -> Void
            private var batch: [SyncEvent] = []
            private var position = 0

            init(channel: HandoffChannel<[SyncEvent]>, onCancel: @escaping @Sendable () -> Void) {
                self.channel = channel
                self.onCancel = onCancel
            }

            /// The next event if it already arrived with the last one (its cookie, usually),
            /// without waiting for the server.
            public mutating func nextIfBuffered() -> SyncEvent? {
                guard position < batch.count else { return nil }
                defer { position += 1 }
                return batch[position]
            }

            public mutating func next() async throws -> SyncEvent? {
                while position == batch.count {
                    let next: [SyncEvent]?
                    do {
                        next = try await channel.next()
                    } catch is CancellationError {
                        onCancel()
                        throw CancellationError()
                    }
                    guard let next else { return nil }
                    batch = next
                    position = 0
                }
                defer { position += 1 }
                return batch[position]
            }
        }
    }
}

/// Drives `ldap_sync_init` / `ldap_sync_poll` on the handle's thread and turns libldap's
/// callbacks into `SyncEvent`s. Lives only for the duration of `run()`.
private final class SyncSession {
    let handle: LDAPHandle
    let request: SyncRequest
    let channel: HandoffChannel<[SyncEvent]>
    private var pending: [SyncEvent] = []
    private var lastCookie: [UInt8]?
    private var stopped = false
    private var inPersist = false
    private var names = AttributeNames()

    init(handle: LDAPHandle, request: SyncRequest, channel: HandoffChannel<[SyncEvent]>) {
        self.handle = handle
        self.request = request
        self.channel = channel
        self.lastCookie = request.cookie
    }

    func run() {
        guard let sync = ldap_sync_initialize(nil) else {
            channel.finish(throwing: LDAPError(code: .noMemory, operation: .sync))
            return
        }
        defer {
            sync.pointee.ls_ld = nil  // the handle owns the connection
            ldap_sync_destroy(sync, 1)
        }
        sync.pointee.ls_base = ldap_strdup(request.base)
        sync.pointee.ls_scope = request.scope.raw
        sync.pointee.ls_filter = ldap_strdup(request.filter)
        if let attributes = request.attributes {
            let list = ldap_memalloc(ber_len_t(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * (attributes.count + 1)))!
                .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: attributes.count + 1)
            for (index, attribute) in attributes.enumerated() { list[index] = ldap_strdup(attribute) }
            list[attributes.count] = nil
            sync.pointee.ls_attrs = list
        }
        sync.pointee.ls_timeout = -1  // ldap_sync_poll blocks until a message; cancel interrupts the socket
        sync.pointee.ls_ld = handle.raw
        if let cookie = request.cookie, !cookie.isEmpty {
            let copy = ldap_memalloc(ber_len_t(cookie.count + 1))!.bindMemory(to: CChar.self, capacity: cookie.count + 1)
            cookie.withUnsafeBytes { UnsafeMutableRawPointer(copy).copyMemory(from: $0.baseAddress!, byteCount: cookie.count) }
            copy[cookie.count] = 0
            sync.pointee.ls_cookie = berval(bv_len: ber_len_t(cookie.count), bv_val: copy)
        }
        sync.pointee.ls_search_entry = syncEntryCallback
        sync.pointee.ls_intermediate = syncIntermediateCallback
        sync.pointee.ls_search_result = syncResultCallback
        sync.pointee.ls_search_reference = nil

        let unmanaged = Unmanaged.passRetained(self)
        defer { unmanaged.release() }
        sync.pointee.ls_private = unmanaged.toOpaque()

        let mode = request.mode == .refreshOnly ? LDAP_SYNC_REFRESH_ONLY : LDAP_SYNC_REFRESH_AND_PERSIST
        let target = "base \(request.base), filter \(request.filter)"
        var rc = ldap_sync_init(sync, mode)
        if let ending = end(rc, target: target) {
            flush()
            finish(ending)
            return
        }
        flush()
        if request.mode == .refreshOnly || stopped {
            finish(nil)
            return
        }
        inPersist = true
        while !stopped && !channel.isCancelled {
            rc = ldap_sync_poll(sync)
            flush()
            if let ending = end(rc, target: target) {
                finish(ending)
                return
            }
        }
        finish(nil)
    }

    /// What a libldap return code means for the session: nil to go on.
    private func end(_ rc: Int32, target: String) -> SyncEnding? {
        if stopped { return .finished }
        switch rc {
        case LDAP_SUCCESS:
            return nil
        case LDAP_SYNC_REFRESH_REQUIRED:
            pending.append(.refreshRequired)
            return .finished
        case -1:
            if channel.isCancelled { return .finished }
            return .failed(handle.lastError(.sync, target: target))
        default:
            if channel.isCancelled { return .finished }
            if rc > 0 && rc < 0x1000 && !isResultCode(rc) {
                return nil  // a message type, not an error
            }
            return .failed(handle.error(rc, .sync, target: target))
        }
    }

    private func isResultCode(_ rc: Int32) -> Bool {
        // libldap returns message types (0x61 and up) from ldap_result paths; result codes
        // are below 0x61.
        rc < 0x61
    }

    private enum SyncEnding { case finished, failed(LDAPError) }

    private func finish(_ ending: SyncEnding?) {
        flush()
        switch ending {
        case .failed(let error)?: channel.finish(throwing: error)
        default: channel.finish()
        }
    }

    /// Hands pending events to the consumer.
    func flush() {
        guard !pending.isEmpty else { return }
        if !channel.send(pending) { stopped = true }
        pending.removeAll(keepingCapacity: true)
    }

    private func emit(_ event: SyncEvent, sync: UnsafeMutablePointer<ldap_sync_t>) {
        guard !stopped else { return }
        pending.append(event)
        let cookie = sync.pointee.ls_cookie.bytes
        if !cookie.isEmpty && cookie != lastCookie {
            lastCookie = cookie
            pending.append(.cookie(cookie))
        }
        // Batch during the refresh; in persist each poll's messages are flushed together.
        if pending.count >= 256 { flush() }
    }

    func entry(_ sync: UnsafeMutablePointer<ldap_sync_t>, _ message: OpaquePointer?, _ uuid: UnsafeMutablePointer<berval>?,
               _ phase: ldap_sync_refresh_t) -> Int32 {
        guard let message, let uuid, let id = EntryUUID(bytes: uuid.pointee.bytes) else { return LDAP_SUCCESS }
        switch phase {
        case LDAP_SYNC_CAPI_ADD, LDAP_SYNC_CAPI_MODIFY:
            guard let entry = parseEntry(handle.raw, message, names: &names) else { return LDAP_SUCCESS }
            emit(phase == LDAP_SYNC_CAPI_ADD ? .add(id, entry) : .modify(id, entry), sync: sync)
        case LDAP_SYNC_CAPI_PRESENT:
            emit(.present(id, dn: takeLDAPString(ldap_get_dn(handle.raw, message)) ?? ""), sync: sync)
        case LDAP_SYNC_CAPI_DELETE:
            emit(.delete(id, dn: takeLDAPString(ldap_get_dn(handle.raw, message))), sync: sync)
        default:
            break
        }
        return LDAP_SUCCESS
    }

    func intermediate(_ sync: UnsafeMutablePointer<ldap_sync_t>, _ message: OpaquePointer?, _ ids: UnsafeMutablePointer<berval>?,
                      _ phase: ldap_sync_refresh_t) -> Int32 {
        switch phase {
        case LDAP_SYNC_CAPI_PRESENTS_IDSET, LDAP_SYNC_CAPI_DELETES_IDSET:
            var list: [EntryUUID] = []
            if let ids {
                var index = 0
                while ids[index].bv_val != nil {
                    if let id = EntryUUID(bytes: ids[index].bytes) { list.append(id) }
                    index += 1
                }
            }
            emit(phase == LDAP_SYNC_CAPI_DELETES_IDSET ? .deleteIDs(list) : .presentIDs(list), sync: sync)
        case LDAP_SYNC_CAPI_DONE:
            emit(.refreshDone(presentPhase: isRefreshPresent(message)), sync: sync)
            flush()
        default:
            // The start of a present or delete phase within the refresh: nothing to report
            // beyond the cookie it may carry.
            let cookie = sync.pointee.ls_cookie.bytes
            if !cookie.isEmpty && cookie != lastCookie {
                lastCookie = cookie
                pending.append(.cookie(cookie))
            }
        }
        return LDAP_SUCCESS
    }

    func result(_ sync: UnsafeMutablePointer<ldap_sync_t>, _ message: OpaquePointer?, _ refreshDeletes: Int32) -> Int32 {
        // The end of a refreshOnly sync (or the server ending a persistent one).
        if refreshDeletes >= 0 {
            emit(.refreshDone(presentPhase: refreshDeletes == 0), sync: sync)
        }
        return LDAP_SUCCESS
    }

    /// Whether the syncInfo message that ended the refresh was a refreshPresent.
    private func isRefreshPresent(_ message: OpaquePointer?) -> Bool {
        guard let message else { return false }
        var oid: UnsafeMutablePointer<CChar>?
        var data: UnsafeMutablePointer<berval>?
        guard ldap_parse_intermediate(handle.raw, message, &oid, &data, nil, 0) == LDAP_SUCCESS else { return false }
        defer {
            if let oid { ldap_memfree(oid) }
            if let data { ber_bvfree(data) }
        }
        guard let data, data.pointee.bv_len > 0 else { return false }
        let tag = UInt8(bitPattern: data.pointee.bv_val[0])
        return UInt(tag) == LDAP_TAG_SYNC_REFRESH_PRESENT
    }
}

/// Shuts a connection's socket down (without closing the descriptor, which libldap still
/// owns) so that a libldap call blocked on it returns at once.
/// An interrupt that comes before the session has its socket is kept, and applied as soon
/// as the socket is set, so a stream cancelled while starting never blocks.
final class SocketInterrupter: Sendable {
    private struct State { var descriptor: Int32 = -1; var interrupted = false }
    private let state = Mutex(State())

    func set(_ value: Int32) {
        state.withLock { state in
            state.descriptor = value
            if state.interrupted, value >= 0 { shutdown(value, Int32(SHUT_RDWR)) }
        }
    }

    func interrupt() {
        state.withLock { state in
            state.interrupted = true
            if state.descriptor >= 0 { shutdown(state.descriptor, Int32(SHUT_RDWR)) }
        }
    }
}

private func session(_ sync: UnsafeMutablePointer<ldap_sync_t>) -> SyncSession {
    Unmanaged<SyncSession>.fromOpaque(sync.pointee.ls_private).takeUnretainedValue()
}

private let syncEntryCallback: ldap_sync_search_entry_f = { sync, message, uuid, phase in
    guard let sync else { return LDAP_OTHER }
    return session(sync).entry(sync, message, uuid, phase)
}

private let syncIntermediateCallback: ldap_sync_intermediate_f = { sync, message, ids, phase in
    guard let sync else { return LDAP_OTHER }
    return session(sync).intermediate(sync, message, ids, phase)
}

private let syncResultCallback: ldap_sync_search_result_f = { sync, message, refreshDeletes in
    guard let sync else { return LDAP_OTHER }
    return session(sync).result(sync, message, refreshDeletes)
}
