/// A value or change that breaks one of the model's rules. Its description reads as a sentence
/// naming the entity, what was wrong and the rule.
public enum ModelError: Error, Sendable, Hashable, CustomStringConvertible {
    case emptyIdentifier(entity: String)
    case groupWithoutCareVenue(group: String, healthCenter: HealthCenterID)
    case groupHealthCenterChanged(group: String, from: HealthCenterID, to: HealthCenterID)
    case groupKindChanged(group: String, from: GroupKind, to: GroupKind)
    case privacyOverrideOnToggleLevel(group: String, module: Module, target: String, level: PrivacyLevel)
    case privacyOverrideToToggleLevel(group: String, module: Module, target: String, level: PrivacyLevel)
    case wrongTargetKind(group: String, kind: GroupKind, module: Module, target: String)
    case userPreferencesWithTargets(group: String)
    case userDeleted(user: UserCode)
    case unknownReference(entity: String, refersTo: String)
    case wrongHealthCenter(entity: String, refersTo: String, expected: HealthCenterID, found: HealthCenterID)
    case duplicateGroupName(name: String, healthCenter: HealthCenterID, groups: [GroupID])
    case duplicateUserCode(UserCode)
    case negativeAutoLogout(user: UserCode, minutes: Int)

    public var description: String {
        switch self {
        case .emptyIdentifier(let entity):
            "\(entity) has an empty identifier: every entity needs a non-empty one."
        case .groupWithoutCareVenue(let group, let hc):
            "Group '\(group)' in health center \(hc) has no care venue: a group covers at least one care venue."
        case .groupHealthCenterChanged(let group, let from, let to):
            "Group '\(group)' cannot move from health center \(from) to \(to): a group's health center never changes."
        case .groupKindChanged(let group, let from, let to):
            "Group '\(group)' cannot change from a \(from) group to a \(to) group: a group's kind never changes."
        case .privacyOverrideOnToggleLevel(let group, let module, let target, let level):
            "Group '\(group)' overrides the privacy of '\(target)' in \(module), whose level is \(level): only forced privacy levels may be overridden per provider."
        case .privacyOverrideToToggleLevel(let group, let module, let target, let level):
            "Group '\(group)' overrides the privacy of '\(target)' in \(module) with \(level): a per-provider override must itself be a forced level."
        case .wrongTargetKind(let group, let kind, let module, let target):
            "Group '\(group)' is a \(kind) group but grants '\(target)' in \(module), which is not a \(kind == .provider ? "provider" : "pool"): a provider group grants providers, a pool group grants pools."
        case .userPreferencesWithTargets(let group):
            "Group '\(group)' lists providers or pools under User Preferences: that module applies to the user, not to providers."
        case .userDeleted(let user):
            "User '\(user)' cannot be deleted: users are never deleted, only made inactive."
        case .unknownReference(let entity, let refersTo):
            "\(entity) refers to \(refersTo), which does not exist: add it first or drop the reference."
        case .wrongHealthCenter(let entity, let refersTo, let expected, let found):
            "\(entity) belongs to health center \(expected) but refers to \(refersTo) of health center \(found): both must be in the same health center."
        case .duplicateGroupName(let name, let hc, let groups):
            "Groups \(groups.map { "'\($0)'" }.joined(separator: " and ")) are both named '\(name)' in health center \(hc): a group's name is unique in its health center."
        case .duplicateUserCode(let user):
            "User code '\(user)' appears twice (user codes compare case-insensitively): each person has exactly one login."
        case .negativeAutoLogout(let user, let minutes):
            "User '\(user)' has an auto-logout of \(minutes) minutes: the interval must be positive."
        }
    }
}
