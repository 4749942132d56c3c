import AccessModel

/// Where each of a user's grants comes from: every group, pool or role that grants the
/// same module and provider, and which of them set the level (the most restrictive wins).
/// Pure: computed from a stored snapshot.
public struct AccessExplanation: Sendable {
    /// One group's (or role's) contribution to a grant.
    public struct Contribution: Sendable, Equatable {
        /// `group` or `role`.
        public var kind: String
        public var name: String
        /// The directory group the mapping came from, when there is one.
        public var directoryGroup: String?
        /// The configuration's rule that makes the group or role (a key path in roster.yaml,
        /// see ``MappingOrigins``), when the explanation was given the configuration.
        public var rule: String?
        /// How the grant arises: a provider entry, a pool, or the module itself.
        public var via: String
        public var level: AccessLevel
        /// Whether this contribution is the most restrictive one (the level the user gets).
        public var decides: Bool
    }

    public struct Line: Sendable {
        public var grant: Grant
        public var contributions: [Contribution]
    }

    public var user: User
    public var result: EffectiveAccess
    public var lines: [Line]
    /// What makes the user a super administrator (rule 5), when something does: the directory's
    /// super-administrator groups, or an All Access role and its rule.
    public var superAdministratorSource: String?

    /// The explanation of `user`'s access in `snapshot`; with `origins`, each contribution also
    /// names the configuration rule its group or role comes from.
    public init(user: UserCode, in snapshot: AccessSnapshot, origins: MappingOrigins? = nil) throws(ExplanationError) {
        guard let found = snapshot.users[user] else { throw ExplanationError(user: user) }
        self.user = found
        result = snapshot.effectiveAccess(of: user)
        if found.isSuperAdministrator {
            superAdministratorSource = "the super administrator groups"
        } else if let role = snapshot.roles(of: user).first(where: \.isAllAccess) {
            superAdministratorSource = "the All Access role '\(role.id.rawValue)'"
                + (role.directoryDN.map { " (directory group \($0))" } ?? "") + (origins?.origin(ofRole: role.id).map { ", \($0)" } ?? "")
        }
        var contributions: [GrantKey: [Contribution]] = [:]
        let groups = snapshot.groups(of: user)
        var reachable: [Module: Set<ProviderID>] = [:]
        for group in groups where group.kind == .provider {
            let rule = origins?.origin(of: group)
            for (module, grant) in group.modules {
                for (target, entry) in grant.targets {
                    reachable[module, default: []].insert(ProviderID(target))
                    contributions[GrantKey(module, group.healthCenter, ProviderID(target)), default: []].append(
                        Contribution(kind: "group", name: group.name, directoryGroup: group.directoryDN, rule: rule, via: entry.addedAutomatically ? "provider \(target), added automatically (a new provider, rule 6)" : "provider \(target)",
                                     level: grant.level(of: entry), decides: false))
                }
                if grant.targets.isEmpty {
                    contributions[GrantKey(module, group.healthCenter), default: []].append(
                        Contribution(kind: "group", name: group.name, directoryGroup: group.directoryDN, rule: rule, via: "module",
                                     level: AccessLevel(grant.defaultPrivilege, grant.privacy), decides: false))
                }
            }
        }
        for group in groups where group.kind == .pool {
            let rule = origins?.origin(of: group)
            for (module, grant) in group.modules {
                for (target, entry) in grant.targets {
                    guard let pool = snapshot.pools[PoolID(target)] else { continue }
                    let members = pool.visibility == .allProviders ? pool.providers : pool.providers.intersection(reachable[module] ?? [])
                    for provider in members {
                        contributions[GrantKey(module, group.healthCenter, provider), default: []].append(
                            Contribution(kind: "group", name: group.name, directoryGroup: group.directoryDN, rule: rule, via: "pool \(pool.name)",
                                         level: grant.level(of: entry), decides: false))
                    }
                }
            }
        }
        for role in snapshot.roles(of: user) {
            let rule = origins?.origin(ofRole: role.id)
            for (module, privilege) in role.modules {
                for center in found.healthCenters {
                    contributions[GrantKey(module, center), default: []].append(
                        Contribution(kind: "role", name: role.id.rawValue, directoryGroup: nil, rule: rule, via: "role",
                                     level: AccessLevel(privilege, .toggleDefaultOff), decides: false))
                }
            }
        }
        lines = result.grants.map { grant in
            var list = contributions[grant.key] ?? []
            for index in list.indices {
                list[index].decides = list[index].level.privilege == grant.privilege || list[index].level.privacy == grant.privacy
            }
            return Line(grant: grant, contributions: list)
        }
    }
}

/// The user to explain is not in the mirror.
public struct ExplanationError: Error, Sendable, CustomStringConvertible {
    public var user: UserCode
    public var description: String { "No user '\(user.rawValue)' is in the mirror; check the code, or run `roster sync` first." }
}
