import AccessModel
import Foundation
import GRDB
import LDAPKit
import Mirror
import RosterConfig
import SlapdHarness
import Sync
import Testing

/// Two mirrors of one directory: one reconciled from change markers, the other by full reads.
/// After each round of directory changes both reconcile at the same moment, and their plans
/// and resulting models must be identical.
private struct TwinMirrors {
    let fixture: ClinicFixture
    let full: Mirror

    static func start() async throws -> TwinMirrors {
        let fixture = try await ClinicFixture.start()
        let path = fixture.server.directory.appendingPathComponent("full/roster.sqlite").path
        return TwinMirrors(fixture: fixture, full: try Mirror(path: path))
    }

    /// Reconciles both; expects the marker-based one to have read as `expected` and both plans equal.
    @discardableResult
    func reconcile(_ label: String, now: Date, configuration: RosterConfiguration? = nil,
                   expected: (ReconcileSource) -> Bool) async throws -> ReconcileReport {
        let configuration = configuration ?? fixture.configuration
        let byMarkers = try await Reconciler(configuration: configuration, mirror: fixture.mirror).run(now: now)
        let byFullRead = try await Reconciler(configuration: configuration, mirror: full).run(ReconcileOptions(full: true), now: now)
        #expect(expected(byMarkers.source), "\(label): read as \(byMarkers.source)")
        #expect(byMarkers.counts == byFullRead.counts, "\(label)")
        #expect(byMarkers.changes == byFullRead.changes, "\(label)")
        #expect(Set(byMarkers.problems) == Set(byFullRead.problems), "\(label)")
        #expect(byMarkers.nextChanges == byFullRead.nextChanges, "\(label)")
        #expect(try fixture.mirror.snapshot() == full.snapshot(), "\(label): the two mirrors differ")
        return byMarkers
    }
}

private func isChangedEntries(_ source: ReconcileSource) -> Bool {
    if case .changedEntries = source { return true }
    return false
}

private func isFull(_ source: ReconcileSource) -> Bool {
    if case .full = source { return true }
    return false
}

@Suite("Change-detecting reconcile: markers, against a full read of the same directory", .serialized)
struct ChangeMarkerTests {
    @Test("After every kind of directory change the marker-based reconcile plans exactly what a full read plans")
    func sameAsFullRead() async throws {
        let twins = try await TwinMirrors.start()
        defer { twins.fixture.server.shutdown() }
        let clinic = twins.fixture.clinic
        let server = twins.fixture.server
        var now = Date()

        // First sync: nothing stored, so a full read.
        let first = try await twins.reconcile("first sync", now: now, expected: isFull)
        #expect(first.counts.usersAdded == clinic.userCount)
        // Nothing changed: markers only, and nothing to do.
        let unchanged = try await twins.reconcile("nothing changed", now: now) { $0 == .unchanged }
        #expect(unchanged.counts.isEmpty && unchanged.usersRead == clinic.userCount)

        // Attribute changes, a lock, a group member added and one removed, a delete, a move out
        // of scope, a new user and a new provider.
        let writer = try await twins.fixture.writer()
        defer { Task { await writer.close() } }
        let retitled = clinic.assistant(1, 1, 1)
        let locked = clinic.assistant(1, 2, 1)
        let deleted = clinic.assistant(2, 1, 2)
        let moved = clinic.teamMember(2, "booking", 1)
        let joiner = clinic.teamMember(3, "screening", 1)
        let leaver = clinic.teamMember(3, "reporting", 2)
        try await writer.modify(clinic.dn(retitled), [.replace("title", ["Head MOA"]), .replace("mail", ["head@clinic.example"])])
        try await writer.modify(clinic.dn(locked), [.replace("pwdAccountLockedTime", [DirectoryTime.permanentLockValue])])
        try await writer.modify(clinic.groupDN("hc1-booking"), [.add("member", [clinic.dn(joiner)])])
        try await writer.modify(clinic.groupDN("hc3-reporting"), [.delete("member", [clinic.dn(leaver)])])
        try await writer.delete(clinic.dn(deleted))
        try server.ldapmodify("dn: \(clinic.dn(moved))\nchangetype: modrdn\nnewrdn: uid=\(moved)\ndeleteoldrdn: 1\nnewsuperior: ou=policies,\(clinic.suffix)\n")
        try server.ldapmodify("""
            dn: uid=hc1-newstaff,ou=people,\(clinic.suffix)
            changetype: add
            objectClass: inetOrgPerson
            uid: hc1-newstaff
            cn: Nora New
            givenName: Nora
            sn: New
            departmentNumber: HC1

            \(clinic.addProviderLDIF("hc2-newsurgeon", center: 2))
            """)
        now += 60
        let changed = try await twins.reconcile("changes of every kind", now: now, expected: isChangedEntries)
        #expect(changed.counts.usersAdded == 2 && changed.counts.usersLocked == 1 && changed.counts.usersDeactivated == 2)
        #expect(changed.counts.membershipsAdded >= 1 && changed.counts.membershipsRemoved >= 1)
        #expect(changed.newProviders == [ProviderID("hc2-newsurgeon")])
        #expect(try twins.fixture.user(retitled)?.title == "Head MOA")
        #expect(try await twins.fixture.reconcileNothingChanged(now: now))

        // Unlock, a renamed login, a new super administrator, a provider who stops being one,
        // and a group moved out of the groups' base.
        let renamed = clinic.teamMember(1, "screening", 4)
        let promoted = clinic.teamMember(2, "registration", 1)
        let demoted = clinic.provider(3, 2, 1)
        try await writer.modify(clinic.dn(locked), [.delete("pwdAccountLockedTime")])
        try server.ldapmodify("dn: \(clinic.dn(renamed))\nchangetype: modrdn\nnewrdn: uid=\(renamed)-new\ndeleteoldrdn: 1\n")
        try await writer.modify(clinic.groupDN("roster-superadmins"), [.add("member", [clinic.dn(promoted)])])
        try await writer.modify(clinic.dn(demoted), [.delete("employeeType")])
        try server.ldapmodify("dn: \(clinic.groupDN("hc2-screening"))\nchangetype: modrdn\nnewrdn: cn=hc2-screening\ndeleteoldrdn: 1\nnewsuperior: ou=policies,\(clinic.suffix)\n")
        now += 60
        let second = try await twins.reconcile("unlock, rename, promotion, demotion, group out of scope", now: now, expected: isChangedEntries)
        #expect(second.counts.usersUnlocked == 1)
        #expect(try twins.fixture.user(promoted)?.isSuperAdministrator == true)

        // An expiry reached without any directory event: the stored next change makes the
        // marker-based reconcile read that entry again.
        let expiring = clinic.teamMember(1, "registration", 2)
        let tomorrow = Int(now.timeIntervalSince1970 / 86_400) + 2
        try server.ldapmodify("dn: \(clinic.dn(expiring))\nchangetype: modify\nadd: objectClass\nobjectClass: shadowAccount\n-\nadd: shadowExpire\nshadowExpire: \(tomorrow)\n")
        now += 60
        try await twins.reconcile("a future expiry", now: now, expected: isChangedEntries)
        #expect(try twins.fixture.user(expiring)?.state.isActive == true)
        now += 3 * 86_400
        let expired = try await twins.reconcile("the expiry passed", now: now, expected: isChangedEntries)
        #expect(expired.counts.usersDeactivated == 1)
        #expect(try twins.fixture.user(expiring)?.state.isActive == false)

        // The mirror changed by someone else (an admin, the stream) with no marker moving: no
        // shortcut, and the directory's memberships come back as a full read would bring them.
        let staff = clinic.teamMember(1, "booking", 3)
        for mirror in [twins.fixture.mirror, twins.full] {
            _ = try mirror.removeMembership(UserCode(staff), from: GroupID("HC1/HC1 OR Booking"), actor: .local("test"))
        }
        let restored = try await twins.reconcile("a membership removed in the mirror", now: now, expected: isChangedEntries)
        #expect(restored.counts.membershipsAdded == 1)

        // A configuration change: the stored entries were mapped under another one; a full read.
        var configuration = twins.fixture.configuration
        configuration.safety.maxDeactivations += 1
        try await twins.reconcile("configuration changed", now: now, configuration: configuration, expected: isFull)
        try await twins.reconcile("nothing changed under the new configuration", now: now, configuration: configuration) { $0 == .unchanged }
    }

    @Test("A modify the mirror never saw is caught: the stored marker is the one read with the applied content")
    func missedModifyIsCaught() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        _ = try await fixture.sync()
        // A dry run and a refused plan store no markers: the changes they saw are still found later.
        let writer = try await fixture.writer()
        defer { Task { await writer.close() } }
        let user = clinic.assistant(1, 3, 1)
        try await writer.modify(clinic.dn(user), [.replace("title", ["Night nurse"])])
        let dry = try await fixture.sync(dryRun: true)
        #expect(dry.counts.usersUpdated == 1)
        let report = try await fixture.sync()
        #expect(report.counts.usersUpdated == 1, "\(report.source)")
        #expect(try fixture.user(user)?.title == "Night nurse")
        // The stream-like write of a stale title into the mirror (the soak's finding) is undone.
        var stale = try #require(try fixture.user(user))
        stale.title = "Moa"
        _ = try fixture.mirror.apply(Changeset(users: [stale]), actor: .directory("stream"))
        let again = try await fixture.sync()
        #expect(again.counts.usersUpdated == 1)
        #expect(try fixture.user(user)?.title == "Night nurse")
        #expect(try await fixture.reconcileNothingChanged(now: Date()))
    }
}

extension ChangeMarkerTests {
    @Test("A store of entries that cannot be opened costs full reads, said in the report, and never an apply")
    func unreadableEntriesCostFullReads() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        // Something that is not a database where the entries belong (a folder: even root cannot open it).
        let entries = (fixture.mirror.path as NSString).deletingPathExtension + "-entries.sqlite"
        try FileManager.default.createDirectory(atPath: entries, withIntermediateDirectories: true)
        let first = try await fixture.sync()
        #expect(first.counts.usersAdded > 0)
        #expect(first.entriesNotStored?.contains(entries) == true, "\(first.entriesNotStored ?? "nil")")
        let user = fixture.clinic.assistant(1, 3, 1)
        let writer = try await fixture.writer()
        try await writer.modify(fixture.clinic.dn(user), [.replace("title", ["Night nurse"])])
        await writer.close()
        let second = try await fixture.sync()
        guard case .full(let reason) = second.source else { Issue.record("read as \(second.source)"); return }
        #expect(reason.contains("could not be read"), "\(reason)")
        #expect(second.counts.usersUpdated == 1)
        #expect(try fixture.user(user)?.title == "Night nurse")

        // Once the folder is gone, the entries are stored and the next reconcile reads only what changed.
        try FileManager.default.removeItem(atPath: entries)
        let third = try await fixture.sync()
        #expect(third.entriesNotStored == nil)
        #expect(try await fixture.reconcileNothingChanged(now: Date()))
    }
}

extension ChangeMarkerTests {
    @Test("A stored copy that cannot be decoded costs a full read naming its entry; one that is gone is read again as changed")
    func damagedStoredCopy() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        _ = try await fixture.sync()
        let store = try DatabaseQueue(path: (fixture.mirror.path as NSString).deletingPathExtension + "-entries.sqlite")
        let retitled = clinic.assistant(1, 3, 1)
        /// Something changes (so the stored copies are used) and one stored copy is damaged.
        func change(_ round: Int, damaging user: String, with damage: String) async throws {
            let writer = try await fixture.writer()
            try await writer.modify(clinic.dn(retitled), [.replace("title", ["Night nurse \(round)"])])
            await writer.close()
            let changed = try await store.write { db in
                try db.execute(sql: damage, arguments: [DN.normalize(clinic.dn(user))])
                return db.changesCount
            }
            #expect(changed == 1, "round \(round)")
        }

        let undecodable = clinic.teamMember(2, "booking", 1)
        try await change(1, damaging: undecodable, with: "UPDATE directory_entry SET content = X'FF' WHERE kind = 'user' AND dn = ?")
        let first = try await fixture.sync()
        if case .full(let reason) = first.source {
            #expect(reason.contains("the stored copy of \(clinic.dn(undecodable)) is unreadable"), "\(reason)")
        } else {
            Issue.record("read as \(first.source)")
        }
        #expect(first.counts.usersUpdated == 1, "\(first.counts)")
        #expect(try fixture.user(retitled)?.title == "Night nurse 1")
        #expect(try fixture.user(undecodable)?.state.isActive == true)

        let gone = clinic.provider(1, 1, 1)
        try await change(2, damaging: gone, with: "DELETE FROM directory_entry WHERE kind = 'user' AND dn = ?")
        let second = try await fixture.sync()
        #expect(second.source == .changedEntries(users: 2, groups: 0), "\(second.source)")
        #expect(second.counts.usersUpdated == 1, "\(second.counts)")
        #expect(try fixture.user(retitled)?.title == "Night nurse 2")
        #expect(try fixture.user(gone)?.state.isActive == true)
        // Every copy is stored again: the next reconcile finds nothing changed.
        #expect(try await fixture.reconcileNothingChanged(now: Date()))
    }
}

extension ClinicFixture {
    /// Whether a marker-based reconcile now finds nothing changed (and plans nothing).
    func reconcileNothingChanged(now: Date) async throws -> Bool {
        let report = try await Reconciler(configuration: configuration, mirror: mirror).run(now: now)
        return report.source == .unchanged && report.counts.isEmpty
    }
}
