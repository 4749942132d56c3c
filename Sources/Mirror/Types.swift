import AccessModel

/// Who or what made a change, as the audit log records it.
public struct Actor: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// A directory entry or a sync from the directory (name: the directory URL or entry DN).
        case directory
        /// A Roster rule, e.g. `new-provider` (rule 6).
        case rule
        /// A local administrator action (name: who).
        case local
        /// Roster itself: migrations, timers.
        case system
    }

    public var kind: Kind
    public var name: String

    public init(_ kind: Kind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    public static func directory(_ name: String) -> Actor { Actor(.directory, name) }
    public static func rule(_ name: String) -> Actor { Actor(.rule, name) }
    public static func local(_ name: String) -> Actor { Actor(.local, name) }
    public static let system = Actor(.system, "roster")

    public var description: String { "\(kind.rawValue) \(name)" }
}

/// One change the mirror made (or, in a dry run, would make); each is one audit row.
public struct Change: Sendable, Hashable, CustomStringConvertible {
    /// What happened, e.g. `user.created`, `group.updated`, `membership.added`, `user.locked`.
    public var action: String
    /// The kind of entity: `health_center`, `care_venue`, `provider`, `pool`, `group`, `role`,
    /// `user`, `membership`, `role_assignment`.
    public var entityType: String
    /// The entity's key; memberships are `group_id/user_code`.
    public var entityKey: String
    public var before: String?
    public var after: String?

    public var description: String { "\(action) \(entityKey)" }
}

/// What one ``Mirror/apply(_:actor:at:dryRun:)`` changed.
public struct ApplySummary: Sendable, Hashable, CustomStringConvertible {
    /// Every change, in the order written; empty when the apply was asked not to list them
    /// (``counts`` still counts them).
    public var changes: [Change]
    /// How many events the clinic application will see.
    public var eventCount: Int
    /// Whether the changes were rolled back (a plan, not an apply).
    public var dryRun: Bool
    /// Changes counted by action, e.g. `["user.created": 3]`.
    public var counts: [String: Int]
    /// Why the directory entries a reconcile read could not be stored with its apply (the apply
    /// itself stands); nil when they were, or there were none to store.
    public var entriesNotStored: String?
    /// How many audit hashes were computed on another thread ahead of the writer and used.
    var hashesComputedAhead = 0

    /// `counts` defaults to the counts of `changes` (pass it when the changes were not listed).
    public init(changes: [Change], eventCount: Int, dryRun: Bool, counts: [String: Int]? = nil) {
        self.changes = changes
        self.eventCount = eventCount
        self.dryRun = dryRun
        self.counts = counts ?? changes.reduce(into: [:]) { $0[$1.action, default: 0] += 1 }
    }

    /// How many changes (audit rows) were written.
    public var changeCount: Int { counts.values.reduce(0, +) }

    public var isEmpty: Bool { changeCount == 0 }

    public var description: String {
        if isEmpty { return dryRun ? "Nothing would change." : "Nothing changed." }
        let lines = counts.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }
        return (dryRun ? "Would make" : "Made") + " \(changeCount) changes, \(eventCount) events:\n" + lines.joined(separator: "\n")
    }
}

/// An event the clinic application polls or streams: revocations and access changes.
public struct MirrorEvent: Sendable, Hashable {
    /// Increases with every event; resume after the last one seen.
    public var id: Int64
    /// `user.locked`, `user.unlocked`, `user.deactivated`, `user.reactivated`, `membership.added`,
    /// `membership.removed`, `role.assigned`, `role.unassigned`, `access.changed`.
    public var type: String
    public var at: String
    public var userCode: String?
    public var groupID: String?
    public var detail: String?
}

/// Where the sync with one directory stands.
public struct SyncState: Sendable, Hashable {
    public var directory: String
    /// The RFC 4533 / DirSync cookie to resume with.
    public var cookie: [UInt8]?
    public var lastFullReconcile: String?
    public var lastChangeApplied: String?

    public init(directory: String, cookie: [UInt8]? = nil, lastFullReconcile: String? = nil, lastChangeApplied: String? = nil) {
        self.directory = directory
        self.cookie = cookie
        self.lastFullReconcile = lastFullReconcile
        self.lastChangeApplied = lastChangeApplied
    }
}

/// Stored users and directory groups by their directory identity (see `Mirror.directoryIdentities()`).
public struct DirectoryIdentities: Sendable {
    public struct StoredUser: Sendable, Hashable {
        public var code: UserCode
        /// entryUUID or objectGUID, as stored.
        public var directoryID: String?
        public var directoryDN: String?
        public var isActive: Bool
        public var isLocked: Bool
        public var isActiveAndUnlocked: Bool { isActive && !isLocked }
    }
    public var users: [StoredUser] = []
    /// Groups mapped from a directory group, with that group's DN as stored.
    public var groups: [(id: GroupID, directoryDN: String)] = []
}

/// The audit log's hash chain is broken at ``rowID``.
public struct AuditChainBreak: Sendable, Hashable, CustomStringConvertible {
    public var rowID: Int64
    public var problem: String

    public var description: String { "Audit row \(rowID) breaks the hash chain: \(problem)." }
}

/// Why the mirror refused or failed an operation. Reads as a sentence naming the entity.
public enum MirrorError: Error, Sendable, CustomStringConvertible {
    /// The change breaks a rule of the model; nothing was written.
    case invalid(ModelError)
    case unknownUser(UserCode)
    case unknownGroup(GroupID)
    case cannotOpen(path: String, reason: String)
    /// A first load, checked whole before its commit, left rows referring to rows that do not exist.
    case brokenReferences(count: Int, first: String)

    public var description: String {
        switch self {
        case .invalid(let error): error.description
        case .unknownUser(let user): "User '\(user)' is not in the mirror: add the user before changing them."
        case .unknownGroup(let group): "Group '\(group)' is not in the mirror: add the group before changing its members."
        case .cannotOpen(let path, let reason): "Cannot open the mirror at \(path): \(reason)."
        case .brokenReferences(let count, let first):
            "The changes would leave \(count) row(s) referring to rows that do not exist (the first: \(first)); nothing was written."
        }
    }
}
