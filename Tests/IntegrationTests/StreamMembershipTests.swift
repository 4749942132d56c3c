import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import SlapdHarness
import Sync
import Testing

extension ClinicFixture {
    /// The stored members of the clinic group mapped from the directory group `dn`.
    func members(ofGroup dn: String) throws -> Set<UserCode> {
        let snapshot = try mirror.snapshot()
        let group = try #require(snapshot.groups.values.first { $0.directoryDN.map(DN.normalize) == DN.normalize(dn) }, "no group maps \(dn)")
        return snapshot.groupMembers[group.id] ?? []
    }

    /// The directory's entry at `dn`, read now, as a change event would carry it.
    func event(at dn: String, attributes: [String]) async throws -> SyncEvent {
        let connection = try await writer()
        let entry = try #require(try await connection.search(base: dn, scope: .base, filter: "(objectClass=*)",
                                                               attributes: attributes + ["entryUUID"], pageSize: nil).collect().first)
        await connection.close()
        return .modify(try #require(entry.string("entryUUID").flatMap { EntryUUID($0) }), entry)
    }

    func userEvent(at dn: String) async throws -> SyncEvent {
        try await event(at: dn, attributes: DirectoryMapper(configuration: configuration, now: Date()).userAttributes)
    }

    func groupEvent(at dn: String) async throws -> SyncEvent {
        try await event(at: dn, attributes: ["cn", configuration.groups.memberAttribute])
    }
}

/// The users' and the groups' change streams are not ordered with each other, and groups name
/// their members by DN: what the stream does with a member DN it has no user for, and with a DN
/// a user no longer has. Each case ends where a full reconcile of the same directory ends.
@Suite("Group members the change stream resolves by DN, against a real slapd")
struct StreamMembershipTests {
    /// A clinic directory synced into its mirror, and a change applier loaded from the mirror,
    /// as the stream has them after its first reconcile.
    static func synced() async throws -> (ClinicFixture, ChangeApplier) {
        let fixture = try await ClinicFixture.start()
        _ = try await fixture.sync()
        let applier = ChangeApplier(configuration: fixture.configuration, mirror: fixture.mirror)
        try applier.reload()
        return (fixture, applier)
    }

    /// The DN a screener of health center 1 moves to, keeping their uid (and user code).
    static func movedDN(_ clinic: ClinicDirectory) -> String { "cn=Moved Screener,ou=people,\(clinic.suffix)" }

    /// Renames screener 2 of health center 1 to ``movedDN(_:)`` in the directory; their code.
    static func moveScreener(_ fixture: ClinicFixture) throws -> String {
        let moved = fixture.clinic.teamMember(1, "screening", 2)
        try fixture.server.ldapmodify("dn: \(fixture.clinic.dn(moved))\nchangetype: modrdn\nnewrdn: cn=Moved Screener\ndeleteoldrdn: 0\n")
        return moved
    }

    static func newcomerLDIF(_ clinic: ClinicDirectory, _ uid: String) -> String {
        """
        dn: \(clinic.dn(uid))
        changetype: add
        objectClass: inetOrgPerson
        uid: \(uid)
        cn: New Comer
        givenName: New
        sn: Comer
        departmentNumber: HC1
        """ + "\n\n"
    }

    @Test("A group's change that comes before its members' own changes neither misses a new user nor drops a renamed one")
    func groupBeforeItsMembers() async throws {
        let (fixture, applier) = try await Self.synced()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let screening = clinic.groupDN("hc1-screening")
        let newcomer = "hc1-newcomer1"
        let moved = clinic.teamMember(1, "screening", 2)
        let movedDN = Self.movedDN(clinic)
        // A new user added to a group, and a rename carried into the group as referential
        // integrity does it.
        try fixture.server.ldapmodify(Self.newcomerLDIF(clinic, newcomer) + """
            dn: \(clinic.dn(moved))
            changetype: modrdn
            newrdn: cn=Moved Screener
            deleteoldrdn: 0

            dn: \(screening)
            changetype: modify
            delete: member
            member: \(clinic.dn(moved))
            -
            add: member
            member: \(movedDN)
            member: \(clinic.dn(newcomer))

            """)
        let applied = try await applier.apply(try await fixture.groupEvent(at: screening), from: .groups, cookie: nil)
        #expect(!applied.revocation)
        #expect(applied.fullReconcileReason == nil)
        #expect(applied.problems == [])
        #expect(try fixture.members(ofGroup: screening).isSuperset(of: [UserCode(newcomer), UserCode(moved)]))
        #expect(try fixture.user(moved)?.directoryDN == movedDN)
        #expect(try fixture.user(newcomer)?.state.isActive == true)

        // The users' own changes, arriving later, change nothing more; nor does a full reconcile.
        for dn in [movedDN, clinic.dn(newcomer)] {
            let later = try await applier.apply(try await fixture.userEvent(at: dn), from: .users, cookie: nil)
            #expect(later.changes == 0, "\(dn)")
        }
        let report = try await fixture.sync()
        #expect(report.counts.isEmpty, "\(report.counts)")
    }

    @Test("A user renamed without referential integrity has no access through the DN a group still lists, as after a full reconcile")
    func renameLeavesTheOldDNBehind() async throws {
        let (fixture, applier) = try await Self.synced()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let screening = clinic.groupDN("hc1-screening")
        let removed = clinic.teamMember(1, "screening", 3)
        let moved = try Self.moveScreener(fixture)
        let movedDN = Self.movedDN(clinic)
        let renamed = try await applier.apply(try await fixture.userEvent(at: movedDN), from: .users, cookie: nil)
        #expect(!renamed.revocation, "a rename alone revokes nothing")
        #expect(try fixture.user(moved)?.directoryDN == movedDN)

        // The group still names the old DN; its next change is judged by the DNs users have now.
        try fixture.server.ldapmodify("dn: \(screening)\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed))\n")
        let applied = try await applier.apply(try await fixture.groupEvent(at: screening), from: .groups, cookie: nil)
        #expect(applied.revocation)
        let members = try fixture.members(ofGroup: screening)
        #expect(!members.contains(UserCode(moved)))
        #expect(!members.contains(UserCode(removed)))
        let report = try await fixture.sync()
        #expect(report.counts.isEmpty, "the stream ended where a full reconcile ends: \(report.counts)")
    }

    @Test("After a reconcile that renamed a user, the stream reads that one identity again: it knows the new DN and forgets the old")
    func partialReloadAfterAReconcile() async throws {
        let (fixture, applier) = try await Self.synced()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let screening = clinic.groupDN("hc1-screening")
        let moved = try Self.moveScreener(fixture)
        let movedDN = Self.movedDN(clinic)
        let mark = try fixture.mirror.auditMark()
        let reconciled = try await fixture.sync()
        #expect(reconciled.counts.usersUpdated == 1)
        #expect(try applier.reload(changedAfter: mark) == 1, "one user read again, not all \(clinic.userCount)")

        // The group still names the old DN: its next change does not count the user through it.
        let removed = clinic.teamMember(1, "screening", 3)
        try fixture.server.ldapmodify("dn: \(screening)\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed))\n")
        _ = try await applier.apply(try await fixture.groupEvent(at: screening), from: .groups, cookie: nil)
        #expect(try !fixture.members(ofGroup: screening).contains(UserCode(moved)))
        // Named by the new DN, the user is a member again.
        try fixture.server.ldapmodify("dn: \(screening)\nchangetype: modify\nadd: member\nmember: \(movedDN)\n")
        let added = try await applier.apply(try await fixture.groupEvent(at: screening), from: .groups, cookie: nil)
        #expect(added.changes > 0)
        #expect(try fixture.members(ofGroup: screening).contains(UserCode(moved)))
        let report = try await fixture.sync()
        #expect(report.counts.isEmpty, "\(report.counts)")
    }

    @Test("After a login is renamed and renamed back, the stream names by the entry the account that holds it now: a group adds that account, and the deletion revokes it")
    func loginRenamedAndBack() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let screening = clinic.groupDN("hc1-screening")
        let original = try Self.moveScreener(fixture)
        let movedDN = Self.movedDN(clinic)
        try fixture.server.ldapmodify("dn: \(screening)\nchangetype: modify\nadd: member\nmember: \(movedDN)\n")
        _ = try await fixture.sync()
        // The login changes and changes back; the DN (and entryUUID) stay, as with Active
        // Directory's sAMAccountName. Two stored accounts then share the entry's identity.
        let interim = "a-renamed-screener"
        for code in [interim, original] {
            try fixture.server.ldapmodify("dn: \(movedDN)\nchangetype: modify\nreplace: uid\nuid: \(code)\n")
            _ = try await fixture.sync()
        }
        #expect(try fixture.user(original)?.state.isActive == true)
        #expect(try fixture.user(interim)?.state.isActive == false)
        #expect(try fixture.user(interim)?.directoryID == fixture.user(original)?.directoryID)
        #expect(try fixture.members(ofGroup: screening).contains(UserCode(original)))

        // A daemon starting now loads every stored identity.
        let applier = ChangeApplier(configuration: fixture.configuration, mirror: fixture.mirror)
        try applier.reload()
        try fixture.server.ldapmodify("dn: \(screening)\nchangetype: modify\ndelete: member\nmember: \(movedDN)\n")
        let removal = try await applier.apply(try await fixture.groupEvent(at: screening), from: .groups, cookie: nil)
        #expect(removal.revocation)
        #expect(try !fixture.members(ofGroup: screening).contains(UserCode(original)))
        let booking = clinic.groupDN("hc1-booking")
        try fixture.server.ldapmodify("dn: \(booking)\nchangetype: modify\nadd: member\nmember: \(movedDN)\n")
        _ = try await applier.apply(try await fixture.groupEvent(at: booking), from: .groups, cookie: nil)
        #expect(try fixture.members(ofGroup: booking).contains(UserCode(original)), "the DN names the account that holds it")
        #expect(try !fixture.members(ofGroup: booking).contains(UserCode(interim)))

        let id = try #require(try fixture.user(original)?.directoryID.flatMap { EntryUUID($0) })
        let writer = try await fixture.writer()
        try await writer.delete(movedDN)
        await writer.close()
        let deletion = try await applier.apply(.delete(id, dn: movedDN), from: .users, cookie: nil)
        #expect(deletion.revocation)
        #expect(try fixture.user(original)?.state.isActive == false)
        let report = try await fixture.sync()
        #expect(report.counts.isEmpty, "\(report.counts)")
    }

    @Test("A login renamed on the stream, then the old account locked by an admin: the partial reload leaves the entry to the account that holds it")
    func oldLoginChangedLocally() async throws {
        let (fixture, applier) = try await Self.synced()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let original = try Self.moveScreener(fixture)
        let movedDN = Self.movedDN(clinic)
        _ = try await applier.apply(try await fixture.userEvent(at: movedDN), from: .users, cookie: nil)
        let renamed = "a-renamed-screener"
        try fixture.server.ldapmodify("dn: \(movedDN)\nchangetype: modify\nreplace: uid\nuid: \(renamed)\n")
        let rename = try await applier.apply(try await fixture.userEvent(at: movedDN), from: .users, cookie: nil)
        #expect(rename.revocation, "the old login is deactivated")
        #expect(try fixture.user(original)?.state.isActive == false)

        // The old account changes after the mark (here an admin's lock; the reconcile changes
        // nothing), so the reload after the reconcile reads it again.
        let mark = try fixture.mirror.auditMark()
        _ = try fixture.mirror.setLocalLock(of: UserCode(original), locked: true, reason: "left the clinic", actor: .system)
        _ = try await fixture.sync()
        #expect(try applier.reload(changedAfter: mark) == 1)
        let id = try #require(try fixture.user(renamed)?.directoryID.flatMap { EntryUUID($0) })
        let writer = try await fixture.writer()
        try await writer.delete(movedDN)
        await writer.close()
        let deletion = try await applier.apply(.delete(id, dn: movedDN), from: .users, cookie: nil)
        #expect(deletion.revocation)
        #expect(try fixture.user(renamed)?.state.isActive == false)
    }

    @Test("A group that names many entries that are no users (deleted, or never there) still applies a removal at once, without a full reconcile")
    func groupNamingNonUsers() async throws {
        let (fixture, applier) = try await Self.synced()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let screening = clinic.groupDN("hc1-screening")
        let ghosts = (1...150).map { clinic.dn("left-long-ago\($0)") }
        try fixture.server.ldapmodify("dn: \(screening)\nchangetype: modify\nadd: member\n" + ghosts.map { "member: \($0)\n" }.joined())
        for index in 1...3 {
            let removed = clinic.teamMember(1, "screening", index)
            try fixture.server.ldapmodify("dn: \(screening)\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed))\n")
            let applied = try await applier.apply(try await fixture.groupEvent(at: screening), from: .groups, cookie: nil)
            #expect(applied.revocation && applied.fullReconcileReason == nil && applied.problems == [], "change \(index): \(applied)")
            #expect(try !fixture.members(ofGroup: screening).contains(UserCode(removed)))
        }
        let report = try await fixture.sync()
        #expect(report.counts.isEmpty, "\(report.counts)")
    }

    @Test("A group that lists a user before the user exists grants the membership when the stream sees the user appear, without a full reconcile")
    func groupListsAUserBeforeItExists() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        let reconcilesAtStart = run.reconcileCount
        let screening = clinic.groupDN("hc1-screening")
        let newcomer = "hc1-newcomer1"
        try fixture.server.ldapmodify("dn: \(screening)\nchangetype: modify\nadd: member\nmember: \(clinic.dn(newcomer))\n")
        // A later change on the groups' stream: once it is applied, so was the one before it.
        let removed = clinic.teamMember(1, "booking", 1)
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-booking"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed))\n")
        #expect(try await eventually(within: .seconds(5)) { try fixture.mirror.effectiveAccess(of: UserCode(removed)) == .noAccess(.noGroup) })
        #expect(try fixture.user(newcomer) == nil)

        try fixture.server.ldapmodify(Self.newcomerLDIF(clinic, newcomer))
        #expect(try await eventually(within: .seconds(5)) { try fixture.members(ofGroup: screening).contains(UserCode(newcomer)) },
                "\(run.messages)")
        #expect(run.reconcileCount == reconcilesAtStart, "\(run.messages)")
        await run.stop()
        let report = try await fixture.sync()
        #expect(report.counts.isEmpty, "\(report.counts)")
    }
}
