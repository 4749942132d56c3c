import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig

/// How a reconcile came by the directory's content.
public enum ReconcileSource: Sendable, Equatable, CustomStringConvertible {
    /// Every entry read in full, and why.
    case full(reason: String)
    /// Markers read for every entry; these entries read in full, the rest reused from the mirror.
    case changedEntries(users: Int, groups: Int)
    /// Markers read for every entry, none moved and the mirror unchanged since: nothing to do.
    case unchanged

    public var description: String {
        switch self {
        case .full(let reason): "full read (\(reason))"
        case .changedEntries(let users, let groups): "change markers; read in full \(users) changed user entr\(users == 1 ? "y" : "ies") and \(groups) changed group\(groups == 1 ? "" : "s")"
        case .unchanged: "change markers; nothing changed"
        }
    }
}

/// One entry of a marker listing: its identity, DN and change marker.
struct ListedEntry: Sendable {
    var entryID: String
    var rawDN: String
    var dn: String
    var marker: String
}

/// What comparing the directory's markers with the stored ones found.
struct DetectedChanges: Sendable {
    var users: [ListedEntry]
    var groups: [ListedEntry]
    /// Positions in `users` / `groups` to read in full (new, marker or DN moved, state due to flip).
    var changedUsers: Set<Int>
    var changedGroups: Set<Int>
    var removed: [(kind: DirectoryEntryRecord.Kind, entryID: String)]
    /// Stored users whose state changes by itself at a known moment, by entry id. (The stored
    /// markers themselves are not kept: tens of MB at 100k users, needed only to compare.)
    var storedNextChanges: [String: Date]

    var isEmpty: Bool { changedUsers.isEmpty && changedGroups.isEmpty && removed.isEmpty }
}

extension DirectoryReader {
    /// The change marker of the directory database holding both the users' and the groups'
    /// base: OpenLDAP's `contextCSN` of its suffix entry (the newest change's CSN, per server
    /// id), which moves with every add, modify, rename and delete. nil when not shown (no
    /// syncprov, or the bind account may not read it).
    func contextMarker() async throws -> String? {
        guard configuration.directory.flavor == .openldap,
              let root = try await connection.read("", attributes: ["namingContexts"]) else { return nil }
        let contexts = root.strings("namingContexts").filter { context in
            DN.isWithin(configuration.users.base, base: context) && DN.isWithin(configuration.groups.base, base: context)
        }
        guard let context = contexts.max(by: { DN.normalize($0).count < DN.normalize($1).count }), !DN.normalize(context).isEmpty,
              let entry = try await connection.read(context, attributes: ["contextCSN"]) else { return nil }
        let values = entry.strings("contextCSN").sorted()
        return values.isEmpty ? nil : DN.normalize(context) + " " + values.joined(separator: " ")
    }

    /// Lists every user and group in scope with identity and marker only; nil when some entry
    /// lacks either (it could not be compared: read everything).
    func detectChanges(markerAttribute: String, stored mirror: Mirror, now: Date) async throws -> DetectedChanges? {
        func list(base: String, filter: String) async throws -> [ListedEntry]? {
            var result: [ListedEntry] = []
            for try await entry in connection.search(base: base, filter: filter, attributes: [identity.attribute, markerAttribute], pageSize: pageSize) {
                guard let id = identity.text(of: entry), let marker = entry.string(markerAttribute) else { return nil }
                result.append(ListedEntry(entryID: id, rawDN: entry.dn, dn: DN.normalize(entry.dn), marker: marker))
            }
            return result
        }
        // The stored markers load beside the listing, which mostly waits for the server.
        let name = configuration.directory.name
        let storedLoad = offPool {
            (users: try mirror.directoryEntryMarkers(for: name, kind: .user), groups: try mirror.directoryEntryMarkers(for: name, kind: .group))
        }
        guard let users = try await list(base: configuration.users.base, filter: configuration.users.filter),
              let groups = try await list(base: configuration.groups.base, filter: configuration.groups.filter) else { return nil }
        let (storedUsers, storedGroups) = try await storedLoad.value
        func changed(_ listed: [ListedEntry], _ stored: [String: DirectoryEntryMarker]) -> Set<Int> {
            Set(listed.indices.filter { index in
                let entry = listed[index]
                guard let known = stored[entry.entryID] else { return true }
                return known.marker != entry.marker || known.dn != entry.dn || (known.nextChange.map { $0 <= now } ?? false)
            })
        }
        var removed: [(kind: DirectoryEntryRecord.Kind, entryID: String)] = []
        let listedUsers = Set(users.map(\.entryID))
        let listedGroups = Set(groups.map(\.entryID))
        removed += storedUsers.keys.filter { !listedUsers.contains($0) }.sorted().map { (.user, $0) }
        removed += storedGroups.keys.filter { !listedGroups.contains($0) }.sorted().map { (.group, $0) }
        // Two listed entries with one identity cannot be told apart by it.
        guard listedUsers.count == users.count, listedGroups.count == groups.count else { return nil }
        return DetectedChanges(users: users, groups: groups, changedUsers: changed(users, storedUsers), changedGroups: changed(groups, storedGroups),
                               removed: removed, storedNextChanges: storedUsers.compactMapValues(\.nextChange))
    }

    /// Whether the directory still shows the bind account one stored user and one stored group,
    /// by DN within the configured filters and with the same identity. A change of the
    /// server's access rules (the bind account losing its read rights) moves no marker: this
    /// makes it reach the full comparison, whose breaker reports it, instead of "unchanged".
    func stillShows(_ stored: [(kind: DirectoryEntryRecord.Kind, entry: (entryID: String, dn: String)?)]) async throws -> Bool {
        for (kind, entry) in stored {
            guard let entry else { continue }
            let filter = kind == .user ? configuration.users.filter : configuration.groups.filter
            let base = kind == .user ? configuration.users.base : configuration.groups.base
            guard DN.isWithin(entry.dn, base: base) else { return false }
            do {
                let found = try await connection.search(base: entry.dn, scope: .base, filter: filter, attributes: [identity.attribute], pageSize: nil).collect()
                guard found.contains(where: { identity.text(of: $0) == entry.entryID }) else { return false }
            } catch let error as LDAPError where error.code == .noSuchObject {
                return false
            }
        }
        return true
    }

    /// Why a change-detecting read gave up; the reconcile then reads everything.
    struct FullReadNeeded: Error, Sendable { var reason: String }

    /// The directory's content as a full read would give it: the changed entries read in full
    /// (each with the marker read in the same search), the others as the mirror stored them.
    func readChanges(_ detected: DetectedChanges, markerAttribute: String, stored mirror: Mirror, now: Date,
                     lockout: LockoutPolicy) async throws -> DirectoryRead {
        let name = configuration.directory.name
        let mapper = DirectoryMapper(configuration: configuration, now: now, lockout: lockout)
        /// One entry by DN within `filter`, checked to still be the listed one.
        func readOne(_ listed: ListedEntry, filter: String, attributes: [String]) async throws -> LDAPEntry {
            var found: [LDAPEntry] = []
            do {
                found = try await connection.search(base: listed.rawDN, scope: .base, filter: filter, attributes: attributes, pageSize: nil).collect()
            } catch let error as LDAPError where error.code == .noSuchObject {}
            guard let entry = found.first, mapper.directoryID(of: entry) == listed.entryID, entry.string(markerAttribute) != nil else {
                throw FullReadNeeded(reason: "\(listed.rawDN) changed while it was being read")
            }
            return entry
        }

        // Groups: the changed ones read, the others as stored; nesting expanded over all of them.
        let storedGroupContent = detected.changedGroups.count == detected.groups.count ? [:]
            : try mirror.directoryEntryContents(for: name, kind: .group)
        var rawGroups: [DirectoryGroup] = []
        var groupRecords: [DirectoryEntryRecord] = []
        let groupAttributes = ["cn", configuration.groups.memberAttribute, identity.attribute, markerAttribute]
        for (index, listed) in detected.groups.enumerated() {
            let group: DirectoryGroup
            let marker: String
            if detected.changedGroups.contains(index) {
                let entry = try await readOne(listed, filter: configuration.groups.filter, attributes: groupAttributes)
                group = directoryGroup(entry)
                marker = entry.string(markerAttribute)!
            } else {
                guard let data = storedGroupContent[listed.entryID], let decoded = try? GroupEntryContent.decode(data, dn: listed.dn) else {
                    throw FullReadNeeded(reason: "the stored copy of \(listed.rawDN) is unreadable")
                }
                group = decoded
                marker = listed.marker
            }
            rawGroups.append(group)
            if detected.changedGroups.contains(index) {
                groupRecords.append(DirectoryEntryRecord(kind: .group, entryID: listed.entryID, marker: marker, dn: group.dn, nextChange: nil,
                                                         content: GroupEntryContent.encode(group)))
            }
        }
        let groups = configuration.groups.nested ? Self.expandNested(rawGroups) : rawGroups
        let superAdministrators = superAdministratorDNs(groups)

        // Users: the changed ones read and mapped, the others as stored (the super-administrator
        // flag set from this reconcile's groups, as a full read sets it). The stored ones are
        // decoded in one pass over the store, each as it is read: loading every stored copy first
        // held tens of MB more at 100k users. So they come in entry id order, after the changed
        // ones; the mapping does not depend on the order (duplicate codes are all skipped, a
        // DN names one entry).
        var mapped = MappedUsers(expecting: detected.users.count)
        var userRecords: [DirectoryEntryRecord] = []
        userRecords.reserveCapacity(detected.changedUsers.count)
        let userAttributes = mapper.userAttributes + [markerAttribute]
        for index in detected.changedUsers.sorted() {
            let listed = detected.users[index]
            let entry = try await readOne(listed, filter: configuration.users.filter, attributes: userAttributes)
            var isProvider = false
            if let providerFilter = configuration.providers.filter {
                let found = try await connection.search(base: listed.rawDN, scope: .base, filter: "(&\(configuration.users.filter)\(providerFilter))",
                                                        attributes: ["1.1"], pageSize: nil).collect()
                isProvider = !found.isEmpty
            }
            let dn = DN.normalize(entry.dn)
            let outcome = mapper.mapUser(entry, normalizedDN: dn, isProvider: isProvider, superAdministrator: superAdministrators.contains(dn))
            userRecords.append(DirectoryEntryRecord(kind: .user, entryID: listed.entryID, marker: entry.string(markerAttribute)!, dn: listed.dn,
                                                    nextChange: (try? outcome.get())?.directoryState.nextChange,
                                                    content: UserEntryContent.encode(outcome)))
            mapped.add(consume outcome)
        }
        // The listed users not read again, by entry id; each is struck off as its copy is decoded.
        var unread: [String: Int] = [:]
        unread.reserveCapacity(detected.users.count - detected.changedUsers.count)
        for index in detected.users.indices where !detected.changedUsers.contains(index) { unread[detected.users[index].entryID] = index }
        var unreadable: Int?
        if !unread.isEmpty {
            try mirror.forEachDirectoryEntryContent(for: name, kind: .user) { id, content in
                guard let index = unread.removeValue(forKey: id) else { return true }  // read again above, or no longer listed
                guard let decoded = try? UserEntryContent.decode(content, superAdministrator: { superAdministrators.contains($0) }) else {
                    unreadable = index
                    return false
                }
                mapped.add(consume decoded)
                return true
            }
        }
        if let index = unreadable ?? unread.values.min() {
            throw FullReadNeeded(reason: "the stored copy of \(detected.users[index].rawDN) is \(unreadable == nil ? "missing" : "unreadable")")
        }
        return DirectoryRead(users: mapped.users, groups: groups, problems: mapped.problems, notes: mapped.notes, lockout: lockout,
                             userRecords: userRecords, groupRecords: groupRecords, removedEntries: detected.removed)
    }
}
