import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import RosterService
import SlapdHarness
import Sync
import Testing

/// A 389 Directory Server with the clinic directory, a fresh mirror and the clinic's
/// configuration with `flavor: 389ds`.
struct DS389Fixture {
    let server: DS389Server
    let clinic: ClinicDirectory
    let configuration: RosterConfiguration
    let mirror: Mirror

    /// Users in the password lockout tests get this password.
    static let password = "Clinic-Password-1"

    /// Without `contentSync`, Roster polls `modifyTimestamp` every half second.
    /// With `kerberos`, FreeIPA's principal schema is installed.
    static func start(contentSync: Bool = true, kerberos: Bool = false) async throws -> DS389Fixture {
        let clinic = ClinicDirectory(suffix: "dc=ds,dc=example")
        let server = try await DS389Server.start(suffix: clinic.suffix, ldif: clinic.ldif(), contentSync: contentSync,
                                                 schemas: kerberos ? ["60kerberos.ldif"] : [])
        let mirrorPath = server.directory.appendingPathComponent("mirror/roster.sqlite").path
        let yaml = clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: mirrorPath)
            // Pages of 40: the clinic's 150 users and 50 groups take several (389-ds's paging).
            .replacingOccurrences(of: "flavor: openldap", with: "flavor: 389ds\n  page_size: 40")
            // A small clinic: one deletion is more than the default 5 % the stream lets through.
            .replacingOccurrences(of: "max_deactivation_percent: 5", with: "max_deactivation_percent: 50")
            .replacingOccurrences(of: "schedule: {reconcile_interval_minutes: 15}", with: "schedule: {reconcile_interval_minutes: 15, poll_interval_seconds: 0.5}")
        let configuration = try ConfigurationLoader.load(yaml: yaml, file: "389ds.yaml")
        #expect(configuration.directory.flavor == .ds389 && configuration.directory.pageSize == 40)
        return DS389Fixture(server: server, clinic: clinic, configuration: configuration, mirror: try Mirror(path: mirrorPath))
    }

    func sync() async throws -> ReconcileReport { try await Reconciler(configuration: configuration, mirror: mirror).run() }
    func user(_ code: String) throws -> User? { try mirror.user(UserCode(code)) }
    func isActive(_ code: String) throws -> Bool { try user(code)?.state.isActive == true }
    func isLocked(_ code: String) throws -> Bool { try user(code)?.state.isLocked == true }

    /// The entry's `nsUniqueId`, as 389-ds prints it.
    func uniqueID(_ uid: String) async throws -> String {
        let output = try await server.tool(Tools.ldapsearch, ["-x", "-LLL", "-H", server.url, "-D", server.adminDN, "-y", server.adminPasswordFile,
                                                      "-b", clinic.dn(uid), "-s", "base", "nsUniqueId"])
        return output.split(separator: "\n").first { $0.lowercased().hasPrefix("nsuniqueid: ") }.map { String($0.dropFirst(12)) } ?? ""
    }

    /// Account lockout after two failed binds, for `seconds` (389-ds's global password policy).
    func lockOutAfterTwoFailures(for seconds: Int) async throws {
        try await server.ldapmodify("""
        dn: cn=config
        changetype: modify
        replace: passwordLockout
        passwordLockout: on
        -
        replace: passwordMaxFailure
        passwordMaxFailure: 2
        -
        replace: passwordLockoutDuration
        passwordLockoutDuration: \(seconds)
        -
        replace: passwordUnlock
        passwordUnlock: on

        """)
    }

    func setPassword(_ uid: String) async throws {
        try await server.ldapmodify("dn: \(clinic.dn(uid))\nchangetype: modify\nreplace: userPassword\nuserPassword: \(Self.password)\n")
    }

    func failBind(_ uid: String) async {
        _ = try? await server.tool("/usr/bin/ldapwhoami", ["-x", "-H", server.url, "-D", clinic.dn(uid), "-w", "not-the-password"])
    }

    /// Locks `uid` the way 389-ds admins lock a whole set of accounts: a managed role the
    /// user holds, locked with `dsidm role lock`, which gives its holders a virtual
    /// `nsAccountLock` (and changes nothing in their entries).
    func lockThroughRole(_ uid: String) async throws {
        try await giveRole(uid)
        try await setRoleLock(true)
    }

    var role: String { "cn=locked-staff,ou=people,\(clinic.suffix)" }

    /// A managed role, `role`, held by `uid`.
    func giveRole(_ uid: String) async throws {
        try await server.ldapmodify("""
        dn: \(role)
        changetype: add
        objectClass: top
        objectClass: LdapSubEntry
        objectClass: nsRoleDefinition
        objectClass: nsSimpleRoleDefinition
        objectClass: nsManagedRoleDefinition
        cn: locked-staff

        dn: \(clinic.dn(uid))
        changetype: modify
        add: nsRoleDN
        nsRoleDN: \(role)

        """)
    }

    /// `dsidm role lock` or `unlock` of `role`.
    func setRoleLock(_ locked: Bool) async throws {
        try await server.tool("/usr/sbin/dsidm", [server.url, "-D", server.adminDN, "-w", DS389Server.adminPassword, "-b", clinic.suffix,
                                          "role", locked ? "lock" : "unlock", role])
    }

    /// Roster's own bind account: read and search on the suffix, the operational attributes
    /// Roster reads named, and no size or look-through limit (the defaults stop a search at
    /// 2,000 and 5,000 entries).
    static func bindAccountLDIF(_ dn: String, password: String, suffix: String) -> String {
        """
        dn: \(dn)
        changetype: add
        objectClass: account
        objectClass: simpleSecurityObject
        uid: roster
        userPassword: \(password)
        nsSizeLimit: -1
        nsLookThroughLimit: -1

        dn: \(suffix)
        changetype: modify
        add: aci
        aci: (targetattr="*||nsUniqueId||nsAccountLock||accountUnlockTime||passwordRetryCount||modifyTimestamp")(version 3.0; acl "Roster reads the directory"; allow (read, search, compare) userdn="ldap:///\(dn)";)

        """
    }

    /// Sets the user's FreeIPA account expiry (`ipa user-mod --principal-expiration`).
    func setPrincipalExpiration(_ uid: String, _ date: Date) async throws {
        try await server.ldapmodify("""
        dn: \(clinic.dn(uid))
        changetype: modify
        add: objectClass
        objectClass: krbPrincipalAux
        -
        replace: krbPrincipalExpiration
        krbPrincipalExpiration: \(DirectoryTime.generalizedTime(date))

        """)
    }

    func setAccountLock(_ uid: String, _ locked: Bool) async throws {
        try await server.ldapmodify("dn: \(clinic.dn(uid))\nchangetype: modify\nreplace: nsAccountLock\nnsAccountLock: \(locked ? "true" : "false")\n")
    }
}

@Suite("389 Directory Server (Debian 389-ds-base), the FreeIPA directory", .serialized, .enabled(if: DS389Server.isInstalled && getuid() == 0))
struct DS389Tests {
    @Test("A full reconcile: users keyed by nsUniqueId; nsAccountLock deactivates, also through a locked role; a lockout by failed binds locks; deleted and moved-away users are confirmed gone")
    func reconcile() async throws {
        let fixture = try await DS389Fixture.start()
        defer { fixture.server.shutdown() }
        let first = try await fixture.sync()
        #expect(first.problems.isEmpty, "\(first.problems)")
        let users = try fixture.mirror.snapshot().users
        #expect(users.count == fixture.clinic.userCount)
        #expect(users.values.allSatisfy { $0.state.isActive && !$0.state.isLocked })
        // The identity is the one 389-ds's content synchronization keys entries by.
        let uid = fixture.clinic.teamMember(1, "booking", 1)
        let printed = try await fixture.uniqueID(uid)
        let expected = try #require(EntryUUID(nsUniqueID: printed))
        #expect(try fixture.user(uid)?.directoryID == expected.description)

        let disabled = fixture.clinic.teamMember(1, "booking", 2)
        try await fixture.setAccountLock(disabled, true)
        let lockedOut = fixture.clinic.teamMember(1, "booking", 3)
        try await fixture.lockOutAfterTwoFailures(for: 600)
        try await fixture.setPassword(lockedOut)
        await fixture.failBind(lockedOut)
        await fixture.failBind(lockedOut)
        let inLockedRole = fixture.clinic.teamMember(1, "booking", 4)
        try await fixture.lockThroughRole(inLockedRole)
        let second = try await fixture.sync()
        #expect(second.problems.isEmpty, "\(second.problems)")
        #expect(try !fixture.isActive(disabled))
        #expect(try !fixture.isActive(inLockedRole), "a role's lock is the holder's (a virtual nsAccountLock)")
        #expect(try fixture.isActive(fixture.clinic.teamMember(1, "booking", 5)), "no one else is revoked")
        #expect(try fixture.isLocked(lockedOut) && fixture.isActive(lockedOut))
        let lockedState = try fixture.user(lockedOut)?.state
        #expect(lockedState?.reason?.contains("locked") == true, "\(String(describing: lockedState))")
        #expect(try fixture.mirror.effectiveAccess(of: UserCode(disabled)) == .noAccess(.inactive))

        try await fixture.setAccountLock(disabled, false)
        _ = try await fixture.sync()
        #expect(try fixture.isActive(disabled))

        // Missing from the read: confirmed gone by DN and by nsUniqueId before deactivating.
        let deleted = fixture.clinic.teamMember(2, "booking", 1)
        let moved = fixture.clinic.teamMember(2, "booking", 2)
        try await fixture.server.ldapmodify("""
        dn: \(fixture.clinic.dn(deleted))
        changetype: delete

        dn: \(fixture.clinic.dn(moved))
        changetype: modrdn
        newrdn: uid=\(moved)
        deleteoldrdn: 1
        newsuperior: ou=policies,\(fixture.clinic.suffix)

        """)
        let third = try await fixture.sync()
        #expect(third.counts.usersDeactivated == 2, "\(third.counts)")
        #expect(try !fixture.isActive(deleted) && !fixture.isActive(moved))
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }

    @Test("The change stream (RFC 4533 content synchronization): nsAccountLock, a deletion, a move out of scope, a renamed login and a group removal reach the mirror within 2 s, a role's lock and a deleted group within a reconcile; a server restart revokes no one; Roster's restart resumes from the cookie; a foreign cookie means a full reload")
    func changeStream() async throws {
        let fixture = try await DS389Fixture.start()
        defer { fixture.server.shutdown() }
        let run = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        #expect(run.reconcileCount == 1, "\(run.messages)")
        #expect(try fixture.mirror.snapshot().users.count == fixture.clinic.userCount)

        let disabled = fixture.clinic.teamMember(1, "booking", 1)
        try await fixture.setAccountLock(disabled, true)
        #expect(try await eventually(within: .seconds(2)) { try !fixture.isActive(disabled) }, "\(run.messages)")
        try await fixture.setAccountLock(disabled, false)
        #expect(try await eventually(within: .seconds(2)) { try fixture.isActive(disabled) }, "\(run.messages)")

        // A deletion arrives with the entry's sync UUID alone: it must find the user.
        let deleted = fixture.clinic.teamMember(1, "booking", 2)
        try await fixture.server.ldapmodify("dn: \(fixture.clinic.dn(deleted))\nchangetype: delete\n")
        #expect(try await eventually(within: .seconds(2)) { try !fixture.isActive(deleted) }, "\(run.messages)")
        #expect(try fixture.user(deleted) != nil, "users are never deleted")

        // A renamed login (modrdn of uid): the same entry by its nsUniqueId, so the old code
        // is no longer this person's account.
        let renamed = fixture.clinic.teamMember(2, "booking", 3)
        try await fixture.server.ldapmodify("dn: \(fixture.clinic.dn(renamed))\nchangetype: modrdn\nnewrdn: uid=\(renamed)-new\ndeleteoldrdn: 1\n")
        #expect(try await eventually(within: .seconds(2)) { try fixture.isActive(renamed + "-new") && !fixture.isActive(renamed) }, "\(run.messages)")
        #expect(try fixture.user(renamed)?.state.reason?.contains("renamed") == true)
        #expect(try fixture.user(renamed + "-new")?.directoryID == fixture.user(renamed)?.directoryID)

        // Moved out of the users' base (as FreeIPA's `ipa user-del --preserve` moves a user
        // to its deleted-users container): inactive.
        let preserved = fixture.clinic.teamMember(2, "booking", 4)
        try await fixture.server.ldapmodify("dn: \(fixture.clinic.dn(preserved))\nchangetype: modrdn\nnewrdn: uid=\(preserved)\ndeleteoldrdn: 1\nnewsuperior: ou=policies,\(fixture.clinic.suffix)\n")
        #expect(try await eventually(within: .seconds(2)) { try !fixture.isActive(preserved) }, "\(run.messages)")

        // A mapped group deleted: the stream reports it by its sync UUID alone, found by
        // nsUniqueId to be gone, and the full reconcile it asks for takes the access away.
        let screener = fixture.clinic.teamMember(2, "screening", 1)
        func screens() throws -> Bool {
            try fixture.mirror.effectiveAccess(of: UserCode(screener)).grants.contains { $0.module == .preSurgicalScreening }
        }
        #expect(try screens())
        try await fixture.server.ldapmodify("dn: \(fixture.clinic.groupDN("hc2-screening"))\nchangetype: delete\n")
        #expect(try await eventually(within: .seconds(10)) { try !screens() }, "\(run.messages)")
        #expect(try fixture.isActive(screener), "losing a group is not losing the account")

        // A lock through a role changes only 389-ds's role entries, which Roster follows too:
        // they ask for a full reconcile, which reads the holders' virtual nsAccountLock.
        let holder = fixture.clinic.teamMember(3, "booking", 1)
        try await fixture.giveRole(holder)
        try await fixture.setRoleLock(true)
        #expect(try await eventually(within: .seconds(10)) { try !fixture.isActive(holder) }, "\(run.messages)")
        try await fixture.setRoleLock(false)
        #expect(try await eventually(within: .seconds(10)) { try fixture.isActive(holder) }, "\(run.messages)")

        let removed = fixture.clinic.teamMember(1, "booking", 3)
        #expect(try fixture.mirror.effectiveAccess(of: UserCode(removed)).grants.contains { $0.module == .careVenue })
        try await fixture.server.ldapmodify(fixture.clinic.membershipLDIF(removed, group: "hc1-booking", present: false))
        #expect(try await eventually(within: .seconds(2)) {
            try !fixture.mirror.effectiveAccess(of: UserCode(removed)).grants.contains { $0.module == .careVenue }
        }, "\(run.messages)")

        // The server restarts under the stream: no one is revoked, and it catches up.
        let activeBefore = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count
        try await fixture.server.restart()
        let afterRestart = fixture.clinic.teamMember(2, "booking", 1)
        try await fixture.setAccountLock(afterRestart, true)
        #expect(try await eventually(within: .seconds(10)) { try !fixture.isActive(afterRestart) }, "\(run.messages)")
        #expect(try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count == activeBefore - 1)
        await run.stop()

        // Roster away: a change made meanwhile arrives from the stored cookie, without a full reload.
        let away = fixture.clinic.teamMember(1, "booking", 4)
        try await fixture.setAccountLock(away, true)
        let again = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror)
        let awayArrived = try await eventually(within: .seconds(10)) { try !fixture.isActive(away) }
        let awayUser = try fixture.user(away)
        #expect(awayArrived, "\(again.messages) \(String(describing: awayUser))")
        #expect(again.reconcileCount == 0, "\(again.messages)")
        await again.stop()

        // A cookie the server cannot resume from (as after a restore of another server's
        // mirror): a full reload, and no one revoked by it.
        let activeNow = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count
        for kind in [ChangeStreamKind.users, .groups] {
            var state = try #require(try fixture.mirror.syncState(for: kind.stateKey(fixture.configuration.directory.name)))
            state.cookie = Array("localhost:1#cn=someone else:ou=elsewhere:(objectClass=*)#999999".utf8)
            try fixture.mirror.saveSyncState(state)
        }
        let reloaded = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror)
        #expect(try await eventually(within: readinessTimeout) { reloaded.isReady }, "\(reloaded.messages)")
        #expect(reloaded.reconcileCount == 1, "\(reloaded.messages)")
        #expect(try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count == activeNow)
        let afterReload = fixture.clinic.teamMember(2, "booking", 2)
        try await fixture.setAccountLock(afterReload, true)
        #expect(try await eventually(within: .seconds(2)) { try !fixture.isActive(afterReload) }, "\(reloaded.messages)")
        await reloaded.stop()
        #expect(try fixture.isActive(fixture.clinic.teamMember(1, "booking", 5)), "no one else is revoked")
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }

    @Test("Without content synchronization (a plain 389-ds): Roster says so and polls modifyTimestamp; a lock arrives within the poll interval, a role's lock and unlock within a reconcile")
    func polling() async throws {
        let fixture = try await DS389Fixture.start(contentSync: false)
        defer { fixture.server.shutdown() }
        let run = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        #expect(run.messages.contains { $0.contains("polling modifyTimestamp") }, "\(run.messages)")
        let disabled = fixture.clinic.teamMember(1, "booking", 1)
        try await fixture.setAccountLock(disabled, true)
        #expect(try await eventually(within: .seconds(3)) { try !fixture.isActive(disabled) }, "\(run.messages)")
        let printed = try await fixture.uniqueID(disabled)
        #expect(try fixture.user(disabled)?.directoryID == EntryUUID(nsUniqueID: printed)?.description)
        try await fixture.setAccountLock(disabled, false)
        #expect(try await eventually(within: .seconds(3)) { try fixture.isActive(disabled) }, "\(run.messages)")
        // A lock through a role changes only role and class-of-service entries: they are polled
        // too, and their change asks for a full reconcile.
        let roleHolder = fixture.clinic.teamMember(2, "booking", 1)
        let beforeRole = run.appliedReconcileCount
        try await fixture.giveRole(roleHolder)
        // The new role definition is polled too, and asks for a reconcile; the role is not locked yet.
        #expect(try await eventually(within: .seconds(10)) { run.appliedReconcileCount > beforeRole }, "\(run.messages)")
        #expect(try fixture.isActive(roleHolder))
        try await Task.sleep(for: .seconds(2))
        let reconciles = run.appliedReconcileCount
        try await fixture.setRoleLock(true)
        #expect(try await eventually(within: .seconds(10)) { try !fixture.isActive(roleHolder) }, "\(run.messages)")
        #expect(try await eventually(within: .seconds(5)) { run.appliedReconcileCount > reconciles }, "\(run.messages)")
        try await fixture.setRoleLock(false)
        #expect(try await eventually(within: .seconds(10)) { try fixture.isActive(roleHolder) }, "\(run.messages)")
        await run.stop()
        #expect(try fixture.mirror.snapshot().users.values.filter { !$0.state.isActive }.isEmpty)
    }

    @Test("In the daemon: failed binds lock within 4 s through the stream, and Roster's timer unlocks when accountUnlockTime comes (no directory event marks it)")
    func lockoutEndsByTimer() async throws {
        let fixture = try await DS389Fixture.start()
        defer { fixture.server.shutdown() }
        let seconds = 6
        try await fixture.lockOutAfterTwoFailures(for: seconds)
        let uid = fixture.clinic.teamMember(1, "booking", 1)
        try await fixture.setPassword(uid)
        let state = ServiceState(stalenessLimit: .seconds(300))
        let service = DirectoryService.quiet(configuration: fixture.configuration, mirror: fixture.mirror, state: state)
        let task = Task { try await service.run() }
        defer { task.cancel() }
        #expect(try await eventually(within: readinessTimeout) { state.readiness.isReady })

        let lockedAt = ContinuousClock.now
        await fixture.failBind(uid)
        await fixture.failBind(uid)
        #expect(try await eventually(within: .seconds(4)) { try fixture.isLocked(uid) })
        let reason = try fixture.user(uid)?.state.reason
        #expect(reason?.contains("until") == true, "a timed lockout says when it ends: \(String(describing: reason))")
        #expect(try await eventually(within: .seconds(Int64(seconds) + 4)) { try !fixture.isLocked(uid) })
        #expect(ContinuousClock.now - lockedAt >= .seconds(seconds - 1), "not unlocked before the lockout ends")

        // The entry still holds accountUnlockTime (in the past now): a full reconcile agrees.
        let report = try await fixture.sync()
        #expect(report.counts.usersLocked == 0)
        #expect(try !fixture.isLocked(uid) && fixture.isActive(uid))
        task.cancel()
        _ = await task.result
    }

    @Test("A bind account of its own, with the read rights README gives: the same mirror and change stream as the Directory Manager's; with a look-through limit below the directory's size, the reconcile stops, says why, and revokes no one")
    func bindAccount() async throws {
        let fixture = try await DS389Fixture.start()
        defer { fixture.server.shutdown() }
        _ = try await fixture.sync()
        let account = "uid=roster,\(fixture.clinic.suffix)"
        let passwordFile = fixture.server.directory.appendingPathComponent("roster.password").path
        try "Roster-Bind-Password-1".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        try await fixture.server.ldapmodify(DS389Fixture.bindAccountLDIF(account, password: "Roster-Bind-Password-1", suffix: fixture.clinic.suffix))
        var configuration = fixture.configuration
        configuration.directory.bind = .simple(dn: account, passwordFile: passwordFile)

        // A fresh mirror through the account: the same users, states and identities.
        let otherMirror = try Mirror(path: fixture.server.directory.appendingPathComponent("other/roster.sqlite").path)
        try await fixture.setAccountLock(fixture.clinic.teamMember(1, "booking", 1), true)
        _ = try await fixture.sync()
        let report = try await Reconciler(configuration: configuration, mirror: otherMirror).run()
        #expect(report.problems.isEmpty, "\(report.problems)")
        let expected = try fixture.mirror.snapshot().users
        let through = try otherMirror.snapshot().users
        #expect(through.count == expected.count)
        #expect(expected.values.contains { !$0.state.isActive })
        for (code, user) in expected {
            #expect(through[code]?.directoryID == user.directoryID && through[code]?.state == user.state, "\(code)")
        }

        // The change stream through the account: a lock arrives as it does for the Directory Manager.
        let run = StreamRun(configuration: configuration, mirror: otherMirror)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        let locked = fixture.clinic.teamMember(1, "booking", 2)
        try await fixture.setAccountLock(locked, true)
        #expect(try await eventually(within: .seconds(2)) { try otherMirror.user(UserCode(locked))?.state.isActive == false }, "\(run.messages)")
        await run.stop()

        // A look-through limit smaller than the directory: the read fails, nothing changes.
        try await fixture.server.ldapmodify("dn: \(account)\nchangetype: modify\nreplace: nsLookThroughLimit\nnsLookThroughLimit: 50\n")
        let before = try otherMirror.snapshot().users
        await #expect {
            _ = try await Reconciler(configuration: configuration, mirror: otherMirror).run()
        } throws: { error in
            "\(error)".contains("limit") && "\(error)".contains("nsLookThroughLimit")
        }
        #expect(try otherMirror.snapshot().users == before)
    }

    @Test("FreeIPA's account expiry (krbPrincipalExpiration): a past one deactivates, a future one set through the stream deactivates on time by Roster's timer")
    func principalExpiration() async throws {
        let fixture = try await DS389Fixture.start(kerberos: true)
        defer { fixture.server.shutdown() }
        let expired = fixture.clinic.teamMember(1, "booking", 1)
        let expiring = fixture.clinic.teamMember(1, "booking", 2)
        try await fixture.setPrincipalExpiration(expired, Date().addingTimeInterval(-3600))
        let state = ServiceState(stalenessLimit: .seconds(300))
        let service = DirectoryService.quiet(configuration: fixture.configuration, mirror: fixture.mirror, state: state)
        let task = Task { try await service.run() }
        defer { task.cancel() }
        #expect(try await eventually(within: readinessTimeout) { state.readiness.isReady })
        #expect(try !fixture.isActive(expired))
        #expect(try fixture.user(expired)?.state.reason?.contains("krbPrincipalExpiration") == true)
        // Set while Roster runs: the stream brings the expiry, and no directory event marks
        // the moment itself: the timer does.
        let expiresAt = Date().addingTimeInterval(6)
        try await fixture.setPrincipalExpiration(expiring, expiresAt)
        try await Task.sleep(for: .seconds(2))
        #expect(try fixture.isActive(expiring), "not before its expiry")
        #expect(try await eventually(within: .seconds(15)) { try !fixture.isActive(expiring) })
        #expect(Date() >= expiresAt.addingTimeInterval(-1), "not deactivated before it expires")
        #expect(try fixture.isActive(fixture.clinic.teamMember(1, "booking", 3)), "no one else")
        task.cancel()
        _ = await task.result
    }

    @Test("Churn: 600 changes (locks, unlocks, titles, memberships) through the stream with a server restart among them: the mirror then equals a fresh reconcile's")
    func churnMatchesAFreshReconcile() async throws {
        let fixture = try await DS389Fixture.start()
        defer { fixture.server.shutdown() }
        let run = StreamRun(configuration: fixture.configuration, mirror: fixture.mirror)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        let clinic = fixture.clinic
        let people = (1...clinic.healthCenters).flatMap { c in ClinicDirectory.teams.flatMap { team in (1...clinic.teamSize).map { clinic.teamMember(c, team, $0) } } }
        var generator = SystemRandomNumberGenerator()
        func batch(_ round: Int) -> String {
            (0..<300).map { index -> String in
                let uid = people.randomElement(using: &generator)!
                switch index % 4 {
                case 0: return "dn: \(clinic.dn(uid))\nchangetype: modify\nreplace: nsAccountLock\nnsAccountLock: \(Bool.random(using: &generator))\n"
                case 1: return "dn: \(clinic.dn(uid))\nchangetype: modify\nreplace: title\ntitle: Round \(round) change \(index)\n"
                case 2: return clinic.membershipLDIF(uid, group: "hc1-booking", present: false)
                default: return clinic.membershipLDIF(uid, group: "hc1-booking", present: true)
                }
            }.joined(separator: "\n")
        }
        // Adds and removals of members that are (not) there already are refused: go on past them.
        try? await fixture.server.ldapmodify(batch(1), continuing: true)
        try await fixture.server.restart()
        try? await fixture.server.ldapmodify(batch(2), continuing: true)
        // Settled: a marker change made last has arrived, and the stream is quiet.
        let last = people[0]
        try await fixture.server.ldapmodify("dn: \(clinic.dn(last))\nchangetype: modify\nreplace: title\ntitle: The last change\n")
        #expect(try await eventually(within: .seconds(20)) { try fixture.user(last)?.title == "The last change" }, "\(run.messages)")
        try await Task.sleep(for: .seconds(1))
        await run.stop()

        let fresh = try Mirror(path: fixture.server.directory.appendingPathComponent("fresh/roster.sqlite").path)
        _ = try await Reconciler(configuration: fixture.configuration, mirror: fresh).run(ReconcileOptions(force: true))
        let followed = try fixture.mirror.snapshot()
        let expected = try fresh.snapshot()
        #expect(expected.users.values.contains { !$0.state.isActive }, "the churn left someone disabled")
        for round in 1...2 { #expect(expected.users.values.contains { $0.title?.hasPrefix("Round \(round) ") == true }, "round \(round) arrived") }
        for (code, user) in expected.users {
            let actual = followed.users[code]
            #expect(actual?.state == user.state && actual?.title == user.title, "\(code): \(String(describing: actual?.state)) \(String(describing: actual?.title)) against \(user.state) \(String(describing: user.title))")
        }
        #expect(followed.groupMembers == expected.groupMembers)
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }
}
