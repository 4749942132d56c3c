import AccessModel
import Dispatch
import Foundation
import LDAPKit
import Mirror
import RosterConfig

/// How to run a full reconcile.
public struct ReconcileOptions: Sendable {
    /// Compute and report the plan, change nothing.
    public var dryRun: Bool
    /// Apply even when the safety breaker would refuse.
    public var force: Bool
    /// Read every entry in full, even where the stored change markers would allow reading
    /// only the changed ones.
    public var full: Bool
    /// Called now and then with the number of user entries read so far.
    public var progress: (@Sendable (Int) -> Void)?
    /// List every change in the report (``ReconcileReport/changes``); otherwise only count them,
    /// which spares holding every new user's record until the apply returns.
    public var listChanges: Bool
    /// Where the apply runs, when not where the reconcile does. The daemon reads and maps at a
    /// low priority (``ThreadPriority``) but applies at its normal one: the apply holds the
    /// mirror's writer, which the change stream's revocations wait for.
    public var applyExecutor: (any TaskExecutor)?

    public init(dryRun: Bool = false, force: Bool = false, full: Bool = false, listChanges: Bool = true,
                applyExecutor: (any TaskExecutor)? = nil, progress: (@Sendable (Int) -> Void)? = nil) {
        self.dryRun = dryRun
        self.force = force
        self.full = full
        self.listChanges = listChanges
        self.applyExecutor = applyExecutor
        self.progress = progress
    }
}

/// What a full reconcile did (or, in a dry run or when refused, would do).
public struct ReconcileReport: Sendable {
    public var counts: PlanCounts
    /// Every change, as the mirror recorded (or would record) it; empty when refused or when
    /// not asked for (``ReconcileOptions/listChanges``).
    public var changes: [Change]
    /// How many changes were made (or would be).
    public var changeCount: Int
    public var eventCount: Int
    public var problems: [MappingProblem]
    public var newProviders: [ProviderID]
    public var usersRead: Int
    public var groupsRead: Int
    public var dryRun: Bool
    /// Users whose state flips later without a directory event, and when.
    public var nextChanges: [UserCode: Date]
    public var durations: [String: Duration]
    /// Whether every entry was read in full, or only the changed ones.
    public var source: ReconcileSource = .full(reason: "")
    /// Why the entries read could not be stored for the next reconcile (which then reads more);
    /// the apply itself stands. Nil when they were.
    public var entriesNotStored: String? = nil
    /// The mirror's audit mark taken before the reconcile read anything: what it changed has audit
    /// rows after it. Nil for a reconcile that found nothing changed without applying.
    public var auditMark: Int64? = nil
}

extension ReconcileReport {
    /// The phases' durations in the order they ran, as text ("markers 20ms, read 1s 34ms, …").
    public var phaseTimes: String {
        ["markers", "read", "lookups", "map", "apply"].compactMap { name in
            durations[name].map { "\(name) \($0.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow)))" }
        }.joined(separator: ", ")
    }
}

/// A refused or failed reconcile. Nothing was changed.
public enum ReconcileError: Error, Sendable, CustomStringConvertible {
    case breaker(BreakerTrip, PlanCounts)
    case directory(LDAPError)

    public var description: String {
        switch self {
        case .breaker(let trip, _): "Safety breaker: \(trip)"
        case .directory(let error): "The directory could not be read, so nothing was changed: \(error)"
        }
    }
}

/// Reads the whole directory, maps it, plans against the mirror and applies the plan in
/// one transaction. Never deletes a user; never revokes on a read error; refuses plans the
/// safety breaker rejects.
public struct Reconciler: Sendable {
    public let configuration: RosterConfiguration
    public let mirror: Mirror

    public init(configuration: RosterConfiguration, mirror: Mirror) {
        self.configuration = configuration
        self.mirror = mirror
    }

    /// The LDAPKit configuration for the configured directory.
    public static func ldapConfiguration(_ directory: RosterConfiguration.Directory) -> LDAPConfiguration {
        let credentials: LDAPConfiguration.Credentials = switch directory.bind {
        case .anonymous: .anonymous
        case .simple(let dn, let file): .simple(bindDN: dn, passwordFile: file)
        case .saslExternal: .saslExternal
        }
        return LDAPConfiguration(
            urls: directory.urls,
            security: directory.plaintext ? .plaintext : .tls(.init(caFile: directory.caFile, certificateFile: directory.certificateFile,
                                                                     keyFile: directory.keyFile, verifyServer: directory.verifyServer)),
            credentials: credentials,
            connectTimeout: .milliseconds(Int64(directory.connectTimeoutSeconds * 1000)),
            operationTimeout: .milliseconds(Int64(directory.operationTimeoutSeconds * 1000)))
    }

    /// Loads the mirror's snapshot off Swift's cooperative pool (``offPool(_:)``), as a task to await.
    private static func loadSnapshot(of mirror: Mirror) -> Task<AccessSnapshot, any Error> {
        offPool { try mirror.snapshot() }
    }

    public func run(_ options: ReconcileOptions = ReconcileOptions(), now: Date = Date()) async throws -> ReconcileReport {
        let clock = ContinuousClock()
        var durations: [String: Duration] = [:]
        var started = clock.now
        func lap(_ name: String) {
            durations[name] = clock.now - started
            started = clock.now
        }
        // Whatever the change stream (or anyone) changes in the mirror from now on is newer than
        // what this reconcile is about to read: the apply keeps it (see `keepingChangesAfter`).
        let mark = try mirror.auditMark()
        let connection: LDAPConnection
        do {
            connection = try await LDAPConnection.connect(Self.ldapConfiguration(configuration.directory))
        } catch let error as LDAPError {
            throw ReconcileError.directory(error)
        }
        defer { Task { await connection.close() } }

        // Change markers: read identities and markers only, and in full just the entries whose
        // marker moved, when the stored entries were read under the same configuration.
        let reader = DirectoryReader(configuration: configuration, connection: connection)
        let markerAttribute = ChangeMarker.attribute(for: configuration.directory.flavor)
        let lockout: LockoutPolicy
        var detected: DetectedChanges?
        var source: ReconcileSource
        let fingerprint: String
        var contextMarker: String?
        var earlySnapshot: Task<AccessSnapshot, any Error>?
        do {
            // Read before any entry: a change made while this reconcile reads moves it again.
            contextMarker = markerAttribute == nil ? nil : try await reader.contextMarker()
            lockout = try await LockoutPolicy.read(configuration, connection: connection)
            fingerprint = ChangeMarker.fingerprint(configuration, lockout: lockout)
            // Stored entries that cannot be read only cost a full read (the reason is reported).
            let basis: ReconcileBasis?
            var unreadable: (any Error)?
            do { basis = try mirror.reconcileBasis(for: configuration.directory.name) } catch { basis = nil; unreadable = error }
            if options.full {
                source = .full(reason: "asked for")
            } else if markerAttribute == nil {
                source = .full(reason: "the \(configuration.directory.flavor.rawValue) flavor has no trusted change marker")
            } else if let unreadable {
                source = .full(reason: "the stored directory entries could not be read: \(unreadable)")
            } else if basis == nil {
                source = .full(reason: "no directory entries stored yet")
            } else if basis?.fingerprint != fingerprint {
                source = .full(reason: "the configuration, Roster's mapping or the lockout duration changed since the entries were stored")
            } else if let contextMarker, contextMarker == basis!.contextMarker, try mirror.isUnchanged(since: basis!),
                      case let stored = try mirror.directoryEntrySummary(for: configuration.directory.name),
                      !stored.timed.values.contains(where: { $0 <= now }),
                      try await reader.stillShows([(.user, mirror.someDirectoryEntry(for: configuration.directory.name, kind: .user)),
                                                   (.group, mirror.someDirectoryEntry(for: configuration.directory.name, kind: .group))]) {
                // The directory database has not changed since the stored entries were read, the
                // mirror not since they were applied, and no state is due to flip: nothing to do.
                lap("markers")
                return try unchangedReport(users: stored.users, groups: stored.groups, timed: stored.timed, basis: basis!,
                                           options: options, now: now, durations: durations)
            } else {
                // Every entry's marker is listed, which takes slapd most of a full read: the
                // mirror's snapshot, needed next unless no entry in scope changed, loads beside it.
                earlySnapshot = Self.loadSnapshot(of: mirror)
                if let found = try await reader.detectChanges(markerAttribute: markerAttribute!, stored: mirror, now: now) {
                    detected = found
                    source = .changedEntries(users: found.changedUsers.count, groups: found.changedGroups.count)
                    let changed = found.changedUsers.count + found.changedGroups.count
                    if found.isEmpty, try mirror.isUnchanged(since: basis!) {
                        lap("markers")
                        return try unchangedReport(users: found.users.count, groups: found.groups.count,
                                                   timed: found.storedNextChanges, basis: basis!,
                                                   options: options, now: now, durations: durations)
                    } else if changed > max(500, (found.users.count + found.groups.count) / 20) {
                        detected = nil
                        source = .full(reason: "\(changed) entries changed: reading them all is faster")
                    }
                } else {
                    source = .full(reason: "some entry has no entryUUID or change marker")
                }
            }
        } catch let error as LDAPError {
            throw ReconcileError.directory(error)
        }
        lap("markers")

        // The mirror's snapshot loads on a thread of its own while the directory is read (or was
        // started beside the markers' listing): the two are independent, and the read mostly
        // waits for the server.
        // (A task keeps its result while anyone holds it: the handles are dropped once it is taken.)
        var storedLoad: Task<AccessSnapshot, any Error>? = earlySnapshot ?? Self.loadSnapshot(of: mirror)
        earlySnapshot = nil
        var content: DirectoryRead
        do {
            // A little over the stored users: a directory that has grown since grows the arrays once.
            let expectedUsers = try mirror.storedUserCountEstimate() * 21 / 20
            if let found = detected {
                do {
                    content = try await reader.readChanges(found, markerAttribute: markerAttribute!, stored: mirror, now: now,
                                                           lockout: lockout)
                } catch let fallback as DirectoryReader.FullReadNeeded {
                    source = .full(reason: fallback.reason)
                    content = try await reader.read(now: now, progress: options.progress, markerAttribute: markerAttribute,
                                                    lockout: lockout, expectedUsers: expectedUsers)
                }
            } else {
                content = try await reader.read(now: now, progress: options.progress, markerAttribute: markerAttribute,
                                                lockout: lockout, expectedUsers: expectedUsers)
            }
        } catch let error as LDAPError {
            _ = try? await storedLoad?.value
            throw ReconcileError.directory(error)
        }
        // The listing (identities and markers of every entry, tens of MB at 100k) is not needed
        // after the read: let it go before the mapping and the apply.
        detected = nil
        lap("read")

        var stored = try await storedLoad!.value
        storedLoad = nil
        // Counted in place: filtering would copy each matching user (100k of them) only to count them.
        var activeBefore = 0
        for user in stored.users.values where user.state.isActive && !user.state.isLocked { activeBefore += 1 }

        // Stored users the search did not return: gone only when a direct lookup agrees (an
        // empty mirror has none to look for, so a first load skips indexing what it read).
        var missing: [User] = []
        if !stored.users.isEmpty {
            let seenCodes = Set(content.users.map { $0.user.code })  // (a key path here copied each user whole)
            let skippedDNs = Set(content.problems.map { DN.normalize($0.dn) })
            missing = stored.users.values.filter { user in
                !seenCodes.contains(user.code) && !skippedDNs.contains(DN.normalize(user.directoryDN ?? ""))
            }
        }
        if !options.force, content.users.isEmpty, activeBefore > 0 {
            let trip = BreakerTrip.check(counts: PlanCounts(), activeUsersBefore: activeBefore, usersInDirectory: 0,
                                         maxDeactivations: configuration.safety.maxDeactivations,
                                         maxPercent: configuration.safety.maxDeactivationPercent)!
            throw ReconcileError.breaker(trip, PlanCounts())
        }
        var gone = Set<UserCode>()
        do {
            let lookup = DirectoryReader(configuration: configuration, connection: connection)
            for user in missing.sorted(by: { $0.code < $1.code }) where user.state.isActive || user.state.lockedByDirectory {
                if try await lookup.isGone(user) { gone.insert(user.code) }
            }
        } catch let error as LDAPError {
            throw ReconcileError.directory(error)
        }
        lap("lookups")

        let mapper = DirectoryMapper(configuration: configuration, now: now, lockout: content.lockout)
        // The mapped entries are handed over (moved, not copied: `content` keeps none), so that
        // they are gone before the apply, the peak of memory.
        let usersInDirectory = content.users.count
        let mappedUsers = content.users
        content.users = []
        let mapping = mapper.desiredState(users: consume mappedUsers, groups: content.groups, stored: stored,
                                          missing: .init(gone: gone), problems: content.problems)
        let counts = PlanCounts.between(stored: stored, desired: mapping.changeset, newProviders: mapping.newProviders)
        // A mirror that holds users is given only what differs from it: it would otherwise compare
        // every stored entity inside its write transaction, and every revocation the change stream
        // applies meanwhile would wait for that (1.0-1.3 s at 100k users, with nothing to change).
        // What changed after `mark` is kept as it is in both cases (`keepingChangesAfter`).
        let toApply = mapping.changeset.delta(from: stored) ?? mapping.changeset
        // The stored model is not needed past the plan; the apply reads the mirror itself.
        // Freed here, not at the end: the apply is the reconcile's peak of memory, and the stored
        // model is a third of it at 100k users.
        stored = AccessSnapshot()
        let problems = mapping.problems + content.notes
        lap("map")

        if !options.force, let trip = BreakerTrip.check(
            counts: counts, activeUsersBefore: activeBefore, usersInDirectory: usersInDirectory,
            maxDeactivations: configuration.safety.maxDeactivations, maxPercent: configuration.safety.maxDeactivationPercent) {
            throw ReconcileError.breaker(trip, counts)
        }
        // The entries' content and markers are stored in the apply's own transaction: a marker
        // is never stored without the content it was read with having been applied. They are
        // handed over (not kept here), so the mirror can let them go before its peak.
        var recording: DirectoryEntryUpdate?
        if content.userRecords != nil && content.groupRecords != nil {
            let readAll: Bool = if case .full = source { true } else { false }
            recording = DirectoryEntryUpdate(
                directory: configuration.directory.name, replaceAll: readAll, upserts: Self.takeRecords(&content),
                removals: readAll ? [] : content.removedEntries, fingerprint: fingerprint,
                contextMarker: contextMarker, problems: ProblemsContent.encode(problems))
        }
        let summary = try await withTaskExecutorPreference(options.applyExecutor) { [configuration, mirror] in
            let summary = if let update = recording.take() {
                try mirror.apply(toApply, actor: .directory(configuration.directory.name), at: now, dryRun: options.dryRun,
                                 recording: update, keepingChangesAfter: mark, listingChanges: options.listChanges)
            } else {
                try mirror.apply(toApply, actor: .directory(configuration.directory.name), at: now, dryRun: options.dryRun,
                                 keepingChangesAfter: mark, listingChanges: options.listChanges)
            }
            if !options.dryRun {
                var state = try mirror.syncState(for: configuration.directory.name) ?? SyncState(directory: configuration.directory.name)
                state.lastFullReconcile = now.formatted(.iso8601)
                try mirror.saveSyncState(state)
            }
            return summary
        }
        lap("apply")
        let report = ReconcileReport(counts: counts, changes: summary.changes, changeCount: summary.changeCount, eventCount: summary.eventCount,
                                     problems: problems, newProviders: mapping.newProviders, usersRead: usersInDirectory + content.problems.count,
                                     groupsRead: content.groups.count, dryRun: options.dryRun, nextChanges: mapping.nextChanges,
                                     durations: durations, source: source, entriesNotStored: summary.entriesNotStored, auditMark: mark)
        // The changeset is the largest value of a reconcile (every user): freeing it took 44-51 ms
        // of a 100k first sync's end; another thread does it.
        Self.releaseInBackground(consume mapping)
        return report
    }

    /// The entries `content` read, as records to store; `content` no longer holds them (moved,
    /// not copied: at 100k users copying and freeing them took a fifth of the map).
    private static func takeRecords(_ content: inout DirectoryRead) -> [DirectoryEntryRecord] {
        var records = content.userRecords.take() ?? []
        if let groups = content.groupRecords.take() { records.append(contentsOf: groups) }
        return records
    }

    /// Drops this reference to `value` on another thread: when it was the last one, the value is
    /// freed there, not on the caller's way on.
    private static func releaseInBackground<Value: Sendable>(_ value: consuming Value) {
        let box = ReleaseBox(value)
        DispatchQueue.global(qos: .utility).async { box.release() }
    }

    /// No marker moved, no entry came or went, no state is due to flip and nothing changed the
    /// mirror since the entries were stored: a full read would map exactly what was applied
    /// then, against the mirror that apply left, so its plan is empty.
    private func unchangedReport(users: Int, groups: Int, timed: [String: Date], basis: ReconcileBasis, options: ReconcileOptions, now: Date,
                                 durations: [String: Duration]) throws -> ReconcileReport {
        var nextChanges: [UserCode: Date] = [:]
        if !timed.isEmpty {
            let contents = try mirror.directoryEntryContents(for: configuration.directory.name, kind: .user, ids: Array(timed.keys))
            for (id, date) in timed {
                if let data = contents[id], case .success(let mapped)? = try? UserEntryContent.decode(data, superAdministrator: { _ in false }) {
                    nextChanges[mapped.user.code] = date
                }
            }
        }
        if !options.dryRun {
            var state = try mirror.syncState(for: configuration.directory.name) ?? SyncState(directory: configuration.directory.name)
            state.lastFullReconcile = now.formatted(.iso8601)
            try mirror.saveSyncState(state)
        }
        return ReconcileReport(counts: PlanCounts(), changes: [], changeCount: 0, eventCount: 0, problems: ProblemsContent.decode(basis.problems),
                               newProviders: [], usersRead: users, groupsRead: groups, dryRun: options.dryRun,
                               nextChanges: nextChanges, durations: durations, source: .unchanged)
    }
}

/// Holds a value until ``release()`` drops it (`Reconciler.releaseInBackground`).
private final class ReleaseBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is set when the box is made and dropped once, by `release()`.
    private var value: Value?
    init(_ value: consuming Value) { self.value = consume value }
    func release() { value = nil }
}
