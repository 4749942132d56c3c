/// A site. Has care venues; users, providers, pools and groups belong to health centers.
public struct HealthCenter: Sendable, Hashable, Identifiable {
    public var id: HealthCenterID
    public var name: String

    public init(id: HealthCenterID, name: String) {
        self.id = id
        self.name = name
    }
}

/// An operating room or clinic of one health center.
public struct CareVenue: Sendable, Hashable, Identifiable {
    public var id: CareVenueID
    public var healthCenter: HealthCenterID
    public var name: String

    public init(id: CareVenueID, healthCenter: HealthCenterID, name: String) {
        self.id = id
        self.healthCenter = healthCenter
        self.name = name
    }
}

/// A clinician whose patients and wait list users get access to.
public struct Provider: Sendable, Hashable, Identifiable {
    public var id: ProviderID
    public var healthCenter: HealthCenterID
    /// "Last, First".
    public var displayName: String
    /// The directory entry's stable id (entryUUID / objectGUID), when it came from the directory.
    public var directoryID: String?

    public init(id: ProviderID, healthCenter: HealthCenterID, displayName: String, directoryID: String? = nil) {
        self.id = id
        self.healthCenter = healthCenter
        self.displayName = displayName
        self.directoryID = directoryID
    }
}

/// Which providers of a pool a pool grant reaches.
public enum PoolVisibility: String, Sendable, Hashable, CaseIterable {
    /// Members see every provider in the pool.
    case allProviders = "all_providers"
    /// Members see only the pool's providers they already reach through their provider groups
    /// (in the same module).
    case reachableProvidersOnly = "reachable_providers_only"
}

/// A named set of providers of one health center.
public struct Pool: Sendable, Hashable, Identifiable {
    public var id: PoolID
    public var healthCenter: HealthCenterID
    public var name: String
    public var providers: Set<ProviderID>
    public var visibility: PoolVisibility

    public init(
        id: PoolID, healthCenter: HealthCenterID, name: String, providers: Set<ProviderID>,
        visibility: PoolVisibility = .allProviders
    ) {
        self.id = id
        self.healthCenter = healthCenter
        self.name = name
        self.providers = providers
        self.visibility = visibility
    }
}

/// A named bundle of module privileges. The All Access role equals super administrator.
///
/// A role's modules apply at each of the holder's health centers, without provider scope,
/// and only for users who belong to at least one group (rule 1).
public struct Role: Sendable, Hashable, Identifiable {
    public var id: RoleName
    public var modules: [Module: Privilege]
    /// Whether holding this role makes the user a super administrator.
    public var isAllAccess: Bool
    /// Whether this is the base role, which every user holds without being assigned it (so
    /// every active user does). A model has one; its holders are never listed.
    public var isBase: Bool
    /// The directory group whose members hold the role, when one does: the source its
    /// assignments are audited with.
    public var directoryDN: String?

    public init(id: RoleName, modules: [Module: Privilege] = [:], isAllAccess: Bool = false, isBase: Bool = false,
                directoryDN: String? = nil) {
        self.id = id
        self.modules = modules
        self.isAllAccess = isAllAccess
        self.isBase = isBase
        self.directoryDN = directoryDN
    }

    /// Whether holding the role can change what a user may do: All Access, or a module beyond
    /// User Preferences at Full Access (which every group grants already, and a role's modules
    /// reach only users who have a group).
    public var changesAccess: Bool {
        isAllAccess || modules.contains { $0.key != .userPreferences || $0.value != .fullAccess }
    }

    /// The base role when the configuration names none: User Preferences, which every group
    /// grants too.
    public static let base = Role(id: "Base", modules: [.userPreferences: .fullAccess], isBase: true)
    /// Everything, everywhere, Full Access.
    public static let allAccess = Role(id: "All Access", isAllAccess: true)
}

/// A user's default views in the application.
///
/// Most users have none set. The three texts live in one immutable box, absent when all three
/// are nil, so a `User` carries 8 bytes for them instead of 48 (a reconcile holds 100k users in
/// three forms at once) and a copy of a user retains one reference instead of three.
public struct DefaultViews: Sendable, Hashable {
    private final class Texts: Sendable {
        let workflow: String?
        let patient: String?
        let documentTab: String?

        init(_ workflow: String?, _ patient: String?, _ documentTab: String?) {
            self.workflow = workflow
            self.patient = patient
            self.documentTab = documentTab
        }
    }

    private var texts: Texts?

    public init(workflow: String? = nil, patient: String? = nil, documentTab: String? = nil) {
        texts = workflow == nil && patient == nil && documentTab == nil ? nil : Texts(workflow, patient, documentTab)
    }

    public var workflow: String? {
        get { texts?.workflow }
        set { self = DefaultViews(workflow: newValue, patient: patient, documentTab: documentTab) }
    }
    public var patient: String? {
        get { texts?.patient }
        set { self = DefaultViews(workflow: workflow, patient: newValue, documentTab: documentTab) }
    }
    public var documentTab: String? {
        get { texts?.documentTab }
        set { self = DefaultViews(workflow: workflow, patient: patient, documentTab: newValue) }
    }

    public static func == (a: DefaultViews, b: DefaultViews) -> Bool {
        a.texts === b.texts || (a.workflow == b.workflow && a.patient == b.patient && a.documentTab == b.documentTab)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(workflow)
        hasher.combine(patient)
        hasher.combine(documentTab)
    }
}
