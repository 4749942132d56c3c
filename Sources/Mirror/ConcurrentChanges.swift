import AccessModel
import GRDB

// A full reconcile reads the directory for seconds while the change stream goes on applying
// changes. Without care, the reconcile's apply would write back what it read before such a
// change (a title, a lock, a membership) and the stream, whose cookie has moved on, would
// never bring it back: a lost update, and for a lock a revocation undone. The audit log
// says exactly what anyone else changed since the reconcile began, so the reconcile leaves
// those entities as they are now.

extension Mirror {
    /// The id of the newest audit row (0 for an empty log): a point in the mirror's history.
    /// Pass it to ``apply(_:actor:at:dryRun:saving:keepingChangesAfter:)`` to keep whatever
    /// anyone changes after this point.
    public func auditMark() throws -> Int64 {
        try auditHead().id
    }

    /// The newest audit row's id and hash ((0, "") for an empty log): what a copy kept elsewhere
    /// anchors the chain with (see `roster audit export`).
    public func auditHead() throws -> (id: Int64, hash: String) {
        try pool.read { db in try Mirror.auditHead(db) }
    }
}

extension Mirror {
    /// The adjustment of a changeset, inside its write transaction, that keeps what changed
    /// after `mark` (nil: none).
    static func keepingChanges(after mark: Int64?) -> ((Database, inout Changeset) throws -> Void)? {
        mark.map { mark in { db, changeset in try changeset.keepStored(ChangesAfterMark(db, after: mark), db) } }
    }
}

/// The users, memberships and role assignments changed after an audit mark, read inside the
/// write transaction that is about to apply a changeset.
struct ChangesAfterMark {
    /// Keys (``UserCode/key``) of users whose record or state changed.
    var users: Set<String> = []
    /// Group id -> user keys whose membership changed.
    var memberships: [String: Set<String>] = [:]
    /// Role name -> user keys whose role assignment changed.
    var roleAssignments: [String: Set<String>] = [:]

    var isEmpty: Bool { users.isEmpty && memberships.isEmpty && roleAssignments.isEmpty }

    init(_ db: Database, after mark: Int64) throws {
        let rows = try Row.fetchCursor(db, sql: """
            SELECT DISTINCT entity_type, entity_key FROM audit_log
            WHERE id > ? AND entity_type IN ('user', 'membership', 'role_assignment')
            """, arguments: [mark])
        while let row = try rows.next() {
            let type: String = row[0]
            let key: String = row[1]
            if type == "user" {
                users.insert(UserCode(key).key)
                continue
            }
            // "<group or role>/<user code>"; a user code holds no '/', a group id may.
            guard let slash = key.lastIndex(of: "/") else { continue }
            let owner = String(key[..<slash])
            let user = UserCode(String(key[key.index(after: slash)...])).key
            if type == "membership" {
                memberships[owner, default: []].insert(user)
            } else {
                roleAssignments[owner, default: []].insert(user)
            }
        }
    }
}

extension Changeset {
    /// Replaces what the changeset says of `changed` entities with what is stored now, so an
    /// apply leaves them as they are.
    mutating func keepStored(_ changed: ChangesAfterMark, _ db: Database) throws {
        guard !changed.isEmpty else { return }
        if !changed.users.isEmpty {
            var index: [String: Int] = [:]
            for (position, user) in users.enumerated() where changed.users.contains(user.code.key) { index[user.code.key] = position }
            for key in changed.users.sorted() {
                // A partial changeset leaves the users it does not list as they are: only a
                // complete one must list a user the stream created after the mark (or it would
                // read as deleted). Listing the others would only make the apply read them all.
                guard index[key] != nil || scope == .complete, let stored = try Mirror.storedUser(key: key, db) else { continue }
                if let position = index[key] { users[position] = stored } else { users.append(stored) }
            }
        }
        for (group, keys) in changed.memberships {
            let id = GroupID(group)
            // A group the changeset leaves unmentioned keeps its members anyway (partial) or
            // goes with them (complete): nothing to keep.
            guard groupMembers[id] != nil || (scope == .complete && groups.contains(where: { $0.id == id })) else { continue }
            let storedKeys = try Set(String.fetchAll(db, sql: "SELECT user_code_key FROM group_membership WHERE group_id = ?", arguments: [group]))
            groupMembers[id] = try Self.keeping(keys, of: groupMembers[id] ?? [], stored: storedKeys, db)
        }
        for (role, keys) in changed.roleAssignments {
            let name = RoleName(role)
            guard roleHolders[name] != nil || (scope == .complete && roles.contains(where: { $0.id == name })) else { continue }
            let storedKeys = try Set(String.fetchAll(db, sql: "SELECT user_code_key FROM role_membership WHERE role = ?", arguments: [role]))
            roleHolders[name] = try Self.keeping(keys, of: roleHolders[name] ?? [], stored: storedKeys, db)
        }
    }

    /// `members` with each of `keys` present exactly when it is stored.
    private static func keeping(_ keys: Set<String>, of members: Set<UserCode>, stored: Set<String>, _ db: Database) throws -> Set<UserCode> {
        var result = members.filter { !keys.contains($0.key) }
        for key in keys where stored.contains(key) {
            if let code = try String.fetchOne(db, sql: "SELECT user_code FROM user_account WHERE user_code_key = ?", arguments: [key]) {
                result.insert(UserCode(code))
            }
        }
        return result
    }
}

extension Mirror {
    /// One stored user by key, read inside a transaction.
    static func storedUser(key: String, _ db: Database) throws -> User? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT \(userColumns) FROM user_account WHERE user_code_key = ?"),
                                         arguments: [key]) else { return nil }
        let centers = try String.fetchAll(db.cachedStatement(sql: "SELECT health_center FROM user_health_center WHERE user_code_key = ?"),
                                          arguments: [key])
        return try user(from: row, healthCenters: Set(centers.map(HealthCenterID.init(rawValue:))))
    }
}
