/// A module (the manuals call it "application type") a group can grant.
///
/// ``userPreferences`` is granted to everyone and is part of every group automatically.
public enum Module: String, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    case administrator = "administrator"
    case providersOffice = "providers_office"
    case reports = "reports"
    case careVenue = "care_venue"
    case preSurgicalScreening = "pre_surgical_screening"
    case wtisDataEntry = "wtis_data_entry"
    case patientRegistration = "patient_registration"
    case security = "security"
    case eRequest = "erequest"
    case userPreferences = "user_preferences"

    /// Whether grants in this module name providers (or pools); User Preferences does not.
    public var isProviderScoped: Bool { self != .userPreferences }

    /// The name people read, e.g. "Provider's Office".
    public var displayName: String {
        switch self {
        case .administrator: "Administrator"
        case .providersOffice: "Provider's Office"
        case .reports: "Reports"
        case .careVenue: "Care Venue"
        case .preSurgicalScreening: "Pre-Surgical Screening"
        case .wtisDataEntry: "WTIS Data Entry"
        case .patientRegistration: "Patient Registration"
        case .security: "Security"
        case .eRequest: "eRequest"
        case .userPreferences: "User Preferences"
        }
    }

    public var description: String { displayName }

    public static func < (lhs: Module, rhs: Module) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What a user may do in a module for a provider: change state, or only look.
///
/// Ordered by permissiveness: `.readOnly < .fullAccess`; the most restrictive is the minimum.
public enum Privilege: Int, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    /// May view, print and list, but never change state.
    case readOnly = 1
    /// May do everything the module offers.
    case fullAccess = 2

    /// The stored spelling: `read_only` or `full_access`.
    public var name: String { self == .readOnly ? "read_only" : "full_access" }

    public init?(name: String) {
        switch name {
        case "read_only": self = .readOnly
        case "full_access": self = .fullAccess
        default: return nil
        }
    }

    public var description: String { self == .readOnly ? "Read-Only" : "Full Access" }

    public static func < (lhs: Privilege, rhs: Privilege) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What patient and provider identifiers a user sees in a module; higher is more private.
public enum PrivacyLevel: Int, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    /// Identifiers shown; the user may hide them.
    case toggleDefaultOff = 1
    /// Identifiers hidden; the user may show them.
    case toggleDefaultOn = 2
    /// Patient identifiers always hidden.
    case forcedPatient = 3
    /// Patient identifiers and provider names always hidden.
    case forcedPatientAndProvider = 4

    /// Whether the user cannot toggle it; only forced levels may be overridden per provider.
    public var isForced: Bool { rawValue >= 3 }

    /// The stored spelling, e.g. `forced_patient`.
    public var name: String {
        switch self {
        case .toggleDefaultOff: "toggle_default_off"
        case .toggleDefaultOn: "toggle_default_on"
        case .forcedPatient: "forced_patient"
        case .forcedPatientAndProvider: "forced_patient_and_provider"
        }
    }

    public var description: String {
        switch self {
        case .toggleDefaultOff: "Privacy Toggle (default off)"
        case .toggleDefaultOn: "Privacy Toggle (default on)"
        case .forcedPatient: "Forced Patient Privacy"
        case .forcedPatientAndProvider: "Forced Patient & Provider Privacy"
        }
    }

    public static func < (lhs: PrivacyLevel, rhs: PrivacyLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A privilege together with a privacy level: what one grant allows.
public struct AccessLevel: Sendable, Hashable, CustomStringConvertible {
    public var privilege: Privilege
    public var privacy: PrivacyLevel

    public init(_ privilege: Privilege, _ privacy: PrivacyLevel) {
        self.privilege = privilege
        self.privacy = privacy
    }

    /// The least restrictive level: Full Access, identifiers shown.
    public static let unrestricted = AccessLevel(.fullAccess, .toggleDefaultOff)

    /// The most restrictive of two levels: the lower privilege and the more private privacy.
    ///
    /// Commutative, associative and idempotent, so combining many grants never depends on order.
    public func combined(with other: AccessLevel) -> AccessLevel {
        AccessLevel(min(privilege, other.privilege), max(privacy, other.privacy))
    }

    /// Whether this level allows nothing that `other` does not (it is equal or more restrictive).
    public func isAtLeastAsRestrictive(as other: AccessLevel) -> Bool {
        privilege <= other.privilege && privacy >= other.privacy
    }

    public var description: String { "\(privilege), \(privacy)" }
}
