import AccessModel
import Foundation
import LDAPKit
import RosterConfig
@testable import Sync
import Testing

@Suite("Mapping directory entries to the clinic model (no I/O)")
struct DirectoryMapperTests {
    static let suffix = "dc=t"
    static let configuration = RosterConfiguration(
        directory: .init(urls: ["ldap://x"], baseDN: suffix),
        users: .init(base: suffix, attributes: .init(healthCenters: "departmentNumber"), defaultHealthCenters: ["HC1"],
                     breakGlassUserCodes: ["glass"]),
        providers: .init(filter: "(employeeType=provider)"),
        healthCenters: [.init(id: "HC1", name: "One", careVenues: [.init(id: "OR1", name: "OR 1")]),
                        .init(id: "HC2", name: "Two", careVenues: [.init(id: "OR2", name: "OR 2")])],
        pools: [],
        groups: .init(base: suffix, patternRules: [.init(
            pattern: "hc(?<n>[0-9])-(?<office>[a-z]+)-moa",
            template: .init(name: "HC{n} {office}", kind: .provider, healthCenter: "hc{n}", careVenues: ["or{n}"],
                            modules: [.providersOffice: .init(privacy: .forcedPatient, privilege: .fullAccess,
                                                              overrides: ["drb": .init(privilege: .readOnly)])],
                            providers: .membersOf("cn=hc{n}-{office}-providers,dc=t"), autoAddNewProviders: true))]),
        roles: [], safety: .init(), schedule: .init(), mirror: .init(), http: .init())

    let mapper = DirectoryMapper(configuration: Self.configuration, now: Date(timeIntervalSince1970: 1_800_000_000))

    func person(_ uid: String, center: String? = "HC1", extra: [String: String] = [:]) -> LDAPEntry {
        var attributes: [(name: String, values: [LDAPValue])] = [("uid", [LDAPValue(uid)]), ("givenName", [LDAPValue("G")]),
                                                                 ("sn", [LDAPValue(uid.uppercased())])]
        if let center { attributes.append(("departmentNumber", [LDAPValue(center)])) }
        for (key, value) in extra { attributes.append((key, [LDAPValue(value)])) }
        return LDAPEntry(dn: "uid=\(uid),\(Self.suffix)", attributes: attributes)
    }

    func mapped(_ entry: LDAPEntry, provider: Bool = false) throws -> MappedUser {
        try mapper.mapUser(entry, isProvider: provider, superAdministrator: false).get()
    }

    @Test("A pattern rule maps a directory group by its cn, with captures in every field and per-provider overrides")
    func patternRule() throws {
        let users = [try mapped(person("dra"), provider: true), try mapped(person("drb"), provider: true), try mapped(person("moa1"))]
        let groups = [DirectoryGroup(dn: "cn=hc1-ortho-moa,dc=t", cn: "hc1-ortho-moa", members: ["uid=moa1,dc=t"]),
                      DirectoryGroup(dn: "cn=hc1-ortho-providers,dc=t", cn: "hc1-ortho-providers", members: ["uid=dra,dc=t", "uid=drb,dc=t"])]
        let result = mapper.desiredState(users: users, groups: groups, stored: AccessSnapshot(), missing: .init(), problems: [])
        #expect(result.problems == [])
        let group = try #require(result.changeset.groups.first { $0.name == "HC1 ortho" })
        #expect(group.healthCenter == "HC1")
        #expect(group.careVenues == ["OR1"])
        let office = try #require(group.modules[.providersOffice])
        #expect(office.targets["dra"]?.privilege == .fullAccess)
        #expect(office.targets["drb"]?.privilege == .readOnly)
        #expect(office.privacy == .forcedPatient)
        #expect(result.changeset.groupMembers[group.id] == [UserCode("moa1")])
        #expect(Set(result.newProviders) == ["dra", "drb"])
    }

    @Test("A provider of another health center is left out of a pool, of a group listing it and of an auto-add group that kept it, each reported; everything else maps")
    func providersOfAnotherHealthCenter() throws {
        var configuration = Self.configuration
        configuration.pools = [.init(id: "HC1-P", name: "Pool one", healthCenter: "HC1", visibility: .allProviders, providersGroup: "cn=pool,dc=t")]
        configuration.groups.mappings = [.init(directoryGroup: "cn=listed,dc=t", group: .init(
            name: "Listed", kind: .provider, healthCenter: "HC1", careVenues: ["OR1"],
            modules: [.providersOffice: .init()], providers: .listed(["dra", "DRZ"])))]
        let mapper = DirectoryMapper(configuration: configuration, now: Date(timeIntervalSince1970: 1_800_000_000))
        func map(_ entry: LDAPEntry, provider: Bool = false) throws -> MappedUser {
            try mapper.mapUser(entry, isProvider: provider, superAdministrator: false).get()
        }
        // drz moved to HC2 since the auto-add group took it in.
        let users = [try map(person("dra"), provider: true), try map(person("drz", center: "HC2"), provider: true), try map(person("moa1"))]
        let groups = [DirectoryGroup(dn: "cn=hc1-ortho-moa,dc=t", cn: "hc1-ortho-moa", members: ["uid=moa1,dc=t"]),
                      DirectoryGroup(dn: "cn=hc1-ortho-providers,dc=t", cn: "hc1-ortho-providers", members: ["uid=dra,dc=t"]),
                      DirectoryGroup(dn: "cn=pool,dc=t", cn: "pool", members: ["uid=dra,dc=t", "uid=drz,dc=t"]),
                      DirectoryGroup(dn: "cn=listed,dc=t", cn: "listed", members: ["uid=moa1,dc=t"])]
        let storedOrtho = try Group(id: "HC1/HC1 ortho", name: "HC1 ortho", kind: .provider, healthCenter: "HC1", careVenues: ["OR1"],
                                    modules: [.providersOffice: ModuleGrant(privacy: .forcedPatient, targets: ["dra": TargetGrant(), "drz": TargetGrant()])],
                                    autoAddNewProviders: true, directoryDN: "cn=hc1-ortho-moa,dc=t")
        let stored = AccessSnapshot(providers: [Provider(id: "dra", healthCenter: "HC1", displayName: "DRA, G"),
                                                Provider(id: "drz", healthCenter: "HC1", displayName: "DRZ, G")],
                                    groups: [storedOrtho])
        let result = mapper.desiredState(users: users, groups: groups, stored: stored, missing: .init(), problems: [])

        let pool = try #require(result.changeset.pools.first { $0.id == "HC1-P" })
        #expect(pool.providers == ["dra"])
        let listed = try #require(result.changeset.groups.first { $0.name == "Listed" })
        #expect(Set(listed.modules[.providersOffice]?.targets.keys.map { $0 } ?? []) == ["dra"])
        let ortho = try #require(result.changeset.groups.first { $0.name == "HC1 ortho" })
        #expect(Set(ortho.modules[.providersOffice]?.targets.keys.map { $0 } ?? []) == ["dra"], "drz is of HC2 now")
        let messages = result.problems.map(\.message)
        #expect(result.problems.contains { $0.dn == "cn=pool,dc=t" && $0.message.contains("'drz' of HC2") && $0.message.contains("pool 'HC1-P'") }, "\(messages)")
        #expect(result.problems.contains { $0.dn == "cn=listed,dc=t" && $0.message.contains("'drz' of HC2") && $0.message.contains("'Listed'") }, "\(messages)")
        #expect(result.problems.count == 2, "\(messages)")
        // Every user maps; drz is a provider of HC2.
        #expect(result.changeset.users.count == 3)
        #expect(result.changeset.providers.first { $0.id == "drz" }?.healthCenter == "HC2")
    }

    @Test("Entries without a code, with several codes, or with an unknown health center are problems")
    func badEntries() throws {
        let noCode = LDAPEntry(dn: "cn=x,dc=t", attributes: [("cn", [LDAPValue("x")])])
        #expect(throws: MappingProblem.self) { try mapped(noCode) }
        var twoCodes = person("a")
        twoCodes.append("uid", [LDAPValue("b")])
        #expect(throws: MappingProblem.self) { try mapped(twoCodes) }
        #expect(throws: MappingProblem.self) { try mapped(person("c", center: "HC7")) }
        let binary = LDAPEntry(dn: "uid=bin,dc=t", attributes: [("uid", [LDAPValue([0xff, 0xfe])])])
        #expect(throws: MappingProblem.self) { try mapped(binary) }
        let defaulted = try mapped(person("d", center: nil))
        #expect(defaulted.user.healthCenters == ["HC1"])
    }

    @Test("Codes differing only in case skip every such entry and keep the stored user")
    func duplicateCodes() throws {
        let ann = try User(code: "ann", directoryDN: "uid=ann,dc=t")
        let stored = AccessSnapshot(users: [ann])
        let users = [try mapped(person("Ann")), try mapped(LDAPEntry(dn: "uid=ann2,dc=t", attributes: [("uid", [LDAPValue("ann")])])),
                     try mapped(person("bob")), try mapped(LDAPEntry(dn: "uid=ann3,dc=t", attributes: [("uid", [LDAPValue("ANN")])]))]
        let result = mapper.desiredState(users: users, groups: [], stored: stored, missing: .init(), problems: [])
        // Each of the three entries is reported once; the user that is not a duplicate maps.
        #expect(Set(result.problems.map(\.dn)) == ["uid=Ann,dc=t", "uid=ann2,dc=t", "uid=ann3,dc=t"], "\(result.problems)")
        #expect(result.problems.count == 3)
        #expect(result.changeset.users.map(\.code) == ["ann", "bob"])
        #expect(result.changeset.users.first == ann)
    }

    @Test("Directory state never clears a local lock; gone users become inactive, never deleted; break-glass stays")
    func states() throws {
        var localLocked = try User(code: "lee", directoryDN: "uid=lee,dc=t")
        localLocked.state.lockedLocally = true
        var glass = try User(code: "glass", directoryDN: "uid=glass,dc=t")
        glass.isBreakGlass = true
        let left = try User(code: "left", directoryDN: "uid=left,dc=t")
        let stored = AccessSnapshot(users: [localLocked, glass, left])
        let users = [try mapped(person("lee")), try mapped(person("glass", extra: ["pwdAccountLockedTime": "000001010000Z"]))]
        let result = mapper.desiredState(users: users, groups: [], stored: stored, missing: .init(gone: ["left"]), problems: [])
        let byCode: [UserCode: User] = Dictionary(uniqueKeysWithValues: result.changeset.users.map { ($0.code, $0) })
        #expect(byCode["lee"]?.state.isLocked == true)
        #expect(byCode["glass"] == glass)
        #expect(byCode["left"]?.state.isActive == false)
        #expect(result.changeset.users.count == 3)
    }

    @Test("The plan counts state changes and the breaker applies both limits")
    func planAndBreaker() throws {
        let before = AccessSnapshot(users: [try User(code: "a"), try User(code: "b")])
        var a = before.users["a"]!
        a.state.inactiveByDirectory = true
        var b = before.users["b"]!
        b.state.lockedByDirectory = true
        let counts = PlanCounts.between(stored: before, desired: Changeset(scope: .complete, users: [a, b]), newProviders: [])
        #expect(counts.usersDeactivated == 1 && counts.usersLocked == 1 && counts.revocations == 2)
        #expect(BreakerTrip.check(counts: counts, activeUsersBefore: 100, usersInDirectory: 98, maxDeactivations: 50, maxPercent: 5) == nil)
        #expect(BreakerTrip.check(counts: counts, activeUsersBefore: 20, usersInDirectory: 18, maxDeactivations: 50, maxPercent: 5) != nil)
        #expect(BreakerTrip.check(counts: counts, activeUsersBefore: 100, usersInDirectory: 98, maxDeactivations: 1, maxPercent: 5) != nil)
        #expect(BreakerTrip.check(counts: PlanCounts(), activeUsersBefore: 3, usersInDirectory: 0, maxDeactivations: 50, maxPercent: 5) != nil)
    }

    @Test("New users who arrive locked are additions, not revocations: a first sync of a directory with many locked accounts is not refused")
    func newLockedUsersAreNotRevocations() throws {
        let arriving = try (1...80).map { index in
            var user = try User(code: UserCode("u\(index)"))
            user.state.lockedByDirectory = true
            return user
        }
        let counts = PlanCounts.between(stored: AccessSnapshot(), desired: Changeset(scope: .complete, users: arriving), newProviders: [])
        #expect(counts.usersAdded == 80 && counts.usersLocked == 0 && counts.revocations == 0)
        #expect(BreakerTrip.check(counts: counts, activeUsersBefore: 0, usersInDirectory: 80, maxDeactivations: 50, maxPercent: 5) == nil)
    }

    @Test("The changeset lists each accepted and stored user once, ordered by code, whatever the directory's order", arguments: [1, 2, 7, 300])
    func usersOrderedByCode(count: Int) throws {
        var generator = SystemRandomNumberGenerator()
        let codes = (0..<count).map { "u\(String($0, radix: 7))" }.shuffled(using: &generator)
        let users = try codes.map { try mapped(person($0)) }
        // Stored users the directory no longer lists are kept, and sort in among the others.
        var stored = AccessSnapshot()
        for code in ["u0x", "zz", "a"] { stored.users[UserCode(code)] = try User(code: UserCode(code)) }
        let result = mapper.desiredState(users: users, groups: [], stored: stored, missing: .init(), problems: [])
        let expected = (codes + ["u0x", "zz", "a"]).sorted { UserCode($0).key < UserCode($1).key }
        #expect(result.changeset.users.map(\.code.rawValue) == expected)
        #expect(result.changeset.users.map(\.lastName) == expected.map { ["u0x", "zz", "a"].contains($0) ? "" : $0.uppercased() })
        #expect(DirectoryMapper.sortedByCode(result.changeset.users.shuffled(using: &generator)).map(\.code.rawValue) == expected)
    }
}
