import AccessModel
import Foundation
import GRDB

/// One user as the clinic application and `roster user show --json` see them: identity,
/// state, memberships and effective access. The same document `/v1/users/{code}` serves. Every
/// key is written, an absent value as `null` (``NullWhenAbsent``).
public struct UserDocument: Codable, Sendable, Equatable {
    public struct GroupRef: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var healthCenter: String
        public var kind: String
    }

    public struct AccessEntry: Codable, Sendable, Equatable {
        public var module: String
        public var healthCenter: String
        /// The provider whose records the grant covers; nil (`null`) for a pool's or a role's.
        @NullWhenAbsent public var provider: String?
        public var privilege: String
        public var privacy: String
    }

    public var userCode: String
    public var displayName: String
    public var firstName: String
    public var lastName: String
    @NullWhenAbsent public var title: String?
    @NullWhenAbsent public var email: String?
    public var active: Bool
    public var locked: Bool
    /// Why the user is locked or inactive, when they are.
    @NullWhenAbsent public var stateReason: String?
    /// `directory` or `local`: who caused the lock or deactivation.
    @NullWhenAbsent public var stateSource: String?
    /// A super administrator: by the directory's super-administrator groups or an All Access role.
    public var superAdministrator: Bool
    public var breakGlass: Bool
    public var autoLogoutMinutes: Int
    public var healthCenters: [String]
    public var groups: [GroupRef]
    public var roles: [String]
    /// `no_group`, `locked`, `inactive` when the user has no access; nil otherwise.
    @NullWhenAbsent public var noAccessReason: String?
    public var access: [AccessEntry]
    @NullWhenAbsent public var directoryDN: String?
}

/// A line of a user listing.
public struct UserSummary: Codable, Sendable, Equatable {
    public var userCode: String
    public var displayName: String
    @NullWhenAbsent public var email: String?
    public var active: Bool
    public var locked: Bool
}

extension Mirror {
    /// The user document for `code` (compared case-insensitively), or nil.
    public func userDocument(_ code: UserCode) throws -> UserDocument? {
        let access = try effectiveAccess(of: code)
        return try pool.read { db -> UserDocument? in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT user_code, display_name, first_name, last_name, title, email, active, locked, state_reason, state_source,
                       \(Schema.isSuper), break_glass, auto_logout_minutes, directory_dn, user_code_key
                FROM user_account u WHERE user_code_key = ?
                """), arguments: [code.key]) else { return nil }
            let key: String = row[14]
            let centers = try String.fetchAll(db.cachedStatement(sql: "SELECT health_center FROM user_health_center WHERE user_code_key = ? ORDER BY health_center"), arguments: [key])
            let groups = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT g.id, g.name, g.health_center, g.kind FROM group_membership m JOIN access_group g ON g.id = m.group_id
                WHERE m.user_code_key = ? ORDER BY g.health_center, g.name
                """), arguments: [key]).map { UserDocument.GroupRef(id: $0[0], name: $0[1], healthCenter: $0[2], kind: $0[3]) }
            // The base role is everyone's, unassigned.
            let roles = try String.fetchAll(db.cachedStatement(sql: """
                SELECT name FROM role WHERE is_base = 1 OR name IN (SELECT role FROM role_membership WHERE user_code_key = ?) ORDER BY name
                """), arguments: [key])
            return UserDocument(
                userCode: row[0], displayName: row[1], firstName: row[2], lastName: row[3], title: row[4], email: row[5],
                active: row[6], locked: row[7], stateReason: row[8], stateSource: row[9], superAdministrator: row[10],
                breakGlass: row[11], autoLogoutMinutes: row[12], healthCenters: centers, groups: groups, roles: roles,
                noAccessReason: access.noAccessReason?.rawValue,
                access: access.grants.map {
                    UserDocument.AccessEntry(module: $0.module.rawValue, healthCenter: $0.healthCenter.rawValue, provider: $0.provider?.rawValue,
                                             privilege: $0.privilege.name, privacy: $0.privacy.name)
                },
                directoryDN: row[13])
        }
    }

    /// `text` as a literal inside a LIKE pattern whose ESCAPE character is a backslash.
    private static func likeLiteral(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
    }

    /// Users whose code or name contains `text` (case-insensitively), by code.
    public func searchUsers(_ text: String, limit: Int = 500) throws -> [UserSummary] {
        let pattern = "%" + Self.likeLiteral(text) + "%"
        return try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT user_code, display_name, email, active, locked FROM user_account
                WHERE user_code LIKE ?1 ESCAPE '\\' OR display_name LIKE ?1 ESCAPE '\\'
                ORDER BY user_code_key LIMIT ?2
                """, arguments: [pattern, limit]).map {
                UserSummary(userCode: $0[0], displayName: $0[1], email: $0[2], active: $0[3], locked: $0[4])
            }
        }
    }

    /// Every user's email address (all users, active or not), sorted, without duplicates.
    public func emailList(activeOnly: Bool = false) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT email FROM user_account WHERE email IS NOT NULL AND email <> ''"
                + (activeOnly ? " AND active = 1" : "") + " ORDER BY email COLLATE NOCASE")
        }
    }

    /// The newest audit rows, newest last; with `user`, only that user's: their record and
    /// state, as a provider, and their group memberships and role assignments.
    public func auditTail(limit: Int = 20, user: UserCode? = nil) throws -> [AuditRow] {
        var filter = ""
        var arguments: StatementArguments = []
        if let user {
            // Membership and role keys end with "/" and the user's code.
            filter = """
                WHERE (entity_type IN ('user', 'provider') AND entity_key = ? COLLATE NOCASE)
                   OR (entity_type IN ('membership', 'role_assignment') AND entity_key LIKE ? ESCAPE '\\')
                """
            arguments += [user.rawValue, "%/" + Self.likeLiteral(user.rawValue)]
        }
        arguments += [limit]
        return try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(AuditRow.columns) FROM (SELECT * FROM audit_log \(filter) ORDER BY id DESC LIMIT ?) ORDER BY id
                """, arguments: arguments).map(AuditRow.init(row:))
        }
    }

    /// Hands `body` the audit rows after row `id` (0: from the first), oldest first, up to
    /// `limit`, read in one transaction as the log stands; nothing is held but the current row,
    /// so a whole log can be exported.
    ///
    /// With `expectedHash`, row `id` must exist and have that hash (the last one an earlier
    /// export gave): ``AuditContinuityError`` otherwise, before any row is handed over, since the
    /// log was then rewritten (or is not the one exported before).
    public func auditRows(after id: Int64, expectedHash: String? = nil, limit: Int? = nil, _ body: (AuditRow) throws -> Void) throws {
        try pool.read { db in
            if let expectedHash {
                let found = try String.fetchOne(db, sql: "SELECT hash FROM audit_log WHERE id = ?", arguments: [id])
                guard found == expectedHash.lowercased() else { throw AuditContinuityError(rowID: id, expected: expectedHash, found: found) }
            }
            let rows = try Row.fetchCursor(db, sql: "SELECT \(AuditRow.columns) FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
                                           arguments: [id, limit ?? -1])
            while let row = try rows.next() { try body(AuditRow(row: row)) }
        }
    }
}

/// An export asked to continue after a row whose hash is not the one it holds.
public struct AuditContinuityError: Error, CustomStringConvertible {
    public var rowID: Int64
    public var expected: String
    /// The row's hash now, or nil when there is no such row.
    public var found: String?

    public var description: String {
        guard let found else {
            return "The audit log has no row \(rowID), which the last export ended on: it was rewritten or replaced; nothing was exported."
        }
        return "Audit row \(rowID) now hashes to \(found), not the \(expected) the last export ended on: the log was rewritten or replaced since; nothing was exported."
    }
}

/// One audit log row.
public struct AuditRow: Codable, Sendable, Equatable {
    public var id: Int64
    public var at: String
    public var actorKind: String
    public var actor: String
    @NullWhenAbsent public var source: String?
    public var action: String
    public var entityType: String
    public var entityKey: String
    @NullWhenAbsent public var before: String?
    @NullWhenAbsent public var after: String?
    /// The previous row's hash (64 zeros for the first row), and this row's (see docs/mirror.md).
    public var prevHash: String
    public var hash: String

    static let columns = "id, at, actor_kind, actor, source, action, entity_type, entity_key, before, after, prev_hash, hash"

    /// A row of ``columns``.
    init(row: Row) {
        self.init(id: row[0], at: row[1], actorKind: row[2], actor: row[3], source: row[4], action: row[5],
                  entityType: row[6], entityKey: row[7], before: row[8], after: row[9], prevHash: row[10], hash: row[11])
    }

    public init(id: Int64, at: String, actorKind: String, actor: String, source: String?, action: String, entityType: String,
                entityKey: String, before: String?, after: String?, prevHash: String, hash: String) {
        self.id = id
        self.at = at
        self.actorKind = actorKind
        self.actor = actor
        self.source = source
        self.action = action
        self.entityType = entityType
        self.entityKey = entityKey
        self.before = before
        self.after = after
        self.prevHash = prevHash
        self.hash = hash
    }
}

extension Mirror {
    /// The user whose directory identity (entryUUID / objectGUID text) is `id`.
    public func userCode(directoryID id: String) throws -> UserCode? {
        let code = try pool.read { db -> String? in
            // Two accounts share an id after a login rename; the active one holds the entry.
            try String.fetchOne(db.cachedStatement(sql: """
                SELECT user_code FROM user_account WHERE directory_id = ? COLLATE NOCASE ORDER BY active DESC LIMIT 1
                """), arguments: [id])
        }
        return code.map { UserCode($0) }
    }
}

extension Mirror {
    /// Whether `code` is not (yet) a stored provider.
    public func isMissingProvider(_ code: UserCode) throws -> Bool {
        try pool.read { db in
            try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM provider WHERE code = ? COLLATE NOCASE"), arguments: [code.rawValue]) == 0
        }
    }
}
