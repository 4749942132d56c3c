import AccessModel
import Foundation
import LDAPKit
import Logging
import Mirror
import RosterConfig
import RosterService
import SlapdHarness
import Sync
import Testing

/// A small clinic in a real Samba AD DC: people and groups under OU=Clinic, one mapped group
/// with a nested group in it, and the Roster configuration for it (flavor activedirectory).
struct ADClinic {
    static let suffix = SambaServer.baseDN
    static let people = "OU=People,OU=Clinic,\(suffix)"
    static let groupsBase = "OU=Groups,OU=Clinic,\(suffix)"
    static func dn(_ user: String) -> String { "CN=\(user),\(people)" }
    static func groupDN(_ cn: String) -> String { "CN=\(cn),\(groupsBase)" }
    static let users = (1...8).map { "ad-user\($0)" }

    /// ad-user1 and the group `inner-team` (ad-user2, ad-user3) are members of `hc1-booking`.
    static func ldif(extra: String = "") -> String {
        var text = """
            dn: OU=Clinic,\(suffix)
            objectClass: organizationalUnit

            dn: \(people)
            objectClass: organizationalUnit

            dn: \(groupsBase)
            objectClass: organizationalUnit


            """
        for user in users { text += person(user, parent: people) }
        text += group("inner-team", members: [dn("ad-user2"), dn("ad-user3")])
        text += group("hc1-booking", members: [dn("ad-user1"), groupDN("inner-team")])
        return text + extra
    }

    /// A user that may bind without a password policy getting in the way: enabled
    /// (userAccountControl 512 = normal account) with a password set offline.
    static func person(_ name: String, parent: String, password: Bool = true) -> String {
        var text = """
            dn: CN=\(name),\(parent)
            objectClass: user
            sAMAccountName: \(name)
            givenName: Given-\(name)
            sn: Surname-\(name)
            mail: \(name)@clinic.example

            """
        if password {
            // unicodePwd is the password in quotes, UTF-16LE, base64.
            let quoted = Array("\"Pw-\(name)-1\"".utf16).flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
            text += "unicodePwd:: \(Data(quoted).base64EncodedString())\nuserAccountControl: 512\n"
        } else {
            // Without a password an account must say it needs none to be enabled.
            text += "userAccountControl: 544\n"
        }
        return text + "\n"
    }

    static func group(_ cn: String, members: [String]) -> String {
        "dn: \(groupDN(cn))\nobjectClass: group\nsAMAccountName: \(cn)\n" + members.map { "member: \($0)\n" }.joined() + "\n"
    }

    static func yaml(server: SambaServer, mirrorPath: String, usersBase: String = people, extraMappings: String = "") -> String {
        """
        directory:
          name: main
          urls: [\(server.url)]
          flavor: activedirectory
          tls: {mode: plaintext}
          allow_plaintext: true
          bind: {method: simple, dn: '\(server.adminDN)', password_file: '\(server.adminPasswordFile)'}
          base_dn: '\(suffix)'
          operation_timeout_seconds: 10
        users:
          base: '\(usersBase)'
          filter: (&(objectClass=user)(objectCategory=person))
          attributes: {user_code: sAMAccountName}
          default_health_centers: [HC1]
        health_centers:
          - id: HC1
            name: Health Center 1
            care_venues: [{id: HC1-OR1, name: Operating Room 1}]
        groups:
          base: '\(groupsBase)'
          filter: (objectClass=group)
          mappings:
            - directory_group: '\(groupDN("hc1-booking"))'
              name: HC1 OR Booking
              kind: provider
              health_center: HC1
              care_venues: [HC1-OR1]
              modules: {care_venue: {privacy: toggle_default_off, privilege: full_access}}
              providers: all_in_health_center
        \(extraMappings)
        # A small clinic: one deletion is 12 % of it, more than the default 5 % the change
        # stream's breaker lets through between two reconciles.
        safety: {max_deactivations: 50, max_deactivation_percent: 50}
        schedule: {dirsync_interval_seconds: 0.25}
        mirror: {path: '\(mirrorPath)'}
        http: {address: 127.0.0.1, port: 8471}

        """
    }
}

/// A Samba DC with the AD clinic, a fresh mirror and the configuration mapping them.
struct ADFixture {
    let server: SambaServer
    let configuration: RosterConfiguration
    let configurationPath: String
    let mirror: Mirror

    static func start(extraLDIF: String = "", usersBase: String = ADClinic.people, extraMappings: String = "") async throws -> ADFixture {
        let server = try await SambaServer.start(ldif: ADClinic.ldif(extra: extraLDIF))
        let mirrorPath = server.directory.appendingPathComponent("mirror/roster.sqlite").path
        let path = server.directory.appendingPathComponent("roster.yaml").path
        try ADClinic.yaml(server: server, mirrorPath: mirrorPath, usersBase: usersBase, extraMappings: extraMappings)
            .write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try ConfigurationLoader.load(path: path)
        return ADFixture(server: server, configuration: configuration, configurationPath: path, mirror: try Mirror(path: mirrorPath))
    }

    /// The daemon's directory service on this fixture, running once it reports ready (within
    /// 30 s; the test fails otherwise). Cancel the task to stop it.
    func startService() async throws -> Task<Void, any Error> {
        let state = ServiceState(stalenessLimit: .seconds(300))
        let service = DirectoryService.quiet(configuration: configuration, mirror: mirror, state: state, configurationPath: configurationPath)
        let task = Task { try await service.run() }
        #expect(try await eventually(within: readinessTimeout) { state.readiness.isReady })
        return task
    }

    func user(_ code: String) throws -> User? { try mirror.user(UserCode(code)) }
    func isActive(_ code: String) throws -> Bool { try user(code)?.state.isActive == true }
    func isLocked(_ code: String) throws -> Bool { try user(code)?.state.isLocked == true }
    func hasBooking(_ code: String) throws -> Bool {
        try mirror.effectiveAccess(of: UserCode(code)).grants.contains { $0.module == .careVenue }
    }
}

extension StreamRun {
    /// Runs the change stream for an AD fixture in the background.
    convenience init(_ fixture: ADFixture) {
        self.init(configuration: fixture.configuration, mirror: fixture.mirror)
    }
}

@Suite("Active Directory against a real Samba AD DC", .serialized)
struct ActiveDirectoryTests {
    @Test("samba-tool disable, enable and delete reach the mirror within 2 s; a stopped DC revokes no one and the stream catches up from its cookie; another DC's cookie means a full reload")
    func disableEnableDelete() async throws {
        let fixture = try await ADFixture.start()
        defer { fixture.server.shutdown() }
        let run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        #expect(run.reconcileCount == 1, "the first start reloads with a full reconcile: \(run.messages)")
        let snapshot = try fixture.mirror.snapshot()
        #expect(snapshot.users.count == ADClinic.users.count)
        #expect(snapshot.users.values.allSatisfy { $0.state.isActive && !$0.state.isLocked })
        #expect(snapshot.users.values.allSatisfy { $0.directoryID != nil })

        try await fixture.server.sambaTool(["user", "disable", "ad-user5"])
        #expect(try await eventually(within: .seconds(2)) { try !fixture.isActive("ad-user5") }, "\(run.messages)")
        #expect(try fixture.user("ad-user5")?.state.reason?.contains("disabled") == true)
        #expect(try fixture.mirror.effectiveAccess(of: UserCode("ad-user5")) == .noAccess(.inactive))

        try await fixture.server.sambaTool(["user", "enable", "ad-user5"])
        #expect(try await eventually(within: .seconds(2)) { try fixture.isActive("ad-user5") }, "\(run.messages)")

        try await fixture.server.sambaTool(["user", "delete", "ad-user6"])
        #expect(try await eventually(within: .seconds(2)) { try !fixture.isActive("ad-user6") }, "\(run.messages)")
        #expect(try fixture.user("ad-user6") != nil, "users are never deleted")

        // A user moved out of the users' OU leaves the scope: inactive, confirmed by lookup.
        try await fixture.server.ldapmodify("dn: \(ADClinic.dn("ad-user7"))\nchangetype: modrdn\nnewrdn: CN=ad-user7\ndeleteoldrdn: 1\nnewsuperior: CN=Users,\(SambaServer.baseDN)\n")
        #expect(try await eventually(within: .seconds(2)) { try !fixture.isActive("ad-user7") }, "\(run.messages)")

        // The DC stops: nobody is revoked while it is away. A change made while the stream
        // is down (offline, in the DC's database) arrives after the restart from the cookie,
        // without a full reconcile (same invocationId).
        let activeBefore = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count
        fixture.server.stop()
        try await Task.sleep(for: .seconds(1))
        #expect(try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count == activeBefore)
        try await fixture.server.modifyOffline("dn: \(ADClinic.dn("ad-user8"))\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n")
        try await fixture.server.restart()
        #expect(try await eventually(within: .seconds(10)) { try !fixture.isActive("ad-user8") }, "\(run.messages)")
        #expect(run.reconcileCount == 1, "\(run.messages)")
        #expect(run.messages.contains { $0.hasPrefix("disconnected") })
        #expect(try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count == activeBefore - 1)
        await run.stop()

        // Roster restarted: it resumes from the stored cookie, no full reload.
        try await fixture.server.sambaTool(["user", "disable", "ad-user1"])
        let again = StreamRun(fixture)
        #expect(try await eventually(within: .seconds(10)) { try !fixture.isActive("ad-user1") }, "\(again.messages)")
        #expect(again.reconcileCount == 0, "\(again.messages)")
        await again.stop()

        // A cookie another DC database issued (as after a restore from backup, with a new
        // invocationId) is not trusted: a full reconcile first, and nobody is revoked by it.
        let key = "\(fixture.configuration.directory.name)/dirsync"
        var state = try #require(try fixture.mirror.syncState(for: key))
        let stored = try #require(state.cookie.flatMap(DirSyncCheckpoint.init(encoded:)))
        state.cookie = DirSyncCheckpoint(invocationID: "00000000-0000-0000-0000-000000000001", cookie: stored.cookie).encoded
        try fixture.mirror.saveSyncState(state)
        let activeNow = try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count
        let other = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { other.isReady }, "\(other.messages)")
        #expect(other.reconcileCount == 1, "\(other.messages)")
        #expect(other.messages.contains { $0.contains("invocationId changed") }, "\(other.messages)")
        #expect(try fixture.mirror.snapshot().users.values.filter { $0.state.isActive }.count == activeNow)
        await other.stop()
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }

    @Test("With DirSync polled only every 60 s, a change notification from the DC wakes it (Samba sends them on about 5 s ticks)")
    func notificationsWakeTheStream() async throws {
        var fixture = try await ADFixture.start()
        defer { fixture.server.shutdown() }
        var configuration = fixture.configuration
        configuration.schedule.dirSyncIntervalSeconds = 60
        fixture = ADFixture(server: fixture.server, configuration: configuration, configurationPath: fixture.configurationPath, mirror: fixture.mirror)
        let run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        // Let the first (immediate) poll after the refresh pass, so only a wake-up can help.
        try await Task.sleep(for: .seconds(1))
        try await fixture.server.sambaTool(["user", "disable", "ad-user2"])
        #expect(try await eventually(within: .seconds(12)) { try !fixture.isActive("ad-user2") }, "\(run.messages)")
        await run.stop()
    }

    @Test("A bind account without replication rights: DirSync falls back to the object-security flag and says what that costs; a disable still arrives within 2 s")
    func objectSecurityFallback() async throws {
        let reader = ADClinic.person("roster-reader", parent: "CN=Users,\(SambaServer.baseDN)")
        let fixture = try await ADFixture.start(extraLDIF: reader)
        defer { fixture.server.shutdown() }
        let passwordFile = fixture.server.directory.appendingPathComponent("reader.password").path
        try "Pw-roster-reader-1".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        var configuration = fixture.configuration
        configuration.directory.bind = .simple(dn: "CN=roster-reader,CN=Users,\(SambaServer.baseDN)", passwordFile: passwordFile)
        let asReader = ADFixture(server: fixture.server, configuration: configuration, configurationPath: fixture.configurationPath, mirror: fixture.mirror)
        let run = StreamRun(asReader)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        #expect(try fixture.mirror.snapshot().users.count == ADClinic.users.count)
        #expect(run.messages.contains { $0.contains("object-security flag") }, "\(run.messages)")
        try await fixture.server.sambaTool(["user", "disable", "ad-user3"])
        #expect(try await eventually(within: .seconds(2)) { try !fixture.isActive("ad-user3") }, "\(run.messages)")
        await run.stop()
    }

    @Test("Removal from a nested group removes the derived membership; nesting can be turned off")
    func nestedGroups() async throws {
        let fixture = try await ADFixture.start()
        defer { fixture.server.shutdown() }
        let run = StreamRun(fixture)
        #expect(try await eventually(within: readinessTimeout) { run.isReady }, "\(run.messages)")
        // ad-user2 is in hc1-booking only through inner-team.
        #expect(try fixture.hasBooking("ad-user1"))
        #expect(try fixture.hasBooking("ad-user2"))
        #expect(try fixture.hasBooking("ad-user3"))
        #expect(try !fixture.hasBooking("ad-user4"))

        try await fixture.server.sambaTool(["group", "removemembers", "inner-team", "ad-user2"])
        #expect(try await eventually(within: .seconds(2)) { try !fixture.hasBooking("ad-user2") }, "\(run.messages)")
        #expect(try fixture.hasBooking("ad-user3"))

        // Adding to the nested group grants through it, too.
        try await fixture.server.sambaTool(["group", "addmembers", "inner-team", "ad-user4"])
        #expect(try await eventually(within: .seconds(2)) { try fixture.hasBooking("ad-user4") }, "\(run.messages)")
        // The stream recomputed hc1-booking from its nesting; no full reconcile was needed
        // beyond the first start's.
        #expect(run.reconcileCount == 1, "\(run.messages)")
        await run.stop()

        // With nesting off, only direct members count.
        var flat = fixture.configuration
        flat.groups.nested = false
        _ = try await Reconciler(configuration: flat, mirror: fixture.mirror).run()
        #expect(try fixture.hasBooking("ad-user1"))
        #expect(try !fixture.hasBooking("ad-user3"))
    }

    @Test("A 2,000-member group is read whole, with explicit ranged retrieval too")
    func largeGroup() async throws {
        let bulk = "OU=Bulk,\(SambaServer.baseDN)"
        var ldif = "dn: \(bulk)\nobjectClass: organizationalUnit\n\n"
        let names = (1...2000).map { String(format: "bulk%05d", $0) }
        for name in names { ldif += ADClinic.person(name, parent: bulk, password: false) }
        ldif += "dn: \(ADClinic.groupDN("big"))\nobjectClass: group\nsAMAccountName: big\n" + names.map { "member: CN=\($0),\(bulk)\n" }.joined() + "\n"
        let mapping = """
              - directory_group: '\(ADClinic.groupDN("big"))'
                name: HC1 Everyone
                kind: provider
                health_center: HC1
                care_venues: [HC1-OR1]
                modules: {reports: {privacy: toggle_default_off, privilege: read_only}}
                providers: all_in_health_center
          """
        let fixture = try await ADFixture.start(extraLDIF: ldif, usersBase: SambaServer.baseDN, extraMappings: mapping)
        defer { fixture.server.shutdown() }

        let connection = try await LDAPConnection.connect(fixture.server.adminConfiguration())
        let plain = try await connection.read(ADClinic.groupDN("big"), attributes: ["member"])
        #expect(plain?["member"].count == 2000)
        // Ask for the first 1,000 only: LDAPKit follows the ranges to the end.
        let ranged = try await connection.search(base: ADClinic.groupDN("big"), scope: .base, attributes: ["member;range=0-999"], pageSize: nil).collect()
        #expect(ranged.first?["member"].count == 2000)
        #expect(Set(ranged.first?.strings("member") ?? []).count == 2000)
        await connection.close()

        let report = try await Reconciler(configuration: fixture.configuration, mirror: fixture.mirror).run()
        #expect(report.usersRead >= 2000)
        let group = try fixture.mirror.snapshot().groups.values.first { $0.name == "HC1 Everyone" }
        #expect(group != nil)
        let members = try group.map { try fixture.mirror.snapshot().groupMembers[$0.id]?.count ?? 0 }
        #expect(members == 2000)
    }

    @Test("A fine-grained password policy's lockout duration (msDS-ResultantPSO) sets the lockout's end, not the domain's")
    func fineGrainedLockoutDuration() async throws {
        let fixture = try await ADFixture.start()
        defer { fixture.server.shutdown() }
        let longer = SambaServer.lockoutSeconds * 2
        let interval = -Int64(longer) * 10_000_000
        let pso = "CN=roster-long-lockout,CN=Password Settings Container,CN=System,\(SambaServer.baseDN)"
        try await fixture.server.ldapmodify("""
            dn: \(pso)
            changetype: add
            objectClass: msDS-PasswordSettings
            msDS-PasswordSettingsPrecedence: 1
            msDS-PasswordReversibleEncryptionEnabled: FALSE
            msDS-PasswordHistoryLength: 0
            msDS-PasswordComplexityEnabled: FALSE
            msDS-MinimumPasswordLength: 0
            msDS-MinimumPasswordAge: 0
            msDS-MaximumPasswordAge: -36288000000000
            msDS-LockoutThreshold: 3
            msDS-LockoutObservationWindow: \(interval)
            msDS-LockoutDuration: \(interval)
            msDS-PSOAppliesTo: \(ADClinic.dn("ad-user6"))

            """)
        let connection = try await LDAPConnection.connect(fixture.server.adminConfiguration())
        let resultant = try await connection.read(ADClinic.dn("ad-user6"), attributes: ["msDS-ResultantPSO"])?.string("msDS-ResultantPSO")
        await connection.close()
        #expect(resultant.map(DN.normalize) == DN.normalize(pso), "the DC names the policy in msDS-ResultantPSO")
        let lockout = try await {
            let connection = try await LDAPConnection.connect(fixture.server.adminConfiguration())
            defer { Task { await connection.close() } }
            return try await LockoutPolicy.read(fixture.configuration, connection: connection)
        }()
        #expect(lockout.defaultDuration == TimeInterval(SambaServer.lockoutSeconds))
        #expect(lockout.duration(policy: pso) == TimeInterval(longer))

        let task = try await fixture.startService()
        defer { task.cancel() }
        let lockedAt = Date()
        for _ in 0..<3 { await fixture.server.failBind(ADClinic.dn("ad-user6")) }
        #expect(try await eventually(within: .seconds(5)) { try fixture.isLocked("ad-user6") })
        // The reason gives the end: the policy's, not the domain's.
        let reason = try fixture.user("ad-user6")?.state.reason ?? ""
        let until = reason.split(separator: " ").last.flatMap { try? Date(String($0), strategy: .iso8601) }
        #expect(until.map { $0.timeIntervalSince(lockedAt) > TimeInterval(longer - 3) } == true, "\(reason)")
        #expect(try await eventually(within: .seconds(Int64(longer) + 6)) { try !fixture.isLocked("ad-user6") })
        #expect(Date().timeIntervalSince(lockedAt) > TimeInterval(longer - 2), "not unlocked before the policy's lockout ends")
        task.cancel()
        _ = await task.result
    }

    @Test("In the daemon's directory service: a lockout by failed binds locks, and its end unlocks by timer; a future accountExpires deactivates on time without a directory event")
    func lockoutAndExpiryTimers() async throws {
        let fixture = try await ADFixture.start()
        defer { fixture.server.shutdown() }
        let task = try await fixture.startService()
        defer { task.cancel() }

        // Three failed binds lock ad-user3 (the test domain's threshold) for a few seconds.
        for _ in 0..<3 { await fixture.server.failBind(ADClinic.dn("ad-user3")) }
        // (Latency is the benchmarks' to measure; here the lock must only come while the lockout lasts.)
        #expect(try await eventually(within: .seconds(5)) { try fixture.isLocked("ad-user3") })
        #expect(try fixture.isActive("ad-user3"), "a lockout locks, it does not deactivate")
        // No directory event marks the end of a lockout: Roster's timer does.
        let lockedAt = ContinuousClock.now
        #expect(try await eventually(within: .seconds(Int64(SambaServer.lockoutSeconds) + 6)) { try !fixture.isLocked("ad-user3") })
        #expect(ContinuousClock.now - lockedAt > .seconds(1), "not unlocked before the lockout ends")

        // accountExpires a few seconds ahead: still active now, inactive at that time.
        let expiry = Date().addingTimeInterval(4)
        let fileTime = Int64((expiry.timeIntervalSince1970 + 11_644_473_600) * 10_000_000)
        try await fixture.server.ldapmodify("dn: \(ADClinic.dn("ad-user4"))\nchangetype: modify\nreplace: accountExpires\naccountExpires: \(fileTime)\n")
        try await Task.sleep(for: .seconds(1))
        #expect(try fixture.isActive("ad-user4"))
        #expect(try await eventually(within: .seconds(8)) { try !fixture.isActive("ad-user4") })
        #expect(Date() >= expiry, "deactivated at the expiry, not before")
        #expect(try fixture.user("ad-user4")?.state.reason?.contains("expired") == true)
        task.cancel()
        _ = await task.result
    }
}
