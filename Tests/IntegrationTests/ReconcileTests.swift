import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import SlapdHarness
@testable import Sync
import Testing

/// A slapd with a clinic-shaped directory, a fresh mirror, and the configuration mapping them.
struct ClinicFixture {
    let server: SlapdServer
    let clinic: ClinicDirectory
    var configuration: RosterConfiguration
    let mirror: Mirror

    static func start(_ clinic: ClinicDirectory = ClinicDirectory(suffix: "dc=clinic,dc=test"), extraLDIF: String = "",
                      syncProvider: Bool = true, sessionLog: Bool = true, defaultPasswordPolicy: String? = nil) async throws -> ClinicFixture {
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif() + extraLDIF, syncProvider: syncProvider,
                                                 sessionLog: sessionLog, defaultPasswordPolicy: defaultPasswordPolicy)
        let mirrorPath = server.directory.appendingPathComponent("mirror/roster.sqlite").path
        let configuration = try clinic.configuration(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN,
                                                 mirrorPath: mirrorPath)
        return ClinicFixture(server: server, clinic: clinic, configuration: configuration, mirror: try Mirror(path: mirrorPath))
    }

    func sync(dryRun: Bool = false, force: Bool = false, now: Date = Date()) async throws -> ReconcileReport {
        try await Reconciler(configuration: configuration, mirror: mirror).run(ReconcileOptions(dryRun: dryRun, force: force), now: now)
    }

    func user(_ code: String) throws -> User? { try mirror.snapshot().users[UserCode(code)] }

    func writer() async throws -> LDAPConnection { try await LDAPConnection.connect(server.adminConfiguration()) }
}

@Suite("Full reconcile of a clinic directory against a real slapd")
struct ReconcileTests {
    @Test("First sync maps users, providers, groups, pools and roles; a second sync changes nothing")
    func firstAndSecondSync() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        let first = try await fixture.sync()
        #expect(first.problems == [])
        #expect(first.counts.usersAdded == clinic.userCount)
        #expect(first.counts.usersDeactivated == 0)
        let snapshot = try fixture.mirror.snapshot()
        #expect(snapshot.users.count == clinic.userCount)
        let expectedProviders = 36
        #expect(snapshot.providers.count == expectedProviders)
        // 4 mapped teams + 4 MOA offices per center, plus one own group per provider.
        let expectedGroups = 3 * 8 + 36
        #expect(snapshot.groups.count == expectedGroups)
        #expect(first.newProviders.count == 36)

        // An MOA reaches her office's surgeons in Provider's Office at Full Access, and in
        // Reports read-only; nothing of another office.
        let moa = try fixture.mirror.effectiveAccess(of: UserCode(clinic.assistant(2, 3, 1)))
        let office = (1...3).map { ProviderID(clinic.provider(2, 3, $0)) }
        for provider in office {
            #expect(moa.level(for: GrantKey(.providersOffice, "HC2", provider))?.privilege == .fullAccess)
            #expect(moa.level(for: GrantKey(.reports, "HC2", provider))?.privilege == .readOnly)
        }
        #expect(moa.level(for: GrantKey(.providersOffice, "HC2", ProviderID(clinic.provider(2, 1, 1)))) == nil)

        // The booking team reaches every provider of its health center, none elsewhere.
        let booker = try fixture.mirror.effectiveAccess(of: UserCode(clinic.teamMember(1, "booking", 2)))
        #expect(booker.grants.filter { $0.module == .careVenue }.count == 12)
        #expect(booker.grants.allSatisfy { $0.healthCenter == "HC1" })

        // Reporting is a pool group: the pool's three providers, read-only.
        let reporter = try fixture.mirror.effectiveAccess(of: UserCode(clinic.teamMember(3, "reporting", 1)))
        #expect(Set(reporter.grants.filter { $0.module == .reports }.compactMap(\.provider)) == Set((1...3).map { ProviderID(clinic.provider(3, 1, $0)) }))

        // Super administrators have everything; staff in no group have no access.
        #expect(try fixture.user("it-admin1")?.isSuperAdministrator == true)
        #expect(try fixture.mirror.effectiveAccess(of: "it-admin1").grants.count > 100)
        #expect(try fixture.mirror.effectiveAccess(of: UserCode(ClinicDirectory.breakGlass)) == .noAccess(.noGroup))

        let second = try await fixture.sync()
        #expect(second.counts.isEmpty, "\(second.counts)")
        #expect(second.changes.isEmpty)
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }

    @Test("Roles: the base role reaches every user without assignments; members of an All Access role's group are super administrators until they leave it")
    func baseAndAllAccessRoles() async throws {
        var fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        fixture.configuration.roles += [
            .init(name: "Staff", modules: [.eRequest: .readOnly], directoryGroup: nil, isBase: true),
            .init(name: "All Access", modules: [:], directoryGroup: clinic.groupDN("hc2-screening"), isAllAccess: true),
        ]
        let first = try await fixture.sync()
        #expect(first.problems == [])
        let booker = UserCode(clinic.teamMember(1, "booking", 1))
        let screener = UserCode(clinic.teamMember(2, "screening", 1))
        // The base role: every user, no assignment rows; its module at the user's own health centers.
        #expect(try fixture.mirror.snapshot().roleHolders["Staff"] == nil)
        #expect(try fixture.mirror.userDocument(booker)?.roles == ["Staff"])
        let booking = try fixture.mirror.effectiveAccess(of: booker)
        #expect(booking.level(for: GrantKey(.eRequest, "HC1")) == AccessLevel(.readOnly, .toggleDefaultOff))
        #expect(booking.level(for: GrantKey(.eRequest, "HC2")) == nil)
        // All Access: a screener of HC2 has everything, everywhere.
        let document = try #require(try fixture.mirror.userDocument(screener))
        #expect(document.superAdministrator && document.roles == ["All Access", "Staff"])
        #expect(try fixture.mirror.effectiveAccess(of: screener).level(for: GrantKey(.security, "HC3")) == .unrestricted)
        let explained = try AccessExplanation(user: screener, in: fixture.mirror.snapshot(), origins: MappingOrigins(fixture.configuration))
        #expect(explained.superAdministratorSource?.contains("All Access") == true)
        let again = try await fixture.sync()
        #expect(again.counts.isEmpty, "\(again.counts)")

        // Leaving the group ends it, audited with the group as its source.
        let writer = try await fixture.writer()
        try await writer.modify(clinic.groupDN("hc2-screening"), [.delete("member", [clinic.dn(screener.rawValue)])])
        await writer.close()
        _ = try await fixture.sync()
        #expect(try fixture.mirror.userDocument(screener)?.superAdministrator == false)
        #expect(try fixture.mirror.effectiveAccess(of: screener).level(for: GrantKey(.security, "HC3")) == nil)
        let unassigned = try #require(try fixture.mirror.auditTail(limit: 50).first { $0.action == "role.unassigned" })
        #expect(unassigned.entityKey == "All Access/\(screener.rawValue)" && unassigned.source == clinic.groupDN("hc2-screening"))
        #expect(try fixture.mirror.verifyAuditLog() == nil)
    }

    @Test("Given an executor to apply on (the daemon's, at the normal priority), the reconcile applies there and reads and maps where it runs")
    func applyRunsOnTheExecutorGiven() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let applyThread = CountingExecutor()
        let report = try await Reconciler(configuration: fixture.configuration, mirror: fixture.mirror)
            .run(ReconcileOptions(applyExecutor: applyThread))
        #expect(report.counts.usersAdded == fixture.clinic.userCount)
        #expect(try fixture.mirror.snapshot().users.count == fixture.clinic.userCount)
        #expect(applyThread.jobsRun > 0, "the apply did not run on the executor given")
        #expect(applyThread.jobsRun < 10, "more than the apply ran there: \(applyThread.jobsRun) jobs")
    }

    @Test("User entries that arrive before the providers' search ends are mapped as they would be after it")
    func providersSearchedBesideTheUsers() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let connection = try await LDAPConnection.connect(Reconciler.ldapConfiguration(fixture.configuration.directory))
        defer { Task { await connection.close() } }
        var reader = DirectoryReader(configuration: fixture.configuration, connection: connection)
        let now = Date()
        let prompt = try await reader.read(now: now, markerAttribute: "entryCSN")
        // Every user entry arrives before the providers' search starts.
        reader.providerSearchDelay = .milliseconds(800)
        let started = ContinuousClock.now
        let late = try await reader.read(now: now, markerAttribute: "entryCSN")
        #expect(ContinuousClock.now - started >= .milliseconds(800))
        #expect(late.users.count == fixture.clinic.userCount)
        #expect(late.users.filter(\.isProvider).count == 36)
        #expect(late.users == prompt.users)
        #expect(late.problems == prompt.problems && late.notes == prompt.notes)
        #expect(late.userRecords == prompt.userRecords)
        #expect(late.userRecords?.count == fixture.clinic.userCount)
    }

    @Test("Locks, unlocks, deletes and moves out of scope; a user is never deleted; local locks stay")
    func accountStates() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        _ = try await fixture.sync()
        let writer = try await fixture.writer()
        let locked = clinic.assistant(1, 1, 1)
        let deleted = clinic.assistant(1, 1, 2)
        let moved = clinic.teamMember(1, "booking", 1)
        let localLock = clinic.teamMember(1, "booking", 2)
        try await writer.modify(clinic.dn(locked), [.replace("pwdAccountLockedTime", [DirectoryTime.permanentLockValue])])
        try await writer.delete(clinic.dn(deleted))
        try fixture.server.ldapmodify("dn: \(clinic.dn(moved))\nchangetype: modrdn\nnewrdn: uid=\(moved)\ndeleteoldrdn: 1\nnewsuperior: ou=policies,\(clinic.suffix)\n")
        _ = try fixture.mirror.setLocalLock(of: UserCode(localLock), locked: true, reason: "suspended by HR", actor: .local("test"))

        let report = try await fixture.sync()
        #expect(report.counts.usersLocked == 1)
        #expect(report.counts.usersDeactivated == 2)
        #expect(try fixture.user(locked)?.state.isLocked == true)
        #expect(try fixture.mirror.effectiveAccess(of: UserCode(locked)) == .noAccess(.locked))
        for code in [deleted, moved] {
            let user = try #require(try fixture.user(code))
            #expect(!user.state.isActive)
            #expect(try fixture.mirror.effectiveAccess(of: UserCode(code)) == .noAccess(.inactive))
        }
        #expect(try fixture.user(localLock)?.state.lockedLocally == true)

        // A renamed login: the old code is deactivated, the new one is a user of its own.
        let renamed = clinic.teamMember(1, "screening", 4)
        try fixture.server.ldapmodify("dn: \(clinic.dn(renamed))\nchangetype: modrdn\nnewrdn: uid=\(renamed)-new\ndeleteoldrdn: 1\n")
        let afterRename = try await fixture.sync()
        #expect(afterRename.counts.usersAdded == 1)
        #expect(try fixture.user(renamed)?.state.isActive == false)
        #expect(try fixture.user("\(renamed)-new")?.state.isActive == true)

        // Clearing the directory lock unlocks; the local lock is not the directory's to clear.
        try await writer.modify(clinic.dn(locked), [.delete("pwdAccountLockedTime")])
        let after = try await fixture.sync()
        #expect(after.counts.usersUnlocked == 1)
        #expect(try fixture.user(locked)?.state.isLocked == false)
        #expect(try fixture.user(localLock)?.state.isLocked == true)
        #expect(try fixture.mirror.snapshot().users.count == clinic.userCount + 1)
        await writer.close()
    }

    @Test("A new provider gets a group of their own and the groups granting every provider of their health center")
    func newProvider() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        _ = try await fixture.sync()
        let uid = "hc2-newsurgeon"
        try fixture.server.ldapmodify(fixture.clinic.addProviderLDIF(uid, center: 2))
        let report = try await fixture.sync()
        #expect(report.newProviders == [ProviderID(uid)])
        #expect(report.counts.usersAdded == 1)
        // Booking and screening of HC2 are auto-add groups, but grant every provider of HC2 by
        // configuration: the new one is granted there, not added automatically (see below).
        #expect(report.counts.providersAutoAdded == 0)
        let snapshot = try fixture.mirror.snapshot()
        let own = try #require(snapshot.groups.values.first { $0.name == "Grey, Felicity" })
        #expect(own.healthCenter == "HC2")
        #expect(own.modules[.providersOffice]?.targets[uid] != nil)
        let booking = try #require(snapshot.groups[GroupID("HC2/HC2 OR Booking")])
        #expect(booking.modules[.careVenue]?.targets[uid]?.privilege == .fullAccess)
        let booker = try fixture.mirror.effectiveAccess(of: UserCode(fixture.clinic.teamMember(2, "booking", 1)))
        #expect(booker.level(for: GrantKey(.careVenue, "HC2", ProviderID(uid))) != nil)
        let otherCenter = try #require(snapshot.groups[GroupID("HC1/HC1 OR Booking")])
        #expect(otherCenter.modules[.careVenue]?.targets[uid] == nil)
    }

    @Test("Rule 6 with configured providers: a first sync grants only those, a new provider is added automatically and stays, a provider removed from the directory group that configures them loses the grant")
    func autoAddBesideConfiguredProviders() async throws {
        var fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        // The offices' MOA groups take their providers from `hcN-officeK-providers`; auto-add on.
        fixture.configuration.groups.patternRules[0].template.autoAddNewProviders = true
        let office = GroupID("HC2/HC2 office1 MOAs")
        let configured = Set((1...clinic.providersPerOffice).map { clinic.provider(2, 1, $0) })
        func grants() throws -> [String: TargetGrant] {
            try #require(try fixture.mirror.snapshot().groups[office]).modules[.providersOffice]?.targets ?? [:]
        }

        // First sync: the providers the group finds when it is created are not new to it.
        let first = try await fixture.sync()
        #expect(first.counts.providersAutoAdded == 0)
        #expect(Set(try grants().keys) == configured, "no other provider of HC2 is added by the first sync")
        #expect(try grants().values.allSatisfy { !$0.addedAutomatically })

        // A new provider of HC2, in no providers group: added automatically to every office of HC2.
        let newcomer = "hc2-newsurgeon"
        try fixture.server.ldapmodify(clinic.addProviderLDIF(newcomer, center: 2))
        let arrival = try await fixture.sync()
        // Two modules (providers office, reports) in each of HC2's offices.
        #expect(arrival.counts.providersAutoAdded == 2 * clinic.officesPerCenter)
        #expect(try grants()[newcomer] == TargetGrant(.fullAccess, addedAutomatically: true))
        let elsewhere = try #require(try fixture.mirror.snapshot().groups[GroupID("HC1/HC1 office1 MOAs")])
        #expect(elsewhere.modules[.providersOffice]?.targets[newcomer] == nil)
        let explanation = try AccessExplanation(user: UserCode(clinic.assistant(2, 1, 1)), in: try fixture.mirror.snapshot())
        #expect(explanation.lines.flatMap(\.contributions).contains { $0.via.contains("\(newcomer), added automatically") })

        // A configured provider taken out of the office's providers group loses the grant, with
        // auto-add on; the provider added automatically keeps theirs.
        let leaving = clinic.provider(2, 1, 1)
        try fixture.server.ldapmodify(clinic.membershipLDIF(leaving, group: "hc2-office1-providers", present: false))
        _ = try await fixture.sync()
        #expect(try grants()[leaving] == nil, "removed from the directory group that configured the grant")
        #expect(try grants()[newcomer]?.addedAutomatically == true)
        #expect(Set(try grants().keys) == configured.subtracting([leaving]).union([newcomer]))

        // Configured, then taken out again: the configuration's word is the last one.
        try fixture.server.ldapmodify(clinic.membershipLDIF(newcomer, group: "hc2-office1-providers", present: true))
        _ = try await fixture.sync()
        #expect(try grants()[newcomer] == TargetGrant(.fullAccess))
        try fixture.server.ldapmodify(clinic.membershipLDIF(newcomer, group: "hc2-office1-providers", present: false))
        _ = try await fixture.sync()
        #expect(try grants()[newcomer] == nil)
        let office2 = try #require(try fixture.mirror.snapshot().groups[GroupID("HC2/HC2 office2 MOAs")])
        #expect(office2.modules[.providersOffice]?.targets[newcomer]?.addedAutomatically == true, "still added automatically in the other offices")

        // Auto-add switched off: what it added goes, what the configuration gives stays.
        fixture.configuration.groups.patternRules[0].template.autoAddNewProviders = false
        _ = try await fixture.sync()
        let office2After = try #require(try fixture.mirror.snapshot().groups[GroupID("HC2/HC2 office2 MOAs")])
        #expect(office2After.modules[.providersOffice]?.targets[newcomer] == nil)
        #expect(Set(office2After.modules[.providersOffice]?.targets.keys.map { $0 } ?? [])
                == Set((1...clinic.providersPerOffice).map { clinic.provider(2, 2, $0) }))
    }

    @Test("Two providers of one name in a health center: each own group carries its provider's code; the whole reconcile goes through")
    func providersSharingAName() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        _ = try await fixture.sync()
        let suffix = fixture.clinic.suffix
        let ldif = ["hc2-grey1", "hc2-grey2"].map { uid in
            "dn: uid=\(uid),ou=people,\(suffix)\nchangetype: add\nobjectClass: inetOrgPerson\nuid: \(uid)\ncn: Felicity Grey\n"
                + "givenName: Felicity\nsn: Grey\ndepartmentNumber: HC2\nemployeeType: provider\n\n"
        }.joined()
        try fixture.server.ldapmodify(ldif)
        let report = try await fixture.sync()
        #expect(report.problems == [])
        #expect(Set(report.newProviders) == [ProviderID("hc2-grey1"), ProviderID("hc2-grey2")])
        var names = try Set(fixture.mirror.snapshot().groups.values.filter { $0.name.hasPrefix("Grey, Felicity") }.map(\.name))
        #expect(names == ["Grey, Felicity (hc2-grey1)", "Grey, Felicity (hc2-grey2)"])

        // When one leaves, the other's group takes the plain name again.
        try fixture.server.ldapmodify("dn: uid=hc2-grey1,ou=people,\(suffix)\nchangetype: delete\n")
        let after = try await fixture.sync()
        #expect(after.problems == [])
        names = try Set(fixture.mirror.snapshot().groups.values.filter { $0.name.hasPrefix("Grey, Felicity") }.map(\.name))
        #expect(names.contains("Grey, Felicity"))
        #expect(try fixture.mirror.snapshot().groups[GroupID("HC2/provider:hc2-grey2")]?.name == "Grey, Felicity")
    }

    @Test("The safety breaker holds for an empty subtree and for mass deactivations; --force applies")
    func breaker() async throws {
        var fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        _ = try await fixture.sync()
        let before = try fixture.mirror.snapshot()

        // Base DN pointed at an empty subtree: nothing comes back, nothing may be revoked.
        var emptied = fixture
        emptied.configuration.users.base = "ou=policies,\(fixture.clinic.suffix)"
        await #expect(throws: ReconcileError.self) { _ = try await emptied.sync() }
        do {
            _ = try await emptied.sync()
        } catch let ReconcileError.breaker(trip, _) {
            #expect(trip.description.contains("no users at all"))
        }
        #expect(try fixture.mirror.snapshot() == before)

        // Ten deletions: 8 % of the active users, over the 5 % limit. Refused.
        let writer = try await fixture.writer()
        let doomed = (1...10).map { fixture.clinic.teamMember(2, ClinicDirectory.teams[$0 % 4], $0 / 4 + 1) }
        for uid in doomed { try await writer.delete(fixture.clinic.dn(uid)) }
        func refusal() async throws -> (BreakerTrip, PlanCounts)? {
            do {
                _ = try await fixture.sync()
            } catch let ReconcileError.breaker(trip, counts) {
                return (trip, counts)
            }
            return nil
        }
        let byShare = try #require(try await refusal())
        #expect(byShare.0.description.contains("10 of \(before.users.count) active users"))
        #expect(byShare.0.description.contains("--force"))
        #expect(byShare.1.usersDeactivated == 10)
        #expect(try fixture.mirror.snapshot() == before)

        // Over an absolute limit: refused too.
        fixture.configuration.safety = .init(maxDeactivations: 9, maxDeactivationPercent: 100)
        let byCount = try #require(try await refusal())
        #expect(byCount.0.description.contains("more than the limit of 9"))
        #expect(try fixture.mirror.snapshot() == before)

        let forced = try await fixture.sync(force: true)
        #expect(forced.counts.usersDeactivated == 10)
        #expect(try fixture.mirror.snapshot().users.count == before.users.count)
        await writer.close()
    }

    @Test("Entries the mapping cannot handle are skipped and reported once; the rest syncs")
    func badEntries() async throws {
        let suffix = "dc=clinic,dc=test"
        let extra = """
            dn: cn=No Code,ou=people,\(suffix)
            objectClass: inetOrgPerson
            cn: No Code
            sn: Code

            dn: uid=Twin,ou=people,\(suffix)
            objectClass: inetOrgPerson
            uid: Twin
            cn: Twin One
            sn: One

            dn: cn=twin two,ou=people,\(suffix)
            objectClass: inetOrgPerson
            uid: twin
            cn: twin two
            sn: Two

            dn: uid=lost,ou=people,\(suffix)
            objectClass: inetOrgPerson
            uid: lost
            cn: Lost Soul
            sn: Soul
            departmentNumber: HC9

            dn: cn=Smith\\, John,ou=people,\(suffix)
            objectClass: inetOrgPerson
            uid: jsmith
            cn: Smith, John
            sn: Smith
            givenName: John
            departmentNumber: HC1


            """
        let fixture = try await ClinicFixture.start(extraLDIF: extra)
        defer { fixture.server.shutdown() }
        let report = try await fixture.sync()
        let messages = report.problems.map(\.description)
        #expect(report.problems.count == 4, "\(messages)")
        #expect(messages.contains { $0.contains("cn=No Code") && $0.contains("no uid") })
        #expect(messages.filter { $0.lowercased().contains("twin") && $0.contains("also has") }.count == 2)
        #expect(messages.contains { $0.contains("uid=lost") && $0.contains("HC9") })
        #expect(report.counts.usersAdded == fixture.clinic.userCount + 1)
        let smith = try #require(try fixture.user("jsmith"))
        #expect(smith.displayName == "Smith, John")
        #expect(try fixture.user("twin") == nil)
        let again = try await fixture.sync()
        #expect(again.counts.isEmpty)
    }

    @Test("A provider of another health center in a pool's directory group is left out of the pool and reported; the reconcile applies, before and after")
    func poolWithAProviderOfAnotherHealthCenter() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let clinic = fixture.clinic
        #expect(try await fixture.sync().problems.isEmpty)
        // An HC2 surgeon put into HC1's orthopaedics pool by mistake: the mirror refuses a pool
        // with a provider of another center, which used to fail every reconcile from then on.
        let stranger = clinic.provider(2, 1, 1)
        try fixture.server.ldapmodify("dn: \(clinic.groupDN("hc1-ortho-pool"))\nchangetype: modify\nadd: member\nmember: \(clinic.dn(stranger))\n")
        let report = try await fixture.sync()
        let messages = report.problems.map(\.description)
        #expect(messages.contains { $0.contains("hc1-ortho-pool") && $0.contains("'\(stranger)' of HC2") && $0.contains("HC1-ORTHO") }, "\(messages)")
        #expect(report.problems.count == 1, "\(messages)")
        let pool = try #require(try fixture.mirror.snapshot().pools["HC1-ORTHO"])
        #expect(!pool.providers.contains(ProviderID(stranger)))
        #expect(!pool.providers.isEmpty)
        // A lock in the directory still reaches the mirror through the next reconcile.
        let moa = clinic.assistant(1, 1, 1)
        try fixture.server.ldapmodify("dn: \(clinic.dn(moa))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        _ = try await fixture.sync()
        #expect(try fixture.user(moa)?.state.isLocked == true)
    }

    @Test("Odd values are reported once and handled as documented: several values of a single-valued attribute, bytes that are not UTF-8, a 1 MB value; a 100k-member group is read whole")
    func oddValues() async throws {
        let suffix = "dc=clinic,dc=test"
        let huge = String(repeating: "x", count: 1 << 20)
        var extra = """
            dn: uid=twomails,ou=people,\(suffix)
            objectClass: inetOrgPerson
            uid: twomails
            cn: Two Mails
            sn: Mails
            mail: first@clinic.test
            mail: second@clinic.test
            departmentNumber: HC1

            dn: uid=bigtitle,ou=people,\(suffix)
            objectClass: inetOrgPerson
            uid: bigtitle
            cn: Big Title
            sn: Title
            title: \(huge)
            departmentNumber: HC1

            dn: uid=binary,ou=people,\(suffix)
            objectClass: inetOrgPerson
            uid: binary
            cn: Binary Tab
            sn: Tab
            audio:: //79
            departmentNumber: HC1


            """
        // A mapped group (by the MOA pattern rule) of 100,001 members, the only user among
        // them last: it maps only if the whole list was read.
        extra += "dn: cn=hc1-office99-moa,ou=groups,\(suffix)\nobjectClass: groupOfNames\ncn: hc1-office99-moa\n"
        for index in 1...100_000 { extra += "member: uid=ghost\(index),ou=people,\(suffix)\n" }
        extra += "member: uid=twomails,ou=people,\(suffix)\n\n"
        var fixture = try await ClinicFixture.start(extraLDIF: extra)
        defer { fixture.server.shutdown() }
        fixture.configuration.users.attributes.defaultDocumentTab = "audio"
        let report = try await fixture.sync()
        let messages = report.problems.map(\.description)
        #expect(messages.contains { $0.contains("uid=twomails") && $0.contains("2 values of mail") })
        #expect(messages.contains { $0.contains("uid=bigtitle") && $0.contains("1048576 bytes") })
        #expect(messages.contains { $0.contains("uid=binary") && $0.contains("audio is not valid UTF-8") })
        #expect(messages.count == 3, "each reported once: \(messages)")
        #expect(try fixture.user("twomails")?.email == "first@clinic.test")
        #expect(try fixture.user("bigtitle")?.title == nil)
        #expect(try fixture.user("bigtitle")?.state.isActive == true)
        #expect(try fixture.user("binary")?.defaultViews.documentTab == nil)
        #expect(report.usersRead == fixture.clinic.userCount + 3)
        let snapshot = try fixture.mirror.snapshot()
        let big = try #require(snapshot.groups.values.first { $0.directoryDN?.lowercased().hasPrefix("cn=hc1-office99-moa") == true })
        #expect(snapshot.groupMembers[big.id] == [UserCode("twomails")])
        let again = try await fixture.sync()
        #expect(again.counts.isEmpty)
    }

    @Test("A dry run reports the plan and changes nothing; break-glass accounts are left alone by bulk plans")
    func dryRunAndBreakGlass() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let plan = try await fixture.sync(dryRun: true)
        #expect(plan.dryRun)
        #expect(plan.counts.usersAdded == fixture.clinic.userCount)
        #expect(!plan.changes.isEmpty)
        #expect(try fixture.mirror.snapshot().users.isEmpty)
        #expect(try fixture.mirror.auditRowCount() == 0)

        _ = try await fixture.sync()
        let writer = try await fixture.writer()
        try await writer.modify(fixture.clinic.dn(ClinicDirectory.breakGlass), [.replace("pwdAccountLockedTime", [DirectoryTime.permanentLockValue])])
        let report = try await fixture.sync()
        #expect(report.counts.usersLocked == 0)
        #expect(try fixture.user(ClinicDirectory.breakGlass)?.state.isLocked == false)
        await writer.close()
    }
}

/// A task executor with one thread of its own that counts the jobs it runs.
final class CountingExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` and `count` are only touched under `condition`'s lock.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var count = 0

    init() {
        let thread = Thread { [self] in
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                count += 1
                condition.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.start()
    }

    var jobsRun: Int {
        condition.lock()
        defer { condition.unlock() }
        return count
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }
}
