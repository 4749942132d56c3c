import AccessModel
import AsyncAlgorithms
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import Synchronization

/// What the change stream reports as it goes, for health, metrics and logs.
public enum ChangeStreamStatus: Sendable {
    case connected(ChangeStreamKind, resuming: Bool)
    case disconnected(ChangeStreamKind, LDAPError, retryIn: Duration)
    /// Both streams finished their refresh: the mirror is current.
    case refreshComplete
    /// One change applied (or found already applied), and how long it took from arrival
    /// to commit; `changedAt`: when the directory made the change, by its own clock, if the
    /// change's cookie says (OpenLDAP's CSN).
    case applied(ChangeStreamKind, AppliedChange, latency: Duration, changedAt: Date?)
    case fullReconcileNeeded(String)
    case problem(String)
    /// The stream's safety breaker holds deactivations back (see `DisappearanceLimit`).
    case breakerHolds(BreakerTrip)
}

/// Follows the directory's users and groups with RFC 4533 refreshAndPersist streams and
/// applies each change at once through `ChangeApplier`, resuming from the stored cookies.
/// Without stored cookies (first start, or refresh required) it reloads with a full
/// reconcile before following changes: one for both streams when both reload (see
/// `RefreshBarrier`).
public struct ChangeStream: Sendable {
    public let configuration: RosterConfiguration
    public let mirror: Mirror
    public let backoff: Backoff
    /// How long a stream whose full refresh has ended waits for the other stream's, so that
    /// one reconcile completes both.
    public let refreshPatience: Duration
    /// Set by whoever changes the mirror behind the stream's back (a scheduled reconcile),
    /// so the stream reloads the identities it keeps.
    public let reloadSignal: ReloadSignal

    public init(configuration: RosterConfiguration, mirror: Mirror, backoff: Backoff = Backoff(), refreshPatience: Duration = .seconds(10),
                reloadSignal: ReloadSignal = ReloadSignal()) {
        self.configuration = configuration
        self.mirror = mirror
        self.backoff = backoff
        self.refreshPatience = refreshPatience
        self.reloadSignal = reloadSignal
    }

    /// Runs until cancelled. `reconcile` runs a full reconcile (with the safety breaker)
    /// and returns whether it applied.
    public func run(status: @escaping @Sendable (ChangeStreamStatus) -> Void,
                    reconcile: @escaping @Sendable (String) async -> Bool) async throws {
        if configuration.directory.flavor == .generic {
            return try await poll(status: status, reconcile: reconcile)
        }
        if configuration.directory.flavor == .activedirectory {
            // Active Directory has no RFC 4533: DirSync instead.
            return try await ActiveDirectoryChangeStream(configuration: configuration, mirror: mirror, backoff: backoff,
                                                         reloadSignal: reloadSignal).run(status: status, reconcile: reconcile)
        }
        do {
            try await follow(status: status, reconcile: reconcile)
        } catch is SyncNotSupported {
            status(.problem("The directory does not offer RFC 4533 content synchronization; polling modifyTimestamp every \(configuration.schedule.pollIntervalSeconds) s instead."))
            try await poll(status: status, reconcile: reconcile)
        }
    }

    /// Without a change stream: every `schedule.poll_interval_seconds`, entries modified
    /// since the last poll (by `modifyTimestamp`, with an overlap for clock skew) are applied
    /// as changes; deletions are caught by the scheduled full reconcile, which confirms each
    /// absence with a direct lookup.
    func poll(status: @escaping @Sendable (ChangeStreamStatus) -> Void,
              reconcile: @escaping @Sendable (String) async -> Bool) async throws {
        let ldap = Reconciler.ldapConfiguration(configuration.directory)
        let applier = ChangeApplier(configuration: configuration, mirror: mirror)
        var since = Date()
        var retry = backoff
        while !(await reconcile("start of polling")) {
            let delay = retry.nextDelay()
            status(.problem("The full reconcile that starts polling did not apply; retrying in \(delay)."))
            try await Task.sleep(for: delay)
        }
        retry.reset()
        try reloadSignal.reload(applier)
        await applier.prepareForChanges()
        status(.refreshComplete)
        let requests = ReconcileRequests(reconcile: reconcile, reloadSignal: reloadSignal, mirror: mirror)
        defer { requests.cancel() }
        let interval = Duration.milliseconds(Int64(configuration.schedule.pollIntervalSeconds * 1000))
        let identity = DirectoryIdentity(flavor: configuration.directory.flavor)
        let userAttributes = DirectoryMapper(configuration: configuration, now: Date()).userAttributes
        let groupAttributes = ["cn", configuration.groups.memberAttribute, identity.attribute]
        var searches = [(ChangeStreamKind.users, configuration.users.base, configuration.users.filter, userAttributes),
                        (.groups, configuration.groups.base, configuration.groups.filter, groupAttributes)]
        if ChangeStreamKind.followed(by: configuration.directory.flavor).contains(.roles) {
            // 389-ds's roles and classes of service: a lock through a role changes only these.
            searches.append((.roles, configuration.directory.baseDN, ChangeStreamKind.roleDefinitionsFilter, [identity.attribute]))
        }
        // Entries without the identity the stream keys changes by are left to the scheduled
        // reconcile (which reads them by DN); each is said once.
        var reportedWithoutIdentity = Set<String>()
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            let started = Date()
            try reloadSignal.answer(applier)
            let stamp = DirectoryTime.generalizedTime(since.addingTimeInterval(-2))
            do {
                let connection = try await LDAPConnection.connect(ldap)
                defer { Task { await connection.close() } }
                status(.connected(.users, resuming: true))
                for (kind, base, filter, attributes) in searches {
                    for try await entry in connection.search(base: base, filter: "(&\(filter)(modifyTimestamp>=\(stamp)))",
                                                             attributes: attributes, pageSize: configuration.directory.pageSize) {
                        guard let id = identity.id(of: entry) else {
                            if reportedWithoutIdentity.count < 1000, reportedWithoutIdentity.insert(DN.normalize(entry.dn)).inserted {
                                status(.problem("The polled \(kind.rawValue) entry \(entry.dn) has no \(identity.attribute); its change waits for the scheduled full reconcile."))
                            }
                            continue
                        }
                        let arrived = ContinuousClock.now
                        let applied = try await applier.apply(.modify(id, entry), from: kind, cookie: nil)
                        report(applied, kind: kind, arrived: arrived, status: status, requests: requests, because: "a polled \(kind.rawValue) change")
                    }
                }
                since = started
                retry.reset()
            } catch let error as LDAPError {
                let delay = retry.nextDelay()
                status(.disconnected(.users, error, retryIn: delay))
                try await Task.sleep(for: delay)
            }
        }
        await applier.close()
    }

    private func follow(status: @escaping @Sendable (ChangeStreamStatus) -> Void,
                        reconcile: @escaping @Sendable (String) async -> Bool) async throws {
        let ldap = Reconciler.ldapConfiguration(configuration.directory)
        let applier = ChangeApplier(configuration: configuration, mirror: mirror)
        try applier.reload()

        func cookie(_ kind: ChangeStreamKind) throws -> [UInt8]? {
            try mirror.syncState(for: kind.stateKey(configuration.directory.name))?.cookie
        }
        var requests: [(ChangeStreamKind, SyncRequest)] = [
            (.users, SyncRequest(base: configuration.users.base, filter: configuration.users.filter,
                                 attributes: DirectoryMapper(configuration: configuration, now: Date()).userAttributes,
                                 cookie: try cookie(.users))),
            (.groups, SyncRequest(base: configuration.groups.base, filter: configuration.groups.filter,
                                  attributes: ["cn", configuration.groups.memberAttribute], cookie: try cookie(.groups))),
        ]
        if ChangeStreamKind.followed(by: configuration.directory.flavor).contains(.roles) {
            requests.append((.roles, SyncRequest(base: configuration.directory.baseDN, filter: ChangeStreamKind.roleDefinitionsFilter,
                                                 attributes: ["1.1"], cookie: try cookie(.roles))))
        }
        // The streams feed one queue that a single consumer applies in order. Sending waits
        // while the consumer is busy (a reconcile, say), so the readers hold back the network
        // reads instead of dropping or piling up changes.
        let queue = AsyncChannel<QueuedEvent>()
        // Why the first reader stopped. Recorded before the queue ends, so it is this error
        // (not the other reader's cancellation that follows) that `follow` throws.
        let readerFailure = FirstError()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (kind, request) in requests {
                let stream = ResilientSyncStream(configuration: ldap, request: request, backoff: backoff)
                group.addTask {
                    // A reader that stops (configuration error, no sync control, cancellation)
                    // stops everything.
                    defer { queue.finish() }
                    do {
                        try await read(stream, kind: kind, into: queue)
                    } catch {
                        readerFailure.record(error)
                    }
                }
            }
            // The applier is used by this task only.
            try await consume(queue, applier: applier, initialCookies: Dictionary(uniqueKeysWithValues: requests.map { ($0.0, $0.1.cookie) }),
                              status: status, reconcile: reconcile)
            group.cancelAll()
            while let _ = try await group.next() {}
        }
        await applier.close()
        if let failure = readerFailure.error { throw failure }
    }

    /// Reads one sync stream into the shared queue, pairing each event with the cookie that
    /// arrived with it, and skipping the entries of a full refresh (the reconcile that ends
    /// it reads them again).
    private func read(_ stream: ResilientSyncStream, kind: ChangeStreamKind, into queue: AsyncChannel<QueuedEvent>) async throws {
        var events = stream.makeAsyncIterator()
        var fullRefresh = false
        while let event = try await events.next() {
            switch event {
            case .disconnected(let error, _) where error.code == .unavailableCriticalExtension:
                throw SyncNotSupported()
            case .connected(let from): fullRefresh = from == nil
            case .sync(.refreshRequired): fullRefresh = true
            case .sync(.refreshDone): break
            case .sync(.add), .sync(.present), .sync(.presentIDs), .sync(.modify):
                // A full refresh's entries are read again by the reconcile that ends it.
                if fullRefresh { continue }
            default: break
            }
            // An event's cookie normally arrives with it: apply them together.
            var cookie: [UInt8]?
            if case .sync(let inner) = event, !(inner.isCookie) {
                if let next = events.nextIfBuffered() {
                    if case .sync(.cookie(let value)) = next {
                        cookie = value
                    } else {
                        await queue.send(QueuedEvent(kind: kind, event: event, cookie: nil, arrived: .now))
                        await queue.send(QueuedEvent(kind: kind, event: next, cookie: nil, arrived: .now))
                        continue
                    }
                }
            }
            if case .sync(.refreshDone) = event { fullRefresh = false }
            await queue.send(QueuedEvent(kind: kind, event: event, cookie: cookie, arrived: .now))
        }
    }

    private func consume(_ queue: AsyncChannel<QueuedEvent>,
                         applier: ChangeApplier, initialCookies: [ChangeStreamKind: [UInt8]?],
                         status: @escaping @Sendable (ChangeStreamStatus) -> Void,
                         reconcile: @escaping @Sendable (String) async -> Bool) async throws {
        let requests = ReconcileRequests(reconcile: reconcile, reloadSignal: reloadSignal, mirror: mirror)
        defer { requests.cancel() }
        var barrier = RefreshBarrier(reloading: Set(initialCookies.filter { $0.value == nil }.map(\.key)), patience: refreshPatience)
        var refreshed = Set<ChangeStreamKind>()
        var announcedReady = false
        for await queued in queue {
            let (kind, event, cookie, arrived) = (queued.kind, queued.event, queued.cookie, queued.arrived)
            try reloadSignal.answer(applier)
            switch event {
            case .connected(let from):
                status(.connected(kind, resuming: from != nil))
                barrier.started(kind, full: from == nil)
                applier.refreshStarted(kind)
            case .disconnected(let error, let delay):
                status(.disconnected(kind, error, retryIn: delay))
            case .sync(let inner):
                if barrier.reloading.contains(kind) {
                    // A full refresh: the reconcile that completes it reads the entries.
                    switch inner {
                    case .refreshRequired: barrier.refreshRequired(kind)
                    case .refreshDone: barrier.refreshEnded(kind, cookie: cookie, at: .now)
                    case .cookie(let value): barrier.received(kind, cookie: value)
                    default: barrier.received(kind, cookie: cookie)
                    }
                } else if case .refreshRequired = inner {
                    // Its reconnection refreshes in full; until the reconcile after that, its
                    // changes wait.
                    barrier.refreshRequired(kind)
                } else {
                    if case .refreshDone = inner { refreshed.insert(kind) }
                    // A change is applied before anything after it: when the directory drops
                    // in the middle, retry it until it goes through (never skip it).
                    var retry = backoff
                    while true {
                    do {
                        let applied = try await applier.apply(inner, from: kind, cookie: cookie)
                        report(applied, kind: kind, arrived: arrived, changedAt: cookie.flatMap(DirectoryTime.newestChange(inCookie:)),
                               status: status, requests: requests, because: "a \(kind.rawValue) change")
                        break
                    } catch let error as LDAPError {
                        let delay = retry.nextDelay()
                        status(.problem("A change could not be applied yet, retrying in \(delay): \(error)"))
                        try await Task.sleep(for: delay)
                    }
                    }
                }
            }
            let due = barrier.due(at: .now)
            if !due.isEmpty {
                // The refresh counts as done only once its reconcile applied: a failed or
                // refused one (the directory gone again, the breaker) is retried, and until
                // then the stream is not ready and keeps no cookie.
                let streams = due.keys.map(\.rawValue).sorted().joined(separator: " and ")
                var retry = backoff
                while !(await reconcile("full refresh of the \(streams) stream\(due.count > 1 ? "s" : "")")) {
                    let delay = retry.nextDelay()
                    status(.problem("The full reconcile that completes the \(streams) refresh did not apply; retrying in \(delay)."))
                    try await Task.sleep(for: delay)
                }
                try reloadSignal.reload(applier)
                for (kind, cookie) in due {
                    applier.refreshEnded(kind)
                    refreshed.insert(kind)
                    if let cookie { try mirror.saveSyncState(SyncState(directory: kind.stateKey(configuration.directory.name), cookie: cookie)) }
                }
                barrier.completed(due.keys)
            }
            if !announcedReady, refreshed.count == initialCookies.count, barrier.reloading.isEmpty {
                announcedReady = true
                await applier.prepareForChanges()
                status(.refreshComplete)
            }
        }
    }
}

/// Tells the daemon what one applied change did (a future expiry or lockout end too, so it
/// sets its timer), and asks for the full reconcile the change needs (run beside the stream).
func report(_ applied: AppliedChange, kind: ChangeStreamKind, arrived: ContinuousClock.Instant, changedAt: Date? = nil,
            status: @Sendable (ChangeStreamStatus) -> Void, requests: ReconcileRequests, because reason: String) {
    if applied.changes > 0 || applied.revocation || !applied.nextChanges.isEmpty {
        status(.applied(kind, applied, latency: .now - arrived, changedAt: changedAt))
    }
    for problem in applied.problems { status(.problem(problem.description)) }
    if let trip = applied.held { status(.breakerHolds(trip)) }
    if let why = applied.fullReconcileReason {
        status(.fullReconcileNeeded("\(why) (\(kind.rawValue) stream)"))
        requests.request("\(reason): \(why)")
    }
}

/// The server refuses the RFC 4533 sync control.
struct SyncNotSupported: Error {}

/// The first error several tasks report.
final class FirstError: Sendable {
    private let first = Mutex<(any Error)?>(nil)
    func record(_ error: any Error) { first.withLock { if $0 == nil { $0 = error } } }
    var error: (any Error)? { first.withLock { $0 } }
}

/// A flag one task raises after a full reconcile and the change stream lowers when it has
/// answered it: with a reload of the stored identities (of the users changed since the audit
/// mark the reconcile was raised with, when it was), or, when no raise since the last answer
/// said the mirror changed, only with its safety breaker started again.
public final class ReloadSignal: Sendable {
    /// What the raises since the last answer asked for.
    struct Request: Equatable {
        /// Whether some reconcile since changed the mirror.
        var mirrorChanged: Bool
        /// The audit mark before the earliest of those reconciles; nil for "reload everything".
        var since: Int64?
    }
    private let raised = Mutex<Request?>(nil)
    public init() {}

    /// Raises the flag; `mirrorChanged` false when the reconcile changed nothing in the mirror,
    /// `since` the ``Mirror/auditMark()`` taken before it ran (nil: reload every identity).
    public func raise(mirrorChanged: Bool = true, since mark: Int64? = nil) {
        raised.withLock { current in
            let next = Request(mirrorChanged: mirrorChanged, since: mirrorChanged ? mark : nil)
            guard let previous = current else {
                current = next
                return
            }
            switch (previous.mirrorChanged, next.mirrorChanged) {
            case (true, true): current = Request(mirrorChanged: true, since: previous.since.flatMap { a in next.since.map { min(a, $0) } })
            case (true, false): break
            case (false, _): current = next
            }
        }
    }

    func take() -> Request? { raised.withLock { value in defer { value = nil }; return value } }

    /// Answers a raised flag, if any, before the stream applies its next change.
    func answer(_ applier: ChangeApplier) throws {
        guard let request = take() else { return }
        switch (request.mirrorChanged, request.since) {
        case (true, let mark?): try applier.reload(changedAfter: mark)
        case (true, nil): try applier.reload()
        case (false, _): applier.restartBreaker()
        }
    }

    /// Reloads `applier` after a reconcile the stream itself waited for. That reconcile raised
    /// this signal too; the reload answers it, so the next change does not reload again (a
    /// second reload of 100k users took seconds on the first revocation after a start, and
    /// every change queued behind it waited as long).
    func reload(_ applier: ChangeApplier) throws {
        _ = take()
        try applier.reload()
    }
}

/// One event of one stream, with the cookie that came with it and when it arrived.
struct QueuedEvent: Sendable {
    var kind: ChangeStreamKind
    var event: ResilientSyncStream.Event
    var cookie: [UInt8]?
    var arrived: ContinuousClock.Instant
}

extension SyncEvent {
    var isCookie: Bool { if case .cookie = self { true } else { false } }
}
