import AccessModel
import PropertyBased
import Testing

@Suite struct EffectiveAccessTests {
    /// The seed manual's example: a group where the MOA manages one surgeon's wait list and only
    /// views another's.
    @Test func oneGroupGivesFullAccessToOneSurgeonAndReadOnlyToAnother() throws {
        let group = try Group(id: "grey-office", name: "Grey office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .providersOffice: .providers(["grey": TargetGrant(.fullAccess), "banner": TargetGrant(.readOnly)]),
        ])
        let rita = Clinic.user("rita")
        let access = Clinic.snapshot(users: [rita], groups: [group], members: ["grey-office": ["RITA"]]).effectiveAccess(of: "rita")
        #expect(access.grants == [
            Grant(GrantKey(.providersOffice, "HC1", "banner"), AccessLevel(.readOnly, .toggleDefaultOff)),
            Grant(GrantKey(.providersOffice, "HC1", "grey"), AccessLevel(.fullAccess, .toggleDefaultOff)),
            Grant(GrantKey(.userPreferences, "HC1"), AccessLevel(.fullAccess, .toggleDefaultOff)),
        ])
    }

    /// Full Access in Provider's Office but Read-Only in Reports, for the same surgeon.
    @Test func privilegeIsPerModule() throws {
        let group = try Group(id: "g", name: "MOAs", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1", "HC1-OR2"], modules: [
            .providersOffice: .providers(["grey": TargetGrant(.fullAccess)]),
            .reports: .providers(["grey": TargetGrant(.readOnly)], privacy: .forcedPatient),
        ])
        let access = Clinic.snapshot(users: [Clinic.user("rita")], groups: [group], members: ["g": ["rita"]]).effectiveAccess(of: "rita")
        #expect(access.level(for: GrantKey(.providersOffice, "HC1", "grey")) == AccessLevel(.fullAccess, .toggleDefaultOff))
        #expect(access.level(for: GrantKey(.reports, "HC1", "grey")) == AccessLevel(.readOnly, .forcedPatient))
    }

    @Test func twoGroupsOnTheSameSurgeonGiveTheMostRestrictive() throws {
        let full = try Group(id: "a", name: "Ortho full", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .providersOffice: .providers(["grey": TargetGrant(.fullAccess)], privacy: .toggleDefaultOn),
        ])
        let readOnly = try Group(id: "b", name: "Ortho read-only", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .providersOffice: .providers(["grey": TargetGrant(.readOnly)], privacy: .toggleDefaultOff),
        ])
        let access = Clinic.snapshot(users: [Clinic.user("rita")], groups: [full, readOnly], members: ["a": ["rita"], "b": ["rita"]]).effectiveAccess(of: "rita")
        #expect(access.level(for: GrantKey(.providersOffice, "HC1", "grey")) == AccessLevel(.readOnly, .toggleDefaultOn))
    }

    @Test func aUserWithoutGroupHasNoAccess() {
        let access = Clinic.snapshot(users: [Clinic.user("rita")], groups: [], members: [:]).effectiveAccess(of: "rita")
        #expect(access == .noAccess(.noGroup))
        #expect(Clinic.snapshot(users: [], groups: [], members: [:]).effectiveAccess(of: "rita") == .noAccess(.unknownUser))
    }

    @Test func lockedAndInactiveUsersHaveNoAccessEvenAsSuperAdministrators() {
        let locked = Clinic.user("locked", superAdministrator: true, state: AccountState(lockedLocally: true))
        let gone = Clinic.user("gone", superAdministrator: true, state: AccountState(inactiveByDirectory: true))
        let snapshot = Clinic.snapshot(users: [locked, gone], groups: [], members: [:])
        #expect(snapshot.effectiveAccess(of: "locked") == .noAccess(.locked))
        #expect(snapshot.effectiveAccess(of: "gone") == .noAccess(.inactive))
    }

    @Test func poolsExpandToAllOrOnlyReachableProviders() throws {
        let pools = try Group(id: "pools", name: "Pool group", kind: .pool, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .providersOffice: .pools(["ortho": TargetGrant(.fullAccess), "cardio": TargetGrant(.readOnly)]),
        ])
        let house = try Group(id: "house", name: "House office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .providersOffice: .providers(["house": TargetGrant(.fullAccess)]),
        ])
        let poolOnly = Clinic.snapshot(users: [Clinic.user("rita")], groups: [pools, house], members: ["pools": ["rita"]]).effectiveAccess(of: "rita")
        #expect(Set(poolOnly.grants.compactMap(\.provider)) == ["grey", "banner", "strange"])
        let both = Clinic.snapshot(users: [Clinic.user("rita")], groups: [pools, house], members: ["pools": ["rita"], "house": ["rita"]]).effectiveAccess(of: "rita")
        #expect(Set(both.grants.compactMap(\.provider)) == ["grey", "banner", "strange", "house"])
        #expect(both.level(for: GrantKey(.providersOffice, "HC1", "house")) == AccessLevel(.readOnly, .toggleDefaultOff))
    }

    @Test func rolesAddModulesAtTheUsersHealthCentersAndAllAccessIsSuperAdministrator() throws {
        let group = try Group(id: "g", name: "Grey office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"])
        let manager = Role(id: "Clinical Manager", modules: [.reports: .readOnly])
        let snapshot = Clinic.snapshot(
            users: [Clinic.user("rita"), Clinic.user("boss"), Clinic.user("lonely")], groups: [group], members: ["g": ["rita"]],
            roles: [manager, .allAccess], holders: ["Clinical Manager": ["rita", "lonely"], "All Access": ["boss"]])
        #expect(snapshot.effectiveAccess(of: "rita").level(for: GrantKey(.reports, "HC1")) == AccessLevel(.readOnly, .toggleDefaultOff))
        #expect(snapshot.effectiveAccess(of: "lonely") == .noAccess(.noGroup))
        #expect(snapshot.effectiveAccess(of: "boss").grants.count == EffectiveAccess.superAdministratorGrants(providers: snapshot.providers, healthCenters: snapshot.healthCenters).count)
    }

    // MARK: properties

    static let seeds = Gen.uint64(in: 0 ... .max).array(of: 1 ... 6)

    @Test func groupOrderNeverMatters() async {
        await propertyCheck(input: Self.seeds) { seeds in
            let groups = seeds.enumerated().map { Clinic.group($0.offset, seed: $0.element) }
            let user = Clinic.user("rita", healthCenters: ["HC1", "HC2"])
            let forward = EffectiveAccess.compute(for: user, groups: groups, roles: [], pools: Clinic.snapshot(users: [], groups: [], members: [:]).pools, providers: [:], healthCenters: [:])
            let backward = EffectiveAccess.compute(for: user, groups: groups.reversed(), roles: [], pools: Clinic.snapshot(users: [], groups: [], members: [:]).pools, providers: [:], healthCenters: [:])
            let rotated = EffectiveAccess.compute(for: user, groups: Array(groups.dropFirst() + groups.prefix(1)), roles: [], pools: Clinic.snapshot(users: [], groups: [], members: [:]).pools, providers: [:], healthCenters: [:])
            #expect(forward == backward)
            #expect(forward == rotated)
        }
    }

    @Test func addingARestrictiveGroupNeverWidensAccess() async {
        await propertyCheck(input: Self.seeds, Gen.uint64(in: 0 ... .max)) { seeds, extra in
            let groups = seeds.enumerated().map { Clinic.group($0.offset, seed: $0.element) }
            let restrictive = Clinic.group(99, seed: extra, restrictive: true)
            let members: Set<UserCode> = ["rita"]
            let before = Clinic.snapshot(users: [Clinic.user("rita")], groups: groups, members: Dictionary(uniqueKeysWithValues: groups.map { ($0.id, members) }))
            var after = before
            after.groups[restrictive.id] = restrictive
            after.groupMembers[restrictive.id] = members
            let old = before.effectiveAccess(of: "rita").byKey
            let new = after.effectiveAccess(of: "rita").byKey
            for (key, level) in old {
                let now = try #require(new[key])
                #expect(now.isAtLeastAsRestrictive(as: level), "\(key) widened from \(level) to \(now)")
            }
        }
    }

    @Test func superAdministratorsGetEverythingAtFullAccessWhateverTheirGroups() async {
        await propertyCheck(input: Self.seeds) { seeds in
            let groups = seeds.enumerated().map { Clinic.group($0.offset, seed: $0.element, restrictive: true) }
            let admin = Clinic.user("admin", healthCenters: [], superAdministrator: true)
            let snapshot = Clinic.snapshot(users: [admin], groups: groups, members: Dictionary(uniqueKeysWithValues: groups.map { ($0.id, ["admin"]) }))
            let grants = snapshot.effectiveAccess(of: "admin").grants
            #expect(grants.allSatisfy { $0.level == .unrestricted })
            for module in Module.allCases where module.isProviderScoped {
                for provider in Clinic.providers {
                    #expect(grants.contains { $0.key == GrantKey(module, provider.healthCenter, provider.id) })
                }
            }
        }
    }
}
