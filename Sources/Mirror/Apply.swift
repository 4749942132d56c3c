import AccessModel
import GRDB

/// Brings the stored model to a changeset's desired state inside one transaction, writing only
/// what differs, with an audit row per change and events for the application.
final class Applier {
    let db: Database
    let w: ChangeWriter
    let changeset: Changeset

    private let healthCenters: [HealthCenterID: HealthCenter]
    private let careVenues: [CareVenueID: CareVenue]
    private let providers: [ProviderID: Provider]
    private let pools: [PoolID: Pool]
    private let groups: [GroupID: Group]
    /// Stored groups' directory DNs looked up so far (``directoryDN(ofGroup:)``).
    private var storedGroupDNs: [GroupID: String?] = [:]
    private let roles: [RoleName: Role]
    /// The changeset's users by key: their index in `changeset.users` (no copies of the users).
    private let users: [String: Int]

    /// A stored user, as the diff needs it.
    struct StoredUser {
        var code: String
        /// ``Canonical/fingerprint(_:)-(String)`` of the user's record; nil only if never computed.
        var fingerprint: Int64?
        var state: AccountState
    }

    /// Above this many users or memberships in a changeset, the stored users and memberships are
    /// read in one pass per table instead of one lookup per entity.
    static let bulkThreshold = 256
    /// Every stored user by key, read once at the start, when the changeset is large.
    private var storedUsers: [String: StoredUser]?
    /// Every stored membership (group id -> user keys), read once at the start, when the changeset is large.
    private var storedMembers: [String: Set<String>]?
    /// Every stored provider's health center (code -> health center), read when a group to check grants many.
    private var storedProviderHealthCenters: [String: String]?

    /// A stored group, as the diff needs it.
    struct StoredGroup {
        var kind: String
        var healthCenter: String
        var name: String
        var record: String
    }
    /// Every stored group by id, read once at the start when the changeset has many groups, and
    /// kept up to date as groups are written; `groupNames` maps health center + name to the id.
    private var storedGroups: [String: StoredGroup]?
    private var groupNames: [String: String] = [:]

    private var userStatement: RowStatement?
    private var userHealthCenterStatement: RowStatement?
    private var clearUserHealthCentersStatement: RowStatement?
    private var addMemberStatement: RowStatement?
    private var removeMemberStatement: RowStatement?
    private var groupStatement: RowStatement?
    private var providerStatement: RowStatement?
    /// Every stored provider's record by code, read once at the start when the changeset has many providers.
    private var storedProviders: [String: String]?

    /// Rows per multi-row INSERT of new users, their health centers and new memberships.
    static let userBatch = 32
    static let pairBatch = 128
    /// The bytes of the user record being built; kept to reuse its storage.
    private var recordBuffer: [UInt8] = []
    /// New users (index in `changeset.users`, fingerprint) not yet inserted; see ``flushNewUsers()``.
    private var pendingUsers: [(index: Int, fingerprint: Int64, derived: DerivedUserColumns?)] = []
    private var pendingUserHealthCenters: [(key: String, healthCenter: String)] = []
    /// New memberships (group id, user key) not yet inserted; see ``flushNewMembers()``.
    private var pendingMembers: [(group: String, key: String)] = []
    /// Care venues, modules and targets of the groups written, not yet inserted; see ``flushGroupRows()``.
    private var pendingGroupRows = PendingGroupRows()

    struct PendingGroupRows {
        var venues: [(group: String, venue: String)] = []
        var modules: [(group: String, module: String, privacy: Int, privilege: Int)] = []
        /// Provider targets (`provider` true) and pool targets.
        var targets: [(provider: Bool, group: String, module: String, target: String, privilege: Int, privacy: Int?, auto: Int)] = []
        var count: Int { venues.count + modules.count + targets.count }
    }

    private let userInsert: BatchedInsert
    private let userHealthCenterInsert: BatchedInsert
    private let memberInsert: BatchedInsert
    private let venueInsert: BatchedInsert
    private let moduleInsert: BatchedInsert
    private let providerGrantInsert: BatchedInsert
    private let poolGrantInsert: BatchedInsert

    /// Whether large first loads compute records and audit hashes on another thread (``Lookahead``).
    let worksAhead: Bool

    init(writer: ChangeWriter, changeset: Changeset, worksAhead: Bool = true) {
        self.worksAhead = worksAhead
        db = writer.db
        userInsert = BatchedInsert(db, into: "user_account (\(Applier.userColumns))", columns: 26, rowsPerStatement: Applier.userBatch)
        userHealthCenterInsert = BatchedInsert(db, into: "user_health_center (user_code_key, health_center)", columns: 2,
                                               rowsPerStatement: Applier.pairBatch)
        memberInsert = BatchedInsert(db, into: "group_membership (group_id, user_code_key)", columns: 2, rowsPerStatement: Applier.pairBatch)
        venueInsert = BatchedInsert(db, into: "group_care_venue (group_id, care_venue)", columns: 2, rowsPerStatement: Applier.pairBatch)
        moduleInsert = BatchedInsert(db, into: "group_module (group_id, module, privacy, default_privilege)", columns: 4,
                                     rowsPerStatement: Applier.pairBatch)
        providerGrantInsert = BatchedInsert(db, into: "group_provider_grant (group_id, module, provider, privilege, privacy_override, auto_added)",
                                            columns: 6, rowsPerStatement: Applier.pairBatch)
        poolGrantInsert = BatchedInsert(db, into: "group_pool_grant (group_id, module, pool, privilege, privacy_override, auto_added)",
                                        columns: 6, rowsPerStatement: Applier.pairBatch)
        w = writer
        self.changeset = changeset
        healthCenters = Dictionary(changeset.healthCenters.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b })
        careVenues = Dictionary(changeset.careVenues.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b })
        providers = Dictionary(changeset.providers.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b })
        pools = Dictionary(changeset.pools.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b })
        groups = Dictionary(changeset.groups.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b })
        roles = Dictionary(changeset.roles.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b })
        var users: [String: Int] = [:]
        users.reserveCapacity(changeset.users.count)
        // By index: iterating the users themselves copies each (every field retained and released).
        for index in changeset.users.indices { users[changeset.users[index].code.key] = index }
        self.users = users
        // The changeset's users are written as they are listed: no lookup needed for them.
        writer.knownBreakGlass = { [users, changeset] key in users[key].map { changeset.users[$0].isBreakGlass } }
    }

    /// The spelling the changeset gives a user's code, if it lists the user.
    private func changesetCode(_ key: String) -> String? {
        guard let index = users[key] else { return nil }
        return changeset.users[index].code.rawValue
    }

    /// Secondary indexes a first load into an empty mirror builds after its rows are in (one sort
    /// instead of a b-tree insert per row at a random place); the same SQL as in ``Schema``.
    static let deferredIndexes = [
        ("user_account_user_code", "CREATE UNIQUE INDEX user_account_user_code ON user_account(user_code)"),
        ("group_membership_user", "CREATE INDEX group_membership_user ON group_membership(user_code_key)"),
        ("group_provider_grant_provider", "CREATE INDEX group_provider_grant_provider ON group_provider_grant(provider)"),
    ]

    /// Applies the changeset; then adds `memberships`, single memberships that leave the rest of
    /// each group's members as they are.
    func run(addingMemberships memberships: [(user: UserCode, group: GroupID)] = []) throws {
        try loadStoredState()
        // Into an empty mirror, the indexes are dropped and built again before the commit, in
        // the same transaction: readers see them throughout (they read the last commit).
        let deferIndexes = changeset.scope == .complete && storedUsers?.isEmpty == true && storedMembers?.isEmpty == true
            && changeset.users.count > Applier.bulkThreshold
        if deferIndexes {
            for (name, _) in Applier.deferredIndexes { try db.execute(sql: "DROP INDEX \(name)") }
        }
        for hc in changeset.healthCenters { try upsert(hc) }
        for venue in changeset.careVenues { try upsert(venue) }
        let providerDNs = providerDirectoryDNs()
        try writeInOrder(changeset.providers, stored: storedProviders, describe: { provider in
            let record = Canonical.record(provider)
            return (record, AuditedRow(action: "provider.created", entityType: "provider", entityKey: provider.id.rawValue,
                                       source: providerDNs[provider.id.rawValue], after: record))
        }) { provider, ahead in try upsert(provider, source: providerDNs[provider.id.rawValue], ahead: ahead) }
        for pool in changeset.pools { try upsert(pool) }
        for role in changeset.roles { try upsert(role) }
        try checkGroupNames()
        try writeInOrder(changeset.groups, stored: storedGroups, describe: { group in
            let record = Canonical.record(group)
            return (record, AuditedRow(action: "group.created", entityType: "group", entityKey: group.id.rawValue, source: group.directoryDN, after: record))
        }) { group, ahead in try upsert(group, ahead: ahead) }
        try flushGroupRows()
        if let ahead = newUsersAhead() {
            // Every user is new: their records and audit hashes are built on another thread ahead of the writes.
            defer { ahead.cancel() }
            var reader = LookaheadReader(ahead)
            for index in changeset.users.indices {
                if let row = reader.next() {
                    try insertNew(index: index, record: row.record, fingerprint: row.fingerprint, precomputed: row.hash, derived: row.derived)
                } else {
                    try upsert(changeset.users[index])
                }
            }
        } else {
            for index in changeset.users.indices { try upsert(changeset.users[index]) }
        }
        try flushNewUsers()

        var members = changeset.groupMembers
        var holders = changeset.roleHolders
        if changeset.scope == .complete {
            for group in changeset.groups where members[group.id] == nil { members[group.id] = [] }
            for role in changeset.roles where holders[role.id] == nil { holders[role.id] = [] }
        }
        let orderedMembers = members.sorted(by: { $0.key < $1.key })
        let membersAhead = newMembersAhead(orderedMembers)
        defer { membersAhead?.cancel() }
        var memberHashes = membersAhead.map(LookaheadReader.init)
        for (group, users) in orderedMembers { try setMembers(of: group, to: users, ahead: &memberHashes) }
        try flushNewMembers()
        for (role, users) in holders.sorted(by: { $0.key < $1.key }) { try setHolders(of: role, to: users) }
        for group in changeset.removedGroups { try removeGroup(group) }
        if changeset.scope == .complete { try removeUnlisted() }
        if deferIndexes {
            for (_, sql) in Applier.deferredIndexes { try db.execute(sql: sql) }
        }
        for membership in memberships { _ = try addMember(membership.user, to: membership.group, checked: true) }
        try w.flushAccessChanged()
    }

    /// Reads the stored users and memberships in one pass each, if the changeset is large
    /// enough for that to beat a lookup per entity.
    private func loadStoredState() throws {
        if changeset.scope == .complete || changeset.groups.count > Applier.bulkThreshold {
            var stored: [String: StoredGroup] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT id, kind, health_center, name, record FROM access_group")
            while let row = try rows.next() {
                let group = StoredGroup(kind: row[1], healthCenter: row[2], name: row[3], record: row[4])
                stored[row[0]] = group
                groupNames[group.healthCenter + "\u{0}" + group.name] = row[0]
            }
            storedGroups = stored
        }
        if changeset.scope == .complete || changeset.providers.count > Applier.bulkThreshold {
            var stored: [String: String] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT code, record FROM provider")
            while let row = try rows.next() { stored[row[0]] = row[1] }
            storedProviders = stored
        }
        let memberCount = changeset.groupMembers.values.reduce(0) { $0 + $1.count }
        if changeset.scope == .complete || changeset.users.count > Applier.bulkThreshold {
            var stored: [String: StoredUser] = [:]
            stored.reserveCapacity(changeset.users.count)
            let rows = try Row.fetchCursor(db, sql: """
                SELECT user_code_key, user_code, fingerprint, locked_by_directory, locked_locally, inactive_by_directory,
                  inactive_locally, state_reason
                FROM user_account
                """)
            while let row = try rows.next() {
                stored[row[0]] = StoredUser(
                    code: row[1], fingerprint: row[2],
                    state: AccountState(lockedByDirectory: row[3], lockedLocally: row[4], inactiveByDirectory: row[5], inactiveLocally: row[6], reason: row[7]))
            }
            storedUsers = stored
        }
        if changeset.scope == .complete || memberCount > Applier.bulkThreshold {
            var stored: [String: Set<String>] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT group_id, user_code_key FROM group_membership")
            while let row = try rows.next() {
                stored[row[0], default: []].insert(row[1])
            }
            storedMembers = stored
        }
    }

    private func prepared(_ slot: inout RowStatement?, _ sql: String) throws -> RowStatement {
        if let statement = slot { return statement }
        let statement = try RowStatement(db, sql: sql)
        slot = statement
        return statement
    }

    // MARK: lookups: the changeset first, then the database

    private func fetchString(_ sql: String, _ arguments: StatementArguments) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    private func healthCenterExists(_ id: HealthCenterID) throws -> Bool {
        try healthCenters[id] != nil || fetchString("SELECT code FROM health_center WHERE code = ?", [id.rawValue]) != nil
    }

    private func healthCenter(ofVenue id: CareVenueID) throws -> HealthCenterID? {
        if let venue = careVenues[id] { return venue.healthCenter }
        return try fetchString("SELECT health_center FROM care_venue WHERE code = ?", [id.rawValue]).map(HealthCenterID.init(rawValue:))
    }

    private func healthCenter(ofProvider id: ProviderID) throws -> HealthCenterID? {
        if let provider = providers[id] { return provider.healthCenter }
        if let storedProviderHealthCenters { return storedProviderHealthCenters[id.rawValue].map(HealthCenterID.init(rawValue:)) }
        return try fetchString("SELECT health_center FROM provider WHERE code = ?", [id.rawValue]).map(HealthCenterID.init(rawValue:))
    }

    /// Every stored provider's health center, read in one pass before checking a group that
    /// grants many providers (one lookup each cost about 5 µs: 8 ms for an auto-add group of
    /// 1,500 grants).
    private func loadProviderHealthCenters(forTargets count: Int) throws {
        guard storedProviderHealthCenters == nil, count > Applier.bulkThreshold else { return }
        var stored: [String: String] = [:]
        let rows = try Row.fetchCursor(db, sql: "SELECT code, health_center FROM provider")
        while let row = try rows.next() { stored[row[0]] = row[1] }
        storedProviderHealthCenters = stored
    }

    private func healthCenter(ofPool id: PoolID) throws -> HealthCenterID? {
        if let pool = pools[id] { return pool.healthCenter }
        return try fetchString("SELECT health_center FROM pool WHERE code = ?", [id.rawValue]).map(HealthCenterID.init(rawValue:))
    }

    private func userExists(_ code: UserCode) throws -> Bool {
        if users[code.key] != nil { return true }
        if let storedUsers { return storedUsers[code.key] != nil }
        return try fetchString("SELECT user_code_key FROM user_account WHERE user_code_key = ?", [code.key]) != nil
    }

    /// A user as stored before this apply (users this apply writes are all in the changeset).
    private func storedUser(_ key: String) throws -> StoredUser? {
        if let storedUsers { return storedUsers[key] }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT user_code, fingerprint, locked_by_directory, locked_locally, inactive_by_directory, inactive_locally, state_reason
            FROM user_account WHERE user_code_key = ?
            """), arguments: [key]) else { return nil }
        return StoredUser(
            code: row[0], fingerprint: row[1],
            state: AccountState(lockedByDirectory: row[2], lockedLocally: row[3], inactiveByDirectory: row[4], inactiveLocally: row[5], reason: row[6]))
    }

    /// The spelling stored for a user's code, or nil for an unknown user.
    private func storedCode(_ key: String) throws -> String? {
        if let storedUsers, let user = storedUsers[key] { return changesetCode(key) ?? user.code }
        return try fetchString("SELECT user_code FROM user_account WHERE user_code_key = ?", [key])
    }

    private func requireHealthCenter(_ id: HealthCenterID, for entity: String) throws {
        guard try healthCenterExists(id) else {
            throw MirrorError.invalid(.unknownReference(entity: entity, refersTo: "health center \(id)"))
        }
    }

    // MARK: entities

    /// Writes `record` if it differs from `before`, the stored record (nil if new), with its audit
    /// row; `write` performs the upsert.
    @discardableResult
    private func upsertRecord(
        entity: String, key: String, record: String, source: String?, before: String?, precomputed: ChangeWriter.PrecomputedHash? = nil,
        write: () throws -> Void
    ) throws -> (changed: Bool, before: String?) {
        if before == record { return (false, before) }
        try write()
        try w.audit(before == nil ? "\(entity).created" : "\(entity).updated", entity, key, before: before, after: record, source: source,
                    precomputed: before == nil ? precomputed : nil)
        return (true, before)
    }

    private func upsert(_ hc: HealthCenter) throws {
        let record = Canonical.record(hc)
        try upsertRecord(entity: "health_center", key: hc.id.rawValue, record: record, source: nil,
                         before: fetchString("SELECT record FROM health_center WHERE code = ?", [hc.id.rawValue])) {
            try db.cachedStatement(sql: """
                INSERT INTO health_center (code, name, record) VALUES (?, ?, ?)
                ON CONFLICT (code) DO UPDATE SET name = excluded.name, record = excluded.record
                """).execute(arguments: [hc.id.rawValue, hc.name, record])
        }
    }

    private func upsert(_ venue: CareVenue) throws {
        try requireHealthCenter(venue.healthCenter, for: "Care venue '\(venue.id)'")
        let record = Canonical.record(venue)
        try upsertRecord(entity: "care_venue", key: venue.id.rawValue, record: record, source: nil,
                         before: fetchString("SELECT record FROM care_venue WHERE code = ?", [venue.id.rawValue])) {
            try db.cachedStatement(sql: """
                INSERT INTO care_venue (code, health_center, name, record) VALUES (?, ?, ?, ?)
                ON CONFLICT (code) DO UPDATE SET health_center = excluded.health_center, name = excluded.name, record = excluded.record
                """).execute(arguments: [venue.id.rawValue, venue.healthCenter.rawValue, venue.name, record])
        }
    }

    /// Each provider's directory entry (the DN of the user they are), which their audit rows name
    /// as the source: for the providers whose user is in the changeset.
    private func providerDirectoryDNs() -> [String: String] {
        var dns: [String: String] = [:]
        for provider in changeset.providers {
            if let index = users[UserCode(provider.id.rawValue).key], let dn = changeset.users[index].directoryDN {
                dns[provider.id.rawValue] = dn
            }
        }
        return dns
    }

    /// `ahead`: the provider's record and `provider.created` audit hash, if computed ahead.
    /// `source`: their user's DN, if the changeset has it (else the stored one is looked up).
    private func upsert(_ provider: Provider, source: String?, ahead: NewEntityRow?) throws {
        try requireHealthCenter(provider.healthCenter, for: "Provider '\(provider.id)'")
        let record = ahead?.record ?? Canonical.record(provider)
        let key = provider.id.rawValue
        let before = try storedProviders.map { $0[key] } ?? fetchString("SELECT record FROM provider WHERE code = ?", [key])
        let source = before == record ? source
            : try source ?? fetchString("SELECT directory_dn FROM user_account WHERE user_code_key = ?", [UserCode(key).key])
        try upsertRecord(entity: "provider", key: key, record: record, source: source, before: before, precomputed: ahead?.hash) {
            try prepared(&providerStatement, """
                INSERT INTO provider (code, health_center, display_name, directory_id, record) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (code) DO UPDATE SET health_center = excluded.health_center, display_name = excluded.display_name,
                  directory_id = excluded.directory_id, record = excluded.record
                """).execute(key, provider.healthCenter.rawValue, provider.displayName, provider.directoryID, record)
            storedProviders?[key] = record
        }
    }

    private func upsert(_ pool: Pool) throws {
        let entity = "Pool '\(pool.id)'"
        try requireHealthCenter(pool.healthCenter, for: entity)
        for member in pool.providers.sorted() {
            guard let hc = try healthCenter(ofProvider: member) else {
                throw MirrorError.invalid(.unknownReference(entity: entity, refersTo: "provider '\(member)'"))
            }
            if hc != pool.healthCenter {
                throw MirrorError.invalid(.wrongHealthCenter(entity: entity, refersTo: "provider '\(member)'", expected: pool.healthCenter, found: hc))
            }
        }
        let record = Canonical.record(pool)
        let result = try upsertRecord(entity: "pool", key: pool.id.rawValue, record: record, source: nil,
                                      before: fetchString("SELECT record FROM pool WHERE code = ?", [pool.id.rawValue])) {
            try db.cachedStatement(sql: """
                INSERT INTO pool (code, health_center, name, visibility, record) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (code) DO UPDATE SET health_center = excluded.health_center, name = excluded.name,
                  visibility = excluded.visibility, record = excluded.record
                """).execute(arguments: [pool.id.rawValue, pool.healthCenter.rawValue, pool.name, pool.visibility.rawValue, record])
            try db.cachedStatement(sql: "DELETE FROM pool_provider WHERE pool = ?").execute(arguments: [pool.id.rawValue])
            let insert = try db.cachedStatement(sql: "INSERT INTO pool_provider (pool, provider) VALUES (?, ?)")
            for member in pool.providers.sorted() { try insert.execute(arguments: [pool.id.rawValue, member.rawValue]) }
        }
        if result.changed, result.before != nil {
            try markUsers(sql: """
                SELECT DISTINCT u.user_code_key, u.user_code FROM group_pool_grant pg
                JOIN group_membership m ON m.group_id = pg.group_id JOIN user_account u ON u.user_code_key = m.user_code_key
                WHERE pg.pool = ?
                """, [pool.id.rawValue])
        }
    }

    private func upsert(_ role: Role) throws {
        let record = Canonical.record(role)
        // Whether a stored role's grants change (not only its directory group): its holders' access does.
        var accessChanged = false
        var wasBase = false
        try upsertRecord(entity: "role", key: role.id.rawValue, record: record, source: role.directoryDN,
                         before: fetchString("SELECT record FROM role WHERE name = ?", [role.id.rawValue])) {
            if let before = try storedGrants(ofRole: role.id) {
                var after = role
                after.directoryDN = nil
                accessChanged = before != after && (before.changesAccess || after.changesAccess)
                wasBase = before.isBase
            } else {
                // A new base role is held by every stored user at once (Roster's own, User
                // Preferences, changes no one's access: an upgrade tells no one).
                accessChanged = role.isBase && role.changesAccess
            }
            try db.cachedStatement(sql: """
                INSERT INTO role (name, is_all_access, is_base, directory_dn, record) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET is_all_access = excluded.is_all_access, is_base = excluded.is_base,
                  directory_dn = excluded.directory_dn, record = excluded.record
                """).execute(arguments: [role.id.rawValue, role.isAllAccess, role.isBase, role.directoryDN, record])
            try db.cachedStatement(sql: "DELETE FROM role_module WHERE role = ?").execute(arguments: [role.id.rawValue])
            let insert = try db.cachedStatement(sql: "INSERT INTO role_module (role, module, privilege) VALUES (?, ?, ?)")
            for (module, privilege) in role.modules.sorted(by: { $0.key < $1.key }) {
                try insert.execute(arguments: [role.id.rawValue, module.rawValue, privilege.rawValue])
            }
        }
        if accessChanged {
            // The base role's holders are every user (it was or is base); the others', its assignments.
            try markUsers(sql: """
                SELECT u.user_code_key, u.user_code FROM user_account u
                WHERE ? OR EXISTS (SELECT 1 FROM role_membership m WHERE m.role = ? AND m.user_code_key = u.user_code_key)
                """, [role.isBase || wasBase, role.id.rawValue])
        }
    }

    /// A stored role as far as it grants (its modules and switches, not its directory group);
    /// nil for a role not stored.
    private func storedGrants(ofRole role: RoleName) throws -> Role? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT is_all_access, is_base FROM role WHERE name = ?"),
                                         arguments: [role.rawValue]) else { return nil }
        var modules: [Module: Privilege] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT module, privilege FROM role_module WHERE role = ?"), arguments: [role.rawValue]) {
            if let module = Module(rawValue: row[0]), let privilege = Privilege(rawValue: row[1]) { modules[module] = privilege }
        }
        return Role(id: role, modules: modules, isAllAccess: row[0], isBase: row[1])
    }

    /// The directory group a role's assignments come from: the changeset's, else the stored one.
    private func directoryDN(ofRole role: RoleName) throws -> String? {
        if let listed = roles[role] { return listed.directoryDN }
        return try fetchString("SELECT directory_dn FROM role WHERE name = ?", [role.rawValue])
    }

    private func checkGroupNames() throws {
        var seen: [String: GroupID] = [:]
        for group in changeset.groups {
            let key = group.healthCenter.rawValue + "\u{0}" + group.name
            if let other = seen[key], other != group.id {
                throw MirrorError.invalid(.duplicateGroupName(name: group.name, healthCenter: group.healthCenter, groups: [other, group.id]))
            }
            seen[key] = group.id
        }
    }

    /// `ahead`: the group's record and `group.created` audit hash, if computed ahead.
    private func upsert(_ group: Group, ahead: NewEntityRow?) throws {
        let entity = "Group '\(group.name)'"
        try requireHealthCenter(group.healthCenter, for: entity)
        let storedGroup: StoredGroup?
        if let storedGroups {
            storedGroup = storedGroups[group.id.rawValue]
        } else if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT kind, health_center, name, record FROM access_group WHERE id = ?"), arguments: [group.id.rawValue]) {
            storedGroup = StoredGroup(kind: row[0], healthCenter: row[1], name: row[2], record: row[3])
        } else {
            storedGroup = nil
        }
        if let storedGroup {
            let kindName = storedGroup.kind
            let hc = storedGroup.healthCenter
            do {
                try Group.checkTransition(
                    name: group.name, fromKind: GroupKind(rawValue: kindName) ?? group.kind, toKind: group.kind,
                    fromHealthCenter: HealthCenterID(hc), toHealthCenter: group.healthCenter)
            } catch { throw MirrorError.invalid(error) }
        }
        for venue in group.careVenues.sorted() {
            guard let hc = try healthCenter(ofVenue: venue) else {
                throw MirrorError.invalid(.unknownReference(entity: entity, refersTo: "care venue '\(venue)'"))
            }
            if hc != group.healthCenter {
                throw MirrorError.invalid(.wrongHealthCenter(entity: entity, refersTo: "care venue '\(venue)'", expected: group.healthCenter, found: hc))
            }
        }
        if group.kind == .provider { try loadProviderHealthCenters(forTargets: group.modules.values.reduce(0) { $0 + $1.targets.count }) }
        for (module, grant) in group.modules.sorted(by: { $0.key < $1.key }) {
            for target in grant.targets.keys.sorted() {
                let hc = group.kind == .provider ? try healthCenter(ofProvider: ProviderID(target)) : try healthCenter(ofPool: PoolID(target))
                guard let hc else {
                    let other = group.kind == .provider ? try healthCenter(ofPool: PoolID(target)) : try healthCenter(ofProvider: ProviderID(target))
                    if other != nil { throw MirrorError.invalid(.wrongTargetKind(group: group.name, kind: group.kind, module: module, target: target)) }
                    throw MirrorError.invalid(.unknownReference(entity: entity, refersTo: "\(group.kind == .provider ? "provider" : "pool") '\(target)' in \(module)"))
                }
                if hc != group.healthCenter {
                    throw MirrorError.invalid(.wrongHealthCenter(entity: entity, refersTo: "'\(target)' in \(module)", expected: group.healthCenter, found: hc))
                }
            }
        }
        let nameHolder: String?
        if storedGroups != nil {
            nameHolder = groupNames[group.healthCenter.rawValue + "\u{0}" + group.name].flatMap { $0 == group.id.rawValue ? nil : $0 }
        } else {
            nameHolder = try fetchString("SELECT id FROM access_group WHERE health_center = ? AND name = ? AND id <> ?", [group.healthCenter.rawValue, group.name, group.id.rawValue])
        }
        if let holder = nameHolder,
           groups[GroupID(holder)] == nil || groups[GroupID(holder)]?.name == group.name {
            throw MirrorError.invalid(.duplicateGroupName(name: group.name, healthCenter: group.healthCenter, groups: [GroupID(holder), group.id]))
        }

        let record = ahead?.record ?? Canonical.record(group)
        let id = group.id.rawValue
        let before = storedGroup?.record
        let result: (changed: Bool, before: String?) = (before != record, before)
        if result.changed {
            try prepared(&groupStatement, """
                INSERT INTO access_group (id, name, kind, health_center, scheduling_ability, auto_add_new_providers, directory_dn, record)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, scheduling_ability = excluded.scheduling_ability,
                  auto_add_new_providers = excluded.auto_add_new_providers, directory_dn = excluded.directory_dn, record = excluded.record
                """).execute(id, group.name, group.kind.rawValue, group.healthCenter.rawValue, group.schedulingAbility,
                             group.autoAddNewProviders, group.directoryDN, record)
            if storedGroup != nil {
                try updateRows(ofGroup: id, to: group)
            } else {
                // A new group's rows are queued and inserted several per statement by ``flushGroupRows()``.
                for v in group.careVenues.sorted() { pendingGroupRows.venues.append((id, v.rawValue)) }
                for (m, grant) in group.modules.sorted(by: { $0.key < $1.key }) {
                    pendingGroupRows.modules.append((id, m.rawValue, grant.privacy.rawValue, grant.defaultPrivilege.rawValue))
                    for (t, entry) in grant.targets.sorted(by: { $0.key < $1.key }) {
                        pendingGroupRows.targets.append((group.kind == .provider, id, m.rawValue, t, entry.privilege.rawValue,
                                                         entry.privacyOverride?.rawValue, entry.addedAutomatically ? 1 : 0))
                    }
                }
                if pendingGroupRows.count >= Applier.pairBatch { try flushGroupRows() }
            }
            try w.audit(before == nil ? "group.created" : "group.updated", "group", id, before: before, after: record, source: group.directoryDN,
                        precomputed: before == nil ? ahead?.hash : nil)
            if storedGroups != nil {
                if let storedGroup { groupNames[storedGroup.healthCenter + "\u{0}" + storedGroup.name] = nil }
                storedGroups![id] = StoredGroup(kind: group.kind.rawValue, healthCenter: group.healthCenter.rawValue, name: group.name, record: record)
                groupNames[group.healthCenter.rawValue + "\u{0}" + group.name] = id
            }
        }
        if result.changed, result.before != nil {
            try markUsers(sql: """
                SELECT u.user_code_key, u.user_code FROM group_membership m JOIN user_account u ON u.user_code_key = m.user_code_key
                WHERE m.group_id = ?
                """, [id])
        }
    }

    private func upsert(_ user: User) throws {
        if !user.healthCenters.allSatisfy({ healthCenters[$0] != nil }) {
            for hc in user.healthCenters.sorted() { try requireHealthCenter(hc, for: "User '\(user.code)'") }
        }
        let key = user.code.key
        let stored = try storedUser(key)
        Canonical.write(user, into: &recordBuffer)
        let fingerprint = recordBuffer.withUnsafeBytes { Canonical.fingerprint($0) }
        guard let stored else {
            try insertNew(index: users[key]!, record: String(decoding: recordBuffer, as: UTF8.self), fingerprint: fingerprint, precomputed: nil,
                          derived: nil)
            return
        }
        if stored.fingerprint != fingerprint {
            let before = try storedRecord(key)
            let record = String(decoding: recordBuffer, as: UTF8.self)
            if before != record {
                try updateUser(user, fingerprint: fingerprint)
                try w.audit("user.updated", "user", user.code.rawValue, before: before, after: record, source: user.directoryDN)
                if before.contains("\"break_glass\":true") || user.isBreakGlass {
                    try w.event("break_glass.changed", user: user.code.rawValue, detail: "updated")
                }
                w.markAccessChanged(key: key, code: user.code.rawValue)
            } else {
                // Same record, fingerprint never stored: store it, which changes nothing the application sees.
                try db.cachedStatement(sql: "UPDATE user_account SET fingerprint = ? WHERE user_code_key = ?").execute(arguments: [fingerprint, key])
            }
        }
        try changeState(of: user.code, from: stored.state, to: user.state.keepingLocalFlags(of: stored.state), source: user.directoryDN)
    }

    /// Queues the user at `index` of the changeset, not stored before, for insertion, with its
    /// audit row. (It reads the fields it needs in place: a user passed as a value is copied whole.)
    private func insertNew(index: Int, record: String, fingerprint: Int64, precomputed: ChangeWriter.PrecomputedHash?,
                           derived: DerivedUserColumns?) throws {
        let code = changeset.users[index].code
        let centers = changeset.users[index].healthCenters.sorted()
        if !centers.allSatisfy({ healthCenters[$0] != nil }) {
            for hc in centers { try requireHealthCenter(hc, for: "User '\(code)'") }
        }
        pendingUsers.append((index, fingerprint, derived))
        for hc in centers { pendingUserHealthCenters.append((code.key, hc.rawValue)) }
        if pendingUsers.count == Applier.userBatch { try flushNewUsers() }
        try w.audit("user.created", "user", code.rawValue, before: nil, after: record, source: changeset.users[index].directoryDN,
                    precomputed: precomputed)
        if changeset.users[index].isBreakGlass { try w.event("break_glass.changed", user: code.rawValue, detail: "created") }
    }

    // MARK: work done ahead, on another thread

    /// Users per chunk of work done ahead.
    static let lookaheadChunk = 1024

    /// What inserting a new user needs, computed ahead: its record, fingerprint, audit hash and
    /// the columns made from its fields.
    struct NewUserRow {
        var record: String
        var fingerprint: Int64
        var hash: ChangeWriter.PrecomputedHash
        var derived: DerivedUserColumns
    }

    /// The user_account columns made from a user's fields rather than taken as they are (each
    /// a new string: made ahead, they spare the writer an allocation or two per user).
    struct DerivedUserColumns {
        var displayName: String
        var flags: String

        init(_ user: User) {
            displayName = user.displayName
            flags = Canonical.flags(user.flags)
        }
    }

    /// What writing a new provider or group needs, computed ahead: its record and audit hash.
    struct NewEntityRow {
        var record: String
        var hash: ChangeWriter.PrecomputedHash
    }

    /// The fields of a `created` audit row other than the actor and time.
    struct AuditedRow {
        var action: String
        var entityType: String
        var entityKey: String
        var source: String?
        var after: String
    }

    /// When none of them is stored (a first load) and there are many, the records and audit
    /// hashes of `entities`, computed on another thread in their order by `describe` (which
    /// gives an entity's record and the audit row its creation writes).
    private func newEntitiesAhead<Entity: Sendable, Stored>(
        _ entities: [Entity], stored: [String: Stored]?, describe: @escaping @Sendable (Entity) -> (String, AuditedRow)
    ) -> Lookahead<NewEntityRow>? {
        guard worksAhead, stored?.isEmpty == true, entities.count > Applier.bulkThreshold else { return nil }
        let chain = chainAhead()
        let size = Applier.entityLookaheadChunk
        return Lookahead(chunks: (entities.count + size - 1) / size) { index in
            entities[index * size..<min(entities.count, (index + 1) * size)].map { entity in
                let (record, row) = describe(entity)
                return NewEntityRow(record: record, hash: chain.next(source: row.source, action: row.action, entityType: row.entityType,
                                                                     entityKey: row.entityKey, after: row.after))
            }
        }
    }

    /// Writes `entities` in their order with `write`. In a first load their records and audit
    /// hashes are built on another thread ahead of the writes (``newEntitiesAhead``), and `write`
    /// gets each entity's; otherwise it gets nil.
    private func writeInOrder<Entity: Sendable, Stored>(
        _ entities: [Entity], stored: [String: Stored]?, describe: @escaping @Sendable (Entity) -> (String, AuditedRow),
        _ write: (Entity, NewEntityRow?) throws -> Void
    ) throws {
        let ahead = newEntitiesAhead(entities, stored: stored, describe: describe)
        defer { ahead?.cancel() }
        var rows = ahead.map(LookaheadReader.init)
        for entity in entities { try write(entity, rows?.next()) }
    }

    /// Providers or groups per chunk of work done ahead.
    static let entityLookaheadChunk = 256

    /// The audit hash of a new membership, computed ahead, with the entity key it covers.
    struct NewMemberHash {
        var entityKey: String
        var hash: ChangeWriter.PrecomputedHash
    }

    /// The running state of a chain computed ahead (used by one thread at a time).
    private final class ChainAhead: @unchecked Sendable {
        var previous: String
        let at: String
        let actorKind: String
        let actor: String
        var hashInput: [UInt8] = []
        var record: [UInt8] = []

        init(previous: String, at: String, actorKind: String, actor: String) {
            self.previous = previous
            self.at = at
            self.actorKind = actorKind
            self.actor = actor
        }

        func next(source: String?, action: String, entityType: String, entityKey: String, after: String) -> ChangeWriter.PrecomputedHash {
            let hash = AuditChain.hash(into: &hashInput, previous: previous, at: at, actorKind: actorKind, actor: actor, source: source,
                                       action: action, entityType: entityType, entityKey: entityKey, before: nil, after: after)
            defer { previous = hash }
            return ChangeWriter.PrecomputedHash(previous: previous, hash: hash)
        }
    }

    private func chainAhead() -> ChainAhead {
        ChainAhead(previous: w.chainHead, at: w.at, actorKind: w.actor.kind.rawValue, actor: w.actor.name)
    }

    /// When every user of a large changeset is new (a first load), their records, fingerprints and
    /// `user.created` audit hashes, computed on another thread in changeset order.
    private func newUsersAhead() -> Lookahead<NewUserRow>? {
        guard worksAhead, storedUsers?.isEmpty == true, changeset.users.count > Applier.bulkThreshold else { return nil }
        let users = changeset.users
        let chain = chainAhead()
        let size = Applier.lookaheadChunk
        return Lookahead(chunks: (users.count + size - 1) / size) { index in
            var rows: [NewUserRow] = []
            rows.reserveCapacity(size)
            for position in index * size..<min(users.count, (index + 1) * size) {
                let user = users[position]
                Canonical.write(user, into: &chain.record)
                let fingerprint = chain.record.withUnsafeBytes { Canonical.fingerprint($0) }
                let record = String(decoding: chain.record, as: UTF8.self)
                let hash = chain.next(source: user.directoryDN, action: "user.created", entityType: "user", entityKey: user.code.rawValue, after: record)
                rows.append(NewUserRow(record: record, fingerprint: fingerprint, hash: hash, derived: DerivedUserColumns(user)))
            }
            return rows
        }
    }

    /// When no membership is stored (a first load), the `membership.added` audit hashes of every
    /// membership, computed on another thread in the order ``setMembers(of:to:ahead:)`` adds them.
    private func newMembersAhead(_ ordered: [(key: GroupID, value: Set<UserCode>)]) -> Lookahead<NewMemberHash>? {
        guard worksAhead, storedMembers?.isEmpty == true, ordered.reduce(0, { $0 + $1.value.count }) > Applier.bulkThreshold else { return nil }
        let users = users
        let changesetUsers = changeset.users
        let chain = chainAhead()
        // The same sources the writer gives the rows (``directoryDN(ofGroup:)``), found here on its thread.
        guard let sources = try? ordered.map({ try directoryDN(ofGroup: $0.key) }) else { return nil }
        return Lookahead(chunks: ordered.count, limit: 256) { index in
            let group = ordered[index].key.rawValue
            let source = sources[index]
            return ordered[index].value.sorted().map { code in
                let spelled = users[code.key].map { changesetUsers[$0].code.rawValue } ?? code.rawValue
                let key = group + "/" + spelled
                return NewMemberHash(entityKey: key, hash: chain.next(source: source, action: "membership.added", entityType: "membership",
                                                                      entityKey: key, after: group))
            }
        }
    }

    /// A stored user's record, as the audit log's `before`: the `record` text of a row written
    /// before migration v2, else rebuilt from the columns (the same text).
    private func storedRecord(_ key: String) throws -> String {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT record, user_code, directory_id, directory_dn, first_name, last_name, title, email, super_administrator,
              auto_logout_minutes, default_workflow_view, default_patient_view, default_document_tab, break_glass, flags
            FROM user_account WHERE user_code_key = ?
            """), arguments: [key]) else { throw MirrorError.unknownUser(UserCode(key)) }
        let record: String = row[0]
        if !record.isEmpty { return record }
        let healthCenters = try String.fetchAll(db.cachedStatement(sql: "SELECT health_center FROM user_health_center WHERE user_code_key = ?"), arguments: [key])
        return Canonical.userRecord(
            code: row[1], directoryID: row[2], directoryDN: row[3], firstName: row[4], lastName: row[5], title: row[6], email: row[7],
            healthCenters: healthCenters, superAdministrator: row[8], autoLogoutMinutes: row[9], workflow: row[10], patient: row[11],
            documentTab: row[12], breakGlass: row[13], flags: row[14])
    }

    private static let userColumns = """
        user_code_key, user_code, directory_id, directory_dn, display_name, first_name, last_name,
          title, email, super_administrator, active, locked, locked_by_directory, locked_locally, inactive_by_directory,
          inactive_locally, state_reason, state_source, auto_logout_minutes, default_workflow_view, default_patient_view,
          default_document_tab, break_glass, flags, record, fingerprint
        """

    /// Binds one user_account row, in ``userColumns`` order; `record` is stored empty (see migration v2).
    private static func bindUser(_ user: User, fingerprint: Int64, derived: DerivedUserColumns?, _ b: inout RowStatement.Binder) {
        let state = user.state
        b.bind(user.code.key); b.bind(user.code.rawValue); b.bind(user.directoryID); b.bind(user.directoryDN)
        b.bind(derived?.displayName ?? user.displayName); b.bind(user.firstName); b.bind(user.lastName); b.bind(user.title); b.bind(user.email)
        b.bind(user.isSuperAdministrator); b.bind(state.isActive); b.bind(state.isLocked); b.bind(state.lockedByDirectory)
        b.bind(state.lockedLocally); b.bind(state.inactiveByDirectory); b.bind(state.inactiveLocally); b.bind(state.reason)
        b.bind(state.source?.rawValue); b.bind(user.autoLogoutMinutes); b.bind(user.defaultViews.workflow)
        b.bind(user.defaultViews.patient); b.bind(user.defaultViews.documentTab); b.bind(user.isBreakGlass)
        b.bind(derived?.flags ?? Canonical.flags(user.flags)); b.bind(""); b.bind(Int(fingerprint))
    }

    /// Brings a stored group's care venue, module and grant rows to `group`'s, writing only the
    /// rows that differ. (An auto-add group lists every provider of its health center: deleting
    /// and inserting again its 1,500 grants for one new provider held the writer, and every
    /// revocation behind it, for tens of milliseconds per group.)
    private func updateRows(ofGroup id: String, to group: Group) throws {
        let storedVenues = Set(try String.fetchAll(db.cachedStatement(sql: "SELECT care_venue FROM group_care_venue WHERE group_id = ?"),
                                                   arguments: [id]))
        let venues = Set(group.careVenues.map(\.rawValue))
        for venue in storedVenues.subtracting(venues).sorted() {
            try db.cachedStatement(sql: "DELETE FROM group_care_venue WHERE group_id = ? AND care_venue = ?").execute(arguments: [id, venue])
        }
        for venue in venues.subtracting(storedVenues).sorted() {
            try db.cachedStatement(sql: "INSERT INTO group_care_venue (group_id, care_venue) VALUES (?, ?)").execute(arguments: [id, venue])
        }

        let grantTable = group.kind == .provider ? "group_provider_grant" : "group_pool_grant"
        let targetColumn = group.kind == .provider ? "provider" : "pool"
        var storedGrants: [String: [String: (privilege: Int, privacy: Int?, auto: Int)]] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT module, \(targetColumn), privilege, privacy_override, auto_added FROM \(grantTable) WHERE group_id = ?"),
                                    arguments: [id]) {
            storedGrants[row[0], default: [:]][row[1]] = (row[2], row[3], row[4])
        }
        var storedModules: [String: (privacy: Int, privilege: Int)] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT module, privacy, default_privilege FROM group_module WHERE group_id = ?"),
                                    arguments: [id]) {
            storedModules[row[0]] = (row[1], row[2])
        }
        let modules = Dictionary(uniqueKeysWithValues: group.modules.map { ($0.key.rawValue, $0.value) })
        // A module no longer granted goes with its grants (ON DELETE CASCADE).
        for module in storedModules.keys.sorted() where modules[module] == nil {
            try db.cachedStatement(sql: "DELETE FROM group_module WHERE group_id = ? AND module = ?").execute(arguments: [id, module])
        }
        for (module, grant) in modules.sorted(by: { $0.key < $1.key }) {
            let row = (privacy: grant.privacy.rawValue, privilege: grant.defaultPrivilege.rawValue)
            if let stored = storedModules[module] {
                if stored != row {
                    try db.cachedStatement(sql: "UPDATE group_module SET privacy = ?, default_privilege = ? WHERE group_id = ? AND module = ?")
                        .execute(arguments: [row.privacy, row.privilege, id, module])
                }
            } else {
                try db.cachedStatement(sql: "INSERT INTO group_module (group_id, module, privacy, default_privilege) VALUES (?, ?, ?, ?)")
                    .execute(arguments: [id, module, row.privacy, row.privilege])
            }
            let stored = storedGrants[module] ?? [:]
            for target in stored.keys where grant.targets[target] == nil {
                try db.cachedStatement(sql: "DELETE FROM \(grantTable) WHERE group_id = ? AND module = ? AND \(targetColumn) = ?")
                    .execute(arguments: [id, module, target])
            }
            for (target, entry) in grant.targets {
                let wanted = (privilege: entry.privilege.rawValue, privacy: entry.privacyOverride?.rawValue, auto: entry.addedAutomatically ? 1 : 0)
                if let had = stored[target], had == wanted { continue }
                try db.cachedStatement(sql: """
                    INSERT INTO \(grantTable) (group_id, module, \(targetColumn), privilege, privacy_override, auto_added) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (group_id, module, \(targetColumn)) DO UPDATE SET privilege = excluded.privilege,
                      privacy_override = excluded.privacy_override, auto_added = excluded.auto_added
                    """).execute(arguments: [id, module, target, wanted.privilege, wanted.privacy, wanted.auto])
            }
        }
    }

    /// Inserts the queued care venues, modules and targets of groups. Runs before anything else
    /// reads or writes those tables.
    private func flushGroupRows() throws {
        let rows = pendingGroupRows
        pendingGroupRows = PendingGroupRows()
        try venueInsert.insert(rows.venues) { b, row in b.bind(row.group); b.bind(row.venue) }
        try moduleInsert.insert(rows.modules) { b, row in
            b.bind(row.group); b.bind(row.module); b.bind(row.privacy); b.bind(row.privilege)
        }
        for provider in [true, false] {
            try (provider ? providerGrantInsert : poolGrantInsert).insert(rows.targets.filter { $0.provider == provider }) { b, row in
                b.bind(row.group); b.bind(row.module); b.bind(row.target); b.bind(row.privilege); b.bind(row.privacy); b.bind(row.auto)
            }
        }
    }

    /// Inserts the new users queued so far, then their health centers.
    private func flushNewUsers() throws {
        try userInsert.insert(pendingUsers) { b, row in
            Applier.bindUser(changeset.users[row.index], fingerprint: row.fingerprint, derived: row.derived, &b)
        }
        pendingUsers.removeAll(keepingCapacity: true)
        try userHealthCenterInsert.insert(pendingUserHealthCenters) { b, row in b.bind(row.key); b.bind(row.healthCenter) }
        pendingUserHealthCenters.removeAll(keepingCapacity: true)
    }

    /// Rewrites a stored user's fields and health centers (not the account state: ``changeState(of:from:to:source:)``).
    private func updateUser(_ user: User, fingerprint: Int64) throws {
        try prepared(&userStatement, """
            UPDATE user_account SET user_code = ?, directory_id = ?, directory_dn = ?, display_name = ?, first_name = ?,
              last_name = ?, title = ?, email = ?, super_administrator = ?, auto_logout_minutes = ?, default_workflow_view = ?,
              default_patient_view = ?, default_document_tab = ?, break_glass = ?, flags = ?, record = '', fingerprint = ?
            WHERE user_code_key = ?
            """).execute(
                user.code.rawValue, user.directoryID, user.directoryDN, user.displayName, user.firstName, user.lastName,
                user.title, user.email, user.isSuperAdministrator, user.autoLogoutMinutes, user.defaultViews.workflow,
                user.defaultViews.patient, user.defaultViews.documentTab, user.isBreakGlass, Canonical.flags(user.flags),
                Int(fingerprint), user.code.key)
        try prepared(&clearUserHealthCentersStatement, "DELETE FROM user_health_center WHERE user_code_key = ?").execute(user.code.key)
        let insert = try prepared(&userHealthCenterStatement, "INSERT INTO user_health_center (user_code_key, health_center) VALUES (?, ?)")
        for hc in user.healthCenters.sorted() { try insert.execute(user.code.key, hc.rawValue) }
    }

    /// Stores a user's new account state with an audit row and the lock/deactivation events.
    func changeState(of user: UserCode, from old: AccountState, to new: AccountState, source: String?) throws {
        guard old != new else { return }
        try db.cachedStatement(sql: """
            UPDATE user_account SET active = ?, locked = ?, locked_by_directory = ?, locked_locally = ?, inactive_by_directory = ?,
              inactive_locally = ?, state_reason = ?, state_source = ? WHERE user_code_key = ?
            """).execute(arguments: [
                new.isActive, new.isLocked, new.lockedByDirectory, new.lockedLocally, new.inactiveByDirectory,
                new.inactiveLocally, new.reason, new.source?.rawValue, user.key,
            ])
        let code = try fetchString("SELECT user_code FROM user_account WHERE user_code_key = ?", [user.key]) ?? user.rawValue
        try w.audit("user.state_changed", "user", code, before: Canonical.record(old), after: Canonical.record(new), source: source)
        if old.isLocked != new.isLocked { try w.event(new.isLocked ? "user.locked" : "user.unlocked", user: code, detail: new.reason) }
        if old.isActive != new.isActive { try w.event(new.isActive ? "user.reactivated" : "user.deactivated", user: code, detail: new.reason) }
        if old.isLocked != new.isLocked || old.isActive != new.isActive { w.markAccessChanged(key: user.key, code: code) }
    }

    // MARK: memberships

    private func groupExists(_ id: GroupID) throws -> Bool {
        try groups[id] != nil || fetchString("SELECT id FROM access_group WHERE id = ?", [id.rawValue]) != nil
    }

    private func setMembers(of group: GroupID, to desired: Set<UserCode>, ahead: inout LookaheadReader<NewMemberHash>?) throws {
        guard try groupExists(group) else {
            throw MirrorError.invalid(.unknownReference(entity: "A membership", refersTo: "group '\(group)'"))
        }
        let stored: Set<String>
        if let storedMembers {
            stored = storedMembers[group.rawValue] ?? []
        } else {
            stored = try Set(String.fetchAll(db.cachedStatement(sql: "SELECT user_code_key FROM group_membership WHERE group_id = ?"), arguments: [group.rawValue]))
        }
        // A set of codes holds each key once: codes are equal when their keys are.
        let added = desired.filter { !stored.contains($0.key) }
        for code in added.sorted() {
            if storedMembers != nil {
                // Every stored membership is known, so this one is new: queue it for a multi-row INSERT.
                try queueNewMember(code, to: group, ahead: ahead?.next())
            } else {
                try addMember(code, to: group, checked: false)
            }
        }
        // Every desired member not added is stored: none is removed when the counts say so
        // (the common case of a re-apply, which then builds no codes from the stored keys).
        guard stored.count > desired.count - added.count else { return }
        for key in stored.sorted() where !desired.contains(UserCode(key)) {
            try removeMember(UserCode(key), from: group)
        }
    }

    /// The directory group a clinic group maps (its DN), as the `source` of its memberships' audit
    /// rows: which directory entry made the change. Nil for a group no directory group maps.
    private func directoryDN(ofGroup id: GroupID) throws -> String? {
        if let group = groups[id] { return group.directoryDN }
        if let known = storedGroupDNs[id] { return known }
        let dn = try fetchString("SELECT directory_dn FROM access_group WHERE id = ?", [id.rawValue])
        storedGroupDNs[id] = .some(dn)
        return dn
    }

    /// Adds one membership with its audit row and events; false if it already existed.
    @discardableResult
    func addMember(_ user: UserCode, to group: GroupID, checked: Bool) throws -> Bool {
        if checked {
            guard try groupExists(group) else { throw MirrorError.unknownGroup(group) }
        }
        guard try userExists(user) else {
            let name = try groups[group]?.name ?? fetchString("SELECT name FROM access_group WHERE id = ?", [group.rawValue]) ?? group.rawValue
            throw MirrorError.invalid(.unknownReference(entity: "Group '\(name)'", refersTo: "member '\(user)'"))
        }
        try prepared(&addMemberStatement, "INSERT INTO group_membership (group_id, user_code_key) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .execute(group.rawValue, user.key)
        guard db.changesCount > 0 else { return false }
        let code = changesetCode(user.key) ?? user.rawValue
        try w.audit("membership.added", "membership", group.rawValue + "/" + code, before: nil, after: group.rawValue,
                    source: directoryDN(ofGroup: group))
        try w.event("membership.added", user: code, group: group.rawValue)
        w.markAccessChanged(key: user.key, code: code)
        return true
    }

    /// Adds one membership known not to be stored, with its audit row and events; the row itself
    /// is inserted by ``flushNewMembers()`` (before anything else reads or writes memberships).
    private func queueNewMember(_ user: UserCode, to group: GroupID, ahead: NewMemberHash?) throws {
        // One lookup for both questions: is the user known, and how does the changeset spell them.
        let listed = users[user.key]
        guard try listed != nil || userExists(user) else {
            let name = try groups[group]?.name ?? fetchString("SELECT name FROM access_group WHERE id = ?", [group.rawValue]) ?? group.rawValue
            throw MirrorError.invalid(.unknownReference(entity: "Group '\(name)'", refersTo: "member '\(user)'"))
        }
        pendingMembers.append((group.rawValue, user.key))
        if pendingMembers.count == Applier.pairBatch { try flushNewMembers() }
        let code = listed.map { changeset.users[$0].code.rawValue } ?? user.rawValue
        let entityKey = group.rawValue + "/" + code
        try w.audit("membership.added", "membership", entityKey, before: nil, after: group.rawValue, source: directoryDN(ofGroup: group),
                    precomputed: ahead?.entityKey == entityKey ? ahead?.hash : nil)
        try w.event("membership.added", user: code, group: group.rawValue)
        w.markAccessChanged(key: user.key, code: code)
    }

    /// Inserts the memberships ``queueNewMember(_:to:ahead:)`` queued.
    private func flushNewMembers() throws {
        try memberInsert.insert(pendingMembers) { b, row in b.bind(row.group); b.bind(row.key) }
        pendingMembers.removeAll(keepingCapacity: true)
    }

    /// Removes one membership with its audit row and events; false if there was none.
    @discardableResult
    func removeMember(_ user: UserCode, from group: GroupID) throws -> Bool {
        try prepared(&removeMemberStatement, "DELETE FROM group_membership WHERE group_id = ? AND user_code_key = ?").execute(group.rawValue, user.key)
        guard db.changesCount > 0 else { return false }
        let code = try storedCode(user.key) ?? user.rawValue
        try w.audit("membership.removed", "membership", group.rawValue + "/" + code, before: group.rawValue, after: nil,
                    source: directoryDN(ofGroup: group))
        try w.event("membership.removed", user: code, group: group.rawValue)
        w.markAccessChanged(key: user.key, code: code)
        return true
    }

    private func setHolders(of role: RoleName, to desired: Set<UserCode>) throws {
        guard try roles[role] != nil || fetchString("SELECT name FROM role WHERE name = ?", [role.rawValue]) != nil else {
            throw MirrorError.invalid(.unknownReference(entity: "A role assignment", refersTo: "role '\(role)'"))
        }
        let source = try directoryDN(ofRole: role)
        let stored = try Set(String.fetchAll(db.cachedStatement(sql: "SELECT user_code_key FROM role_membership WHERE role = ?"), arguments: [role.rawValue]))
        let wanted = Dictionary(desired.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        for (key, code) in wanted.sorted(by: { $0.key < $1.key }) where !stored.contains(key) {
            guard try userExists(code) else {
                throw MirrorError.invalid(.unknownReference(entity: "Role '\(role)'", refersTo: "holder '\(code)'"))
            }
            try db.cachedStatement(sql: "INSERT INTO role_membership (role, user_code_key) VALUES (?, ?)").execute(arguments: [role.rawValue, key])
            let name = changesetCode(key) ?? code.rawValue
            try w.audit("role.assigned", "role_assignment", "\(role.rawValue)/\(name)", before: nil, after: role.rawValue, source: source)
            try w.event("role.assigned", user: name, detail: role.rawValue)
            w.markAccessChanged(key: key, code: name)
        }
        for key in stored.sorted() where wanted[key] == nil {
            try db.cachedStatement(sql: "DELETE FROM role_membership WHERE role = ? AND user_code_key = ?").execute(arguments: [role.rawValue, key])
            let name = try fetchString("SELECT user_code FROM user_account WHERE user_code_key = ?", [key]) ?? key
            try w.audit("role.unassigned", "role_assignment", "\(role.rawValue)/\(name)", before: role.rawValue, after: nil, source: source)
            try w.event("role.unassigned", user: name, detail: role.rawValue)
            w.markAccessChanged(key: key, code: name)
        }
    }

    // MARK: removals

    private func removeGroup(_ id: GroupID) throws {
        guard let stored = try Row.fetchOne(db.cachedStatement(sql: "SELECT record, directory_dn FROM access_group WHERE id = ?"), arguments: [id.rawValue])
        else { return }
        let before: String = stored[0]
        let directoryDN: String? = stored[1]
        let members = try String.fetchAll(db.cachedStatement(sql: "SELECT user_code_key FROM group_membership WHERE group_id = ? ORDER BY user_code_key"), arguments: [id.rawValue])
        for key in members { try removeMember(UserCode(key), from: id) }
        try db.execute(sql: "DELETE FROM access_group WHERE id = ?", arguments: [id.rawValue])
        if let stored = storedGroups?.removeValue(forKey: id.rawValue) {
            groupNames[stored.healthCenter + "\u{0}" + stored.name] = nil
        }
        try w.audit("group.removed", "group", id.rawValue, before: before, after: nil, source: directoryDN)
    }

    private func removeUnlisted() throws {
        // Every user written by this apply is listed, so only users stored before it can be unlisted.
        if let storedUsers {
            if let key = storedUsers.keys.filter({ users[$0] == nil }).min() {
                throw MirrorError.invalid(.userDeleted(user: UserCode(storedUsers[key]!.code)))
            }
        } else {
            for code in try String.fetchAll(db, sql: "SELECT user_code FROM user_account ORDER BY user_code_key") where users[UserCode(code).key] == nil {
                throw MirrorError.invalid(.userDeleted(user: UserCode(code)))
            }
        }
        for id in try String.fetchAll(db, sql: "SELECT id FROM access_group ORDER BY id") where groups[GroupID(id)] == nil {
            try removeGroup(GroupID(id))
        }
        try removeMissing(table: "role", key: "name", entity: "role", listed: Set(roles.keys.map(\.rawValue)))
        try removeMissing(table: "pool", key: "code", entity: "pool", listed: Set(pools.keys.map(\.rawValue)))
        try removeMissing(table: "provider", key: "code", entity: "provider", listed: Set(providers.keys.map(\.rawValue)))
        try removeMissing(table: "care_venue", key: "code", entity: "care_venue", listed: Set(careVenues.keys.map(\.rawValue)))
        try removeMissing(table: "health_center", key: "code", entity: "health_center", listed: Set(healthCenters.keys.map(\.rawValue)))
    }

    private func removeMissing(table: String, key: String, entity: String, listed: Set<String>) throws {
        let rows = try Row.fetchAll(db, sql: "SELECT \(key), record FROM \(table) ORDER BY \(key)")
        for row in rows {
            let id: String = row[0]
            guard !listed.contains(id) else { continue }
            if table == "role" {
                try setHolders(of: RoleName(id), to: [])
                if let stored = try storedGrants(ofRole: RoleName(id)), stored.isBase, stored.changesAccess {
                    // Every user held the base role: each one's access changes.
                    try markUsers(sql: "SELECT user_code_key, user_code FROM user_account", [])
                }
            }
            try db.execute(sql: "DELETE FROM \(table) WHERE \(key) = ?", arguments: [id])
            try w.audit("\(entity).removed", entity, id, before: row[1], after: nil, source: nil)
        }
    }

    private func markUsers(sql: String, _ arguments: StatementArguments) throws {
        for row in try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments) {
            w.markAccessChanged(key: row[0], code: row[1])
        }
    }
}
