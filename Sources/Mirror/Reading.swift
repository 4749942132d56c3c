import AccessModel
import Foundation
import GRDB

extension Mirror {
    /// `user`'s effective access, computed in SQL exactly as the `effective_access` view does.
    ///
    /// Filters `effective_access_source` before grouping: SQLite 3.40 does not push a
    /// `WHERE user_code = ?` into the grouped view, so this form reads one user in well under
    /// a millisecond where the view would group every user first.
    public func effectiveAccess(of user: UserCode) throws -> EffectiveAccess {
        try pool.read { db in
            guard let status = try String.fetchOne(db.cachedStatement(sql: "SELECT access FROM user_access_status WHERE user_code = ?"), arguments: [user.rawValue]) else {
                return .noAccess(.unknownUser)
            }
            if let reason = NoAccessReason(rawValue: status) { return .noAccess(reason) }
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT module, health_center, provider, CASE MIN(privilege) WHEN 1 THEN 'read_only' ELSE 'full_access' END, MAX(privacy)
                FROM effective_access_source WHERE user_code = ? GROUP BY module, health_center, provider
                """), arguments: [user.rawValue])
            var grants: [Grant] = []
            grants.reserveCapacity(rows.count)
            for row in rows {
                guard let module = Module(rawValue: row[0]), let privilege = Privilege(name: row[3]),
                      let privacy = PrivacyLevel(rawValue: row[4]) else { continue }
                let provider: String? = row[2]
                grants.append(Grant(GrantKey(module, HealthCenterID(row[1] as String), provider.map(ProviderID.init(rawValue:))), AccessLevel(privilege, privacy)))
            }
            return .grants(grants.sorted())
        }
    }

    /// Events after `id` (0 for all), oldest first.
    public func events(after id: Int64 = 0, limit: Int = 1000) throws -> [MirrorEvent] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, type, at, user_code, group_id, detail FROM events WHERE id > ? ORDER BY id LIMIT ?", arguments: [id, limit]).map {
                MirrorEvent(id: $0[0], type: $0[1], at: $0[2], userCode: $0[3], groupID: $0[4], detail: $0[5])
            }
        }
    }

    /// Checks the audit log's hash chain from the first row; returns the first broken row, or nil.
    public func verifyAuditLog() throws -> AuditChainBreak? {
        try pool.read { db in try AuditChain.verify(db) }
    }

    /// How many rows the audit log holds.
    public func auditRowCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_log") ?? 0 }
    }

    /// Where the sync with `directory` stands, or nil before the first sync.
    public func syncState(for directory: String) throws -> SyncState? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT directory, cookie, last_full_reconcile, last_change_applied FROM sync_state WHERE directory = ?", arguments: [directory]) else { return nil }
            let cookie: Data? = row[1]
            return SyncState(directory: row[0], cookie: cookie.map { [UInt8]($0) }, lastFullReconcile: row[2], lastChangeApplied: row[3])
        }
    }

    /// Runs read-only SQL against a consistent snapshot of the mirror (for tools and tests).
    public func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        try pool.read(body)
    }

    /// SQLite's own check of the database file: "ok", or what is damaged.
    public func integrityCheck() throws -> String {
        try pool.read { db in
            try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "\n")
        }
    }

    /// Loads the whole stored model (for reconcile planning, tools and tests).
    public func snapshot() throws -> AccessSnapshot {
        try pool.read { db in try Mirror.loadSnapshot(db) }
    }

    static func loadSnapshot(_ db: Database) throws -> AccessSnapshot {
        let healthCenters = try Row.fetchAll(db, sql: "SELECT code, name FROM health_center").map { HealthCenter(id: HealthCenterID($0[0] as String), name: $0[1]) }
        let venues = try Row.fetchAll(db, sql: "SELECT code, health_center, name FROM care_venue").map {
            CareVenue(id: CareVenueID($0[0] as String), healthCenter: HealthCenterID($0[1] as String), name: $0[2])
        }
        let providers = try Row.fetchAll(db, sql: "SELECT code, health_center, display_name, directory_id FROM provider").map {
            Provider(id: ProviderID($0[0] as String), healthCenter: HealthCenterID($0[1] as String), displayName: $0[2], directoryID: $0[3])
        }
        var poolMembers: [String: Set<ProviderID>] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT pool, provider FROM pool_provider") {
            poolMembers[row[0], default: []].insert(ProviderID(row[1] as String))
        }
        let pools = try Row.fetchAll(db, sql: "SELECT code, health_center, name, visibility FROM pool").map { row -> Pool in
            let code: String = row[0]
            return Pool(id: PoolID(code), healthCenter: HealthCenterID(row[1] as String), name: row[2], providers: poolMembers[code] ?? [],
                        visibility: PoolVisibility(rawValue: row[3]) ?? .allProviders)
        }
        var roleModules: [String: [Module: Privilege]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT role, module, privilege FROM role_module") {
            if let module = Module(rawValue: row[1]), let privilege = Privilege(rawValue: row[2]) { roleModules[row[0], default: [:]][module] = privilege }
        }
        let roles = try Row.fetchAll(db, sql: "SELECT name, is_all_access, is_base, directory_dn FROM role").map { row -> Role in
            let name: String = row[0]
            return Role(id: RoleName(name), modules: roleModules[name] ?? [:], isAllAccess: row[1], isBase: row[2], directoryDN: row[3])
        }
        let groups = try loadGroups(db)
        // The large tables are read through cursors: a cursor's row reads straight from the
        // statement, where fetchAll copies every row (and every value) first.
        // Each user's health centers, gathered row by row and then exchanged for the shared copy
        // of that set (see `HealthCenterSets`).
        var userHCs: [String: Set<HealthCenterID>] = [:]
        var sharedSets = HealthCenterSets()
        var gathering: (key: String, centers: Set<HealthCenterID>)?
        let healthCenterRows = try Row.fetchCursor(db, sql: "SELECT user_code_key, health_center FROM user_health_center ORDER BY user_code_key")
        while let row = try healthCenterRows.next() {
            let key: String = row[0]
            if gathering?.key != key {
                if let done = gathering { userHCs[done.key] = sharedSets.shared(done.centers) }
                gathering = (key, [])
            }
            gathering!.centers.insert(HealthCenterID(row[1] as String))
        }
        if let done = gathering { userHCs[done.key] = sharedSets.shared(done.centers) }
        // Users go straight into the snapshot's table (keys are unique: the primary key).
        var users = UserTable()
        users.reserveCapacity(userHCs.count)
        var codes: [String: UserCode] = [:]
        codes.reserveCapacity(userHCs.count)
        let userRows = try Row.fetchCursor(db, sql: "SELECT \(userColumns) FROM user_account")
        while let row = try userRows.next() {
            let key: String = row[0]
            let user = try user(from: row, healthCenters: userHCs[key] ?? [])
            users[user.code] = user
            if codes[user.code.key] == nil { codes[user.code.key] = user.code }
        }
        userHCs = [:]
        var members: [GroupID: Set<UserCode>] = [:]
        let memberRows = try Row.fetchCursor(db, sql: "SELECT group_id, user_code_key FROM group_membership")
        while let row = try memberRows.next() {
            if let code = codes[row[1]] { members[GroupID(row[0] as String), default: []].insert(code) }
        }
        var holders: [RoleName: Set<UserCode>] = [:]
        let holderRows = try Row.fetchCursor(db, sql: "SELECT role, user_code_key FROM role_membership")
        while let row = try holderRows.next() {
            if let code = codes[row[1]] { holders[RoleName(row[0] as String), default: []].insert(code) }
        }
        var snapshot = AccessSnapshot(
            healthCenters: healthCenters, careVenues: venues, providers: providers, pools: pools, groups: groups,
            roles: roles, groupMembers: members, roleHolders: holders)
        snapshot.users = users
        return snapshot
    }

    /// The stored groups, with their care venues, modules and grants.
    static func loadGroups(_ db: Database) throws -> [Group] {
        var venuesOf: [String: Set<CareVenueID>] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT group_id, care_venue FROM group_care_venue") {
            venuesOf[row[0], default: []].insert(CareVenueID(row[1] as String))
        }
        var modulesOf: [String: [Module: ModuleGrant]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT group_id, module, privacy, default_privilege FROM group_module") {
            guard let module = Module(rawValue: row[1]), let privacy = PrivacyLevel(rawValue: row[2]), let privilege = Privilege(rawValue: row[3]) else { continue }
            modulesOf[row[0], default: [:]][module] = ModuleGrant(privacy: privacy, defaultPrivilege: privilege)
        }
        for table in ["group_provider_grant gp", "group_pool_grant gp"] {
            let target = table.hasPrefix("group_provider") ? "provider" : "pool"
            for row in try Row.fetchAll(db, sql: "SELECT group_id, module, \(target), privilege, privacy_override, auto_added FROM \(table)") {
                guard let module = Module(rawValue: row[1]), let privilege = Privilege(rawValue: row[3]) else { continue }
                let override: Int? = row[4]
                modulesOf[row[0], default: [:]][module, default: ModuleGrant()].targets[row[2]] =
                    TargetGrant(privilege, privacyOverride: override.flatMap(PrivacyLevel.init(rawValue:)), addedAutomatically: row[5])
            }
        }
        var groups: [Group] = []
        for row in try Row.fetchAll(db, sql: "SELECT id, name, kind, health_center, scheduling_ability, auto_add_new_providers, directory_dn FROM access_group") {
            let id: String = row[0]
            let name: String = row[1]
            do {
                groups.append(try Group(
                    id: GroupID(id), name: name, kind: GroupKind(rawValue: row[2]) ?? .provider, healthCenter: HealthCenterID(row[3] as String),
                    careVenues: venuesOf[id] ?? [], modules: modulesOf[id] ?? [:], schedulingAbility: row[4],
                    autoAddNewProviders: row[5], directoryDN: row[6]))
            } catch { throw MirrorError.invalid(error) }
        }
        return groups
    }

    static let userColumns = """
        user_code_key, user_code, directory_id, directory_dn, first_name, last_name, title, email, super_administrator,
        locked_by_directory, locked_locally, inactive_by_directory, inactive_locally, state_reason, auto_logout_minutes,
        default_workflow_view, default_patient_view, default_document_tab, break_glass, flags
        """

    /// A user from a row of `userColumns`.
    static func user(from row: Row, healthCenters: Set<HealthCenterID>) throws -> User {
        let state = AccountState(lockedByDirectory: row[9], lockedLocally: row[10], inactiveByDirectory: row[11], inactiveLocally: row[12], reason: row[13])
        let flagsText: String = row[19]
        // Most users carry no flags; decode only when there is something to decode.
        let flags = flagsText == "{}" || flagsText.isEmpty ? [:]
            : (try? JSONDecoder().decode([String: Bool].self, from: Data(flagsText.utf8))) ?? [:]
        do {
            return try User(
                code: UserCode(row[1] as String), directoryID: row[2], directoryDN: row[3], firstName: row[4], lastName: row[5],
                title: row[6], email: row[7], healthCenters: healthCenters, isSuperAdministrator: row[8], state: state,
                autoLogoutMinutes: row[14], defaultViews: DefaultViews(workflow: row[15], patient: row[16], documentTab: row[17]),
                isBreakGlass: row[18], flags: flags)
        } catch { throw MirrorError.invalid(error) }
    }

    /// Every stored user's and group's directory identity, without the rest of the model:
    /// what the change stream keeps in memory (a fraction of `snapshot()`'s work).
    public func directoryIdentities() throws -> DirectoryIdentities {
        try pool.read { db in
            var identities = DirectoryIdentities()
            let userRows = try Row.fetchCursor(db, sql: "SELECT \(Self.identityColumns) FROM user_account")
            while let row = try userRows.next() { identities.users.append(Self.storedUser(row)) }
            identities.groups = try Self.groupIdentities(db)
            return identities
        }
    }

    /// The `user_account` columns ``storedUser(_:)`` reads, in its order.
    private static let identityColumns =
        "user_code, directory_id, directory_dn, locked_by_directory, locked_locally, inactive_by_directory, inactive_locally"

    /// A user's identity from a row of ``identityColumns``.
    private static func storedUser(_ row: Row) -> DirectoryIdentities.StoredUser {
        let state = AccountState(lockedByDirectory: row[3], lockedLocally: row[4], inactiveByDirectory: row[5], inactiveLocally: row[6])
        return .init(code: UserCode(row[0] as String), directoryID: row[1], directoryDN: row[2], isActive: state.isActive, isLocked: state.isLocked)
    }

    private static func groupIdentities(_ db: Database) throws -> [(id: GroupID, directoryDN: String)] {
        try Row.fetchAll(db, sql: "SELECT id, directory_dn FROM access_group WHERE directory_dn IS NOT NULL").map { (GroupID($0[0] as String), $0[1]) }
    }

    /// The directory identities of the users with an audit row after `mark` (an ``auditMark()``),
    /// and every group's if any group has one too (else nil); nil when more than `limit` users
    /// changed (reading all is then as quick). What a change stream needs after a reconcile that
    /// changed some users.
    public func directoryIdentities(ofUsersChangedAfter mark: Int64, limit: Int) throws
        -> (users: [DirectoryIdentities.StoredUser], groups: [(id: GroupID, directoryDN: String)]?)? {
        try pool.read { db in
            let codes = try String.fetchAll(db, sql: """
                SELECT DISTINCT entity_key FROM audit_log WHERE id > ? AND entity_type = 'user' LIMIT ?
                """, arguments: [mark, limit + 1])
            guard codes.count <= limit else { return nil }
            var users: [DirectoryIdentities.StoredUser] = []
            for start in stride(from: 0, to: codes.count, by: 500) {
                let chunk = Array(codes[start..<min(start + 500, codes.count)])
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT \(Self.identityColumns) FROM user_account WHERE user_code IN (\(databaseQuestionMarks(count: chunk.count)))
                    """, arguments: StatementArguments(chunk))
                while let row = try rows.next() { users.append(Self.storedUser(row)) }
            }
            let groupsChanged = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM audit_log WHERE id > ? AND entity_type = 'group')
                """, arguments: [mark]) ?? true
            return (users, groupsChanged ? try Self.groupIdentities(db) : nil)
        }
    }

    /// About how many users are stored, read from the table's largest row id without counting
    /// rows: users are never deleted, so it is their count. For sizing what a full read collects.
    public func storedUserCountEstimate() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT MAX(rowid) FROM user_account") ?? 0 }
    }

    /// How many stored users are active and not locked (the `active` and `locked` columns).
    public func activeUnlockedUserCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user_account WHERE active AND NOT locked") ?? 0 }
    }

    /// The users a role is assigned to (the base role's holders are not listed: everyone is).
    public func roleHolders(of role: RoleName) throws -> Set<UserCode> {
        try pool.read { db in
            Set(try String.fetchAll(db, sql: """
                SELECT u.user_code FROM role_membership m JOIN user_account u ON u.user_code_key = m.user_code_key WHERE m.role = ?
                """, arguments: [role.rawValue]).map { UserCode($0) })
        }
    }

    /// The users flagged super administrator (by the directory's super-administrator groups).
    public func superAdministratorCodes() throws -> Set<UserCode> {
        try pool.read { db in
            Set(try String.fetchAll(db, sql: "SELECT user_code FROM user_account WHERE super_administrator = 1").map { UserCode($0) })
        }
    }

    /// One stored user (code compared case-insensitively), or nil.
    public func user(_ code: UserCode) throws -> User? {
        try pool.read { db in try Mirror.storedUser(key: code.key, db) }
    }
}
