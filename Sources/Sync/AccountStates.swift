import Foundation
import LDAPKit
import RosterConfig

/// What the directory says about an account right now, and when that will change by
/// itself (an expiry or the end of a lockout), so a timer can flip it on time.
public struct DirectoryAccountState: Sendable, Equatable {
    public var locked: Bool
    public var inactive: Bool
    /// Why, in words, when locked or inactive.
    public var reason: String?
    /// The next moment the state changes without a directory event.
    public var nextChange: Date?

    public init(locked: Bool = false, inactive: Bool = false, reason: String? = nil, nextChange: Date? = nil) {
        self.locked = locked
        self.inactive = inactive
        self.reason = reason
        self.nextChange = nextChange
    }

    public static let active = DirectoryAccountState()
}

/// Reads account states as each kind of directory writes them (DOMAIN.md's table).
public struct AccountStateReader: Sendable {
    public let flavor: RosterConfiguration.Flavor
    /// How long lockouts last (see ``LockoutPolicy``).
    public let lockout: LockoutPolicy

    public init(flavor: RosterConfiguration.Flavor, lockout: LockoutPolicy = LockoutPolicy()) {
        self.flavor = flavor
        self.lockout = lockout
    }

    /// A reader for a directory whose every user has the same lockout duration in seconds
    /// (0: until an administrator unlocks).
    public init(flavor: RosterConfiguration.Flavor, lockoutDuration: TimeInterval?) {
        self.init(flavor: flavor, lockout: LockoutPolicy(defaultDuration: lockoutDuration))
    }

    /// The attributes a user search must request for this flavor.
    public var attributes: [String] {
        switch flavor {
        case .openldap, .generic: ["pwdAccountLockedTime", "pwdPolicySubentry", "shadowExpire"]
        case .ds389: ["nsAccountLock", "accountUnlockTime", "passwordRetryCount", "krbPrincipalExpiration", "shadowExpire"]
        case .activedirectory: ["userAccountControl", "msDS-User-Account-Control-Computed", "accountExpires", "lockoutTime", "msDS-ResultantPSO"]
        }
    }

    /// The state of one entry at `now`.
    public func state(of entry: LDAPEntry, at now: Date) -> DirectoryAccountState {
        var state = DirectoryAccountState()
        var reasons: [String] = []
        func changeAt(_ date: Date) {
            if date > now { state.nextChange = min(state.nextChange ?? date, date) }
        }
        func lock(_ reason: String) {
            state.locked = true
            reasons.append(reason)
        }
        func deactivate(_ reason: String) {
            state.inactive = true
            reasons.append(reason)
        }
        switch flavor {
        case .openldap, .generic:
            if let locked = entry.string("pwdAccountLockedTime") {
                if locked == DirectoryTime.permanentLockValue {
                    lock("locked in the directory until an administrator unlocks it")
                } else if let since = DirectoryTime.parseGeneralizedTime(locked) {
                    if let duration = lockout.duration(policy: entry.string("pwdPolicySubentry")), duration > 0 {
                        let until = since.addingTimeInterval(duration)
                        if until > now {
                            lock("locked out by the password policy until \(Self.format(until))")
                            changeAt(until)
                        }
                    } else {
                        lock("locked out by the password policy since \(Self.format(since))")
                    }
                } else {
                    // An unreadable lock value still means locked: never let someone in on a parse error.
                    lock("locked in the directory (pwdAccountLockedTime '\(locked)')")
                }
            }
        case .ds389:
            if entry.string("nsAccountLock")?.lowercased() == "true" {
                deactivate("disabled in the directory (nsAccountLock)")
            }
            // FreeIPA's account expiry (`ipa user-mod --principal-expiration`): the Kerberos
            // principal's end, after which FreeIPA lets the user in nowhere.
            if let text = entry.string("krbPrincipalExpiration") {
                if let expiry = DirectoryTime.parseGeneralizedTime(text) {
                    if expiry <= now {
                        deactivate("account expired on \(Self.format(expiry)) (krbPrincipalExpiration)")
                    } else {
                        changeAt(expiry)
                    }
                } else {
                    // An unreadable expiry still means expired: never let someone in on a parse error.
                    deactivate("expired in the directory (krbPrincipalExpiration '\(text)')")
                }
            }
            // 389-ds writes accountUnlockTime when it locks an account after failed binds: the
            // time the lockout ends, or the epoch (19700101000000Z) when it lasts until an
            // administrator resets the password. A password reset or a good bind after the
            // lockout sets passwordRetryCount back to 0.
            if let text = entry.string("accountUnlockTime"), entry.string("passwordRetryCount").flatMap(Int.init) ?? 1 > 0 {
                if let until = DirectoryTime.parseGeneralizedTime(text) {
                    if until.timeIntervalSince1970 == 0 {
                        lock("locked out by the password policy until an administrator resets the password")
                    } else if until > now {
                        lock("locked out by the password policy until \(Self.format(until))")
                        changeAt(until)
                    }
                } else {
                    // An unreadable lock value still means locked: never let someone in on a parse error.
                    lock("locked in the directory (accountUnlockTime '\(text)')")
                }
            }
        case .activedirectory:
            if let control = entry.string("userAccountControl").flatMap(Int64.init), control & 0x2 != 0 {
                deactivate("disabled in Active Directory")
            }
            // The computed attribute is the truth (lockoutTime alone goes stale when the
            // lockout ends); lockoutTime plus the duration of the user's fine-grained password
            // policy (msDS-ResultantPSO), else the domain's, says when it will end. A policy
            // Roster could not read gives the domain's: the computed bit, read again then, decides.
            if let computed = entry.string("msDS-User-Account-Control-Computed").flatMap(Int64.init), computed & 0x10 != 0 {
                state.locked = true
                if let duration = lockout.duration(policy: entry.string("msDS-ResultantPSO")) ?? lockout.defaultDuration, duration > 0,
                   let since = entry.string("lockoutTime").flatMap(DirectoryTime.parseWindowsFileTime) {
                    let until = since.addingTimeInterval(duration)
                    reasons.append("locked out in Active Directory until \(Self.format(until))")
                    // A second's margin for the DC's clock; look again soon when the DC
                    // still says locked after the computed end.
                    state.nextChange = until > now ? until.addingTimeInterval(1) : now.addingTimeInterval(2)
                } else {
                    reasons.append("locked out in Active Directory")
                }
            }
            if let text = entry.string("accountExpires"), let expiry = DirectoryTime.parseWindowsFileTime(text) {
                if expiry <= now {
                    deactivate("account expired on \(Self.format(expiry))")
                } else {
                    changeAt(expiry)
                }
            }
        }
        if flavor != .activedirectory, let text = entry.string("shadowExpire"), let expiry = DirectoryTime.parseShadowExpire(text) {
            if expiry <= now {
                deactivate("account expired on \(Self.format(expiry))")
            } else {
                changeAt(expiry)
            }
        }
        state.reason = reasons.isEmpty ? nil : reasons.joined(separator: "; ")
        return state
    }

    static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
