/// Whether a group grants providers or pools. Never changes for a group.
public enum GroupKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case provider
    case pool

    public var description: String { rawValue }
}

/// What a group grants for one provider (or pool) in one module.
public struct TargetGrant: Sendable, Hashable {
    public var privilege: Privilege
    /// A per-provider privacy level, allowed only when the module's level is forced (rule 4).
    public var privacyOverride: PrivacyLevel?
    /// Whether rule 6 granted it (a new provider joining an auto-add group) rather than the
    /// group's configured providers. Such a grant stays while the switch is on and the provider
    /// is of the group's health center; one the configuration gives goes when the configuration
    /// stops giving it.
    public var addedAutomatically: Bool

    public init(_ privilege: Privilege = .fullAccess, privacyOverride: PrivacyLevel? = nil, addedAutomatically: Bool = false) {
        self.privilege = privilege
        self.privacyOverride = privacyOverride
        self.addedAutomatically = addedAutomatically
    }
}

/// What a group grants in one module: a privacy level for the module and a privilege per
/// provider (provider group) or pool (pool group).
///
/// A module with no providers or pools grants the module itself (no provider scope) at
/// ``defaultPrivilege``; that is how User Preferences and administrative modules are granted.
public struct ModuleGrant: Sendable, Hashable {
    public var privacy: PrivacyLevel
    /// The privilege new entries get (auto-added providers, rule 6), and the module-level privilege
    /// when there are no entries.
    public var defaultPrivilege: Privilege
    /// Provider groups: keyed by provider code. Pool groups: keyed by pool code.
    public var targets: [String: TargetGrant]

    public init(privacy: PrivacyLevel = .toggleDefaultOff, defaultPrivilege: Privilege = .fullAccess, targets: [String: TargetGrant] = [:]) {
        self.privacy = privacy
        self.defaultPrivilege = defaultPrivilege
        self.targets = targets
    }

    /// A provider-group module grant.
    public static func providers(_ entries: [ProviderID: TargetGrant], privacy: PrivacyLevel = .toggleDefaultOff, defaultPrivilege: Privilege = .fullAccess) -> ModuleGrant {
        ModuleGrant(privacy: privacy, defaultPrivilege: defaultPrivilege, targets: Dictionary(uniqueKeysWithValues: entries.map { ($0.key.rawValue, $0.value) }))
    }

    /// A pool-group module grant.
    public static func pools(_ entries: [PoolID: TargetGrant], privacy: PrivacyLevel = .toggleDefaultOff, defaultPrivilege: Privilege = .fullAccess) -> ModuleGrant {
        ModuleGrant(privacy: privacy, defaultPrivilege: defaultPrivilege, targets: Dictionary(uniqueKeysWithValues: entries.map { ($0.key.rawValue, $0.value) }))
    }

    /// The level one target gets: its privilege with the override or the module's privacy.
    public func level(of target: TargetGrant) -> AccessLevel {
        AccessLevel(target.privilege, target.privacyOverride ?? privacy)
    }

    /// The most restrictive level of the module's entries (rule 3), or the module level if none.
    public var listedLevel: AccessLevel {
        targets.values.reduce(AccessLevel(defaultPrivilege, privacy)) { $0.combined(with: level(of: $1)) }
    }
}

/// A provider group or pool group: one health center, at least one care venue, and module grants.
///
/// Built through ``init(id:name:kind:healthCenter:careVenues:modules:schedulingAbility:autoAddNewProviders:directoryDN:)``,
/// which checks the group's own invariants and always adds User Preferences. That the kind and
/// health center never change is checked by ``checkTransition(from:)``.
public struct Group: Sendable, Hashable, Identifiable {
    public let id: GroupID
    public var name: String
    public let kind: GroupKind
    public let healthCenter: HealthCenterID
    public private(set) var careVenues: Set<CareVenueID>
    public private(set) var modules: [Module: ModuleGrant]
    /// Members may create scheduling blocks (on by default).
    public var schedulingAbility: Bool
    /// New providers of the health center are added to this group (off by default, rule 6).
    public var autoAddNewProviders: Bool
    /// The directory entry the group comes from, for audit rows.
    public var directoryDN: String?

    public init(
        id: GroupID, name: String, kind: GroupKind, healthCenter: HealthCenterID,
        careVenues: Set<CareVenueID>, modules: [Module: ModuleGrant] = [:],
        schedulingAbility: Bool = true, autoAddNewProviders: Bool = false, directoryDN: String? = nil
    ) throws(ModelError) {
        guard !id.rawValue.isEmpty else { throw .emptyIdentifier(entity: "Group '\(name)'") }
        guard !careVenues.isEmpty else { throw .groupWithoutCareVenue(group: name, healthCenter: healthCenter) }
        var modules = modules
        if let prefs = modules[.userPreferences], !prefs.targets.isEmpty { throw .userPreferencesWithTargets(group: name) }
        if modules[.userPreferences] == nil { modules[.userPreferences] = ModuleGrant() }
        for (module, grant) in modules {
            for (target, entry) in grant.targets {
                guard let override = entry.privacyOverride else { continue }
                guard grant.privacy.isForced else {
                    throw .privacyOverrideOnToggleLevel(group: name, module: module, target: target, level: grant.privacy)
                }
                guard override.isForced else {
                    throw .privacyOverrideToToggleLevel(group: name, module: module, target: target, level: override)
                }
            }
        }
        self.id = id
        self.name = name
        self.kind = kind
        self.healthCenter = healthCenter
        self.careVenues = careVenues
        self.modules = modules
        self.schedulingAbility = schedulingAbility
        self.autoAddNewProviders = autoAddNewProviders
        self.directoryDN = directoryDN
    }

    /// Throws when `stored` (the group as it was) and this value differ in kind or health center.
    public func checkTransition(from stored: Group) throws(ModelError) {
        try Group.checkTransition(name: name, fromKind: stored.kind, toKind: kind, fromHealthCenter: stored.healthCenter, toHealthCenter: healthCenter)
    }

    /// The same check on stored columns, for callers that have not rebuilt the old group.
    public static func checkTransition(
        name: String, fromKind: GroupKind, toKind: GroupKind, fromHealthCenter: HealthCenterID, toHealthCenter: HealthCenterID
    ) throws(ModelError) {
        if fromHealthCenter != toHealthCenter {
            throw .groupHealthCenterChanged(group: name, from: fromHealthCenter, to: toHealthCenter)
        }
        if fromKind != toKind { throw .groupKindChanged(group: name, from: fromKind, to: toKind) }
    }

    /// A copy covering these care venues instead; throws if there are none.
    public func withCareVenues(_ venues: Set<CareVenueID>) throws(ModelError) -> Group {
        guard !venues.isEmpty else { throw .groupWithoutCareVenue(group: name, healthCenter: healthCenter) }
        var copy = self
        copy.careVenues = venues
        return copy
    }

    /// A copy granting these modules instead, checked like a new group.
    public func withModules(_ modules: [Module: ModuleGrant]) throws(ModelError) -> Group {
        try Group(
            id: id, name: name, kind: kind, healthCenter: healthCenter, careVenues: careVenues, modules: modules,
            schedulingAbility: schedulingAbility, autoAddNewProviders: autoAddNewProviders, directoryDN: directoryDN)
    }

    /// The most restrictive level of all the group's entries, as listings show it (rule 3).
    public var listedLevel: AccessLevel {
        modules.filter { $0.key != .userPreferences }.values.reduce(AccessLevel.unrestricted) { $0.combined(with: $1.listedLevel) }
    }

    /// A copy with `provider` added to every module at the module's default privilege, as rule 6
    /// does for groups whose auto-add switch is on. User Preferences is left alone.
    public func addingProvider(_ provider: ProviderID) -> Group {
        var copy = self
        copy.addProviders(CollectionOfOne(provider))
        return copy
    }

    /// Adds each of `providers` to every module at the module's default privilege, marked as added
    /// automatically (rule 6), in place: adding many providers one copy at a time copied the
    /// growing grants each time. Providers a module already grants keep their grant; User
    /// Preferences is left alone.
    public mutating func addProviders(_ providers: some Sequence<ProviderID>) {
        guard kind == .provider else { return }
        for module in modules.keys where module.isProviderScoped {
            let privilege = modules[module]!.defaultPrivilege
            for provider in providers where modules[module]!.targets[provider.rawValue] == nil {
                modules[module]!.targets[provider.rawValue] = TargetGrant(privilege, addedAutomatically: true)
            }
        }
    }

    /// The provider group rule 6 creates for a new provider: named after them, in their health
    /// center, granting them in `modules` at Full Access.
    public static func providerGroup(
        for provider: Provider, id: GroupID, careVenues: Set<CareVenueID>, modules: Set<Module> = [.providersOffice]
    ) throws(ModelError) -> Group {
        var grants: [Module: ModuleGrant] = [:]
        for module in modules where module.isProviderScoped {
            grants[module] = .providers([provider.id: TargetGrant(.fullAccess)])
        }
        return try Group(id: id, name: provider.displayName, kind: .provider, healthCenter: provider.healthCenter, careVenues: careVenues, modules: grants)
    }
}
