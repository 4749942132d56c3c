import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import SlapdHarness
import Sync
import Synchronization
import Testing

/// What a background change stream reported.
final class StreamRecorder: Sendable {
    private struct State {
        var log: [String] = []
        var ready = false
        var reconciles = 0
    }
    private let state = Mutex(State())

    func record(_ message: String) { state.withLock { $0.log.append(message) } }
    func markReady() { state.withLock { $0.ready = true } }
    func countReconcile() { state.withLock { $0.reconciles += 1 } }
    var isReady: Bool { state.withLock { $0.ready } }
    var reconcileCount: Int { state.withLock { $0.reconciles } }
    var messages: [String] { state.withLock { $0.log } }
}

/// Runs the change stream in the background and records what it reports.
final class StreamRun: Sendable {
    let task: Task<Void, any Error>
    let recorder = StreamRecorder()

    convenience init(_ fixture: ClinicFixture) {
        self.init(configuration: fixture.configuration, mirror: fixture.mirror)
    }

    /// With `hold`, each full reconcile waits while the hold is closed before it reads the
    /// directory (as one reading a large or slow directory would take its time).
    init(configuration: RosterConfiguration, mirror: Mirror, hold: ReconcileHold? = nil) {
        let stream = ChangeStream(configuration: configuration, mirror: mirror, backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(300)))
        let recorder = self.recorder
        task = Task {
            do {
            try await stream.run(status: { status in
                recorder.record("\(status)")
                if case .refreshComplete = status { recorder.markReady() }
            }, reconcile: { why in
                recorder.countReconcile()
                while hold?.isClosed == true { try? await Task.sleep(for: .milliseconds(10)) }
                do {
                    _ = try await Reconciler(configuration: configuration, mirror: mirror).run()
                    recorder.record("reconcile applied: \(why)")
                    return true
                } catch {
                    recorder.record("reconcile failed: \(error)")
                    return false
                }
            })
            } catch {
                recorder.record("the change stream ended: \(error)")
                throw error
            }
        }
    }

    var isReady: Bool { recorder.isReady }
    var reconcileCount: Int { recorder.reconcileCount }
    /// Full reconciles that ran to their apply (``reconcileCount`` counts those asked for).
    var appliedReconcileCount: Int { messages.filter { $0.hasPrefix("reconcile applied") }.count }
    var messages: [String] { recorder.messages }

    func stop() async {
        task.cancel()
        _ = await task.result
    }
}

/// Holds a test's full reconciles back while closed.
final class ReconcileHold: Sendable {
    private let closed = Mutex(false)
    var isClosed: Bool { closed.withLock { $0 } }
    func close() { closed.withLock { $0 = true } }
    func open() { closed.withLock { $0 = false } }
}

/// How long a test waits for a change stream or the daemon's service to report ready: its
/// full refresh ends with a reconcile and a wait for the mirror's checkpoint, which a machine
/// fully loaded by the suites starting in parallel can hold back for tens of seconds (a stream
/// once took over 20 s in CI). Waits end as soon as it is ready.
let readinessTimeout: Duration = .seconds(90)

/// Polls until `condition` holds, for at most `timeout`.
func eventually(within timeout: Duration = .seconds(2), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(5))
    }
    return try condition()
}

@Suite("Real-time revocation through the change stream against a real slapd", .serialized)
struct ChangeStreamTests {
    @Test("Revocations in each way reach the mirror and its events through the stream, without a reconcile; restarts resume from the cookie")
    func revocations() async throws {
        var fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        fixture.configuration.users.filter = "(&(objectClass=inetOrgPerson)(!(employeeType=former)))"
        let clinic = fixture.clinic
        var run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        #expect(run.reconcileCount == 1, "both streams refresh in full at a first start, and one reconcile completes both: \(run.messages)")
        #expect(try fixture.mirror.snapshot().users.count == clinic.userCount)
        for kind in ChangeStreamKind.followed(by: .openldap) {
            #expect(try fixture.mirror.syncState(for: kind.stateKey(fixture.configuration.directory.name))?.cookie != nil)
        }

        func expectRevoked(_ code: String, _ event: String, comment: Comment, change: String, _ check: @escaping (User) -> Bool) async throws {
            let lastEvent = try fixture.mirror.events(after: 0, limit: 1_000_000).last?.id ?? 0
            try fixture.server.ldapmodify(change)
            // The mirror's state and the event the application reads, through the stream (no
            // reconcile runs here after the first). How fast is SyncBenchmark's to measure: this
            // suite runs beside the others on two cores, where a first change once took over 1 s.
            let seen = try await eventually(within: .seconds(5)) {
                try (fixture.mirror.user(UserCode(code)).map(check) ?? false)
                    && fixture.mirror.events(after: lastEvent).contains { $0.type == event && $0.userCode?.lowercased() == code.lowercased() }
            }
            let events = try fixture.mirror.events(after: lastEvent)
            #expect(seen, "\(comment): \(events)")
        }

        // 1. ppolicy lock.
        let locked = clinic.assistant(1, 1, 1)
        try await expectRevoked(locked, "user.locked", comment: "locked by ppolicy",
                                change: "dn: \(clinic.dn(locked))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n") { $0.state.isLocked }
        #expect(try fixture.mirror.effectiveAccess(of: UserCode(locked)) == .noAccess(.locked))

        // 2. Entry deleted.
        let deleted = clinic.assistant(1, 1, 2)
        try await expectRevoked(deleted, "user.deactivated", comment: "entry deleted",
                                change: "dn: \(clinic.dn(deleted))\nchangetype: delete\n") { !$0.state.isActive }

        // 3. No longer matching the user filter.
        let unmatched = clinic.teamMember(2, "booking", 1)
        try await expectRevoked(unmatched, "user.deactivated", comment: "out of the user filter",
                                change: "dn: \(clinic.dn(unmatched))\nchangetype: modify\nadd: employeeType\nemployeeType: former\n") { !$0.state.isActive }

        // 4. Removed from a mapped group.
        let removed = clinic.teamMember(3, "booking", 2)
        #expect(try fixture.mirror.effectiveAccess(of: UserCode(removed)).grants.contains { $0.module == .careVenue })
        try await expectRevoked(removed, "membership.removed", comment: "removed from a mapped group",
                                change: "dn: \(clinic.groupDN("hc3-booking"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed))\n") { _ in true }
        #expect(try await eventually { try fixture.mirror.effectiveAccess(of: UserCode(removed)) == .noAccess(.noGroup) })

        // Stop Roster while changes continue; a restart applies exactly the missed ones.
        await run.stop()
        let missedLock = clinic.teamMember(1, "screening", 3)
        let missedTitle = clinic.provider(2, 2, 2)
        try fixture.server.ldapmodify("dn: \(clinic.dn(missedLock))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        try fixture.server.ldapmodify("dn: \(clinic.dn(missedTitle))\nchangetype: modify\nreplace: title\ntitle: Chief Surgeon\n")
        let auditBefore = try fixture.mirror.auditRowCount()
        run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        #expect(try await eventually { try fixture.mirror.user(UserCode(missedLock))?.state.isLocked == true })
        #expect(try await eventually { try fixture.mirror.user(UserCode(missedTitle))?.title == "Chief Surgeon" })
        #expect(run.reconcileCount == 0, "a valid cookie must not cause a full reload: \(run.messages)")
        let auditAdded = try fixture.mirror.auditRowCount() - auditBefore
        #expect(auditAdded == 2, "only the two missed changes are applied")

        // slapd killed and restarted under a running Roster: it reconnects and catches up,
        // and nobody still valid is revoked.
        let activeBefore = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive && !$0.state.isLocked }.count
        fixture.server.crash()
        try await Task.sleep(for: .milliseconds(300))
        try await fixture.server.restart()
        let afterRestart = clinic.teamMember(2, "registration", 4)
        try fixture.server.ldapmodify("dn: \(clinic.dn(afterRestart))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        #expect(try await eventually(within: .seconds(10)) { try fixture.mirror.user(UserCode(afterRestart))?.state.isLocked == true }, "\(run.messages)")
        let activeAfter = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive && !$0.state.isLocked }.count
        #expect(activeAfter == activeBefore - 1)
        #expect(run.messages.contains { $0.hasPrefix("disconnected") })
        await run.stop()
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }

    @Test("A directory without a change stream is polled: a lock arrives within the poll interval; nothing is revoked wrongly")
    func pollingFallback() async throws {
        var fixture = try await ClinicFixture.start(syncProvider: false)
        defer { fixture.server.shutdown() }
        fixture.configuration.schedule.pollIntervalSeconds = 0.5
        let clinic = fixture.clinic
        let run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        #expect(run.messages.contains { $0.contains("polling modifyTimestamp") }, "\(run.messages)")
        let activeBefore = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive && !$0.state.isLocked }.count
        #expect(activeBefore == clinic.userCount)
        let user = clinic.assistant(2, 2, 2)
        try fixture.server.ldapmodify("dn: \(clinic.dn(user))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        #expect(try await eventually(within: .seconds(5)) { try fixture.mirror.user(UserCode(user))?.state.isLocked == true })
        let removed = clinic.teamMember(1, "screening", 1)
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-screening"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed))\n")
        #expect(try await eventually(within: .seconds(5)) { try fixture.mirror.effectiveAccess(of: UserCode(removed)) == .noAccess(.noGroup) })
        let activeAfter = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive && !$0.state.isLocked }.count
        #expect(activeAfter == activeBefore - 1)
        await run.stop()
    }

    @Test("An emptied subtree arriving as deletes: the stream deactivates up to the safety limit, holds the rest, and the reconcile's breaker holds too")
    func streamBreaker() async throws {
        var fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        fixture.configuration.safety.maxDeactivations = 3
        let clinic = fixture.clinic
        let run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        let doomed = (1...4).flatMap { office in (1...2).map { clinic.assistant(1, office, $0) } }
        let ldif = doomed.map { "dn: \(clinic.dn($0))\nchangetype: delete\n" }.joined(separator: "\n")
        try fixture.server.ldapmodify(ldif)
        func inactive() throws -> [String] {
            try doomed.filter { try fixture.mirror.user(UserCode($0))?.state.isActive == false }
        }
        #expect(try await eventually(within: .seconds(5)) { run.messages.contains { $0.hasPrefix("breakerHolds") } }, "\(run.messages)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(try inactive() == Array(doomed.prefix(3)), "the first three deletes revoke at once; the rest are held")
        #expect(run.messages.filter { $0.contains("holds the deactivation") }.count == doomed.count - 3)
        await run.stop()

        // The held users stay active; the next reconcile sees them gone and its breaker refuses.
        await #expect(throws: ReconcileError.self) { _ = try await fixture.sync() }
        #expect(try inactive().count == 3)
        let forced = try await fixture.sync(force: true)
        #expect(forced.counts.usersDeactivated == doomed.count - 3)
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }

    @Test("slapd killed during the first refresh and restarted: Roster reconnects, completes the refresh, and revokes no one")
    func crashDuringRefresh() async throws {
        let fixture = try await ClinicFixture.start(ClinicDirectory.sized(3000, suffix: "dc=clinic,dc=test"))
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let run = StreamRun(fixture)
        #expect(try await eventually(within: .seconds(10)) { run.messages.contains { $0.hasPrefix("connected") } })
        try await Task.sleep(for: .milliseconds(30))
        fixture.server.crash()
        let readyWhenKilled = run.isReady
        try await Task.sleep(for: .milliseconds(500))
        try await fixture.server.restart()
        #expect(try await eventually(within: .seconds(60)) { run.isReady }, "\(run.messages)")
        #expect(!readyWhenKilled, "slapd was killed before the refresh completed")
        #expect(run.messages.contains { $0.hasPrefix("disconnected") } || run.messages.contains { $0.contains("reconcile failed") }, "\(run.messages)")
        let users = try fixture.mirror.snapshot().users.values
        #expect(users.count == clinic.userCount)
        #expect(users.filter { $0.state.isActive && !$0.state.isLocked }.count == clinic.userCount)
        await run.stop()
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }

    @Test("A full reconcile that read the directory before the stream applied a change does not write the old value back")
    func reconcileDuringStream() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let mirror = fixture.mirror
        _ = try await fixture.sync()
        let retitled = UserCode(clinic.teamMember(1, "booking", 1))
        let locked = UserCode(clinic.assistant(2, 1, 1))
        let removed = UserCode(clinic.teamMember(3, "booking", 2))
        let booking = try #require(try mirror.snapshot().groups.values.first { $0.directoryDN.map(DN.normalize) == DN.normalize(clinic.groupDN("hc3-booking")) })
        #expect(try mirror.effectiveAccess(of: removed).grants.isEmpty == false)
        @Sendable func changesKept() throws -> Bool {
            try mirror.user(retitled)?.title == "Head of booking" && mirror.user(locked)?.state.isLocked == true
                && mirror.effectiveAccess(of: removed) == .noAccess(.noGroup)
        }
        // Once the reconcile has read every group and user, the directory changes and the change
        // stream applies those changes (the same mirror calls the stream makes, made here so the
        // order is certain) before the reconcile applies what it read.
        let changed = Mutex(false)
        let progress: @Sendable (Int) -> Void = { _ in
            guard !changed.withLock({ done in defer { done = true }; return done }) else { return }
            do {
                try fixture.server.ldapmodify([
                    "dn: \(clinic.dn(retitled.rawValue))\nchangetype: modify\nreplace: title\ntitle: Head of booking\n",
                    "dn: \(clinic.dn(locked.rawValue))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
                    "dn: \(clinic.groupDN("hc3-booking"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed.rawValue))\n",
                ].joined(separator: "\n"))
                var user = try #require(try mirror.user(retitled))
                user.title = "Head of booking"
                try mirror.apply(Changeset(users: [user]), actor: .directory(clinic.dn(retitled.rawValue)))
                try mirror.setDirectoryState(of: locked, locked: true, inactive: false, reason: "pwdAccountLockedTime", actor: .directory(clinic.dn(locked.rawValue)))
                try mirror.removeMembership(removed, from: booking.id, actor: .directory(clinic.groupDN("hc3-booking")))
                #expect(try changesKept())
            } catch {
                Issue.record("changing the directory and the mirror failed: \(error)")
            }
        }
        let report = try await Reconciler(configuration: fixture.configuration, mirror: mirror).run(ReconcileOptions(full: true, progress: progress))
        #expect(changed.withLock { $0 })
        #expect(try changesKept(), "the reconcile wrote back what it read: \(report.changes)")
        // The next reconcile reads the same state from the directory.
        let next = try await fixture.sync()
        #expect(try changesKept(), "\(next.changes)")
        #expect(try mirror.verifyAuditLog() == nil)
    }

    @Test("Leaving an All Access role's group or the super administrators' group revokes within 2 s, before the full reconcile it asks for; one still in another super administrators' group stays one")
    func privilegedGroupRemovals() async throws {
        let clinic = ClinicDirectory(suffix: "dc=clinic,dc=test")
        let extra = """
            dn: \(clinic.groupDN("roster-superadmins-2"))
            objectClass: groupOfNames
            cn: roster-superadmins-2
            member: \(clinic.dn("it-admin2"))

            """
        var fixture = try await ClinicFixture.start(clinic, extraLDIF: extra)
        defer { fixture.server.shutdown() }
        fixture.configuration.users.superAdministratorGroups.append(clinic.groupDN("roster-superadmins-2"))
        fixture.configuration.roles.append(.init(name: "All Access", modules: [:], directoryGroup: clinic.groupDN("hc2-screening"), isAllAccess: true))
        _ = try await fixture.sync()
        let screener = UserCode(clinic.teamMember(2, "screening", 1))
        let otherScreener = UserCode(clinic.teamMember(2, "screening", 2))
        func isSuper(_ user: UserCode) throws -> Bool { try fixture.mirror.userDocument(user)?.superAdministrator == true }
        #expect(try isSuper(screener) && isSuper("it-admin1") && isSuper("it-admin2"))

        let hold = ReconcileHold()
        let run = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror, hold: hold)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        let reconcilesAtStart = run.reconcileCount
        let appliedAtStart = run.appliedReconcileCount
        hold.close()
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc2-screening"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(screener.rawValue))\n")
        #expect(try await eventually(within: .seconds(2)) { try !isSuper(screener) }, "\(run.messages)")
        #expect(try fixture.mirror.effectiveAccess(of: screener).level(for: GrantKey(.security, "HC3")) == nil)
        #expect(try isSuper(otherScreener))
        try fixture.server.ldapmodify("""
            dn: \(clinic.groupDN("roster-superadmins"))
            changetype: modify
            add: member
            member: cn=nobody
            -
            delete: member
            member: \(clinic.dn("it-admin1"))
            member: \(clinic.dn("it-admin2"))

            """)
        #expect(try await eventually(within: .seconds(2)) { try !isSuper("it-admin1") }, "\(run.messages)")
        #expect(try isSuper("it-admin2"), "still in roster-superadmins-2")
        #expect(run.reconcileCount > reconcilesAtStart && run.appliedReconcileCount == appliedAtStart, "the reconcile asked for has not applied: \(run.messages)")
        let audited = try fixture.mirror.auditTail(limit: 20)
        #expect(audited.contains { $0.action == "role.unassigned" && $0.entityKey == "All Access/\(screener.rawValue)" })

        // The reconcile, once it runs, agrees.
        hold.open()
        #expect(try await eventually(within: .seconds(10)) { run.appliedReconcileCount > appliedAtStart }, "\(run.messages)")
        await run.stop()
        #expect(try !isSuper(screener) && !isSuper("it-admin1") && isSuper("it-admin2") && isSuper(otherScreener))
        #expect(try await fixture.sync().counts.isEmpty)
    }

    @Test("With groups.nested, a super administrator through a nested group stays one when their entry changes, and a new one through it is one from the start")
    func nestedSuperAdministrators() async throws {
        let clinic = ClinicDirectory(suffix: "dc=clinic,dc=test")
        let nestedAdmin = clinic.teamMember(3, "registration", 1)
        let extra = """
            dn: \(clinic.groupDN("it-oncall"))
            objectClass: groupOfNames
            cn: it-oncall
            member: \(clinic.dn(nestedAdmin))

            """
        var fixture = try await ClinicFixture.start(clinic, extraLDIF: extra)
        defer { fixture.server.shutdown() }
        fixture.configuration.groups.nested = true
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("roster-superadmins"))\nchangetype: modify\nadd: member\nmember: \(clinic.groupDN("it-oncall"))\n")
        _ = try await fixture.sync()
        #expect(try fixture.user(nestedAdmin)?.isSuperAdministrator == true, "the reconcile expands nesting")

        let run = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        try fixture.server.ldapmodify("dn: \(clinic.dn(nestedAdmin))\nchangetype: modify\nreplace: title\ntitle: On call\n")
        #expect(try await eventually(within: .seconds(2)) { try fixture.user(nestedAdmin)?.title == "On call" }, "\(run.messages)")
        #expect(try fixture.user(nestedAdmin)?.isSuperAdministrator == true, "an unrelated change took the rights a nested group gives")
        // A user created straight into the nested group.
        let newcomer = "it-oncall2"
        try fixture.server.ldapmodify("""
            dn: \(clinic.dn(newcomer))
            changetype: add
            objectClass: inetOrgPerson
            uid: \(newcomer)
            cn: Oncall Two
            sn: Two
            givenName: Oncall
            departmentNumber: HC1

            dn: \(clinic.groupDN("it-oncall"))
            changetype: modify
            add: member
            member: \(clinic.dn(newcomer))

            """)
        #expect(try await eventually(within: .seconds(5)) { try fixture.user(newcomer)?.isSuperAdministrator == true }, "\(run.messages)")
        await run.stop()
        #expect(try await fixture.sync().counts.isEmpty)
    }

    @Test("With groups.nested, the stream keeps a mapped group's members through a group nested in it, and a removal from the nested group revokes within 2 s")
    func nestedGroupsThroughTheStream() async throws {
        let clinic = ClinicDirectory(suffix: "dc=clinic,dc=test")
        let viaNested = clinic.teamMember(1, "screening", 1)
        let laterViaNested = clinic.teamMember(1, "screening", 2)
        // hc1-booking holds hc1-booking-temps (two levels: temps holds the float pool), whose members hold its access too.
        let extra = """
            dn: \(clinic.groupDN("hc1-booking-float"))
            objectClass: groupOfNames
            cn: hc1-booking-float
            member: \(clinic.dn(viaNested))

            dn: \(clinic.groupDN("hc1-booking-temps"))
            objectClass: groupOfNames
            cn: hc1-booking-temps
            member: \(clinic.groupDN("hc1-booking-float"))

            """
        var fixture = try await ClinicFixture.start(clinic, extraLDIF: extra)
        defer { fixture.server.shutdown() }
        fixture.configuration.groups.nested = true
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-booking"))\nchangetype: modify\nadd: member\nmember: \(clinic.groupDN("hc1-booking-temps"))\n")
        _ = try await fixture.sync()
        let booking = try #require(try fixture.mirror.snapshot().groups.values.first { $0.directoryDN.map(DN.normalize) == DN.normalize(clinic.groupDN("hc1-booking")) }).id
        func isMember(_ user: String) throws -> Bool { try fixture.mirror.snapshot().groupMembers[booking]?.contains(UserCode(user)) == true }
        #expect(try isMember(viaNested), "the reconcile expands nesting")

        let run = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        // A direct member leaves the mapped group: the one there through nesting stays.
        let direct = clinic.teamMember(1, "booking", 1)
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-booking"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(direct))\n")
        #expect(try await eventually(within: .seconds(2)) { try !isMember(direct) }, "\(run.messages)")
        #expect(try isMember(viaNested), "a member through a nested group was dropped by a change to the mapped group")
        // Added to the innermost group: a member of the mapped group too.
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-booking-float"))\nchangetype: modify\nadd: member\nmember: \(clinic.dn(laterViaNested))\n")
        #expect(try await eventually(within: .seconds(2)) { try isMember(laterViaNested) }, "\(run.messages)")
        // Removed from it: revoked from the mapped group in real time.
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-booking-float"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(viaNested))\n")
        #expect(try await eventually(within: .seconds(2)) { try !isMember(viaNested) }, "\(run.messages)")
        #expect(try isMember(laterViaNested))
        // The nested group taken out of the mapped group: its members go with it.
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-booking"))\nchangetype: modify\ndelete: member\nmember: \(clinic.groupDN("hc1-booking-temps"))\n")
        #expect(try await eventually(within: .seconds(2)) { try !isMember(laterViaNested) }, "\(run.messages)")
        await run.stop()
        // What the stream left is what a full reconcile makes.
        let followed = try fixture.mirror.snapshot().groupMembers[booking]
        #expect(try await fixture.sync().counts.isEmpty)
        #expect(try fixture.mirror.snapshot().groupMembers[booking] == followed)
    }

    @Test("A change to a group no mapping or pattern rule can use asks for no full reconcile; a new group a pattern rule maps does")
    func unmappedGroups() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        let reconcilesAtStart = run.reconcileCount
        let member = clinic.assistant(1, 1, 1)
        let other = clinic.assistant(1, 1, 2)
        try fixture.server.ldapmodify("""
            dn: \(clinic.groupDN("staff-newsletter"))
            changetype: add
            objectClass: groupOfNames
            cn: staff-newsletter
            member: \(clinic.dn(member))

            dn: \(clinic.groupDN("staff-newsletter"))
            changetype: modify
            add: member
            member: \(clinic.dn(other))

            """)
        // A later change on the same (groups) stream: once it is applied, so were those before it.
        let removed = clinic.teamMember(2, "booking", 1)
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc2-booking"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed))\n")
        #expect(try await eventually(within: .seconds(5)) { try fixture.mirror.effectiveAccess(of: UserCode(removed)) == .noAccess(.noGroup) })
        #expect(run.reconcileCount == reconcilesAtStart, "\(run.messages)")

        try fixture.server.ldapmodify("""
            dn: \(clinic.groupDN("hc1-office77-moa"))
            changetype: add
            objectClass: groupOfNames
            cn: hc1-office77-moa
            member: \(clinic.dn(member))

            """)
        #expect(try await eventually(within: .seconds(10)) { run.reconcileCount == reconcilesAtStart + 1 }, "\(run.messages)")
        await run.stop()
    }

    @Test("A full reconcile a change asks for runs beside the stream: a lock arrives in milliseconds while the reconcile is still reading")
    func locksDuringARequestedReconcile() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let hold = ReconcileHold()
        let run = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror, hold: hold)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        let reconcilesAtStart = run.reconcileCount
        hold.close()
        // A new provider: the stream asks for a full reconcile (their own group, auto-add groups).
        let provider = "hc1-o1-dr9"
        try fixture.server.ldapmodify(clinic.addProviderLDIF(provider, center: 1, given: "Doc", surname: "Nine"))
        #expect(try await eventually(within: .seconds(5)) { run.reconcileCount == reconcilesAtStart + 1 }, "\(run.messages)")
        let locked = clinic.assistant(1, 2, 1)
        try fixture.server.ldapmodify("dn: \(clinic.dn(locked))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        #expect(try await eventually(within: .seconds(2)) { try fixture.mirror.user(UserCode(locked))?.state.isLocked == true },
                "the lock waited for the reconcile: \(run.messages)")
        #expect(try fixture.mirror.snapshot().providers[ProviderID(provider)] == nil, "the reconcile has not run yet")

        hold.open()
        #expect(try await eventually(within: .seconds(10)) { try fixture.mirror.snapshot().providers[ProviderID(provider)] != nil })
        #expect(try fixture.mirror.user(UserCode(locked))?.state.isLocked == true, "the reconcile kept the lock the stream applied")
        // After the reconcile the stream reloads its identities and goes on.
        let next = clinic.assistant(1, 2, 2)
        try fixture.server.ldapmodify("dn: \(clinic.dn(next))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        #expect(try await eventually(within: .seconds(2)) { try fixture.mirror.user(UserCode(next))?.state.isLocked == true })
        await run.stop()
    }

    @Test("A change to the providers group a pattern rule reads (members_of with captures) reaches the groups it maps")
    func patternRuleProviderSource() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        let assistant = clinic.assistant(1, 1, 1)
        let leaving = ProviderID(clinic.provider(1, 1, 2))
        func grantsFor(_ provider: ProviderID) throws -> [Grant] {
            try fixture.mirror.effectiveAccess(of: UserCode(assistant)).grants.filter { $0.provider == provider }
        }
        #expect(try !grantsFor(leaving).isEmpty, "office 1's assistants start with access to its provider 2")
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-office1-providers"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(leaving.rawValue))\n")
        #expect(try await eventually(within: .seconds(10)) { try grantsFor(leaving).isEmpty }, "\(run.messages)")
        await run.stop()
        let report = try await fixture.sync()
        #expect(report.counts.isEmpty, "\(report.counts)")
    }

    @Test("Resuming after slapd restarted (its session log lost, so the refresh ends with a present phase): deletions and group changes arrive without a full reconcile, and no one present is revoked")
    func presentPhaseAfterRestart() async throws {
        // No session log at all: every resumed refresh ends with a present phase.
        let fixture = try await ClinicFixture.start(sessionLog: false)
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        var run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        await run.stop()
        // The directory restarts (syncprov's session log is in memory only) and changes while
        // Roster is away.
        try await fixture.server.restart()
        let deleted = clinic.assistant(3, 2, 1)
        let removed = clinic.teamMember(1, "screening", 2)
        let retitled = clinic.teamMember(2, "booking", 3)
        // The emergency account goes too: a present phase is a bulk change, which never changes it.
        let breakGlass = ClinicDirectory.breakGlass
        try fixture.server.ldapmodify([
            "dn: \(clinic.dn(deleted))\nchangetype: delete\n",
            "dn: \(clinic.dn(breakGlass))\nchangetype: delete\n",
            "dn: \(clinic.groupDN("hc1-screening"))\nchangetype: modify\ndelete: member\nmember: \(clinic.dn(removed))\n",
            "dn: \(clinic.dn(retitled))\nchangetype: modify\nreplace: title\ntitle: Booking lead\n",
        ].joined(separator: "\n"))
        let activeBefore = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive && !$0.state.isLocked }.count
        run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        #expect(try await eventually(within: .seconds(5)) { try fixture.mirror.user(UserCode(deleted))?.state.isActive == false })
        #expect(try await eventually { try fixture.mirror.effectiveAccess(of: UserCode(removed)) == .noAccess(.noGroup) })
        #expect(try await eventually { try fixture.mirror.user(UserCode(retitled))?.title == "Booking lead" })
        #expect(run.reconcileCount == 0, "the present phase is handled by the stream: \(run.messages)")
        let activeAfter = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive && !$0.state.isLocked }.count
        #expect(activeAfter == activeBefore - 1, "only the deleted user is revoked")
        #expect(try fixture.mirror.user(UserCode(breakGlass))?.state.isActive == true)
        #expect(run.messages.contains { $0.contains("break-glass account \(breakGlass) is never changed") }, "\(run.messages)")
        // And the mirror is what a full reconcile would make it.
        #expect(try await fixture.sync().changes.isEmpty)
        await run.stop()
    }

    @Test("A first refresh whose full reconcile does not apply is not ready and keeps no cookie; the reconcile is retried")
    func failedFirstReconcile() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let configuration = fixture.configuration
        let mirror = fixture.mirror
        let recorder = StreamRecorder()
        // The first two reconciles fail, as when the directory drops right after the refresh.
        let stream = ChangeStream(configuration: configuration, mirror: mirror, backoff: Backoff(initial: .milliseconds(200), maximum: .milliseconds(400)))
        let task = Task {
            try await stream.run(status: { status in
                recorder.record("\(status)")
                if case .refreshComplete = status { recorder.markReady() }
            }, reconcile: { _ in
                recorder.countReconcile()
                if recorder.reconcileCount <= 2 { return false }
                return (try? await Reconciler(configuration: configuration, mirror: mirror).run()) != nil
            })
        }
        #expect(try await eventually(within: .seconds(10)) { recorder.reconcileCount >= 1 })
        #expect(!recorder.isReady)
        for kind in ChangeStreamKind.followed(by: .openldap) {
            #expect(try mirror.syncState(for: kind.stateKey(configuration.directory.name))?.cookie == nil)
        }
        #expect(try await eventually(within: readinessTimeout) { recorder.isReady }, "\(recorder.messages)")
        #expect(recorder.messages.contains { $0.contains("did not apply; retrying") })
        #expect(try mirror.snapshot().users.count == fixture.clinic.userCount)
        for kind in ChangeStreamKind.followed(by: .openldap) {
            #expect(try mirror.syncState(for: kind.stateKey(configuration.directory.name))?.cookie != nil)
        }
        task.cancel()
        _ = await task.result
    }
}
