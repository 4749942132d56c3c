import AccessModel
import Testing

@Suite struct ChangesetDeltaTests {
    static let office = Clinic.group(1, seed: 11)
    static let team = Clinic.group(2, seed: 22)
    static let manager = Role(id: "Manager", modules: [.reports: .readOnly])

    static func stored() -> AccessSnapshot {
        Clinic.snapshot(users: [Clinic.user("rita"), Clinic.user("moa"), Clinic.user("boss")], groups: [office, team],
                        members: [office.id: ["rita", "moa"], team.id: ["moa"]], roles: [manager], holders: [manager.id: ["boss"]])
    }

    @Test func theDeltaOfAnUnchangedModelListsNothing() throws {
        let delta = try #require(Changeset(complete: Self.stored()).delta(from: Self.stored()))
        #expect(delta.scope == .partial)
        #expect(delta == Changeset(scope: .partial))
    }

    @Test func theDeltaListsWhatDiffersWithWholeMemberSets() throws {
        var desired = Changeset(complete: Self.stored())
        let rita = try #require(desired.users.firstIndex { $0.code == "rita" })
        desired.users[rita].title = "Chief"
        desired.users.append(Clinic.user("newcomer"))
        desired.groupMembers[Self.office.id] = ["rita", "newcomer"]
        var renamed = Self.team
        renamed.name = "Team two"
        desired.groups = [Self.office, renamed]
        desired.roleHolders[Self.manager.id] = []
        let delta = try #require(desired.delta(from: Self.stored()))
        #expect(delta.users.map(\.code) == ["rita", "newcomer"])
        #expect(delta.groups == [renamed])
        // The office's set changed; the team's did not, but the team itself did, so its set is given too.
        #expect(delta.groupMembers == [Self.office.id: ["rita", "newcomer"], Self.team.id: ["moa"]])
        #expect(delta.roleHolders == [Self.manager.id: []])
        #expect(delta.removedGroups.isEmpty && delta.healthCenters.isEmpty && delta.providers.isEmpty && delta.pools.isEmpty)
    }

    @Test func aGroupTheChangesetDoesNotListIsRemovedWithItsMembers() throws {
        var desired = Changeset(complete: Self.stored())
        desired.groups.removeAll { $0.id == Self.team.id }
        desired.groupMembers[Self.team.id] = nil
        let delta = try #require(desired.delta(from: Self.stored()))
        #expect(delta.removedGroups == [Self.team.id])
        #expect(delta.groupMembers.isEmpty && delta.groups.isEmpty)
    }

    @Test func aListedGroupWithoutAMemberSetIsEmptied() throws {
        var desired = Changeset(complete: Self.stored())
        desired.groupMembers[Self.team.id] = nil
        let delta = try #require(desired.delta(from: Self.stored()))
        #expect(delta.groupMembers == [Self.team.id: []])
    }

    @Test func noDeltaWhereOnlyTheCompleteChangesetSaysTheSame() {
        // Not complete; nothing stored (a first load); a removal of a pool, a provider, a role.
        #expect(Changeset(scope: .partial).delta(from: Self.stored()) == nil)
        #expect(Changeset(complete: Self.stored()).delta(from: AccessSnapshot()) == nil)
        var withoutPool = Changeset(complete: Self.stored())
        withoutPool.pools.removeLast()
        #expect(withoutPool.delta(from: Self.stored()) == nil)
        var withoutProvider = Changeset(complete: Self.stored())
        withoutProvider.providers.removeAll { $0.id == "ross" }
        #expect(withoutProvider.delta(from: Self.stored()) == nil)
        var withoutRole = Changeset(complete: Self.stored())
        withoutRole.roles = []
        #expect(withoutRole.delta(from: Self.stored()) == nil)
    }
}
