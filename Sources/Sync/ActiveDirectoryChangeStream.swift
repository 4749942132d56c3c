import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import Synchronization

/// Follows an Active Directory domain (or a Samba AD DC) with DirSync
/// (1.2.840.113556.1.4.841): every `schedule.dirsync_interval_seconds` it asks for the
/// objects changed since its cookie, reads each changed user or group again by
/// `objectGUID` and applies it through `ChangeApplier`. Deleted objects arrive as
/// tombstones (`isDeleted`); a user that left the configured base or filter is confirmed
/// by the lookup itself. The cookie is stored with the DC's `invocationId`: after a
/// reconnect the same DC database resumes from it; another DC (or a restored one) gets a
/// full reconcile first. A failed read never deactivates anyone: the cookie only moves on
/// once every change it covers was applied.
struct ActiveDirectoryChangeStream {
    let configuration: RosterConfiguration
    let mirror: Mirror
    let backoff: Backoff
    let reloadSignal: ReloadSignal

    /// What DirSync asks for: users and groups (tombstones keep `objectClass`, not
    /// `objectCategory`, so the configured filters are applied by the lookups instead).
    static let dirSyncFilter = "(|(objectClass=user)(objectClass=group))"

    private var stateKey: String { "\(configuration.directory.name)/dirsync" }

    func run(status: @escaping @Sendable (ChangeStreamStatus) -> Void,
             reconcile: @escaping @Sendable (String) async -> Bool) async throws {
        let applier = ChangeApplier(configuration: configuration, mirror: mirror)
        let wake = WakeSignal()
        let listener = Task { [configuration, backoff] in
            if configuration.schedule.changeNotifications {
                await Self.listen(configuration: configuration, backoff: backoff, wake: wake)
            }
        }
        do {
            try await follow(applier, wake: wake, status: status, reconcile: reconcile)
        } catch {
            listener.cancel()
            await applier.close()
            throw error
        }
        listener.cancel()
        await applier.close()
    }

    /// Keeps a change-notification search open and wakes the DirSync poll whenever the DC
    /// reports a change. Only a wake-up: when it is down (or the DC refuses it), DirSync
    /// still runs on its interval.
    static func listen(configuration: RosterConfiguration, backoff: Backoff, wake: WakeSignal) async {
        let ldap = Reconciler.ldapConfiguration(configuration.directory)
        var retry = backoff
        while !Task.isCancelled {
            do {
                let connection = try await LDAPConnection.connect(ldap)
                let context = try await serverIdentity(connection).namingContext
                await connection.close()
                for try await _ in try await ChangeNotifications.stream(ldap, base: context) {
                    retry.reset()
                    wake.raise()
                }
            } catch {
                // Down, or refused: DirSync's interval covers it; try again later.
            }
            try? await Task.sleep(for: max(retry.nextDelay(), .seconds(1)))
        }
    }

    private func follow(_ applier: ChangeApplier, wake: WakeSignal, status: @escaping @Sendable (ChangeStreamStatus) -> Void,
                        reconcile: @escaping @Sendable (String) async -> Bool) async throws {
        let ldap = Reconciler.ldapConfiguration(configuration.directory)
        try applier.reload()
        let requests = ReconcileRequests(reconcile: reconcile, reloadSignal: reloadSignal, mirror: mirror)
        defer { requests.cancel() }
        var retry = backoff
        var announcedReady = false
        var flags: DirSyncFlags = []
        let interval = Duration.milliseconds(Int64(configuration.schedule.dirSyncIntervalSeconds * 1000))
        while !Task.isCancelled {
            do {
                let connection = try await LDAPConnection.connect(ldap)
                defer { Task { await connection.close() } }
                let server = try await Self.serverIdentity(connection)
                let stored = try mirror.syncState(for: stateKey)?.cookie.flatMap(DirSyncCheckpoint.init(encoded:))
                var cookie: [UInt8]
                switch DirSyncCheckpoint.resume(from: stored, serverInvocationID: server.invocationID) {
                case .resume(let value):
                    status(.connected(.users, resuming: true))
                    cookie = value
                case .fullReload(let why):
                    status(.connected(.users, resuming: false))
                    // The cookie first, then the reconcile: changes in between are applied
                    // again from the cookie, which is harmless.
                    let before = flags
                    (cookie, flags) = try await drain(connection, namingContext: server.namingContext, flags: flags)
                    if flags != before { status(.problem(Self.objectSecurityWarning)) }
                    status(.fullReconcileNeeded(why))
                    if await reconcile("Active Directory: \(why)") {
                        try reloadSignal.reload(applier)
                        try save(DirSyncCheckpoint(invocationID: server.invocationID, cookie: cookie))
                    }
                }
                // The domain's lockout duration is read again for this connection (by the first
                // change that needs it), as it may have changed while the stream was away.
                applier.forgetLockoutPolicy()
                var groups = try await GroupIndex.load(connection, configuration: configuration)
                retry.reset()
                if !announcedReady {
                    announcedReady = true
                    await applier.prepareForChanges()
                    status(.refreshComplete)
                }
                while !Task.isCancelled {
                    try reloadSignal.answer(applier)
                    let result: DirSyncResult
                    do {
                        result = try await connection.dirSync(base: server.namingContext, filter: Self.dirSyncFilter,
                                                              attributes: ["*", "isDeleted"], cookie: cookie, flags: flags)
                    } catch let error as LDAPError where error.code == .insufficientAccess && !flags.contains(.objectSecurity) {
                        // Without replication rights, DirSync needs the object-security flag.
                        flags.insert(.objectSecurity)
                        status(.problem(Self.objectSecurityWarning))
                        continue
                    } catch let error as LDAPError where !error.code.isConnectionFailure {
                        // The DC refuses the cookie (expired, or from a database it no
                        // longer knows): forget it, so the reconnect reloads everything.
                        try save(DirSyncCheckpoint(invocationID: server.invocationID, cookie: []))
                        status(.problem("The domain controller refused the DirSync cookie (\(error)); Roster reloads with a full reconcile."))
                        throw error
                    }
                    let arrived = ContinuousClock.now
                    for entry in result.entries {
                        try await apply(entry, connection: connection, applier: applier, groups: &groups, arrived: arrived,
                                        status: status, requests: requests)
                    }
                    cookie = result.cookie
                    // Stored when it covers changes; an idle poll's newer cookie is kept in
                    // memory only (a restart from the older one finds nothing new).
                    if !result.entries.isEmpty {
                        try save(DirSyncCheckpoint(invocationID: server.invocationID, cookie: cookie))
                    }
                    if !result.moreResults {
                        await wake.wait(upTo: interval)
                        try Task.checkCancellation()
                    }
                }
            } catch let error as LDAPError {
                let delay = retry.nextDelay()
                status(.disconnected(.users, error, retryIn: delay))
                try await Task.sleep(for: delay)
            }
        }
    }

    private func save(_ checkpoint: DirSyncCheckpoint) throws {
        var state = try mirror.syncState(for: stateKey) ?? SyncState(directory: stateKey)
        state.cookie = checkpoint.encoded
        state.lastChangeApplied = Date().formatted(.iso8601)
        try mirror.saveSyncState(state)
    }

    /// Reads DirSync from the start to the end, keeping only the cookie.
    private func drain(_ connection: LDAPConnection, namingContext: String, flags initial: DirSyncFlags) async throws -> ([UInt8], DirSyncFlags) {
        var flags = initial
        var cookie: [UInt8]?
        while true {
            do {
                let result = try await connection.dirSync(base: namingContext, filter: Self.dirSyncFilter, attributes: ["objectGUID"],
                                                          cookie: cookie, flags: flags)
                cookie = result.cookie
                if !result.moreResults { return (result.cookie, flags) }
            } catch let error as LDAPError where error.code == .insufficientAccess && !flags.contains(.objectSecurity) {
                flags.insert(.objectSecurity)
            }
        }
    }

    static let objectSecurityWarning = """
        The bind account lacks the "Replicating Directory Changes" right, so DirSync runs with the object-security flag: \
        changes arrive as usual, but deleted users are not visible to it (the Deleted Objects container is readable by \
        administrators only) and are deactivated by the scheduled full reconcile instead. Grant the right for real-time deletions.
        """

    /// Applies one object DirSync reported.
    private func apply(_ entry: LDAPEntry, connection: LDAPConnection, applier: ChangeApplier, groups: inout GroupIndex,
                       arrived: ContinuousClock.Instant, status: @escaping @Sendable (ChangeStreamStatus) -> Void,
                       requests: ReconcileRequests) async throws {
        guard let id = entry["objectGUID"].first.flatMap({ EntryUUID(bytes: $0.bytes) }) else { return }
        let deleted = entry.string("isDeleted")?.uppercased() == "TRUE"
        var asUser: LDAPEntry?
        var asGroup: LDAPEntry?
        if !deleted {
            let mapper = DirectoryMapper(configuration: configuration, now: Date())
            asUser = try await lookup(connection, id, filter: configuration.users.filter, attributes: mapper.userAttributes)
            if asUser.map({ !DN.isWithin($0.dn, base: configuration.users.base) }) ?? true {
                asUser = nil
                asGroup = try await lookup(connection, id, filter: configuration.groups.filter,
                                           attributes: ["cn", configuration.groups.memberAttribute, "objectGUID"])
            }
        }
        let change = DirSyncChange.classify(id: id, isDeleted: deleted, asUser: asUser, asGroup: asGroup,
                                            usersBase: configuration.users.base, groupsBase: configuration.groups.base,
                                            knownUser: try applier.isKnownUser(id), knownGroupDN: groups.dnByID[id])
        var results: [(ChangeStreamKind, AppliedChange)] = []
        switch change {
        case .ignored:
            return
        case .user(let id, let full):
            results.append((.users, try await applier.apply(.modify(id, full), from: .users, cookie: nil)))
        case .userGone(let id, _):
            results.append((.users, try await applier.apply(.delete(id, dn: nil), from: .users, cookie: nil)))
        case .group(let id, let full):
            let dn = DN.normalize(full.dn)
            var affected = groups.update(id: id, dn: dn, members: Set(full.strings(configuration.groups.memberAttribute).map(DN.normalize)))
            affected.remove(dn)
            // The group itself, when the mapping uses it or it may become mapped (then the
            // applier asks for a full reconcile); a plain nested group only matters through
            // the groups containing it ...
            if applier.isMappedGroup(dn) || applier.isReferencedGroup(dn) || applier.mayBecomeMapped(full.dn, cn: full.string("cn")) {
                results.append((.groups, try await applier.apply(.modify(id, groups.entry(for: dn, original: full, configuration: configuration)),
                                                                 from: .groups, cookie: nil)))
            }
            // ... the mapped (or referenced) groups it is nested in, whose effective members changed.
            for parent in affected.sorted() where applier.isMappedGroup(parent) || applier.isReferencedGroup(parent) {
                results.append((.groups, try await applier.apply(.modify(id, groups.entry(for: parent, original: nil, configuration: configuration)),
                                                                 from: .groups, cookie: nil)))
            }
        case .groupGone(let id, let dn):
            let affected = groups.remove(id: id, dn: dn)
            var result = AppliedChange()
            if applier.isMappedGroup(dn) { result.fullReconcileReason = "a mapped group was deleted or left the groups' scope" }
            results.append((.groups, result))
            for parent in affected.sorted() where parent != dn && (applier.isMappedGroup(parent) || applier.isReferencedGroup(parent)) {
                results.append((.groups, try await applier.apply(.modify(id, groups.entry(for: parent, original: nil, configuration: configuration)),
                                                                 from: .groups, cookie: nil)))
            }
        }
        for (kind, applied) in results {
            report(applied, kind: kind, arrived: arrived, status: status, requests: requests, because: "an Active Directory \(kind.rawValue) change")
        }
    }

    /// Reads an object by `objectGUID` within a filter; nil when there is no such object
    /// or it does not match. Any other error is thrown: it is no evidence of absence.
    private func lookup(_ connection: LDAPConnection, _ id: EntryUUID, filter: String, attributes: [String]) async throws -> LDAPEntry? {
        do {
            return try await connection.search(base: id.guidDN, scope: .base, filter: filter, attributes: attributes, pageSize: nil)
                .collect().first
        } catch let error as LDAPError where error.code == .noSuchObject {
            return nil
        }
    }

    /// The DC's naming context and `invocationId`.
    static func serverIdentity(_ connection: LDAPConnection) async throws -> (namingContext: String, invocationID: String) {
        guard let root = try await connection.read("", attributes: ["defaultNamingContext", "dsServiceName"]),
              let context = root.string("defaultNamingContext"), let service = root.string("dsServiceName") else {
            throw LDAPError(code: .noSuchAttribute, operation: .search, target: "the root DSE",
                            hint: "The server does not publish defaultNamingContext and dsServiceName; flavor activedirectory needs an Active Directory or Samba AD domain controller.")
        }
        guard let settings = try await connection.read(service, attributes: ["invocationId"]),
              let id = settings["invocationId"].first.flatMap({ EntryUUID(bytes: $0.bytes) }) else {
            throw LDAPError(code: .noSuchAttribute, operation: .search, target: service,
                            hint: "The domain controller's invocationId could not be read; the bind account needs read access to its NTDS Settings object.")
        }
        return (context, id.description)
    }
}

/// The groups the Active Directory stream knows: DN by `objectGUID`, and the nesting of
/// direct memberships, so a change to a nested group reaches the groups containing it.
struct GroupIndex {
    var dnByID: [EntryUUID: String] = [:]
    var nesting = GroupNesting()
    var nested: Bool

    static func load(_ connection: LDAPConnection, configuration: RosterConfiguration) async throws -> GroupIndex {
        var index = GroupIndex(nested: configuration.groups.nested)
        let member = configuration.groups.memberAttribute
        for try await entry in connection.search(base: configuration.groups.base, filter: configuration.groups.filter,
                                                 attributes: ["objectGUID", member], pageSize: configuration.directory.pageSize) {
            let dn = DN.normalize(entry.dn)
            if let id = entry["objectGUID"].first.flatMap({ EntryUUID(bytes: $0.bytes) }) { index.dnByID[id] = dn }
            index.nesting.update(group: dn, members: Set(entry.strings(member).map(DN.normalize)))
        }
        return index
    }

    /// Records a group's direct members; returns the groups whose effective members may
    /// have changed (the group and, with nesting, every group containing it).
    mutating func update(id: EntryUUID, dn: String, members: Set<String>) -> Set<String> {
        if let old = dnByID[id], old != dn { nesting.remove(group: old) }
        dnByID[id] = dn
        let before = nested ? nesting.containing(dn) : [dn]
        nesting.update(group: dn, members: members)
        return nested ? before.union(nesting.containing(dn)) : [dn]
    }

    /// Forgets a group; returns the groups that contained it.
    mutating func remove(id: EntryUUID, dn: String) -> Set<String> {
        let affected = nested ? nesting.containing(dn) : [dn]
        dnByID[id] = nil
        nesting.remove(group: dn)
        return affected
    }

    /// The entry to apply for a group: with nesting, its effective members under the
    /// member attribute; without, the entry as read.
    func entry(for dn: String, original: LDAPEntry?, configuration: RosterConfiguration) -> LDAPEntry {
        if !nested, let original { return original }
        let members = nested ? nesting.effectiveMembers(of: dn) : (nesting.direct[dn] ?? [])
        return LDAPEntry(dn: original?.dn ?? dn, attributes: [(configuration.groups.memberAttribute, members.sorted().map(LDAPValue.init))])
    }
}

/// Wakes one waiter early; a raise with no waiter is kept for the next wait.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    func raise() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns after `timeout`, or earlier when raised (or raised since the last wait).
    func wait(upTo timeout: Duration) async {
        let timer = Task { [self] in
            // A cancelled timer (the wait ended early) must not leave a raise behind.
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            raise()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            raise()
        }
        timer.cancel()
    }
}
