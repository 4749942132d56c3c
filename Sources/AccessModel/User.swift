/// Why an account is locked or inactive, kept apart by cause so that the directory clears only
/// what the directory caused (rule 8): a lock an admin set locally survives a directory unlock.
public struct AccountState: Sendable, Hashable, CustomStringConvertible {
    /// The directory reports a temporary lock (password-policy lockout, admin lock).
    public var lockedByDirectory: Bool
    /// An admin locked the account locally in Roster.
    public var lockedLocally: Bool
    /// The directory account is disabled, expired or gone.
    public var inactiveByDirectory: Bool
    /// An admin deactivated the account locally in Roster.
    public var inactiveLocally: Bool
    /// Free text saying why the account is in this state (e.g. "pwdAccountLockedTime set").
    public var reason: String?

    public init(
        lockedByDirectory: Bool = false, lockedLocally: Bool = false,
        inactiveByDirectory: Bool = false, inactiveLocally: Bool = false, reason: String? = nil
    ) {
        self.lockedByDirectory = lockedByDirectory
        self.lockedLocally = lockedLocally
        self.inactiveByDirectory = inactiveByDirectory
        self.inactiveLocally = inactiveLocally
        self.reason = reason
    }

    /// An active, unlocked account.
    public static let active = AccountState()

    public var isLocked: Bool { lockedByDirectory || lockedLocally }
    public var isActive: Bool { !(inactiveByDirectory || inactiveLocally) }

    /// Who caused the current lock or inactivity: `local`, `directory`, or nil when there is none.
    /// A local cause wins when both hold.
    public var source: StateSource? {
        if lockedLocally || inactiveLocally { return .local }
        if lockedByDirectory || inactiveByDirectory { return .directory }
        return nil
    }

    /// This state after the directory reported `locked`/`inactive`: only the directory-caused
    /// flags change; locally set flags stay as they are.
    public func updatedByDirectory(locked: Bool, inactive: Bool, reason: String? = nil) -> AccountState {
        var next = self
        next.lockedByDirectory = locked
        next.inactiveByDirectory = inactive
        next.reason = reason ?? (next.isLocked || !next.isActive ? self.reason : nil)
        return next
    }

    /// This state with the locally caused flags taken from `stored` (the directory never sets them).
    public func keepingLocalFlags(of stored: AccountState) -> AccountState {
        var next = self
        next.lockedLocally = stored.lockedLocally
        next.inactiveLocally = stored.inactiveLocally
        if next.reason == nil, next.source == .local { next.reason = stored.reason }
        return next
    }

    public var description: String {
        var parts: [String] = []
        if lockedByDirectory { parts.append("locked by the directory") }
        if lockedLocally { parts.append("locked locally") }
        if inactiveByDirectory { parts.append("inactive in the directory") }
        if inactiveLocally { parts.append("deactivated locally") }
        return parts.isEmpty ? "active" : parts.joined(separator: ", ")
    }
}

/// Who caused a lock or deactivation.
public enum StateSource: String, Sendable, Hashable {
    case directory
    case local
}

/// A person with their own login. Users are never deleted: a leaver becomes inactive.
public struct User: Sendable, Hashable, Identifiable {
    public var code: UserCode
    /// The directory entry's stable id (entryUUID / objectGUID).
    public var directoryID: String?
    /// The directory entry's DN, for people and audit rows.
    public var directoryDN: String?
    public var firstName: String
    public var lastName: String
    public var title: String?
    public var email: String?
    public var healthCenters: Set<HealthCenterID>
    public var isSuperAdministrator: Bool
    public var state: AccountState
    /// Minutes of inactivity after which the application logs the user out.
    public var autoLogoutMinutes: Int
    public var defaultViews: DefaultViews
    /// An emergency ("break-glass") account: exempt from mass changes, every change audited loudly.
    public var isBreakGlass: Bool
    /// Free-form switches mapped from the directory, e.g. `disable_dynamic_web_twain`.
    public var flags: [String: Bool]

    public var id: UserCode { code }

    /// "Last, First" (or whichever of the two is present).
    public var displayName: String {
        switch (lastName.isEmpty, firstName.isEmpty) {
        case (false, false): "\(lastName), \(firstName)"
        case (false, true): lastName
        case (true, false): firstName
        case (true, true): code.rawValue
        }
    }

    /// Builds a user; the code must be non-empty and the auto-logout positive.
    public init(
        code: UserCode, directoryID: String? = nil, directoryDN: String? = nil,
        firstName: String = "", lastName: String = "", title: String? = nil, email: String? = nil,
        healthCenters: Set<HealthCenterID> = [], isSuperAdministrator: Bool = false,
        state: AccountState = .active, autoLogoutMinutes: Int = 15,
        defaultViews: DefaultViews = DefaultViews(), isBreakGlass: Bool = false, flags: [String: Bool] = [:]
    ) throws(ModelError) {
        guard !code.key.isEmpty else { throw .emptyIdentifier(entity: "A user") }
        guard autoLogoutMinutes > 0 else { throw .negativeAutoLogout(user: code, minutes: autoLogoutMinutes) }
        self.code = code
        self.directoryID = directoryID
        self.directoryDN = directoryDN
        self.firstName = firstName
        self.lastName = lastName
        self.title = title
        self.email = email
        self.healthCenters = healthCenters
        self.isSuperAdministrator = isSuperAdministrator
        self.state = state
        self.autoLogoutMinutes = autoLogoutMinutes
        self.defaultViews = defaultViews
        self.isBreakGlass = isBreakGlass
        self.flags = flags
    }
}
