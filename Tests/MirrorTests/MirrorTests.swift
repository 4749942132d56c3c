import AccessModel
import Foundation
import GRDB
@testable import Mirror
import SlapdHarness
import Testing

/// A fresh mirror in its own temporary directory.
func makeMirror(_ name: String = #function) throws -> Mirror {
    let dir = TemporaryFolders.make("roster-mirror")
    return try Mirror(path: dir.appendingPathComponent("sub/mirror.sqlite").path)
}

/// A mirror file as an older Roster left it: migrated only up to `migration`, then given rows
/// by `fill`. Returns its path.
func olderMirror(upTo migration: String, _ fill: (Database) throws -> Void) throws -> String {
    let dir = TemporaryFolders.make("roster-mirror")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent("mirror.sqlite").path
    let queue = try DatabaseQueue(path: path)
    try Schema.migrator.migrate(queue, upTo: migration)
    try queue.write(fill)
    try queue.close()
    return path
}

enum Sample {
    static let hc1 = HealthCenter(id: "HC1", name: "General Hospital")
    static let hc2 = HealthCenter(id: "HC2", name: "Lakeside Clinic")
    static let venues = [
        CareVenue(id: "HC1-OR1", healthCenter: "HC1", name: "OR 1"),
        CareVenue(id: "HC2-MAIN", healthCenter: "HC2", name: "Main"),
    ]
    static let providers = [
        Provider(id: "grey", healthCenter: "HC1", displayName: "Grey, Felicity"),
        Provider(id: "banner", healthCenter: "HC1", displayName: "Banner, Bruce"),
        Provider(id: "strange", healthCenter: "HC1", displayName: "Strange, Stephen"),
        Provider(id: "house", healthCenter: "HC1", displayName: "House, Gregory"),
        Provider(id: "quinn", healthCenter: "HC2", displayName: "Quinn, Michaela"),
    ]
    static let pools = [
        Pool(id: "ortho", healthCenter: "HC1", name: "Ortho", providers: ["grey", "banner"]),
        Pool(id: "cardio", healthCenter: "HC1", name: "Cardio", providers: ["strange", "house"], visibility: .reachableProvidersOnly),
    ]

    static func user(_ code: String, hcs: Set<HealthCenterID> = ["HC1"], superAdministrator: Bool = false, state: AccountState = .active) -> User {
        try! User(code: UserCode(code), directoryDN: "uid=\(code),ou=people,dc=clinic", firstName: "F", lastName: code,
                  email: "\(code)@clinic.test", healthCenters: hcs, isSuperAdministrator: superAdministrator, state: state, flags: ["twain": true])
    }

    static let greyOffice = try! Group(id: "g-grey", name: "Grey office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
        .providersOffice: .providers(["grey": TargetGrant(.fullAccess), "banner": TargetGrant(.readOnly)]),
        .reports: .providers(["grey": TargetGrant(.fullAccess, privacyOverride: .forcedPatientAndProvider)], privacy: .forcedPatient),
    ])
    static let readOnlyGrey = try! Group(id: "g-ro", name: "Read-only Grey", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
        .providersOffice: .providers(["grey": TargetGrant(.readOnly), "strange": TargetGrant(.fullAccess)], privacy: .toggleDefaultOn),
        .security: ModuleGrant(privacy: .toggleDefaultOff, defaultPrivilege: .readOnly),
    ])
    static let poolGroup = try! Group(id: "g-pool", name: "Pools", kind: .pool, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
        .providersOffice: .pools(["ortho": TargetGrant(.fullAccess), "cardio": TargetGrant(.fullAccess)]),
    ])
    static let manager = Role(id: "Clinical Manager", modules: [.reports: .readOnly, .administrator: .fullAccess])

    static func changeset(scope: Changeset.Scope = .partial) -> Changeset {
        Changeset(
            scope: scope, healthCenters: [hc1, hc2], careVenues: venues, providers: providers, pools: pools,
            groups: [greyOffice, readOnlyGrey, poolGroup], roles: [manager, .allAccess],
            users: [user("rita"), user("Moa2"), user("admin", hcs: [], superAdministrator: true), user("lonely"),
                    user("locked", state: AccountState(lockedByDirectory: true)), user("boss")],
            groupMembers: ["g-grey": ["rita", "MOA2", "locked"], "g-ro": ["moa2"], "g-pool": ["rita", "moa2"]],
            roleHolders: ["Clinical Manager": ["rita", "lonely"], "All Access": ["boss"]])
    }
}

@Suite struct MirrorApplyTests {
    @Test func applyWritesEverythingOnceAndReapplyWritesNothing() throws {
        let mirror = try makeMirror()
        let first = try mirror.apply(Sample.changeset(), actor: .directory("ldap://test"))
        #expect(first.counts["user.created"] == 6)
        #expect(first.counts["group.created"] == 3)
        #expect(first.counts["membership.added"] == 6)
        #expect(first.counts["role.assigned"] == 3)
        let events = try mirror.events()
        #expect(events.filter { $0.type == "membership.added" }.count == 6)
        #expect(events.map(\.id) == events.map(\.id).sorted())
        let second = try mirror.apply(Sample.changeset(), actor: .directory("ldap://test"))
        #expect(second.isEmpty, "\(second.changes)")
        #expect(try mirror.events().count == events.count)
        #expect(try mirror.verifyAuditLog() == nil)
        #expect(try mirror.auditRowCount() == first.changes.count)
    }

    @Test func storedModelRoundTrips() throws {
        let mirror = try makeMirror()
        let changeset = Sample.changeset()
        try mirror.apply(changeset, actor: .system)
        let snapshot = try mirror.snapshot()
        #expect(snapshot.groups[Sample.greyOffice.id] == Sample.greyOffice)
        #expect(snapshot.pools["cardio"] == Sample.pools[1])
        #expect(snapshot.groupMembers["g-grey"] == ["rita", "moa2", "locked"])
        #expect(snapshot.users["MOA2"]?.code.rawValue == "Moa2")
    }

    @Test("The stored directory identities are the snapshot's, without the rest of the model")
    func directoryIdentitiesMatchTheSnapshot() throws {
        let mirror = try makeMirror()
        var changeset = Sample.changeset()
        changeset.users[0].directoryID = "0F1E2D3C-0000-4000-8000-000000000001"
        changeset.users[3].state = AccountState(inactiveByDirectory: true)
        changeset.users[5].state = AccountState(lockedLocally: true)
        changeset.users[1].directoryDN = nil
        var mapped = Sample.readOnlyGrey
        mapped.directoryDN = "cn=Read-Only,ou=groups,dc=clinic"
        changeset.groups[1] = mapped
        try mirror.apply(changeset, actor: .system)
        let snapshot = try mirror.snapshot()
        let identities = try mirror.directoryIdentities()
        let expected = snapshot.users.values.map {
            DirectoryIdentities.StoredUser(code: $0.code, directoryID: $0.directoryID, directoryDN: $0.directoryDN,
                                           isActive: $0.state.isActive, isLocked: $0.state.isLocked)
        }
        #expect(Set(identities.users) == Set(expected))
        #expect(identities.users.filter(\.isActiveAndUnlocked).count == 3)
        #expect(identities.groups.map(\.id) == ["g-ro"])
        #expect(identities.groups.map(\.directoryDN) == ["cn=Read-Only,ou=groups,dc=clinic"])
    }

    @Test func effectiveAccessInSQLMatchesTheModel() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let snapshot = try mirror.snapshot()
        for user in ["rita", "moa2", "admin", "lonely", "locked", "boss", "nobody"] {
            #expect(try mirror.effectiveAccess(of: UserCode(user)) == snapshot.effectiveAccess(of: UserCode(user)), "\(user)")
        }
        // The view gives the same rows as the per-user query over effective_access_source.
        for user in ["rita", "moa2", "admin", "boss"] {
            let viewRows = try mirror.read { db in
                try Row.fetchAll(db, sql: "SELECT module, health_center, provider, privilege, privacy FROM effective_access WHERE user_code = ?", arguments: [user])
                    .map { "\($0[0] as String) \($0[1] as String) \(($0[2] as String?) ?? "-") \($0[3] as String) \($0[4] as Int)" }.sorted()
            }
            let apiRows = try mirror.effectiveAccess(of: UserCode(user)).grants
                .map { "\($0.module.rawValue) \($0.healthCenter) \($0.provider?.rawValue ?? "-") \($0.privilege.name) \($0.privacy.rawValue)" }.sorted()
            #expect(viewRows == apiRows, "\(user)")
        }
        let rita = try mirror.effectiveAccess(of: "RITA")
        #expect(rita.level(for: GrantKey(.providersOffice, "HC1", "banner")) == AccessLevel(.readOnly, .toggleDefaultOff))
        #expect(rita.level(for: GrantKey(.reports, "HC1", "grey")) == AccessLevel(.fullAccess, .forcedPatientAndProvider))
        // moa2: two groups on grey -> most restrictive; the reachable-only pool shows strange only.
        let moa2 = try mirror.effectiveAccess(of: "moa2")
        #expect(moa2.level(for: GrantKey(.providersOffice, "HC1", "grey")) == AccessLevel(.readOnly, .toggleDefaultOn))
        #expect(moa2.level(for: GrantKey(.providersOffice, "HC1", "strange")) == AccessLevel(.fullAccess, .toggleDefaultOn))
        #expect(moa2.level(for: GrantKey(.providersOffice, "HC1", "house")) == nil)
        #expect(try mirror.effectiveAccess(of: "lonely") == .noAccess(.noGroup))
        #expect(try mirror.effectiveAccess(of: "locked") == .noAccess(.locked))
    }

    /// DOMAIN: every active user holds the base role. It is stored once, with no assignment
    /// rows; the views and the model give its grants to every user who has a group (rule 1).
    @Test func theBaseRoleIsHeldByEveryUserWithoutAssignments() throws {
        let mirror = try makeMirror()
        var changeset = Sample.changeset(scope: .complete)
        let staff = Role(id: "Staff", modules: [.reports: .readOnly, .eRequest: .fullAccess], isBase: true)
        changeset.roles.append(staff)
        try mirror.apply(changeset, actor: .system)
        #expect(try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM role_membership WHERE role = 'Staff'") } == 0)
        let snapshot = try mirror.snapshot()
        #expect(snapshot.roles["Staff"] == staff)
        for user in ["rita", "moa2", "admin", "lonely", "locked", "boss"] {
            #expect(snapshot.roles(of: UserCode(user)).contains(staff), "\(user)")
            #expect(try mirror.effectiveAccess(of: UserCode(user)) == snapshot.effectiveAccess(of: UserCode(user)), "\(user)")
            #expect(try mirror.userDocument(UserCode(user))?.roles.contains("Staff") == true, "\(user)")
        }
        #expect(snapshot.roles(of: "nobody").isEmpty)
        // moa2 holds no role of her own: the base role's modules reach her at her health centers.
        let moa2 = try mirror.effectiveAccess(of: "moa2")
        #expect(moa2.level(for: GrantKey(.eRequest, "HC1")) == AccessLevel(.fullAccess, .toggleDefaultOff))
        // rita also holds Clinical Manager: reports read-only from both.
        #expect(try mirror.effectiveAccess(of: "rita").level(for: GrantKey(.reports, "HC1")) == AccessLevel(.readOnly, .toggleDefaultOff))
        #expect(try mirror.effectiveAccess(of: "lonely") == .noAccess(.noGroup), "rule 1: a role alone is no access")

        // Its grants changing changes every user's access: each is told.
        let last = try mirror.events().last?.id ?? 0
        changeset.roles[changeset.roles.count - 1].modules = [.reports: .readOnly]
        let changed = try mirror.apply(changeset, actor: .system)
        #expect(changed.counts == ["role.updated": 1])
        #expect(try Set(mirror.events(after: last).filter { $0.type == "access.changed" }.compactMap(\.userCode))
                == ["rita", "Moa2", "admin", "lonely", "locked", "boss"])
        #expect(try mirror.effectiveAccess(of: "moa2").level(for: GrantKey(.eRequest, "HC1")) == nil)

        // Removed from the model: gone from everyone, everyone told.
        let before = try mirror.events().last?.id ?? 0
        changeset.roles.removeLast()
        let removed = try mirror.apply(changeset, actor: .system)
        #expect(removed.counts == ["role.removed": 1])
        #expect(try mirror.events(after: before).filter { $0.type == "access.changed" }.count == 6)
        #expect(try mirror.userDocument("moa2")?.roles == [])
        #expect(try mirror.verifyAuditLog() == nil)
    }

    /// Rule 5: an All Access role makes its holders super administrators, in the views, the
    /// model and the user document.
    @Test func anAllAccessRoleMakesASuperAdministrator() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let boss = try #require(try mirror.userDocument("boss"))
        #expect(boss.superAdministrator && boss.roles == ["All Access"])
        #expect(try mirror.userDocument("rita")?.superAdministrator == false)
        let access = try mirror.effectiveAccess(of: "boss")
        #expect(access == (try mirror.snapshot()).effectiveAccess(of: "boss"))
        #expect(access.level(for: GrantKey(.security, "HC2")) == .unrestricted)
    }

    @Test func aGroupMovingHealthCenterIsRejectedWholeAndNothingChanges() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let before = try mirror.snapshot()
        let audit = try mirror.auditRowCount()
        let moved = try Group(id: "g-grey", name: "HC1 Ortho MOAs", kind: .provider, healthCenter: "HC2", careVenues: ["HC2-MAIN"])
        var changeset = Changeset(users: [Sample.user("newcomer")], groupMembers: ["g-ro": ["newcomer", "moa2"]])
        changeset.groups = [moved]
        let error = #expect(throws: MirrorError.self) { try mirror.apply(changeset, actor: .system) }
        #expect(error?.description == "Group 'HC1 Ortho MOAs' cannot move from health center HC1 to HC2: a group's health center never changes.")
        #expect(try mirror.snapshot() == before)
        #expect(try mirror.auditRowCount() == audit)
    }

    @Test("A changed group's venue, module and grant rows end as a group stored new with them, and its access with them")
    func aChangedGroupsRowsMatchANewOnesRows() throws {
        var before = Sample.changeset()
        before.careVenues.append(CareVenue(id: "HC1-OR2", healthCenter: "HC1", name: "OR 2"))
        var after = before
        after.groups = [
            try Group(id: "g-grey", name: "Grey office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR2"], modules: [
                // banner's grant goes, strange's comes, grey's privacy override goes, reports goes, security comes.
                .providersOffice: .providers(["grey": TargetGrant(.fullAccess), "strange": TargetGrant(.readOnly)]),
                .security: ModuleGrant(privacy: .toggleDefaultOff, defaultPrivilege: .readOnly),
            ]),
            try Group(id: "g-ro", name: "Read-only Grey", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1", "HC1-OR2"], modules: [
                .providersOffice: .providers(["grey": TargetGrant(.fullAccess), "strange": TargetGrant(.fullAccess, privacyOverride: .forcedPatientAndProvider)],
                                             privacy: .forcedPatient),
                .security: ModuleGrant(privacy: .toggleDefaultOff, defaultPrivilege: .fullAccess),
            ]),
            try Group(id: "g-pool", name: "Pools", kind: .pool, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
                .providersOffice: .pools(["ortho": TargetGrant(.readOnly)]),
            ]),
        ]
        let updated = try makeMirror()
        try updated.apply(before, actor: .system)
        let summary = try updated.apply(after, actor: .system)
        #expect(summary.counts["group.updated"] == 3)
        let fresh = try makeMirror()
        try fresh.apply(after, actor: .system)

        func rows(_ mirror: Mirror) throws -> [String] {
            try mirror.read { db in
                try ["group_care_venue", "group_module", "group_provider_grant", "group_pool_grant"].flatMap { table in
                    try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY 1, 2\(table.hasSuffix("grant") ? ", 3" : "")").map { "\(table) \($0)" }
                }
            }
        }
        #expect(try rows(updated) == rows(fresh))
        #expect(try updated.snapshot() == fresh.snapshot())
        for code: UserCode in ["rita", "moa2", "locked"] {
            #expect(try updated.effectiveAccess(of: code) == fresh.effectiveAccess(of: code), "\(code)")
        }
        #expect(try updated.apply(after, actor: .system).isEmpty)
    }

    @Test("A group granting many providers is checked against the stored providers' health centers as one granting few is")
    func aLargeGroupIsCheckedLikeASmallOne() throws {
        let mirror = try makeMirror()
        var changeset = Sample.changeset()
        let many = (0..<300).map { Provider(id: ProviderID("p\($0)"), healthCenter: "HC1", displayName: "P\($0)") }
        changeset.providers += many
        try mirror.apply(changeset, actor: .system)
        var targets = Dictionary(uniqueKeysWithValues: many.map { ($0.id, TargetGrant(.fullAccess)) })
        let large = try Group(id: "g-large", name: "Everyone's office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"],
                              modules: [.providersOffice: .providers(targets)])
        #expect(try mirror.apply(Changeset(groups: [large]), actor: .system).counts["group.created"] == 1)

        targets["quinn"] = TargetGrant(.fullAccess)
        let across = #expect(throws: MirrorError.self) { try mirror.apply(Changeset(groups: [try large.withModules([.providersOffice: .providers(targets)])]), actor: .system) }
        #expect(across?.description.contains("expected HC1") == true || across?.description.contains("HC2") == true, "\(String(describing: across))")
        targets["quinn"] = nil
        targets["nobody"] = TargetGrant(.fullAccess)
        let unknown = #expect(throws: MirrorError.self) { try mirror.apply(Changeset(groups: [try large.withModules([.providersOffice: .providers(targets)])]), actor: .system) }
        #expect(unknown?.description.contains("'nobody'") == true, "\(String(describing: unknown))")
    }

    @Test func aGroupChangingKindIsRejected() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let pooled = try Group(id: "g-ro", name: "Read-only Grey", kind: .pool, healthCenter: "HC1", careVenues: ["HC1-OR1"])
        let error = #expect(throws: MirrorError.self) { try mirror.apply(Changeset(groups: [pooled]), actor: .system) }
        #expect(error?.description == "Group 'Read-only Grey' cannot change from a provider group to a pool group: a group's kind never changes.")
    }

    @Test func danglingReferencesAreRejectedNamingTheEntity() throws {
        let mirror = try makeMirror()
        let group = try Group(id: "g", name: "Ghost venue", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR9"])
        let error = #expect(throws: MirrorError.self) {
            try mirror.apply(Changeset(healthCenters: [Sample.hc1], groups: [group]), actor: .system)
        }
        #expect(error?.description == "Group 'Ghost venue' refers to care venue 'HC1-OR9', which does not exist: add it first or drop the reference.")
        #expect(try mirror.auditRowCount() == 0)
        let member = #expect(throws: MirrorError.self) {
            try mirror.apply(Changeset(healthCenters: [Sample.hc1], careVenues: [Sample.venues[0]], groups: [Sample.readOnlyGrey.withModules([:])], groupMembers: ["g-ro": ["ghost"]]), actor: .system)
        }
        #expect(member?.description == "Group 'Read-only Grey' refers to member 'ghost', which does not exist: add it first or drop the reference.")
    }

    @Test func usersAreNeverDeleted() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(scope: .complete), actor: .system)
        var complete = Sample.changeset(scope: .complete)
        complete.users.removeAll { $0.code == "lonely" }
        complete.roleHolders["Clinical Manager"] = ["rita"]
        let error = #expect(throws: MirrorError.self) { try mirror.apply(complete, actor: .system) }
        #expect(error?.description == "User 'lonely' cannot be deleted: users are never deleted, only made inactive.")
        #expect(throws: MirrorError.self) { try mirror.apply(Changeset(deletedUsers: ["rita"]), actor: .system) }
        #expect(try mirror.snapshot().users["lonely"] != nil)
    }

    @Test func aCompleteChangesetRemovesUnlistedGroupsButKeepsTheirUsers() throws {
        let mirror = try makeMirror()
        var first = Sample.changeset(scope: .complete)
        let mapped = try #require(first.groups.firstIndex { $0.id == "g-ro" })
        first.groups[mapped].directoryDN = "cn=read-only-grey,ou=groups,dc=test"
        try mirror.apply(first, actor: .system)
        var complete = Sample.changeset(scope: .complete)
        complete.groups.removeAll { $0.id == "g-ro" }
        complete.groupMembers["g-ro"] = nil
        let summary = try mirror.apply(complete, actor: .rule("reconcile"))
        #expect(summary.counts["group.removed"] == 1)
        // The removal's audit row names the directory group the clinic group mapped.
        #expect(try mirror.auditTail(limit: 50).first { $0.action == "group.removed" }?.source == "cn=read-only-grey,ou=groups,dc=test")
        #expect(summary.counts["membership.removed"] == 1)
        #expect(try mirror.snapshot().users["moa2"] != nil)
        #expect(try mirror.events().contains { $0.type == "membership.removed" && $0.userCode == "Moa2" && $0.groupID == "g-ro" })
    }

    /// Rule 9: a role's assignments name the directory group that grants it; a role that only
    /// moves to another directory group is audited, but tells no holder their access changed.
    @Test func roleAssignmentsNameTheirDirectoryGroup() throws {
        let mirror = try makeMirror()
        var changeset = Sample.changeset()
        let managers = "cn=managers,ou=groups,dc=test"
        changeset.roles[0].directoryDN = managers
        try mirror.apply(changeset, actor: .system)
        let assigned = try mirror.auditTail(limit: 100).filter { $0.action == "role.assigned" && $0.entityKey.hasPrefix("Clinical Manager/") }
        #expect(assigned.count == 2 && assigned.allSatisfy { $0.source == managers })
        #expect(try mirror.snapshot().roles["Clinical Manager"]?.directoryDN == managers)

        let lastEvent = try mirror.events().map(\.id).max() ?? 0
        changeset.roles[0].directoryDN = "cn=clinical-managers,ou=groups,dc=test"
        changeset.roleHolders["Clinical Manager"] = ["rita"]
        let moved = try mirror.apply(changeset, actor: .system)
        #expect(moved.counts["role.updated"] == 1)
        let unassigned = try #require(try mirror.auditTail(limit: 100).first { $0.action == "role.unassigned" })
        #expect(unassigned.source == "cn=clinical-managers,ou=groups,dc=test")
        let accessEvents = try mirror.events().filter { $0.id > lastEvent && $0.type == "access.changed" }.compactMap(\.userCode)
        #expect(accessEvents == ["lonely"], "only the holder who lost the role; rita's access is the same")
    }

    @Test func dryRunReportsChangesWithoutWriting() throws {
        let mirror = try makeMirror()
        let plan = try mirror.apply(Sample.changeset(), actor: .system, dryRun: true)
        #expect(plan.dryRun && plan.counts["user.created"] == 6)
        #expect(try mirror.auditRowCount() == 0)
        #expect(try mirror.events().isEmpty)
        #expect(try mirror.snapshot().users.isEmpty)
    }

    @Test func groupChangesTellTheMembersTheirAccessChanged() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let last = try mirror.events().last?.id ?? 0
        let changed = try Sample.readOnlyGrey.withModules([.providersOffice: .providers(["grey": TargetGrant(.fullAccess)])])
        let summary = try mirror.apply(Changeset(groups: [changed]), actor: .directory("cn=ro,ou=groups"))
        #expect(summary.counts == ["group.updated": 1])
        #expect(try mirror.events(after: last).map(\.type) == ["access.changed"])
    }
}

/// Users are compared by fingerprint and their records rebuilt from the columns (migration v2):
/// the audit log must read exactly as when the whole record was stored.
@Suite struct MirrorUserRecordTests {
    static func changed(_ user: User) -> User {
        var user = user
        user.title = "Charge nurse"
        user.healthCenters = ["HC1", "HC2"]
        user.flags["twain"] = false
        user.flags["scanner"] = true
        return user
    }

    @Test(arguments: [Changeset.Scope.partial, .complete])
    func anUpdateAuditsTheStoredRecordAsBefore(scope: Changeset.Scope) throws {
        let mirror = try makeMirror()
        let first = try mirror.apply(Sample.changeset(scope: scope), actor: .system)
        var next = Sample.changeset(scope: scope)
        let index = next.users.firstIndex { $0.code == "rita" }!
        next.users[index] = Self.changed(next.users[index])
        let summary = try mirror.apply(next, actor: .system)
        #expect(summary.counts == ["user.updated": 1])
        let created = first.changes.first { $0.action == "user.created" && $0.entityKey == "rita" }
        let updated = summary.changes.first { $0.action == "user.updated" }
        #expect(updated?.before != nil && updated?.before == created?.after)
        #expect(updated?.after == Canonical.record(next.users[index]))
        // And the next update's `before` is this one's `after`.
        next.users[index].email = "rita@elsewhere.test"
        let third = try mirror.apply(next, actor: .system)
        #expect(third.changes.map(\.before) == [updated?.after])
        #expect(try mirror.apply(next, actor: .system).isEmpty)
        #expect(try mirror.verifyAuditLog() == nil)
    }

    @Test func aRecordRebuiltFromColumnsIsTheRecord() throws {
        let user = Self.changed(Sample.user("Rita", hcs: ["HC2", "HC1"]))
        let rebuilt = Canonical.userRecord(
            code: user.code.rawValue, directoryID: user.directoryID, directoryDN: user.directoryDN, firstName: user.firstName,
            lastName: user.lastName, title: user.title, email: user.email, healthCenters: ["HC2", "HC1"],
            superAdministrator: user.isSuperAdministrator, autoLogoutMinutes: user.autoLogoutMinutes,
            workflow: user.defaultViews.workflow, patient: user.defaultViews.patient, documentTab: user.defaultViews.documentTab,
            breakGlass: user.isBreakGlass, flags: Canonical.flags(user.flags))
        #expect(rebuilt == Canonical.record(user))
    }

    /// A mirror written before v2 (the record in `record`, no fingerprint) migrates, re-applies
    /// without changes, and audits its stored record as `before`.
    @Test func aVersion1MirrorMigrates() throws {
        let user = Sample.user("Rita")
        let legacyRecord = Canonical.record(user)
        let path = try olderMirror(upTo: "v1: model, audit log, events, sync state") { db in
            try db.execute(sql: "INSERT INTO health_center (code, name, record) VALUES ('HC1', 'General Hospital', ?)", arguments: [Canonical.record(Sample.hc1)])
            try db.execute(sql: """
                INSERT INTO user_account (user_code_key, user_code, directory_dn, display_name, first_name, last_name, email,
                  super_administrator, active, locked, locked_by_directory, locked_locally, inactive_by_directory, inactive_locally,
                  auto_logout_minutes, break_glass, flags, record)
                VALUES ('rita', 'Rita', ?, ?, ?, ?, ?, 0, 1, 0, 0, 0, 0, 0, ?, 0, ?, ?)
                """, arguments: [user.directoryDN, user.displayName, user.firstName, user.lastName, user.email, user.autoLogoutMinutes,
                                 Canonical.flags(user.flags), legacyRecord])
            try db.execute(sql: "INSERT INTO user_health_center (user_code_key, health_center) VALUES ('rita', 'HC1')")
        }
        let mirror = try Mirror(path: path)
        #expect(try mirror.apply(Changeset(healthCenters: [Sample.hc1], users: [user]), actor: .system).isEmpty)
        var retitled = user
        retitled.title = "Charge nurse"
        let summary = try mirror.apply(Changeset(healthCenters: [Sample.hc1], users: [retitled]), actor: .system)
        #expect(summary.changes.count == 1)
        #expect(summary.changes.first?.before == legacyRecord)
    }

    /// v7 adds the base role to a mirror's views: a role assigned before reads as before, and a
    /// base role stored next reaches every user.
    @Test func aVersion6MirrorKeepsItsRolesAndTakesABaseRole() throws {
        let path = try olderMirror(upTo: "v6: roles' directory groups") { _ in }
        do {
            let mirror = try Mirror(path: path)
            try mirror.apply(Sample.changeset(), actor: .system)
        }
        let mirror = try Mirror(path: path)
        let snapshot = try mirror.snapshot()
        for user in ["rita", "moa2", "boss", "lonely"] {
            #expect(try mirror.effectiveAccess(of: UserCode(user)) == snapshot.effectiveAccess(of: UserCode(user)), "\(user)")
        }
        #expect(try mirror.apply(Changeset(roles: [Role(id: "Staff", modules: [.eRequest: .readOnly], isBase: true)]), actor: .system)
            .counts == ["role.created": 1])
        #expect(try mirror.effectiveAccess(of: "moa2").level(for: GrantKey(.eRequest, "HC1")) == AccessLevel(.readOnly, .toggleDefaultOff))
    }

    /// Roster's own base role (User Preferences, which every group grants) changes no one's
    /// access: creating it, as the first reconcile after an upgrade does, tells no one.
    @Test func rostersOwnBaseRoleTellsNoOne() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let snapshot = try mirror.snapshot()
        let last = try mirror.events().last?.id ?? 0
        #expect(try mirror.apply(Changeset(roles: [.base]), actor: .system).counts == ["role.created": 1])
        #expect(try mirror.events(after: last).isEmpty)
        for user in ["rita", "moa2", "boss"] {
            #expect(try mirror.effectiveAccess(of: UserCode(user)) == snapshot.effectiveAccess(of: UserCode(user)), "\(user)")
        }
    }

    /// A mirror written before v5 cannot tell the grants rule 6 added from the configured ones:
    /// every grant of an auto-add group is taken as added automatically (none is revoked by the
    /// upgrade), those of other groups as configured.
    @Test func aVersion4MirrorTakesAutoAddGroupsGrantsAsAddedAutomatically() throws {
        let venue = Sample.venues[0]
        let grey = Sample.providers[0]
        let groups = [
            try Group(id: "g-auto", name: "Auto", kind: .provider, healthCenter: "HC1", careVenues: [venue.id],
                      modules: [.providersOffice: .providers([grey.id: TargetGrant()])], autoAddNewProviders: true),
            try Group(id: "g-plain", name: "Plain", kind: .provider, healthCenter: "HC1", careVenues: [venue.id],
                      modules: [.providersOffice: .providers([grey.id: TargetGrant()])]),
        ]
        let path = try olderMirror(upTo: "v4: directory entries move to their own file") { db in
            try db.execute(sql: "INSERT INTO health_center (code, name, record) VALUES ('HC1', 'General Hospital', ?)", arguments: [Canonical.record(Sample.hc1)])
            try db.execute(sql: "INSERT INTO care_venue (code, health_center, name, record) VALUES (?, 'HC1', ?, ?)",
                           arguments: [venue.id.rawValue, venue.name, Canonical.record(venue)])
            try db.execute(sql: "INSERT INTO provider (code, health_center, display_name, record) VALUES (?, 'HC1', ?, ?)",
                           arguments: [grey.id.rawValue, grey.displayName, Canonical.record(grey)])
            for group in groups {
                try db.execute(sql: """
                    INSERT INTO access_group (id, name, kind, health_center, scheduling_ability, auto_add_new_providers, record)
                    VALUES (?, ?, 'provider', 'HC1', 1, ?, ?)
                    """, arguments: [group.id.rawValue, group.name, group.autoAddNewProviders, Canonical.record(group)])
                try db.execute(sql: "INSERT INTO group_care_venue (group_id, care_venue) VALUES (?, ?)", arguments: [group.id.rawValue, venue.id.rawValue])
                try db.execute(sql: "INSERT INTO group_module (group_id, module, privacy, default_privilege) VALUES (?, 'providers_office', 1, 2)",
                               arguments: [group.id.rawValue])
                try db.execute(sql: "INSERT INTO group_provider_grant (group_id, module, provider, privilege) VALUES (?, 'providers_office', ?, 2)",
                               arguments: [group.id.rawValue, grey.id.rawValue])
            }
        }
        let mirror = try Mirror(path: path)
        let migrated = try mirror.snapshot().groups
        #expect(migrated["g-auto"]?.modules[.providersOffice]?.targets[grey.id.rawValue] == TargetGrant(addedAutomatically: true))
        #expect(migrated["g-plain"]?.modules[.providersOffice]?.targets[grey.id.rawValue] == TargetGrant())
        // The next apply that gives the grant by configuration marks it so, audited as a change.
        let summary = try mirror.apply(Changeset(healthCenters: [Sample.hc1], careVenues: [venue], providers: [grey], groups: groups),
                                       actor: .system)
        #expect(summary.changes.map(\.action) == ["group.updated"])
        #expect(try mirror.snapshot().groups["g-auto"]?.modules[.providersOffice]?.targets[grey.id.rawValue] == TargetGrant())
    }
}

/// A complete changeset reads the stored groups in one pass (the bulk path): the same checks and
/// audit rows as one lookup per group.
@Suite struct MirrorBulkGroupTests {
    @Test func aCompleteChangesetChecksAndAuditsGroupsLikeAPartialOne() throws {
        let mirror = try makeMirror()
        let first = try mirror.apply(Sample.changeset(scope: .complete), actor: .system)
        var moved = Sample.changeset(scope: .complete)
        moved.groups[0] = try Group(id: "g-grey", name: "Grey office", kind: .provider, healthCenter: "HC2", careVenues: ["HC2-MAIN"])
        let error = #expect(throws: MirrorError.self) { try mirror.apply(moved, actor: .system) }
        #expect(error?.description == "Group 'Grey office' cannot move from health center HC1 to HC2: a group's health center never changes.")

        var clash = Sample.changeset(scope: .complete)
        let ro = clash.groups.firstIndex { $0.id == "g-ro" }!
        clash.groups[ro] = try Group(id: "g-other", name: "Grey office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"])
        clash.groupMembers["g-ro"] = nil
        #expect(throws: MirrorError.self) { try mirror.apply(clash, actor: .system) }

        var renamed = Sample.changeset(scope: .complete)
        let grey = renamed.groups.firstIndex { $0.id == "g-grey" }!
        renamed.groups[grey] = try Group(
            id: "g-grey", name: "Grey office (renamed)", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"],
            modules: Sample.greyOffice.modules)
        let summary = try mirror.apply(renamed, actor: .system)
        #expect(summary.counts["group.updated"] == 1)
        let created = first.changes.first { $0.action == "group.created" && $0.entityKey == "g-grey" }
        #expect(summary.changes.first { $0.action == "group.updated" }?.before == created?.after)
        #expect(try mirror.apply(renamed, actor: .system).isEmpty)
        #expect(try mirror.snapshot().groups["g-grey"]?.name == "Grey office (renamed)")
        #expect(try mirror.verifyAuditLog() == nil)
    }
}

@Suite struct MirrorFastPathTests {
    @Test func aLocalLockIsNotClearedByTheDirectory() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        try mirror.setDirectoryState(of: "rita", locked: true, inactive: false, reason: "pwdAccountLockedTime", actor: .directory("uid=rita"))
        try mirror.setLocalLock(of: "rita", locked: true, reason: "under investigation", actor: .local("admin"))
        try mirror.setDirectoryState(of: "rita", locked: false, inactive: false, actor: .directory("uid=rita"))
        #expect(try mirror.effectiveAccess(of: "rita") == .noAccess(.locked))
        // A full re-apply from the directory does not clear it either.
        try mirror.apply(Sample.changeset(), actor: .system)
        #expect(try mirror.effectiveAccess(of: "rita") == .noAccess(.locked))
        let source = try mirror.read { db in try String.fetchOne(db, sql: "SELECT state_source FROM user_access_status WHERE user_code = 'RITA'") }
        #expect(source == "local")
        try mirror.setLocalLock(of: "rita", locked: false, actor: .local("admin"))
        #expect(try mirror.effectiveAccess(of: "rita").grants.isEmpty == false)
        let types = try mirror.events().map(\.type).filter { $0.hasPrefix("user.") }
        #expect(types == ["user.locked", "user.unlocked"])
    }

    @Test("Every change to a break-glass account has a break_glass.changed event: its directory state, a local lock, memberships; another user's lock has none")
    func breakGlassChangesAreLoud() throws {
        let mirror = try makeMirror()
        var changeset = Sample.changeset()
        let index = try #require(changeset.users.firstIndex { $0.code == "rita" })
        changeset.users[index].isBreakGlass = true
        try mirror.apply(changeset, actor: .system)
        // In the apply itself, told by the changeset's users: besides her record's creation, her memberships and her role.
        let applied = try mirror.events().filter { $0.type == "break_glass.changed" && $0.detail != "created" }
        #expect(applied.allSatisfy { $0.userCode == "rita" }, "\(applied)")
        #expect(applied.compactMap(\.detail).sorted() == ["membership.added", "membership.added", "role.assigned"], "\(applied)")
        let start = try mirror.events().last!.id
        try mirror.setDirectoryState(of: "rita", locked: true, inactive: false, reason: "pwdAccountLockedTime", actor: .directory("uid=rita"))
        try mirror.setLocalLock(of: "rita", locked: true, reason: "investigation", actor: .local("admin"))
        try mirror.addMembership("rita", to: "g-ro", actor: .directory("cn=ro"))
        try mirror.removeMembership("rita", from: "g-ro", actor: .directory("cn=ro"))
        try mirror.setDirectoryState(of: "moa2", locked: true, inactive: false, reason: "pwdAccountLockedTime", actor: .directory("uid=moa2"))
        let loud = try mirror.events(after: start).filter { $0.type == "break_glass.changed" }
        #expect(loud.map(\.userCode) == ["rita", "rita", "rita", "rita"], "\(loud)")
        #expect(loud.map(\.detail) == ["user.state_changed", "user.state_changed", "membership.added", "membership.removed"], "\(loud)")
        #expect(try mirror.verifyAuditLog() == nil)
        #expect(ChangeWriter.userCode(entityType: "membership", entityKey: "HC1/Ortho MOAs/rita") == "rita")
        #expect(ChangeWriter.userCode(entityType: "group", entityKey: "HC1/Ortho MOAs") == nil)
    }

    @Test func deactivationAndMembershipFastPathsEmitEvents() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let start = try mirror.events().last!.id
        try mirror.setDirectoryState(of: "moa2", locked: false, inactive: true, reason: "nsAccountLock", actor: .directory("uid=moa2"))
        try mirror.setDirectoryState(of: "moa2", locked: false, inactive: false, actor: .directory("uid=moa2"))
        try mirror.addMembership("lonely", to: "g-grey", actor: .directory("cn=grey"))
        #expect(try mirror.addMembership("lonely", to: "g-grey", actor: .directory("cn=grey")).isEmpty)
        try mirror.removeMembership("lonely", from: "g-grey", actor: .directory("cn=grey"))
        let events = try mirror.events(after: start)
        #expect(events.map(\.type) == [
            "user.deactivated", "access.changed", "user.reactivated", "access.changed",
            "membership.added", "access.changed", "membership.removed", "access.changed",
        ])
        #expect(throws: MirrorError.self) { try mirror.addMembership("lonely", to: "nope", actor: .system) }
        #expect(throws: MirrorError.self) { try mirror.setLocalLock(of: "nobody", locked: true, actor: .system) }
        #expect(try mirror.verifyAuditLog() == nil)
    }
}

/// A full reconcile reads the directory for seconds while the change stream keeps applying
/// changes; its apply must not write back what it read before those changes.
@Suite struct ConcurrentChangeTests {
    /// The mirror after a first sync, the reconcile's mark, then what the stream applies while
    /// the reconcile reads: a title, a lock, a membership removed, a new user in a group.
    func mirrorWithStreamChanges() throws -> (Mirror, mark: Int64) {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(scope: .complete), actor: .directory("ldap://test"))
        let mark = try mirror.auditMark()
        var retitled = Sample.user("rita")
        retitled.title = "Charge nurse"
        try mirror.apply(Changeset(users: [retitled]), actor: .directory("uid=rita"))
        try mirror.setDirectoryState(of: "moa2", locked: true, inactive: false, reason: "pwdAccountLockedTime", actor: .directory("uid=moa2"))
        try mirror.removeMembership("rita", from: "g-grey", actor: .directory("cn=grey"))
        try mirror.apply(Changeset(users: [Sample.user("newcomer")]), actor: .directory("uid=newcomer"))
        try mirror.addMembership("newcomer", to: "g-ro", actor: .directory("cn=ro"))
        return (mirror, mark)
    }

    @Test func aReconcileKeepsWhatTheStreamAppliedWhileItRead() throws {
        let (mirror, mark) = try mirrorWithStreamChanges()
        // The reconcile read the directory before those changes: its changeset is the old state.
        let summary = try mirror.apply(Sample.changeset(scope: .complete), actor: .directory("ldap://test"), keepingChangesAfter: mark)
        #expect(summary.isEmpty, "\(summary.changes)")
        #expect(try mirror.user("rita")?.title == "Charge nurse")
        #expect(try mirror.user("moa2")?.state.isLocked == true)
        #expect(try mirror.user("newcomer") != nil)
        let members = try mirror.snapshot().groupMembers
        #expect(members["g-grey"]?.contains("rita") == false)
        #expect(members["g-ro"]?.contains("newcomer") == true)
        #expect(try mirror.verifyAuditLog() == nil)
    }

    /// A reconcile's reduced (partial) changeset keeps what the stream changed among the users it
    /// lists, and does not take on the others: the apply would read every stored user for them.
    @Test func aPartialChangesetKeepsTheListedUsersTheStreamChangedAndListsNoOthers() throws {
        let (mirror, mark) = try mirrorWithStreamChanges()
        var partial = Changeset(users: [Sample.user("moa2"), Sample.user("boss")])
        try mirror.pool.read { db in try partial.keepStored(ChangesAfterMark(db, after: mark), db) }
        #expect(partial.users.map(\.code) == ["moa2", "boss"])
        #expect(partial.users[0].state.isLocked, "the stream's lock is kept")
        // A complete changeset still takes on a user the stream created after the mark.
        var complete = Sample.changeset(scope: .complete)
        try mirror.pool.read { db in try complete.keepStored(ChangesAfterMark(db, after: mark), db) }
        #expect(complete.users.contains { $0.code == "newcomer" })
        #expect(try mirror.apply(partial, actor: .directory("ldap://test"), keepingChangesAfter: mark).isEmpty)
    }

    @Test func aReconcileStillAppliesWhatNobodyElseChanged() throws {
        let (mirror, mark) = try mirrorWithStreamChanges()
        var changeset = Sample.changeset(scope: .complete)
        changeset.users.append(Sample.user("newcomer"))
        var boss = Sample.user("boss")
        boss.title = "Director"
        changeset.users[changeset.users.firstIndex { $0.code == "boss" }!] = boss
        changeset.groupMembers["g-ro"] = ["moa2", "lonely"]
        try mirror.apply(changeset, actor: .directory("ldap://test"), keepingChangesAfter: mark)
        #expect(try mirror.user("boss")?.title == "Director")
        let members = try mirror.snapshot().groupMembers
        #expect(members["g-ro"] == ["moa2", "lonely", "newcomer"])
        // Without the mark the stale changeset wins: what the guard prevents.
        try mirror.apply(Sample.changeset(scope: .complete).adding(Sample.user("newcomer")), actor: .directory("ldap://test"))
        #expect(try mirror.user("rita")?.title == nil)
        #expect(try mirror.user("moa2")?.state.isLocked == false)
    }
}

extension Changeset {
    func adding(_ user: User) -> Changeset {
        var copy = self
        copy.users.append(user)
        return copy
    }
}

@Suite struct MirrorStorageTests {
    @Test("The commit watcher sees every commit made through another connection (another process's, say), and nothing else")
    func theCommitWatcherSeesOtherConnectionsCommits() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let watcher = try CommitWatcher(path: mirror.path)
        #expect(try !watcher.hasNewCommits(), "nothing since it started")
        // A second Mirror on the same file: its own connections, as the command line's would be.
        let other = try Mirror(path: mirror.path)
        try other.setLocalLock(of: "rita", locked: true, reason: "test", actor: .local("admin"))
        #expect(try watcher.hasNewCommits())
        #expect(try !watcher.hasNewCommits(), "each commit is reported once")
        _ = try mirror.snapshot()
        #expect(try !watcher.hasNewCommits(), "reads are no commits")
        try mirror.setLocalLock(of: "rita", locked: false, actor: .local("admin"))
        #expect(try watcher.hasNewCommits(), "the watching process's own writer is another connection too")
    }

    @Test func theAuditLogIsAppendOnlyAndItsChainShowsTampering() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        #expect(throws: (any Error).self) { try mirror.pool.write { db in try db.execute(sql: "UPDATE audit_log SET actor = 'x' WHERE id = 3") } }
        #expect(throws: (any Error).self) { try mirror.pool.write { db in try db.execute(sql: "DELETE FROM audit_log WHERE id = 3") } }
        #expect(try mirror.verifyAuditLog() == nil)
        try mirror.pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_log_no_update")
            try db.execute(sql: "UPDATE audit_log SET after = '{}' WHERE id = 5")
        }
        #expect(try mirror.verifyAuditLog()?.rowID == 5)
        try mirror.pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_log_no_delete")
            try db.execute(sql: "DELETE FROM audit_log WHERE id = 2")
        }
        #expect(try mirror.verifyAuditLog()?.rowID == 3)
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(String(repeating: "a", count: 1000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        for portable in [false, true] {
            #expect(SHA256.hex("abc", portable: portable) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            #expect(SHA256.hex(String(repeating: "a", count: 1000), portable: portable) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        }
    }

    /// The hardware path (where the CPU has it) and the portable one agree on every length
    /// around the block and padding boundaries.
    @Test func sha256PathsAgree() {
        for length in 0..<300 {
            let message = String((0..<length).map { Character(UnicodeScalar(UInt8(32 + ($0 * 7 + length) % 90))) })
            #expect(SHA256.hex(message) == SHA256.hex(message, portable: true), "length \(length)")
        }
    }

    @Test func theWriterSyncsEveryCommit() throws {
        // synchronous = FULL (2): a returned commit, and the event ids the application saw, survive a power loss.
        let mirror = try makeMirror()
        #expect(try mirror.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
        #expect(try mirror.pool.writeWithoutTransaction { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
    }

    /// Bulk inserts are `INSERT OR FAIL` (no statement journal): a failing row leaves the rows before
    /// it in the statement, so nothing may survive but through the transaction's rollback.
    @Test func aBulkInsertThatFailsLeavesNothingOnceItsTransactionRollsBack() throws {
        let mirror = try makeMirror()
        // Statement journals, where SQLite still keeps one, stay in memory on the writer.
        #expect(try mirror.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA temp_store") } == 2)
        try mirror.pool.write { db in try db.execute(sql: "CREATE TABLE bulk (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)") }
        let rows: [String?] = ["a", "b", "c", nil, "e"]
        #expect(throws: DatabaseError.self) {
            try mirror.pool.write { db in
                try BatchedInsert(db, into: "bulk (name)", columns: 1, rowsPerStatement: 8).insert(rows) { b, name in b.bind(name) }
            }
        }
        #expect(try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bulk") } == 0)
        // Inside one transaction the rows before the failing one are there: the caller's rollback is what undoes them.
        let (failure, left): ((any Error)?, Int?) = try mirror.pool.writeWithoutTransaction { db in
            var failure: (any Error)?
            var left: Int?
            try db.inTransaction {
                do {
                    try BatchedInsert(db, into: "bulk (name)", columns: 1, rowsPerStatement: 8).insert(["x", "y", "x"]) { b, name in b.bind(name) }
                } catch { failure = error }
                left = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bulk")
                return .rollback
            }
            return (failure, left)
        }
        #expect(failure is DatabaseError)
        #expect(left == 2)
        #expect(try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bulk") } == 0)
    }

    @Test func filesAreNotWorldReadable() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let attributes = try FileManager.default.attributesOfItem(atPath: mirror.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o640)
        let dir = try FileManager.default.attributesOfItem(atPath: (mirror.path as NSString).deletingLastPathComponent)
        #expect((dir[.posixPermissions] as? Int) == 0o750)
        #expect(throws: MirrorError.self) { try Mirror(path: mirror.path, readerGroup: "no-such-group-roster") }
    }

    @Test func syncStateRoundTrips() throws {
        let mirror = try makeMirror()
        #expect(try mirror.syncState(for: "ldap://a") == nil)
        let state = SyncState(directory: "ldap://a", cookie: [1, 2, 3, 0, 255], lastFullReconcile: "2025-01-01T00:00:00Z", lastChangeApplied: "2025-01-02T00:00:00Z")
        try mirror.saveSyncState(state)
        #expect(try mirror.syncState(for: "ldap://a") == state)
    }

    /// A first load into an empty mirror builds two indexes after its rows: they are there after
    /// the commit, and still there when such a load is rejected.
    @Test func aFirstLoadKeepsTheIndexesAndIsCheckpointedInTheBackground() throws {
        let mirror = try makeMirror()
        func indexes() throws -> Set<String> {
            // Each index with its SQL: one built again must be the one the schema made.
            try mirror.read { db in Set(try String.fetchAll(db, sql: "SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")) }
        }
        let expected = try indexes()
        #expect(Set(expected.map { String($0.prefix { $0 != ":" }) }).isSuperset(of: Applier.deferredIndexes.map(\.0)))
        // Enough for a WAL past the checkpointer's threshold (1,000 pages of 8 KiB).
        let users = (0..<8000).map { Sample.user("bulk\($0)") }
        var changeset = Sample.changeset(scope: .complete)
        changeset.users += users
        changeset.groupMembers["g-ro", default: []].formUnion(users.map(\.code) + [UserCode("nobody")])
        #expect(throws: MirrorError.self) { try mirror.apply(changeset, actor: .system) }
        #expect(try indexes() == expected)
        #expect(try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user_account") } == 0)

        changeset.groupMembers["g-ro"]!.remove("nobody")
        let first = try mirror.apply(changeset, actor: .system)
        #expect(first.counts["user.created"] == 8006)
        // The large changeset's doubled page cache was the transaction's only: the writer is back to 16 MiB.
        #expect(try mirror.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") } == -Mirror.writerCacheKiB)
        #expect(try indexes() == expected)
        let plan = try mirror.read { db in try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT group_id FROM group_membership WHERE user_code_key = 'bulk7'").map { $0["detail"] as String } }
        #expect(plan.contains { $0.contains("group_membership_user") }, "\(plan)")
        #expect(try mirror.apply(changeset, actor: .system).isEmpty)
        mirror.waitForCheckpoint()
        let size = try FileManager.default.attributesOfItem(atPath: mirror.path)[.size] as? Int ?? 0
        #expect(size > 1_000_000, "the WAL was copied into the database file")
        #expect(try mirror.verifyAuditLog() == nil)
    }

    /// A first load into an empty mirror, alone on the file, leaves WAL mode for its transaction
    /// and writes the file itself; it comes back to WAL mode with the WAL files there (empty) for
    /// read-only readers. With another connection open (another process's, say) it cannot leave
    /// WAL mode and goes through the WAL. Either way every row is there and the chain verifies.
    @Test(arguments: [false, true])
    func aFirstLoadAloneWritesTheFileUnderARollbackJournal(anotherConnectionOpen: Bool) throws {
        let mirror = try makeMirror()
        let other = anotherConnectionOpen ? try Mirror(path: mirror.path) : nil
        func size(_ suffix: String) -> Int? { try? FileManager.default.attributesOfItem(atPath: mirror.path + suffix)[.size] as? Int }
        var changeset = Sample.changeset(scope: .complete)
        changeset.users += (0..<3000).map { Sample.user("bulk\($0)") }
        try mirror.apply(changeset, actor: .system)
        if !anotherConnectionOpen {
            #expect(size("-wal") == 0, "the load wrote the mirror file, not the WAL")
            #expect((size("") ?? 0) > 1_000_000)
        }
        #expect(try mirror.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
        #expect(size("-shm") != nil && size("-wal") != nil && size("-journal") == nil)
        #expect(try (other ?? mirror).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user_account") } == 3006)
        #expect(try mirror.verifyAuditLog() == nil)
        // The writer is in WAL mode again: a reader sees the last commit while the next one is open.
        try mirror.setLocalLock(of: "bulk7", locked: true, reason: "test", actor: .system)
        #expect((size("-wal") ?? 0) > 0)
        #expect(try mirror.user("bulk7")?.state.lockedLocally == true)
    }

    /// A large transaction's WAL is emptied by the background checkpoint, not by the next
    /// commit: that commit (a revocation) would otherwise spend tens of milliseconds freeing it.
    @Test func theCheckpointerEmptiesALargeWALSoTheNextCommitDoesNotTruncateIt() throws {
        let dir = TemporaryFolders.make("roster-mirror")
        let mirror = try Mirror(path: dir.appendingPathComponent("roster.sqlite").path, readerGroup: nil, worksAhead: true,
                                walSizeLimit: 1 << 20)
        func walSize() -> Int { (try? FileManager.default.attributesOfItem(atPath: mirror.path + "-wal")[.size] as? Int) ?? -1 }
        // Past the checkpointer's threshold (1,000 pages of 8 KiB) and far past the 1 MiB limit.
        var changeset = Sample.changeset(scope: .complete)
        changeset.users += (0..<12000).map { Sample.user("bulk\($0)") }
        try mirror.apply(changeset, actor: .system)
        mirror.waitForCheckpoint()
        #expect(walSize() == 0, "the checkpointed WAL was truncated beside the writer")

        // The next commit writes a small WAL, and nothing was lost.
        try mirror.setLocalLock(of: "bulk7", locked: true, reason: "test", actor: .system)
        #expect((1..<(1 << 20)).contains(walSize()))
        #expect(try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user_account") } == 12006)
        #expect(try mirror.user("bulk7")?.state.lockedLocally == true)
        #expect(try mirror.verifyAuditLog() == nil)
    }

    /// A reconcile gives a mirror that holds users only what differs from its snapshot
    /// (`Changeset.delta(from:)`): the mirror ends as the complete changeset leaves it, with the
    /// same audit actions and events, a local lock kept.
    @Test func aReducedChangesetLeavesTheMirrorAsTheCompleteOneDoes() throws {
        let complete = try makeMirror()
        let reduced = try makeMirror()
        var before = Sample.changeset(scope: .complete)
        // Past the applier's bulk threshold, as a reconcile's users are.
        before.users += (0..<300).map { Sample.user("bulk\($0)") }
        for mirror in [complete, reduced] {
            try mirror.apply(before, actor: .directory("ldap://test"))
            try mirror.setLocalLock(of: "lonely", locked: true, reason: "left the clinic", actor: .system)
        }
        var after = before
        func edit(_ code: UserCode, _ change: (inout User) -> Void) throws {
            change(&after.users[try #require(after.users.firstIndex { $0.code == code })])
        }
        try edit("rita") { $0.title = "Chief" }
        try edit("bulk7") { $0.state = AccountState(lockedByDirectory: true, reason: "locked in the directory") }
        try edit("locked") { $0.state = .active }
        after.users.append(Sample.user("newcomer"))
        after.groups.removeAll { $0.id == "g-pool" }
        after.groupMembers["g-pool"] = nil
        after.groupMembers["g-grey"] = ["rita", "locked", "newcomer"]
        after.roleHolders["Clinical Manager"] = ["rita"]

        let delta = try #require(after.delta(from: try reduced.snapshot()))
        // The changed users, and the locally locked one (the directory never carries that lock).
        #expect(Set(delta.users.map(\.code)) == ["rita", "bulk7", "locked", "newcomer", "lonely"])
        let byComplete = try complete.apply(after, actor: .directory("ldap://test"))
        let byDelta = try reduced.apply(delta, actor: .directory("ldap://test"))
        #expect(byDelta.counts == byComplete.counts)
        #expect(try reduced.snapshot() == complete.snapshot())
        #expect(try reduced.events().map(\.type) == complete.events().map(\.type))
        #expect(try reduced.user("lonely")?.state.lockedLocally == true)
        #expect(try reduced.verifyAuditLog() == nil)

        // Again: only the locally locked user differs, and applying that changes nothing.
        let again = try #require(after.delta(from: try reduced.snapshot()))
        #expect(again.users.map(\.code) == ["lonely"])
        #expect(again.groups.isEmpty && again.groupMembers.isEmpty && again.roleHolders.isEmpty && again.removedGroups.isEmpty)
        #expect(try reduced.apply(again, actor: .directory("ldap://test")).isEmpty)
    }

    @Test func activeUnlockedUsersAreCountedFromTheStateColumns() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        // Six users, one of them locked by the directory.
        #expect(try mirror.activeUnlockedUserCount() == 5)
        try mirror.setLocalLock(of: "lonely", locked: true, actor: .system)
        try mirror.setLocalDeactivation(of: "boss", inactive: true, actor: .system)
        #expect(try mirror.activeUnlockedUserCount() == 3)
    }

    @Test func aFirstLoadIntoAnEmptyMirrorIsCheckedWholeForBrokenReferencesBeforeItsCommit() throws {
        let mirror = try makeMirror()
        var changeset = Sample.changeset(scope: .complete)
        changeset.users += (0..<400).map { Sample.user("bulk\($0)") }
        func foreignKeysOn() throws -> Bool { try mirror.pool.writeWithoutTransaction { db in try Bool.fetchOne(db, sql: "PRAGMA foreign_keys") == true } }
        func userCount() throws -> Int { try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user_account") ?? -1 } }
        // A row that slipped past the applier's own checks: in an empty mirror SQLite does not
        // check it as it is written, the whole-load check before the commit refuses it.
        let ghost: (Database) throws -> Void = { db in
            try db.execute(sql: "INSERT INTO user_health_center (user_code_key, health_center) VALUES ('ghost', 'HC1')")
        }
        do {
            _ = try mirror.write(actor: .system, at: Date(), dryRun: false, changeset: changeset, finally: ghost) { try $0.run() }
            Issue.record("a first load with a broken reference was committed")
        } catch let error as MirrorError {
            guard case .brokenReferences(1, _) = error else { Issue.record("\(error)"); return }
            #expect(error.description.contains("a row of user_health_center refers to a user_account that does not exist"), "\(error)")
        }
        #expect(try userCount() == 0)
        #expect(try foreignKeysOn())

        // The same load without the ghost commits, checked.
        #expect(try mirror.apply(changeset, actor: .system).counts["user.created"] == 406)
        #expect(try foreignKeysOn())
        // Into a mirror that holds entities, every row is checked as it is written.
        #expect(throws: DatabaseError.self) {
            try mirror.write(actor: .system, at: Date(), dryRun: false, changeset: changeset, finally: ghost) { try $0.run() }
        }
        #expect(try userCount() == 406)
        #expect(try foreignKeysOn())
        #expect(try mirror.verifyAuditLog() == nil)
    }

    @Test func aFirstLoadBuiltAheadOnAnotherThreadWritesWhatTheWriterAloneWrites() throws {
        let dir = TemporaryFolders.make("roster-mirror")
        let ahead = try Mirror(path: dir.appendingPathComponent("ahead.sqlite").path, readerGroup: nil, worksAhead: true)
        let alone = try Mirror(path: dir.appendingPathComponent("alone.sqlite").path, readerGroup: nil, worksAhead: false)
        // Several chunks of users (one with a health center no user has: checked on the writer),
        // memberships in groups of every size, a break-glass account among them.
        var changeset = Sample.changeset(scope: .complete)
        // Two groups name the directory groups they map: their memberships' audit rows carry them
        // as their source, in the hashes computed ahead too.
        for index in changeset.groups.indices where ["g-ro", "g-grey"].contains(changeset.groups[index].id.rawValue) {
            changeset.groups[index].directoryDN = "cn=\(changeset.groups[index].id.rawValue),ou=groups,dc=test"
        }
        let users = (0..<(3 * Applier.lookaheadChunk + 17)).map { Sample.user("bulk\($0)", hcs: $0 % 7 == 0 ? ["HC1", "HC2"] : ["HC1"]) }
        changeset.users += users
        changeset.groupMembers["g-ro", default: []].formUnion(users.prefix(900).map(\.code))
        changeset.groupMembers["g-grey", default: []].formUnion(users.suffix(700).map(\.code))
        // Several chunks of providers and of groups (each provider's own, at both health centers),
        // whose records and audit hashes are built ahead too.
        let extraProviders = (0..<(2 * Applier.entityLookaheadChunk + 9)).map {
            Provider(id: ProviderID("p\($0)"), healthCenter: $0 % 3 == 0 ? "HC2" : "HC1", displayName: "Provider \($0)")
        }
        changeset.providers += extraProviders
        // Ten of them are users of the changeset too: their audit rows name those users' entries.
        changeset.users += extraProviders.prefix(10).map { Sample.user($0.id.rawValue) }
        changeset.groups += try extraProviders.map { provider in
            try Group(id: GroupID("own-\(provider.id)"), name: "Own \(provider.id)", kind: .provider, healthCenter: provider.healthCenter,
                      careVenues: [provider.healthCenter == "HC2" ? "HC2-MAIN" : "HC1-OR1"],
                      modules: [.providersOffice: .providers([provider.id: TargetGrant(.fullAccess)])])
        }
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let built = try ahead.apply(changeset, actor: .directory("ldap://test"), at: at)
        let written = try alone.apply(changeset, actor: .directory("ldap://test"), at: at)
        #expect(built.changes.count == written.changes.count)
        #expect(built.counts["user.created"] == users.count + 6 + 10)
        #expect(built.counts["provider.created"] == extraProviders.count + 5)
        #expect(built.counts["group.created"] == extraProviders.count + 3)
        // Every user's, membership's, provider's and group's hash but the first few was computed ahead.
        let aheadExpected = users.count + 10 + 900 + 700 + 2 * extraProviders.count
        #expect(built.hashesComputedAhead >= aheadExpected && built.hashesComputedAhead <= aheadExpected + 20, "\(built.hashesComputedAhead)")
        #expect(written.hashesComputedAhead == 0)
        let rows = "SELECT id, at, actor_kind, actor, source, action, entity_type, entity_key, before, after, prev_hash, hash FROM audit_log ORDER BY id"
        func values(_ mirror: Mirror, _ sql: String) throws -> [[DatabaseValue]] {
            try mirror.read { db in try Row.fetchAll(db, sql: sql).map { Array($0.databaseValues) } }
        }
        let builtRows = try values(ahead, rows)
        #expect(builtRows.count == built.changes.count)
        let fromGroup = try ahead.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_log WHERE action = 'membership.added' AND source = 'cn=g-ro,ou=groups,dc=test'")
        }
        #expect(fromGroup == changeset.groupMembers["g-ro"]?.count)
        let providersFromEntries = try ahead.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_log WHERE action = 'provider.created' AND source LIKE 'uid=p%,ou=people,dc=clinic'")
        }
        #expect(providersFromEntries == 10)
        #expect(builtRows == (try values(alone, rows)))
        let events = "SELECT id, type, user_code, group_id, detail FROM events ORDER BY id"
        #expect(try values(ahead, events) == values(alone, events))
        // Every column of every user, those made from the users' fields ahead included.
        let accounts = "SELECT * FROM user_account ORDER BY user_code_key"
        #expect(try values(ahead, accounts) == values(alone, accounts))
        #expect(try ahead.verifyAuditLog() == nil)
        #expect(try ahead.snapshot() == alone.snapshot())

        // A first load that fails half way (a member nobody lists) stops the thread working ahead and changes nothing.
        let failing = try Mirror(path: dir.appendingPathComponent("failing.sqlite").path, readerGroup: nil, worksAhead: true)
        changeset.groupMembers["g-pool", default: []].insert("nobody")
        #expect(throws: MirrorError.self) { try failing.apply(changeset, actor: .system) }
        #expect(try failing.auditRowCount() == 0)
    }

    @Test func readersNeverSeeHalfAChangeset() async throws {
        let mirror = try makeMirror()
        try mirror.apply(Changeset(healthCenters: [Sample.hc1], careVenues: [Sample.venues[0]], groups: [Sample.readOnlyGrey.withModules([:])]), actor: .system)
        let users = (0..<3000).map { Sample.user("bulk\($0)") }
        let changeset = Changeset(users: users, groupMembers: ["g-ro": Set(users.map(\.code))])
        let writer = Task.detached { try mirror.apply(changeset, actor: .system) }
        var seen = Set<[Int]>()
        for _ in 0..<200 {
            let counts = try mirror.read { db in
                [try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user_account")!, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM group_membership")!]
            }
            seen.insert(counts)
        }
        _ = try await writer.value
        seen.insert(try mirror.read { db in [try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user_account")!, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM group_membership")!] })
        #expect(seen.isSubset(of: [[0, 0], [3000, 3000]]), "\(seen)")
    }
}

/// The directory entries a reconcile stores (see ``EntryStore``): beside the mirror, committed
/// only after the apply, and tied to the audit row that apply ended on.
@Suite struct EntryStoreTests {
    static func update(_ marker: String, ids: [String] = ["id-rita", "id-moa2"]) -> DirectoryEntryUpdate {
        DirectoryEntryUpdate(
            directory: "ldap://test", replaceAll: true,
            upserts: ids.map { DirectoryEntryRecord(kind: .user, entryID: $0, marker: marker, dn: "uid=\($0),ou=people,dc=clinic", nextChange: nil,
                                                    content: Data(marker.utf8)) },
            removals: [], fingerprint: "fingerprint-\(marker)", contextMarker: "context-\(marker)", problems: Data())
    }

    func markers(_ mirror: Mirror) throws -> Set<String> {
        Set(try mirror.directoryEntryMarkers(for: "ldap://test", kind: .user).values.map(\.marker))
    }

    @Test func theStoreIsACacheWhoseCommitsDoNotSync() throws {
        // The mirror's commits sync (FULL, 2); the store's do not (NORMAL, 1): a lost commit only
        // leaves an earlier basis, and its pages are flushed beside the apply instead.
        let mirror = try makeMirror()
        let store = try mirror.entries()
        #expect(try store.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 1)
        #expect(try store.pool.writeWithoutTransaction { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try mirror.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
    }

    @Test func entriesAreCommittedOnlyWithTheirApplyInAFileOfTheirOwn() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .directory("ldap://test"), recording: Self.update("a"))
        let basis = try #require(try mirror.reconcileBasis(for: "ldap://test"))
        #expect(basis.fingerprint == "fingerprint-a" && basis.contextMarker == "context-a")
        #expect(try markers(mirror) == ["a"])
        #expect(try mirror.isUnchanged(since: basis))
        let file = (mirror.path as NSString).deletingLastPathComponent + "/mirror-entries.sqlite"
        #expect(try mirror.entries().path == file)
        #expect((try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) == 0o600)
        #expect(try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE name = 'directory_entry'") } == 0)

        // A dry run and a rejected apply store nothing: the entries stay those of the last apply.
        try mirror.apply(Sample.changeset(), actor: .directory("ldap://test"), dryRun: true, recording: Self.update("b"))
        var rejected = Sample.changeset()
        rejected.groupMembers["g-ro", default: []].insert("nobody")
        #expect(throws: MirrorError.self) { try mirror.apply(rejected, actor: .directory("ldap://test"), recording: Self.update("c")) }
        #expect(try mirror.reconcileBasis(for: "ldap://test") == basis)
        #expect(try markers(mirror) == ["a"])

        // An apply that changes nothing moves the basis to the same audit row; any change after it
        // (here an admin's lock) means the mirror is no longer as that apply left it.
        try mirror.apply(Sample.changeset(), actor: .directory("ldap://test"), recording: Self.update("d", ids: ["id-rita"]))
        let next = try #require(try mirror.reconcileBasis(for: "ldap://test"))
        #expect(next.auditMark == basis.auditMark && next.fingerprint == "fingerprint-d")
        #expect(try markers(mirror) == ["d"])
        try mirror.setLocalLock(of: "rita", locked: true, actor: .local("it-admin"))
        #expect(try !mirror.isUnchanged(since: next))

        // Another process (here another opening) finds them as stored, whether or not the WAL
        // was copied into the file yet.
        let reopened = try Mirror(path: mirror.path)
        #expect(try reopened.reconcileBasis(for: "ldap://test") == next)
        #expect(try markers(reopened) == ["d"])
    }

    @Test func aBasisIsOnlyItsOwnMirrorsEvenAtTheSameAuditRow() throws {
        let one = try makeMirror()
        let other = try makeMirror()
        try one.apply(Sample.changeset(), actor: .directory("ldap://test"), at: Date(timeIntervalSince1970: 1_800_000_000), recording: Self.update("a"))
        try other.apply(Sample.changeset(), actor: .directory("ldap://test"), at: Date(timeIntervalSince1970: 1_800_000_060), recording: Self.update("a"))
        let basis = try #require(try one.reconcileBasis(for: "ldap://test"))
        #expect(try other.reconcileBasis(for: "ldap://test")?.auditMark == basis.auditMark)
        #expect(try one.isUnchanged(since: basis))
        #expect(try !other.isUnchanged(since: basis), "a restored or rebuilt mirror with as many audit rows is another mirror")
    }

    @Test func entriesThatCannotBeStoredLeaveTheApplyStanding() throws {
        let mirror = try makeMirror()
        // Another process holds the entry store's write lock past the busy timeout (5 s).
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true
        let holder = try DatabaseQueue(path: mirror.entries().path, configuration: unsafe)
        try holder.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        let summary = try mirror.apply(Sample.changeset(), actor: .directory("ldap://test"), recording: Self.update("a"))
        try holder.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
        #expect(summary.counts["user.created"] == 6)
        #expect(summary.entriesNotStored?.contains("mirror-entries.sqlite") == true, "\(summary.entriesNotStored ?? "nil")")
        #expect(try mirror.reconcileBasis(for: "ldap://test") == nil, "no basis: the next reconcile reads every entry")
        #expect(try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user_account") } == 6)
    }

    @Test func aVersion3MirrorLetsGoOfTheEntriesItHeld() throws {
        let path = try olderMirror(upTo: "v3: directory entries seen by the reconcile") { db in
            // What v3 created (in short) and a reconcile stored there.
            try db.execute(sql: """
                CREATE TABLE directory_entry (directory TEXT, kind TEXT, entry_id TEXT, content BLOB);
                CREATE TABLE reconcile_basis (directory TEXT PRIMARY KEY, fingerprint TEXT);
                INSERT INTO reconcile_basis VALUES ('ldap://test', 'f');
                """)
        }
        let mirror = try Mirror(path: path)
        #expect(try mirror.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('directory_entry', 'reconcile_basis')") } == 0)
        #expect(try mirror.reconcileBasis(for: "ldap://test") == nil)
    }
}

@Suite struct UserDocumentJSONTests {
    @Test("The user document's JSON has every key, absent values as null: stateReason for an active user, provider for a pool grant")
    func everyKeyIsWritten() throws {
        let mirror = try makeMirror()
        try mirror.apply(Sample.changeset(), actor: .system)
        let rita = try #require(try mirror.userDocument(UserCode("rita")))
        #expect(rita.active && !rita.locked && rita.stateReason == nil)
        #expect(rita.access.contains { $0.provider == nil }, "rita is in the pool group, whose grants name no provider")

        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(rita)) as? [String: Any])
        let keys = ["userCode", "displayName", "firstName", "lastName", "title", "email", "active", "locked", "stateReason",
                    "stateSource", "superAdministrator", "breakGlass", "autoLogoutMinutes", "healthCenters", "groups", "roles",
                    "noAccessReason", "access", "directoryDN"]
        #expect(Set(object.keys) == Set(keys))
        #expect(object["stateReason"] is NSNull)
        let access = try #require(object["access"] as? [[String: Any]])
        #expect(access.allSatisfy { Set($0.keys) == ["module", "healthCenter", "provider", "privilege", "privacy"] })
        #expect(access.contains { $0["provider"] is NSNull })

        // Decoding takes null as absent: the document survives a round trip.
        #expect(try JSONDecoder().decode(UserDocument.self, from: JSONEncoder().encode(rita)) == rita)

        // The listings a script reads the same way: a user without an email, an audit row without a source.
        let summary = UserSummary(userCode: "x", displayName: "X", email: nil, active: true, locked: false)
        let summaryObject = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(summary)) as? [String: Any])
        #expect(Set(summaryObject.keys) == ["userCode", "displayName", "email", "active", "locked"] && summaryObject["email"] is NSNull)
        let row = try #require(try mirror.auditTail(limit: 500).first { $0.source == nil && $0.before == nil })
        let rowObject = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(row)) as? [String: Any])
        #expect(Set(rowObject.keys) == ["id", "at", "actorKind", "actor", "source", "action", "entityType", "entityKey", "before", "after", "prevHash", "hash"])
        #expect(rowObject["source"] is NSNull && rowObject["before"] is NSNull)
    }
}
