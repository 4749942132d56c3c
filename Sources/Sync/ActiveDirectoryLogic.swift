import Foundation
import LDAPKit

/// Which groups contain which members, and so who is in a group through groups nested in
/// it (at any depth). Pure: fed with direct memberships (normalized DNs), no I/O.
public struct GroupNesting: Sendable, Equatable {
    /// Group DN -> direct member DNs (users and groups).
    public private(set) var direct: [String: Set<String>]

    public init(direct: [String: Set<String>] = [:]) { self.direct = direct }

    /// Records a group's direct members.
    public mutating func update(group: String, members: Set<String>) { direct[group] = members }

    /// Forgets a group (deleted, or out of scope); it stops counting as a member anywhere.
    public mutating func remove(group: String) { direct[group] = nil }

    /// Whether the DN is a known group.
    public func isGroup(_ dn: String) -> Bool { direct[dn] != nil }

    /// Everything reachable from the group through nested groups, except the known groups
    /// themselves: its effective (non-group) members. Cycles are followed once.
    public func effectiveMembers(of group: String) -> Set<String> {
        var members = Set<String>()
        var seen: Set<String> = [group]
        var pending = [group]
        while let next = pending.popLast() {
            for member in direct[next] ?? [] {
                if direct[member] != nil {
                    if seen.insert(member).inserted { pending.append(member) }
                } else {
                    members.insert(member)
                }
            }
        }
        return members
    }

    /// The group and every group that contains it, directly or through other groups: the
    /// groups whose effective members change when its members change.
    public func containing(_ group: String) -> Set<String> {
        var parents: [String: [String]] = [:]
        for (parent, members) in direct {
            for member in members where direct[member] != nil || member == group { parents[member, default: []].append(parent) }
        }
        var result: Set<String> = [group]
        var pending = [group]
        while let next = pending.popLast() {
            for parent in parents[next] ?? [] where result.insert(parent).inserted { pending.append(parent) }
        }
        return result
    }
}

/// Where the Active Directory change stream stands: the DirSync cookie and the
/// `invocationId` of the domain controller that issued it. Stored in the mirror's sync
/// state so a restart resumes where it stopped.
public struct DirSyncCheckpoint: Sendable, Equatable {
    /// The `invocationId` of the DC (its database instance), as text.
    public var invocationID: String
    public var cookie: [UInt8]

    public init(invocationID: String, cookie: [UInt8]) {
        self.invocationID = invocationID
        self.cookie = cookie
    }

    private static let magic = Array("roster-dirsync-1\n".utf8)

    /// The bytes stored as the sync state's cookie.
    public var encoded: [UInt8] { Self.magic + Array(invocationID.utf8) + [0x0A] + cookie }

    /// Reads stored bytes; nil for anything else (an RFC 4533 cookie of an earlier
    /// configuration, say).
    public init?(encoded: [UInt8]) {
        guard encoded.starts(with: Self.magic) else { return nil }
        let rest = encoded.dropFirst(Self.magic.count)
        guard let newline = rest.firstIndex(of: 0x0A), let id = String(validating: rest[..<newline], as: UTF8.self), !id.isEmpty else {
            return nil
        }
        invocationID = id
        cookie = Array(rest[(newline + 1)...])
    }

    /// What to do on (re)connecting.
    public enum Resume: Sendable, Equatable {
        /// Continue from the stored cookie: the same DC database issued it.
        case resume([UInt8])
        /// Read everything again with a full reconcile, then follow from a new cookie.
        case fullReload(String)
    }

    /// Decides how to continue after connecting to a DC whose `invocationId` is
    /// `serverInvocationID`. A cookie is only trusted by the database instance that issued
    /// it: another DC, or this DC restored from a backup (a new `invocationId`), may have
    /// changes the cookie does not cover, so everything is read again.
    public static func resume(from stored: DirSyncCheckpoint?, serverInvocationID: String) -> Resume {
        guard let stored, !stored.cookie.isEmpty else {
            return .fullReload("no stored DirSync cookie (first start, or the DC refused the last one)")
        }
        guard stored.invocationID.lowercased() == serverInvocationID.lowercased() else {
            return .fullReload("the domain controller's invocationId changed from \(stored.invocationID) to \(serverInvocationID) (another DC, or one restored from a backup)")
        }
        return .resume(stored.cookie)
    }
}

/// What one object DirSync reported means for Roster, decided from the DirSync entry and
/// direct lookups of the object by its `objectGUID`.
public enum DirSyncChange: Sendable, Equatable {
    /// A user within the configured base and filter, with its full entry.
    case user(EntryUUID, LDAPEntry)
    /// A group within the configured base and filter, with its full entry.
    case group(EntryUUID, LDAPEntry)
    /// A known user that is gone: a tombstone, or confirmed absent from the user scope by
    /// the lookups.
    case userGone(EntryUUID, why: String)
    /// A known group that is gone or left the group scope.
    case groupGone(EntryUUID, dn: String)
    /// Nothing Roster follows.
    case ignored

    /// Classifies a reported object. `asUser`/`asGroup` are the results of base lookups of
    /// `<GUID=...>` with the user and group filters (nil: no match, or no such object);
    /// only call this when both lookups completed (a failed lookup is no evidence).
    public static func classify(id: EntryUUID, isDeleted: Bool, asUser: LDAPEntry?, asGroup: LDAPEntry?,
                                usersBase: String, groupsBase: String, knownUser: Bool, knownGroupDN: String?) -> DirSyncChange {
        if isDeleted {
            if knownUser { return .userGone(id, why: "deleted from Active Directory (tombstone)") }
            if let knownGroupDN { return .groupGone(id, dn: knownGroupDN) }
            return .ignored
        }
        if let asUser, DN.isWithin(asUser.dn, base: usersBase) { return .user(id, asUser) }
        if let asGroup, DN.isWithin(asGroup.dn, base: groupsBase) { return .group(id, asGroup) }
        if knownUser { return .userGone(id, why: "no longer within the configured user base and filter") }
        if let knownGroupDN { return .groupGone(id, dn: knownGroupDN) }
        return .ignored
    }
}

extension DirectoryTime {
    /// Active Directory's lockout duration attribute (negative 100 ns units) in seconds;
    /// nil when unreadable. 0 means "until an administrator unlocks".
    public static func parseADInterval(_ text: String) -> TimeInterval? {
        guard let value = Int64(text) else { return nil }
        if value == Int64.min { return 0 }
        return TimeInterval(abs(value)) / 10_000_000
    }
}
