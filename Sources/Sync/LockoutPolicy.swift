import Foundation
import LDAPKit
import RosterConfig

/// How long a directory's password-policy lockouts last: what turns the start of a lockout
/// (ppolicy's `pwdAccountLockedTime`, Active Directory's `lockoutTime`) into its end, when
/// Roster's own timer unlocks the account (no directory event marks it).
///
/// A duration of 0 means until an administrator unlocks. An unknown duration (nil) locks until
/// the directory clears the lock: that locks too long, never too short.
public struct LockoutPolicy: Sendable, Hashable, CustomStringConvertible {
    /// The duration for users without a policy of their own.
    public var defaultDuration: TimeInterval?
    /// ppolicy: each policy entry's duration, by normalized DN (a user names theirs in
    /// `pwdPolicySubentry`).
    public var durationsByPolicy: [String: TimeInterval]

    public init(defaultDuration: TimeInterval? = nil, durationsByPolicy: [String: TimeInterval] = [:]) {
        self.defaultDuration = defaultDuration
        self.durationsByPolicy = durationsByPolicy
    }

    /// The duration for a user whose `pwdPolicySubentry` is `policy` (nil: none named). A
    /// policy Roster could not read gives no duration rather than the default's.
    public func duration(policy: String?) -> TimeInterval? {
        guard let policy else { return defaultDuration }
        return durationsByPolicy[DN.normalize(policy)]
    }

    /// The same text for the same policy in every process (part of the stored entries'
    /// fingerprint: a changed duration means they are mapped again).
    public var description: String {
        let policies = durationsByPolicy.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "default=" + (defaultDuration.map { "\($0)" } ?? "none") + ";" + policies.joined(separator: ";")
    }

    /// Reads the policy that applies to `configuration`'s users.
    /// - OpenLDAP (and `generic`): every `pwdPolicy` entry under the base DN. The default is
    ///   `directory.default_password_policy` when set, else the only policy when there is one;
    ///   with several and none named, users without `pwdPolicySubentry` get no duration.
    /// - Active Directory: the domain's `lockoutDuration`, and each fine-grained password
    ///   policy's `msDS-LockoutDuration` (a user's `msDS-ResultantPSO` names theirs). Reading
    ///   those needs rights a bind account often lacks: unread, their users get the domain's.
    /// - 389-ds: nothing (`accountUnlockTime` carries the end itself).
    /// A directory without the ppolicy schema gives an empty policy.
    public static func read(_ configuration: RosterConfiguration, connection: LDAPConnection) async throws -> LockoutPolicy {
        let directory = configuration.directory
        switch directory.flavor {
        case .activedirectory:
            let duration = try await connection.read(directory.baseDN, attributes: ["lockoutDuration"])?
                .string("lockoutDuration").flatMap(DirectoryTime.parseADInterval)
            var durations: [String: TimeInterval] = [:]
            do {
                for try await entry in connection.search(base: "CN=Password Settings Container,CN=System,\(directory.baseDN)",
                                                         filter: "(objectClass=msDS-PasswordSettings)",
                                                         attributes: ["msDS-LockoutDuration"], pageSize: directory.pageSize) {
                    if let value = entry.string("msDS-LockoutDuration").flatMap(DirectoryTime.parseADInterval) {
                        durations[DN.normalize(entry.dn)] = value
                    }
                }
            } catch let error as LDAPError where !error.code.isConnectionFailure {
                // No container (a domain below 2008's level) or no right to read it.
            }
            return LockoutPolicy(defaultDuration: duration, durationsByPolicy: durations)
        case .ds389:
            return LockoutPolicy()
        case .openldap, .generic:
            var durations: [String: TimeInterval] = [:]
            do {
                for try await entry in connection.search(base: directory.baseDN, filter: "(objectClass=pwdPolicy)",
                                                         attributes: ["pwdLockoutDuration"], pageSize: directory.pageSize) {
                    // No pwdLockoutDuration: ppolicy's default, 0 (until an administrator unlocks).
                    durations[DN.normalize(entry.dn)] = entry.string("pwdLockoutDuration").flatMap(TimeInterval.init) ?? 0
                }
            } catch let error as LDAPError where error.code == .noSuchObject || error.code == .undefinedType
                || (directory.flavor == .generic && !error.code.isConnectionFailure) {
                return LockoutPolicy()
            }
            let defaultDuration = directory.defaultPasswordPolicy.map { durations[DN.normalize($0)] }
                ?? (durations.count == 1 ? durations.values.first : nil)
            return LockoutPolicy(defaultDuration: defaultDuration, durationsByPolicy: durations)
        }
    }
}
