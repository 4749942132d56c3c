import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig

/// Everything a full reconcile reads from the directory, already mapped per entry.
public struct DirectoryRead: Sendable {
    public var users: [MappedUser]
    public var groups: [DirectoryGroup]
    /// Entries that could not be mapped, and were skipped.
    public var problems: [MappingProblem]
    /// Entries that mapped, with something odd reported (see `MappedUser.notes`).
    public var notes: [MappingProblem] = []
    /// How long the directory's lockouts last, as read for this reconcile.
    public var lockout = LockoutPolicy()
    /// With a change marker: the user and group entries read in this reconcile, with their
    /// markers, to store with the apply (nil when the flavor has no marker). Entries reused from
    /// the store are not listed: they stay as stored.
    var userRecords: [DirectoryEntryRecord]? = nil
    var groupRecords: [DirectoryEntryRecord]? = nil
    /// Stored entries no longer in the directory's answer.
    var removedEntries: [(kind: DirectoryEntryRecord.Kind, entryID: String)] = []
}

/// The users a read mapped, and the entries it skipped or noted, as both reads (full and
/// change-detecting) gather them: each user given the shared copy of its set of health centers.
struct MappedUsers {
    var users: [MappedUser] = []
    var problems: [MappingProblem] = []
    var notes: [MappingProblem] = []
    private var healthCenterSets = HealthCenterSets()

    init(expecting count: Int = 0) { users.reserveCapacity(count) }

    /// Takes `outcome` (consumed: the user's fields are then changed in place, not copied).
    mutating func add(_ outcome: consuming Swift.Result<MappedUser, MappingProblem>) {
        switch consume outcome {
        case .success(var user):
            notes += user.notes
            user.user.healthCenters = healthCenterSets.shared(user.user.healthCenters)
            users.append(user)
        case .failure(let problem): problems.append(problem)
        }
    }
}

/// Reads users, groups and providers from the directory with paged, streaming searches,
/// mapping user entries as they arrive so that only compact values are held.
public struct DirectoryReader: Sendable {
    public let configuration: RosterConfiguration
    public let connection: LDAPConnection

    public init(configuration: RosterConfiguration, connection: LDAPConnection) {
        self.configuration = configuration
        self.connection = connection
    }

    var pageSize: Int { configuration.directory.pageSize }

    /// How long the providers' search waits before it starts (tests: so that every user entry
    /// arrives before it ends).
    var providerSearchDelay: Duration = .zero

    /// Reads every user and group entry in scope. With `markerAttribute`, each entry's change
    /// marker is read in the same search as its content and kept with it (``DirectoryRead/userRecords``).
    /// `expectedUsers` sizes what the read collects (growing it would hold two copies at once).
    public func read(now: Date, progress: (@Sendable (Int) -> Void)? = nil, markerAttribute: String? = nil,
                     lockout knownLockout: LockoutPolicy? = nil, expectedUsers: Int = 0) async throws -> DirectoryRead {
        let lockout: LockoutPolicy
        if let knownLockout { lockout = knownLockout } else { lockout = try await LockoutPolicy.read(configuration, connection: connection) }
        // The providers' search runs on a connection of its own beside the groups' and the users'
        // reads: the server evaluates its filter on every user entry (0.16-0.19 s at 100k users,
        // a sixth of the read when it ran first). User entries that arrive before it ends wait,
        // unmapped, in `early`, and are mapped in order once it has.
        let providerSearch = Completion<Result<Set<String>, any Error>>()
        let providerTask = Task { [self] in
            do {
                if providerSearchDelay > .zero { try await Task.sleep(for: providerSearchDelay) }
                providerSearch.finish(.success(try await readProviderDNs()))
            } catch {
                providerSearch.finish(.failure(error))
            }
        }
        defer { providerTask.cancel() }
        let (rawGroups, groupRecords) = try await readGroups(markerAttribute: markerAttribute)
        let groups = configuration.groups.nested ? Self.expandNested(rawGroups) : rawGroups
        let superAdministrators = superAdministratorDNs(groups)

        let mapper = DirectoryMapper(configuration: configuration, now: now, lockout: lockout)
        var mapped = MappedUsers(expecting: expectedUsers)
        var userRecords: [DirectoryEntryRecord]? = markerAttribute == nil ? nil : []
        userRecords?.reserveCapacity(expectedUsers)
        var count = 0
        var writer = FieldWriter()
        func map(_ entry: LDAPEntry, providerDNs: Set<String>) {
            let dn = DN.normalize(entry.dn)
            let outcome = mapper.mapUser(entry, normalizedDN: dn, isProvider: providerDNs.contains(dn), superAdministrator: superAdministrators.contains(dn))
            if let markerAttribute, let id = mapper.directoryID(of: entry), let marker = entry.string(markerAttribute) {
                userRecords?.append(DirectoryEntryRecord(kind: .user, entryID: id, marker: marker, dn: dn,
                                                         nextChange: (try? outcome.get())?.directoryState.nextChange,
                                                         content: UserEntryContent.encode(outcome, using: &writer)))
            }
            mapped.add(consume outcome)
            count += 1
            if count % 10_000 == 0 { progress?(count) }
        }
        var providerDNs: Set<String>?
        var early: [LDAPEntry] = []
        func mapEarly(_ found: Set<String>) {
            for entry in early { map(entry, providerDNs: found) }
            early = []
        }
        for try await entry in connection.search(base: configuration.users.base, filter: configuration.users.filter,
                                                 attributes: mapper.userAttributes + (markerAttribute.map { [$0] } ?? []), pageSize: pageSize) {
            if providerDNs == nil, let result = providerSearch.result {
                providerDNs = try result.get()
                mapEarly(providerDNs!)
            }
            if let providerDNs { map(entry, providerDNs: providerDNs) } else { early.append(entry) }
        }
        if providerDNs == nil {
            await providerTask.value
            providerDNs = try providerSearch.result!.get()
            mapEarly(providerDNs!)
        }
        progress?(count)
        return DirectoryRead(users: mapped.users, groups: groups, problems: mapped.problems, notes: mapped.notes, lockout: lockout,
                             userRecords: userRecords, groupRecords: groupRecords)
    }

    /// DNs of the members of the configured super-administrator groups (after nesting).
    func superAdministratorDNs(_ groups: [DirectoryGroup]) -> Set<String> {
        let superAdministratorGroups = Set(configuration.users.superAdministratorGroups.map(DN.normalize))
        var superAdministrators = Set<String>()
        for group in groups where superAdministratorGroups.contains(group.dn) { superAdministrators.formUnion(group.members) }
        return superAdministrators
    }

    /// How this directory names its entries for good (its identity attribute).
    var identity: DirectoryIdentity { DirectoryIdentity(flavor: configuration.directory.flavor) }

    /// Groups under the configured base, with member DNs normalized, as the directory lists
    /// them (nesting not expanded); with `markerAttribute`, each with its marker.
    func readGroups(markerAttribute: String? = nil) async throws -> ([DirectoryGroup], [DirectoryEntryRecord]?) {
        var groups: [DirectoryGroup] = []
        var records: [DirectoryEntryRecord]? = markerAttribute == nil ? nil : []
        let attributes = ["cn", configuration.groups.memberAttribute] + (markerAttribute.map { [$0, identity.attribute] } ?? [])
        for try await entry in connection.search(base: configuration.groups.base, filter: configuration.groups.filter,
                                                 attributes: attributes, pageSize: pageSize) {
            let group = directoryGroup(entry)
            groups.append(group)
            if let markerAttribute, let id = identity.text(of: entry), let marker = entry.string(markerAttribute) {
                records?.append(DirectoryEntryRecord(kind: .group, entryID: id, marker: marker, dn: group.dn, nextChange: nil,
                                                     content: GroupEntryContent.encode(group)))
            }
        }
        return (groups, records)
    }

    func directoryGroup(_ entry: LDAPEntry) -> DirectoryGroup {
        let member = configuration.groups.memberAttribute
        return DirectoryGroup(dn: DN.normalize(entry.dn), cn: entry.string("cn"), members: entry.strings(member).map(DN.normalize))
    }

    /// Replaces each group's members by its effective members (through nested groups, at
    /// any depth; nested groups themselves are not listed).
    public static func expandNested(_ groups: [DirectoryGroup]) -> [DirectoryGroup] {
        var nesting = GroupNesting()
        for group in groups { nesting.update(group: group.dn, members: Set(group.members)) }
        return groups.map { group in
            var expanded = group
            expanded.members = nesting.effectiveMembers(of: group.dn).sorted()
            return expanded
        }
    }

    /// DNs of user entries that are providers (the server evaluates the provider filter), read
    /// on a connection opened for the search with this reader's configuration, so that it can
    /// run beside the reads on this one.
    func readProviderDNs() async throws -> Set<String> {
        guard let filter = configuration.providers.filter else { return [] }
        let searching = try await LDAPConnection.connect(connection.configuration)
        defer { Task { await searching.close() } }
        var dns = Set<String>()
        for try await entry in searching.search(base: configuration.users.base, filter: "(&\(configuration.users.filter)\(filter))",
                                                attributes: ["1.1"], pageSize: pageSize) {
            dns.insert(DN.normalize(entry.dn))
        }
        return dns
    }

    /// Whether a stored user's entry is really gone: not at its DN within the user filter,
    /// and not anywhere under the users' base with its directory identity. An entry that is
    /// still there but now carries another user code (a renamed login) counts as gone for
    /// the old code: the new code is a user of its own.
    func isGone(_ user: User) async throws -> Bool {
        let filter = configuration.users.filter
        let codeAttribute = configuration.users.attributes.userCode
        func stillThisUser(_ entries: [LDAPEntry]) -> Bool {
            entries.contains { entry in entry.strings(codeAttribute).contains { UserCode($0) == user.code } }
        }
        if let dn = user.directoryDN {
            do {
                let found = try await connection.search(base: dn, scope: .base, filter: filter, attributes: [codeAttribute], pageSize: nil).collect()
                if stillThisUser(found) { return false }
            } catch let error as LDAPError where error.code == .noSuchObject {
                // gone from that DN; check by identity below
            }
        }
        if let id = user.directoryID, configuration.directory.flavor == .activedirectory, let guid = EntryUUID(id) {
            // Moved or renamed within the base: found by its objectGUID.
            do {
                let found = try await connection.search(base: guid.guidDN, scope: .base, filter: filter, attributes: [codeAttribute], pageSize: nil).collect()
                if found.contains(where: { DN.isWithin($0.dn, base: configuration.users.base) }) && stillThisUser(found) { return false }
            } catch let error as LDAPError where error.code == .noSuchObject {
                // no object with that objectGUID
            }
        } else if let id = user.directoryID {
            let byID = "(&\(filter)\(EntryUUID(id).map(identity.filter) ?? "(\(identity.attribute)=\(escapeFilterValue(id)))"))"
            let found = try await connection.search(base: configuration.users.base, filter: byID, attributes: [codeAttribute], pageSize: nil).collect()
            if stillThisUser(found) { return false }
        }
        return true
    }
}
