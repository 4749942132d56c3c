/// What one grant of effective access is about: a module at a health center, for one provider
/// or (``provider`` nil) for the module itself.
public struct GrantKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var module: Module
    public var healthCenter: HealthCenterID
    public var provider: ProviderID?

    public init(_ module: Module, _ healthCenter: HealthCenterID, _ provider: ProviderID? = nil) {
        self.module = module
        self.healthCenter = healthCenter
        self.provider = provider
    }

    public static func < (lhs: GrantKey, rhs: GrantKey) -> Bool {
        if lhs.module != rhs.module { return lhs.module < rhs.module }
        if lhs.healthCenter != rhs.healthCenter { return lhs.healthCenter < rhs.healthCenter }
        switch (lhs.provider, rhs.provider) {
        case (nil, nil): return false
        case (nil, _): return true
        case (_, nil): return false
        case let (l?, r?): return l < r
        }
    }

    public var description: String { "\(module) at \(healthCenter)" + (provider.map { " for \($0)" } ?? "") }
}

/// One line of effective access: a module at a health center (for a provider, or the module
/// itself) with the privilege and privacy that win after combining every source.
public struct Grant: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var key: GrantKey
    public var level: AccessLevel

    public init(_ key: GrantKey, _ level: AccessLevel) {
        self.key = key
        self.level = level
    }

    public var module: Module { key.module }
    public var healthCenter: HealthCenterID { key.healthCenter }
    public var provider: ProviderID? { key.provider }
    public var privilege: Privilege { level.privilege }
    public var privacy: PrivacyLevel { level.privacy }

    public static func < (lhs: Grant, rhs: Grant) -> Bool { lhs.key < rhs.key }
    public var description: String { "\(key): \(level)" }
}

/// Why a user has no access at all.
public enum NoAccessReason: String, Sendable, Hashable, CustomStringConvertible {
    case inactive
    case locked
    /// Neither in a group nor super administrator (rule 1).
    case noGroup = "no_group"
    case unknownUser = "unknown_user"

    public var description: String {
        switch self {
        case .inactive: "the account is inactive"
        case .locked: "the account is locked"
        case .noGroup: "the user belongs to no group and is not a super administrator"
        case .unknownUser: "no such user"
        }
    }
}

/// A user's effective access: nothing (with the reason) or grants sorted by module, health
/// center and provider.
public enum EffectiveAccess: Sendable, Hashable, CustomStringConvertible {
    case noAccess(NoAccessReason)
    case grants([Grant])

    /// The grants, empty when there is no access.
    public var grants: [Grant] {
        if case .grants(let grants) = self { return grants }
        return []
    }

    /// The reason there is no access, or nil.
    public var noAccessReason: NoAccessReason? {
        if case .noAccess(let reason) = self { return reason }
        return nil
    }

    /// The winning level for one key, or nil when not granted.
    public func level(for key: GrantKey) -> AccessLevel? {
        grants.first { $0.key == key }?.level
    }

    /// The grants as a dictionary.
    public var byKey: [GrantKey: AccessLevel] {
        Dictionary(uniqueKeysWithValues: grants.map { ($0.key, $0.level) })
    }

    public var description: String {
        switch self {
        case .noAccess(let reason): "no access: \(reason)"
        case .grants(let grants): grants.map(\.description).joined(separator: "\n")
        }
    }

    /// Computes a user's effective access from their groups and roles (rules 1, 2, 4, 5).
    ///
    /// Inactive, then locked users have none. Super administrators (the flag or a role with
    /// ``Role/isAllAccess``) get every module at every health center, for every provider, at
    /// Full Access with the least private level. Anyone else needs a group; their grants are
    /// combined per key with ``AccessLevel/combined(with:)``, so group order never matters.
    /// Pool grants expand to the pool's providers, or with ``PoolVisibility/reachableProvidersOnly``
    /// to those the user reaches in the same module through provider groups.
    public static func compute(
        for user: User, groups: [Group], roles: [Role], pools: [PoolID: Pool],
        providers: [ProviderID: Provider], healthCenters: [HealthCenterID: HealthCenter]
    ) -> EffectiveAccess {
        if !user.state.isActive { return .noAccess(.inactive) }
        if user.state.isLocked { return .noAccess(.locked) }
        if user.isSuperAdministrator || roles.contains(where: \.isAllAccess) {
            return .grants(superAdministratorGrants(providers: providers, healthCenters: healthCenters))
        }
        if groups.isEmpty { return .noAccess(.noGroup) }

        var combined: [GrantKey: AccessLevel] = [:]
        func add(_ key: GrantKey, _ level: AccessLevel) {
            if let existing = combined[key] {
                combined[key] = existing.combined(with: level)
            } else {
                combined[key] = level
            }
        }
        var reachable: [Module: Set<ProviderID>] = [:]
        for group in groups where group.kind == .provider {
            for (module, grant) in group.modules {
                if grant.targets.isEmpty {
                    add(GrantKey(module, group.healthCenter), AccessLevel(grant.defaultPrivilege, grant.privacy))
                }
                for (target, entry) in grant.targets {
                    let provider = ProviderID(target)
                    add(GrantKey(module, group.healthCenter, provider), grant.level(of: entry))
                    reachable[module, default: []].insert(provider)
                }
            }
        }
        for group in groups where group.kind == .pool {
            for (module, grant) in group.modules {
                if grant.targets.isEmpty {
                    add(GrantKey(module, group.healthCenter), AccessLevel(grant.defaultPrivilege, grant.privacy))
                }
                for (target, entry) in grant.targets {
                    guard let pool = pools[PoolID(target)] else { continue }
                    let members = pool.visibility == .allProviders
                        ? pool.providers : pool.providers.intersection(reachable[module] ?? [])
                    for provider in members {
                        add(GrantKey(module, group.healthCenter, provider), grant.level(of: entry))
                    }
                }
            }
        }
        for role in roles {
            for (module, privilege) in role.modules {
                for hc in user.healthCenters {
                    add(GrantKey(module, hc), AccessLevel(privilege, .toggleDefaultOff))
                }
            }
        }
        return .grants(combined.map { Grant($0.key, $0.value) }.sorted())
    }

    /// Everything a super administrator gets: each module at each health center, and each
    /// provider-scoped module for each provider of that health center, at Full Access.
    public static func superAdministratorGrants(
        providers: [ProviderID: Provider], healthCenters: [HealthCenterID: HealthCenter]
    ) -> [Grant] {
        var grants: [Grant] = []
        for module in Module.allCases {
            for hc in healthCenters.keys {
                grants.append(Grant(GrantKey(module, hc), .unrestricted))
            }
            guard module.isProviderScoped else { continue }
            for provider in providers.values {
                grants.append(Grant(GrantKey(module, provider.healthCenter, provider.id), .unrestricted))
            }
        }
        return grants.sorted()
    }
}
