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
    /// Called now and then with the number of user entries read so far.
    public var progress: (@Sendable (Int) -> Void)?

    public init(dryRun: Bool = false, force: Bool = false, progress: (@Sendable (Int) -> Void)? = nil) {
        self.dryRun = dryRun
        self.force = force
        self.progress = progress
    }
}

/// What a full reconcile did (or, in a dry run or when refused, would do).
public struct ReconcileReport: Sendable {
    public var counts: PlanCounts
    /// Every change, as the mirror recorded (or would record) it; empty when refused.
    public var changes: [Change]
    public var eventCount: Int
    public var problems: [MappingProblem]
    public var newProviders: [ProviderID]
    public var usersRead: Int
    public var groupsRead: Int
    public var dryRun: Bool
    /// Users whose state flips later without a directory event, and when.
    public var nextChanges: [UserCode: Date]
    public var durations: [String: Duration]
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

    /// Loads the mirror's snapshot on a Dispatch thread (a blocking SQLite read must not hold a
    /// thread of Swift's cooperative pool), as a task to await.
    private static func loadSnapshot(of mirror: Mirror) -> Task<AccessSnapshot, any Error> {
        Task {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(with: Result { try mirror.snapshot() }) }
            }
        }
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

        // The mirror's snapshot loads on a thread of its own while the directory is read: the
        // two are independent, and the read mostly waits for the server.
        let storedLoad = Self.loadSnapshot(of: mirror)
        var content: DirectoryRead
        do {
            content = try await DirectoryReader(configuration: configuration, connection: connection)
                .read(now: now, progress: options.progress)
        } catch let error as LDAPError {
            _ = try? await storedLoad.value
            throw ReconcileError.directory(error)
        }
        lap("read")

        let stored = try await storedLoad.value
        let activeBefore = stored.users.values.filter { $0.state.isActive && !$0.state.isLocked }.count

        // Stored users the search did not return: gone only when a direct lookup agrees.
        let seenCodes = Set(content.users.map(\.user.code))
        let skippedDNs = Set(content.problems.map { DN.normalize($0.dn) })
        let missing = stored.users.values.filter { user in
            !seenCodes.contains(user.code) && !skippedDNs.contains(DN.normalize(user.directoryDN ?? ""))
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

        let mapper = DirectoryMapper(configuration: configuration, now: now, lockoutDuration: content.lockoutDuration)
        let mapping = mapper.desiredState(users: content.users, groups: content.groups, stored: stored,
                                          missing: .init(gone: gone), problems: content.problems)
        let counts = PlanCounts.between(stored: stored, desired: mapping.changeset, newProviders: mapping.newProviders)
        // The mapped entries are in the changeset now: let them go before the apply, the peak of memory.
        let usersInDirectory = content.users.count
        content.users = []
        lap("map")

        if !options.force, let trip = BreakerTrip.check(
            counts: counts, activeUsersBefore: activeBefore, usersInDirectory: usersInDirectory,
            maxDeactivations: configuration.safety.maxDeactivations, maxPercent: configuration.safety.maxDeactivationPercent) {
            throw ReconcileError.breaker(trip, counts)
        }
        let summary = try mirror.apply(mapping.changeset, actor: .directory(configuration.directory.name), at: now, dryRun: options.dryRun,
                                       keepingChangesAfter: mark)
        if !options.dryRun {
            var state = try mirror.syncState(for: configuration.directory.name) ?? SyncState(directory: configuration.directory.name)
            state.lastFullReconcile = now.formatted(.iso8601)
            try mirror.saveSyncState(state)
        }
        lap("apply")
        return ReconcileReport(counts: counts, changes: summary.changes, eventCount: summary.eventCount, problems: mapping.problems + content.notes,
                               newProviders: mapping.newProviders, usersRead: usersInDirectory + content.problems.count,
                               groupsRead: content.groups.count, dryRun: options.dryRun, nextChanges: mapping.nextChanges,
                               durations: durations)
    }
}
