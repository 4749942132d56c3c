import AccessModel
import Mirror
import Sync

// The `--json` forms of the read commands whose text is for people. Every key is written, an
// absent value as `null` (`NullWhenAbsent`), as in the user document: a script can rely on the keys.

/// `roster user explain --json`: each grant of the user's effective access, with the groups and
/// roles that gave it and which of them decided it.
struct ExplanationJSON: Encodable {
    struct Contribution: Encodable {
        var kind: String
        var name: String
        @NullWhenAbsent var directoryGroup: String?
        /// The roster.yaml rule that makes the group or role (`groups.pattern_rules[0]`, say).
        @NullWhenAbsent var rule: String?
        var via: String
        var privilege: String
        var privacy: String
        /// Whether this contribution's level is the one that holds (the most restrictive).
        var decides: Bool
    }

    struct Grant: Encodable {
        var module: String
        var healthCenter: String
        @NullWhenAbsent var provider: String?
        var privilege: String
        var privacy: String
        var contributions: [Contribution]
    }

    var userCode: String
    var displayName: String
    var state: String
    var superAdministrator: Bool
    /// `no_group`, `locked`, `inactive` when the user has no access; nil otherwise.
    @NullWhenAbsent var noAccessReason: String? = nil
    var grants: [Grant]

    init(_ explanation: AccessExplanation) {
        userCode = explanation.user.code.rawValue
        displayName = explanation.user.displayName
        state = "\(explanation.user.state)"
        superAdministrator = explanation.superAdministratorSource != nil
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
        /// Granted by rule 6 (a new provider joining an auto-add group), not by the configuration.
        var addedAutomatically: Bool
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
    @NullWhenAbsent var directoryDN: String?
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
                                    let level = grant.level(of: grant.targets[target]!)
                                    return Target(kind: group.kind == .pool ? "pool" : "provider", id: target, privilege: level.privilege.name,
                                                  privacy: level.privacy.name, addedAutomatically: grant.targets[target]!.addedAutomatically)
                                })
        }
        self.members = members.sorted().map(\.rawValue)
    }
}

/// `roster audit verify --json`: whether the chain holds, over how many rows, and where it breaks.
struct AuditVerificationJSON: Encodable {
    var intact: Bool
    var rows: Int
    @NullWhenAbsent var brokenAt: Int64?
    @NullWhenAbsent var problem: String?
}
