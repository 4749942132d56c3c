/// The whole model at one moment: every entity and every membership.
///
/// Effective access is computed from a snapshot (``effectiveAccess(of:)``); the mirror can load
/// one, and the sync layer builds one from the directory.
public struct AccessSnapshot: Sendable, Hashable {
    public var healthCenters: [HealthCenterID: HealthCenter]
    public var careVenues: [CareVenueID: CareVenue]
    public var providers: [ProviderID: Provider]
    public var pools: [PoolID: Pool]
    public var groups: [GroupID: Group]
    public var roles: [RoleName: Role]
    public var users: UserTable
    /// Each group's members.
    public var groupMembers: [GroupID: Set<UserCode>]
    /// Each role's holders.
    public var roleHolders: [RoleName: Set<UserCode>]

    public init(
        healthCenters: [HealthCenter] = [], careVenues: [CareVenue] = [], providers: [Provider] = [],
        pools: [Pool] = [], groups: [Group] = [], roles: [Role] = [], users: [User] = [],
        groupMembers: [GroupID: Set<UserCode>] = [:], roleHolders: [RoleName: Set<UserCode>] = [:]
    ) {
        self.healthCenters = Dictionary(healthCenters.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.careVenues = Dictionary(careVenues.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.providers = Dictionary(providers.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.pools = Dictionary(pools.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.groups = Dictionary(groups.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.roles = Dictionary(roles.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.users = UserTable(users)
        self.groupMembers = groupMembers
        self.roleHolders = roleHolders
    }

    /// The groups `user` belongs to.
    public func groups(of user: UserCode) -> [Group] {
        groupMembers.compactMap { id, members in members.contains(user) ? groups[id] : nil }
    }

    /// The roles `user` holds: the base role (a user the snapshot knows holds it unassigned)
    /// and those assigned.
    public func roles(of user: UserCode) -> [Role] {
        var held = roleHolders.compactMap { name, holders in holders.contains(user) ? roles[name] : nil }
        if users[user] != nil {
            for role in roles.values where role.isBase && !held.contains(where: { $0.id == role.id }) { held.append(role) }
        }
        return held.sorted { $0.id < $1.id }
    }

    /// `user`'s effective access; a user the snapshot does not know has none.
    public func effectiveAccess(of user: UserCode) -> EffectiveAccess {
        guard let found = users[user] else { return .noAccess(.unknownUser) }
        return EffectiveAccess.compute(
            for: found, groups: groups(of: user), roles: roles(of: user),
            pools: pools, providers: providers, healthCenters: healthCenters)
    }

    /// Checks references between entities: care venues, providers and pools of a group exist
    /// and share its health center; members and holders exist; group names are unique per
    /// health center. The first problem found is thrown.
    public func validate() throws(ModelError) {
        for venue in careVenues.values.sorted(by: { $0.id < $1.id }) where healthCenters[venue.healthCenter] == nil {
            throw .unknownReference(entity: "Care venue '\(venue.id)'", refersTo: "health center \(venue.healthCenter)")
        }
        for provider in providers.values.sorted(by: { $0.id < $1.id }) where healthCenters[provider.healthCenter] == nil {
            throw .unknownReference(entity: "Provider '\(provider.id)'", refersTo: "health center \(provider.healthCenter)")
        }
        for pool in pools.values.sorted(by: { $0.id < $1.id }) {
            if healthCenters[pool.healthCenter] == nil {
                throw .unknownReference(entity: "Pool '\(pool.id)'", refersTo: "health center \(pool.healthCenter)")
            }
            for member in pool.providers.sorted() {
                guard let provider = providers[member] else {
                    throw .unknownReference(entity: "Pool '\(pool.id)'", refersTo: "provider '\(member)'")
                }
                if provider.healthCenter != pool.healthCenter {
                    throw .wrongHealthCenter(entity: "Pool '\(pool.id)'", refersTo: "provider '\(member)'", expected: pool.healthCenter, found: provider.healthCenter)
                }
            }
        }
        var names: [String: GroupID] = [:]
        for group in groups.values.sorted(by: { $0.id < $1.id }) {
            try Self.validate(group, healthCenters: healthCenters, careVenues: careVenues, providers: providers, pools: pools)
            let nameKey = group.healthCenter.rawValue + "\u{0}" + group.name
            if let other = names[nameKey] {
                throw .duplicateGroupName(name: group.name, healthCenter: group.healthCenter, groups: [other, group.id])
            }
            names[nameKey] = group.id
        }
        for user in users.values.sorted(by: { $0.code < $1.code }) {
            for hc in user.healthCenters.sorted() where healthCenters[hc] == nil {
                throw .unknownReference(entity: "User '\(user.code)'", refersTo: "health center \(hc)")
            }
        }
        for (group, members) in groupMembers.sorted(by: { $0.key < $1.key }) {
            guard let found = groups[group] else { throw .unknownReference(entity: "A membership", refersTo: "group '\(group)'") }
            for member in members.sorted() where users[member] == nil {
                throw .unknownReference(entity: "Group '\(found.name)'", refersTo: "member '\(member)'")
            }
        }
        for (role, holders) in roleHolders.sorted(by: { $0.key < $1.key }) {
            guard roles[role] != nil else { throw .unknownReference(entity: "A role assignment", refersTo: "role '\(role)'") }
            for holder in holders.sorted() where users[holder] == nil {
                throw .unknownReference(entity: "Role '\(role)'", refersTo: "holder '\(holder)'")
            }
        }
    }

    /// Checks one group's references against the given entities.
    public static func validate(
        _ group: Group, healthCenters: [HealthCenterID: HealthCenter], careVenues: [CareVenueID: CareVenue],
        providers: [ProviderID: Provider], pools: [PoolID: Pool]
    ) throws(ModelError) {
        let entity = "Group '\(group.name)'"
        if healthCenters[group.healthCenter] == nil {
            throw .unknownReference(entity: entity, refersTo: "health center \(group.healthCenter)")
        }
        for venue in group.careVenues.sorted() {
            guard let found = careVenues[venue] else { throw .unknownReference(entity: entity, refersTo: "care venue '\(venue)'") }
            if found.healthCenter != group.healthCenter {
                throw .wrongHealthCenter(entity: entity, refersTo: "care venue '\(venue)'", expected: group.healthCenter, found: found.healthCenter)
            }
        }
        for (module, grant) in group.modules.sorted(by: { $0.key < $1.key }) {
            for target in grant.targets.keys.sorted() {
                let hc: HealthCenterID?
                switch group.kind {
                case .provider: hc = providers[ProviderID(target)]?.healthCenter
                case .pool: hc = pools[PoolID(target)]?.healthCenter
                }
                guard let hc else {
                    if (group.kind == .provider && pools[PoolID(target)] != nil) || (group.kind == .pool && providers[ProviderID(target)] != nil) {
                        throw .wrongTargetKind(group: group.name, kind: group.kind, module: module, target: target)
                    }
                    throw .unknownReference(entity: entity, refersTo: "\(group.kind == .provider ? "provider" : "pool") '\(target)' in \(module)")
                }
                if hc != group.healthCenter {
                    throw .wrongHealthCenter(entity: entity, refersTo: "'\(target)' in \(module)", expected: group.healthCenter, found: hc)
                }
            }
        }
    }
}
