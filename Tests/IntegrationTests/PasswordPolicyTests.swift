import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig
@testable import RosterService
import SlapdHarness
import Sync
import Testing

/// ppolicy lockouts made by failed binds in a real slapd with two password policies: a
/// default one and a stricter one that some users name in `pwdPolicySubentry`.
@Suite("OpenLDAP password-policy lockouts against a real slapd")
struct PasswordPolicyTests {
    static let clinic = ClinicDirectory(suffix: "dc=clinic,dc=test")
    static func policyDN(_ name: String) -> String { "cn=\(name),ou=policies,\(clinic.suffix)" }
    // Long enough that a lock seen late under a loaded machine is still seen before it ends.
    static let defaultSeconds = 10
    static let strictSeconds = 16

    /// Two policies, each locking after two failed binds, and two users with passwords: one
    /// under the default policy, one under the strict one.
    static var extraLDIF: String {
        func policy(_ name: String, seconds: Int) -> String {
            """
            dn: \(policyDN(name))
            objectClass: pwdPolicy
            objectClass: applicationProcess
            cn: \(name)
            pwdAttribute: userPassword
            pwdLockout: TRUE
            pwdMaxFailure: 2
            pwdLockoutDuration: \(seconds)


            """
        }
        func user(_ uid: String, policy: String?) -> String {
            """
            dn: \(clinic.dn(uid))
            objectClass: inetOrgPerson
            uid: \(uid)
            cn: Pat \(uid)
            givenName: Pat
            sn: \(uid)
            departmentNumber: HC1
            userPassword: the-right-one
            \(policy.map { "pwdPolicySubentry: \(policyDN($0))\n" } ?? "")

            """
        }
        return policy("default", seconds: defaultSeconds) + policy("strict", seconds: strictSeconds)
            + user("pp-default", policy: nil) + user("pp-strict", policy: "strict")
    }

    @Test("The lockout policy read from the directory: each policy's duration, and the default when the configuration names it")
    func policyIsRead() async throws {
        let fixture = try await ClinicFixture.start(Self.clinic, extraLDIF: Self.extraLDIF, defaultPasswordPolicy: Self.policyDN("default"))
        defer { fixture.server.shutdown() }
        let connection = try await LDAPConnection.connect(fixture.server.adminConfiguration())
        defer { Task { await connection.close() } }
        var configuration = fixture.configuration
        let unnamed = try await LockoutPolicy.read(configuration, connection: connection)
        #expect(unnamed.durationsByPolicy == [DN.normalize(Self.policyDN("default")): TimeInterval(Self.defaultSeconds), DN.normalize(Self.policyDN("strict")): TimeInterval(Self.strictSeconds)])
        #expect(unnamed.defaultDuration == nil, "two policies and none named: the default is not known")
        configuration.directory.defaultPasswordPolicy = Self.policyDN("default").uppercased()
        let named = try await LockoutPolicy.read(configuration, connection: connection)
        #expect(named.defaultDuration == TimeInterval(Self.defaultSeconds))
        #expect(named.duration(policy: Self.policyDN("strict")) == TimeInterval(Self.strictSeconds))
        #expect(named.duration(policy: "cn=unreadable,ou=policies,dc=clinic,dc=test") == nil)
    }

    @Test("In the daemon: failed binds lock each user, and Roster's timer unlocks each when its own policy's lockout ends (ppolicy leaves the lock attribute in place)")
    func lockoutsEndByEachUsersPolicy() async throws {
        var fixture = try await ClinicFixture.start(Self.clinic, extraLDIF: Self.extraLDIF, defaultPasswordPolicy: Self.policyDN("default"))
        defer { fixture.server.shutdown() }
        fixture.configuration.directory.defaultPasswordPolicy = Self.policyDN("default")
        let state = ServiceState(stalenessLimit: .seconds(300))
        let service = DirectoryService.quiet(configuration: fixture.configuration, mirror: fixture.mirror, state: state)
        let task = Task { try await service.run() }
        defer { task.cancel() }
        #expect(try await eventually(within: readinessTimeout) { state.readiness.isReady })
        func isLocked(_ uid: String) throws -> Bool { try fixture.mirror.user(UserCode(uid))?.state.isLocked == true }

        // Taken before the binds: each lockout starts after it.
        let lockedAt = ContinuousClock.now
        for uid in ["pp-default", "pp-strict"] {
            for _ in 0..<2 { await fixture.server.failBind(Self.clinic.dn(uid)) }
        }
        // Within the shorter lockout (a loaded machine, with the other suites running, can take seconds).
        #expect(try await eventually(within: .seconds(Int64(Self.defaultSeconds) - 2)) { try isLocked("pp-default") && isLocked("pp-strict") })
        let reason = try fixture.mirror.user(UserCode("pp-default"))?.state.reason
        #expect(reason?.contains("until") == true, "a timed lockout says when it ends: \(String(describing: reason))")

        // No directory event marks either end: the timers do, each at its own policy's time.
        #expect(try await eventually(within: .seconds(Int64(Self.defaultSeconds) + 4)) { try !isLocked("pp-default") })
        #expect(ContinuousClock.now - lockedAt >= .seconds(Self.defaultSeconds - 1), "not unlocked before the lockout ends")
        #expect(try isLocked("pp-strict"), "the strict policy's lockout lasts longer")
        #expect(try await eventually(within: .seconds(Int64(Self.strictSeconds) + 4)) { try !isLocked("pp-strict") })
        #expect(ContinuousClock.now - lockedAt >= .seconds(Self.strictSeconds - 1))

        // The directory still holds both lock attributes (cleared only at the next good bind):
        // a full reconcile now agrees with the timers.
        let report = try await fixture.sync()
        #expect(report.counts.usersLocked == 0)
        #expect(try !isLocked("pp-default") && !isLocked("pp-strict"))
        task.cancel()
        _ = await task.result
    }
}
