import AccessModel
import Mirror
import Sync

// The `--json` forms of the read commands whose text is for people. Every key is written, an
// absent value as `null`, as in the user document: a script can rely on the keys.

/// `roster user explain --json`: each grant of the user's effective access, with the groups and
/// roles that gave it and which of them decided it.
struct ExplanationJSON: Encodable {
    struct Contribution: Encodable {
        var kind: String
        var name: String
        var directoryGroup: String?
        /// The roster.yaml rule that makes the group or role (`groups.pattern_rules[0]`, say).
        var rule: String?
        var via: String
        var privilege: String
        var privacy: String
        /// Whether this contribution's level is the one that holds (the most restrictive).
        var decides: Bool

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(kind, forKey: .kind)
            try container.encode(name, forKey: .name)
            try container.encode(directoryGroup, forKey: .directoryGroup)
            try container.encode(rule, forKey: .rule)
            try container.encode(via, forKey: .via)
            try container.encode(privilege, forKey: .privilege)
            try container.encode(privacy, forKey: .privacy)
            try container.encode(decides, forKey: .decides)
        }

        private enum CodingKeys: String, CodingKey { case kind, name, directoryGroup, rule, via, privilege, privacy, decides }
    }

    struct Grant: Encodable {
        var module: String
        var healthCenter: String
        var provider: String?
        var privilege: String
        var privacy: String
        var contributions: [Contribution]

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(module, forKey: .module)
            try container.encode(healthCenter, forKey: .healthCenter)
            try container.encode(provider, forKey: .provider)
            try container.encode(privilege, forKey: .privilege)
            try container.encode(privacy, forKey: .privacy)
            try container.encode(contributions, forKey: .contributions)
        }

        private enum CodingKeys: String, CodingKey { case module, healthCenter, provider, privilege, privacy, contributions }
    }

    var userCode: String
    var displayName: String
    var state: String
    var superAdministrator: Bool
    /// `no_group`, `locked`, `inactive` when the user has no access; nil otherwise.
    var noAccessReason: String?
    var grants: [Grant]

    init(_ explanation: AccessExplanation) {
        userCode = explanation.user.code.rawValue
        displayName = explanation.user.displayName
        state = "\(explanation.user.state)"
        superAdministrator = explanation.user.isSuperAdministrator
        if case .noAccess(let reason) = explanation.result { noAccessReason = reason.rawValue }
        grants = explanation.lines.map { line in
            Grant(module: line.grant.module.rawValue, healthCenter: line.grant.healthCenter.rawValue, provider: line.grant.provider?.rawValue,
                  privilege: line.grant.level.privilege.name, privacy: line.grant.level.privacy.name,
                  contributions: line.contributions.map {
                      Contribution(kind: $0.kind, name: $0.name, directoryGroup: $0.directoryGroup, rule: $0.rule, via: $0.via,
                                   privilege: $0.level.privilege.name, privacy: $0.level.privacy.name, decides: $0.decides)
                  })
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(userCode, forKey: .userCode)
        try container.encode(displayName, forKey: .displayName)
        try container.encode(state, forKey: .state)
        try container.encode(superAdministrator, forKey: .superAdministrator)
        try container.encode(noAccessReason, forKey: .noAccessReason)
        try container.encode(grants, forKey: .grants)
    }

    private enum CodingKeys: String, CodingKey { case userCode, displayName, state, superAdministrator, noAccessReason, grants }
}

/// `roster groups show --json`: one group's venues, modules with their providers or pools (each
/// with its privilege and the privacy that applies to it) and members.
struct GroupJSON: Encodable {
    struct Target: Encodable {
        /// `provider` or `pool`.
        var kind: String
        var id: String
        var privilege: String
        /// The module's privacy, or the target's own where it has one.
        var privacy: String
    }

    struct ModuleAccess: Encodable {
        var module: String
        var privacy: String
        var defaultPrivilege: String
        var targets: [Target]
    }

    var id: String
    var name: String
    var kind: String
    var healthCenter: String
    var directoryDN: String?
    var careVenues: [String]
    var schedulingAbility: Bool
    var autoAddNewProviders: Bool
    var listedAccess: String
    var modules: [ModuleAccess]
    var members: [String]

    init(_ group: Group, members: Set<UserCode>) {
        id = group.id.rawValue
        name = group.name
        kind = group.kind.rawValue
        healthCenter = group.healthCenter.rawValue
        directoryDN = group.directoryDN
        careVenues = group.careVenues.map(\.rawValue).sorted()
        schedulingAbility = group.schedulingAbility
        autoAddNewProviders = group.autoAddNewProviders
        listedAccess = group.listedLevel.description
        modules = group.modules.keys.sorted().map { module in
            let grant = group.modules[module]!
            return ModuleAccess(module: module.rawValue, privacy: grant.privacy.name, defaultPrivilege: grant.defaultPrivilege.name,
                                targets: grant.targets.keys.sorted().map { target in
                                    let entry = grant.targets[target]!
                                    return Target(kind: group.kind == .pool ? "pool" : "provider", id: target, privilege: entry.privilege.name,
                                                  privacy: (entry.privacyOverride ?? grant.privacy).name)
                                })
        }
        self.members = members.sorted().map(\.rawValue)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(kind, forKey: .kind)
        try container.encode(healthCenter, forKey: .healthCenter)
        try container.encode(directoryDN, forKey: .directoryDN)
        try container.encode(careVenues, forKey: .careVenues)
        try container.encode(schedulingAbility, forKey: .schedulingAbility)
        try container.encode(autoAddNewProviders, forKey: .autoAddNewProviders)
        try container.encode(listedAccess, forKey: .listedAccess)
        try container.encode(modules, forKey: .modules)
        try container.encode(members, forKey: .members)
    }

    private enum CodingKeys: String, CodingKey {
        case id, name, kind, healthCenter, directoryDN, careVenues, schedulingAbility, autoAddNewProviders, listedAccess, modules, members
    }
}

/// `roster audit verify --json`: whether the chain holds, over how many rows, and where it breaks.
struct AuditVerificationJSON: Encodable {
    var intact: Bool
    var rows: Int
    var brokenAt: Int64?
    var problem: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(intact, forKey: .intact)
        try container.encode(rows, forKey: .rows)
        try container.encode(brokenAt, forKey: .brokenAt)
        try container.encode(problem, forKey: .problem)
    }

    private enum CodingKeys: String, CodingKey { case intact, rows, brokenAt, problem }
}
