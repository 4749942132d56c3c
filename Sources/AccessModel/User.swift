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
///
/// A value type whose fields live behind one reference, copied on write: a user is a word wide
/// wherever it is stored, so the dictionaries and arrays that hold every user of a directory (a
/// reconcile holds three such collections at 100k users) stay small, and moving users between
/// them copies no fields.
public struct User: Sendable, Hashable, Identifiable {
    /// The fields, compared and hashed as the user's value.
    private struct Fields: Hashable {
        var code: UserCode
        var directoryID: String?
        var directoryDN: String?
        var firstName: String
        var lastName: String
        var title: String?
        var email: String?
        var healthCenters: Set<HealthCenterID>
        var isSuperAdministrator: Bool
        var state: AccountState
        var autoLogoutMinutes: Int
        var defaultViews: DefaultViews
        var isBreakGlass: Bool
        var flags: [String: Bool]
    }

    // @unchecked: a box is changed only through `fields`'s setter, and only while this value
    // holds the sole reference to it; a shared box is copied first.
    private final class Box: @unchecked Sendable {
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    /// The fields, for changing: a box another value shares is copied before the change.
    private var fields: Fields {
        get { box.fields }
        _modify {
            if !isKnownUniquelyReferenced(&box) { box = Box(box.fields) }
            yield &box.fields
        }
    }

    public var code: UserCode { get { box.fields.code } set { fields.code = newValue } }
    /// The directory entry's stable id (entryUUID / objectGUID).
    public var directoryID: String? { get { box.fields.directoryID } set { fields.directoryID = newValue } }
    /// The directory entry's DN, for people and audit rows.
    public var directoryDN: String? { get { box.fields.directoryDN } set { fields.directoryDN = newValue } }
    public var firstName: String { get { box.fields.firstName } set { fields.firstName = newValue } }
    public var lastName: String { get { box.fields.lastName } set { fields.lastName = newValue } }
    public var title: String? { get { box.fields.title } set { fields.title = newValue } }
    public var email: String? { get { box.fields.email } set { fields.email = newValue } }
    public var healthCenters: Set<HealthCenterID> { get { box.fields.healthCenters } set { fields.healthCenters = newValue } }
    public var isSuperAdministrator: Bool { get { box.fields.isSuperAdministrator } set { fields.isSuperAdministrator = newValue } }
    public var state: AccountState { get { box.fields.state } set { fields.state = newValue } }
    /// Minutes of inactivity after which the application logs the user out.
    public var autoLogoutMinutes: Int { get { box.fields.autoLogoutMinutes } set { fields.autoLogoutMinutes = newValue } }
    public var defaultViews: DefaultViews { get { box.fields.defaultViews } set { fields.defaultViews = newValue } }
    /// An emergency ("break-glass") account: exempt from mass changes, every change audited loudly.
    public var isBreakGlass: Bool { get { box.fields.isBreakGlass } set { fields.isBreakGlass = newValue } }
    /// Free-form switches mapped from the directory, e.g. `disable_dynamic_web_twain`.
    public var flags: [String: Bool] { get { box.fields.flags } set { fields.flags = newValue } }

    public static func == (lhs: User, rhs: User) -> Bool { lhs.box === rhs.box || lhs.box.fields == rhs.box.fields }
    public func hash(into hasher: inout Hasher) { hasher.combine(box.fields) }

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
        box = Box(Fields(
            code: code, directoryID: directoryID, directoryDN: directoryDN, firstName: firstName, lastName: lastName, title: title,
            email: email, healthCenters: healthCenters, isSuperAdministrator: isSuperAdministrator, state: state,
            autoLogoutMinutes: autoLogoutMinutes, defaultViews: defaultViews, isBreakGlass: isBreakGlass, flags: flags))
    }
}
