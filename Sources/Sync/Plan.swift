import AccessModel

/// What a reconcile changes, counted the way an administrator reads a plan. Pure: computed
/// from the stored model and the desired changeset.
public struct PlanCounts: Sendable, Equatable, Codable {
    public var usersAdded = 0
    public var usersUpdated = 0
    public var usersLocked = 0
    public var usersUnlocked = 0
    public var usersDeactivated = 0
    public var usersReactivated = 0
    public var groupsCreated = 0
    public var groupsChanged = 0
    public var groupsRemoved = 0
    public var membershipsAdded = 0
    public var membershipsRemoved = 0
    public var providersAutoAdded = 0

    public init() {}

    /// Accounts this plan takes access from (locks or deactivations of active users): what
    /// the safety breaker limits.
    public var revocations: Int { usersLocked + usersDeactivated }

    public var isEmpty: Bool { self == PlanCounts() }

    /// Counts the differences between `stored` and `desired`.
    public static func between(stored: AccessSnapshot, desired: Changeset, newProviders: [ProviderID]) -> PlanCounts {
        var counts = PlanCounts()
        // By index, and not at all into an empty mirror: iterating the users copies each one
        // (every field retained and released), 0.1 s of a 100k-user first sync's mapping.
        if stored.users.isEmpty {
            // A new user who arrives locked or inactive loses nothing: an addition, never a
            // revocation the breaker should hold.
            counts.usersAdded = desired.users.count
        } else {
            for index in desired.users.indices {
                guard let previous = stored.users[desired.users[index].code] else {
                    counts.usersAdded += 1
                    continue
                }
                let state = desired.users[index].state
                var comparable = desired.users[index]
                comparable.state = previous.state
                if comparable != previous { counts.usersUpdated += 1 }
                if previous.state.isActive && !state.isActive { counts.usersDeactivated += 1 }
                if !previous.state.isActive && state.isActive { counts.usersReactivated += 1 }
                if !previous.state.isLocked && state.isLocked { counts.usersLocked += 1 }
                if previous.state.isLocked && !state.isLocked { counts.usersUnlocked += 1 }
            }
        }
        let desiredGroups = Dictionary(desired.groups.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for group in desired.groups {
            if let previous = stored.groups[group.id] {
                if previous != group { counts.groupsChanged += 1 }
            } else {
                counts.groupsCreated += 1
            }
        }
        counts.groupsRemoved = stored.groups.keys.filter { desiredGroups[$0] == nil }.count
        for (group, members) in desired.groupMembers {
            let before = stored.groupMembers[group] ?? []
            counts.membershipsAdded += members.subtracting(before).count
            counts.membershipsRemoved += before.subtracting(members).count
        }
        for (group, before) in stored.groupMembers where desired.groupMembers[group] == nil {
            counts.membershipsRemoved += before.count
        }
        let fresh = Set(newProviders.map(\.rawValue))
        for group in desired.groups where group.autoAddNewProviders {
            counts.providersAutoAdded += group.modules.values.reduce(0) { sum, grant in
                sum + grant.targets.count { fresh.contains($0.key) && $0.value.addedAutomatically }
            }
        }
        return counts
    }
}

/// Why the safety breaker refused a plan.
public struct BreakerTrip: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public var description: String {
        "\(reason) Nothing was changed. If the directory really changed this much, check it and run `roster sync --force`."
    }

    /// Checks a plan against the limits: nil when it may be applied.
    public static func check(counts: PlanCounts, activeUsersBefore: Int, usersInDirectory: Int,
                             maxDeactivations: Int, maxPercent: Double) -> BreakerTrip? {
        if usersInDirectory == 0 && activeUsersBefore > 0 {
            return BreakerTrip(reason: "The directory returned no users at all, while the mirror has \(activeUsersBefore) active users: the base DN, the filter or the bind account's rights are probably wrong.")
        }
        let revocations = counts.revocations
        guard revocations > 0 else { return nil }
        if revocations > maxDeactivations {
            return BreakerTrip(reason: "The plan would lock or deactivate \(revocations) users, more than the limit of \(maxDeactivations) (safety.max_deactivations).")
        }
        let share = activeUsersBefore == 0 ? 0 : Double(revocations) * 100 / Double(activeUsersBefore)
        // One account at a time is never a mass revocation, however small the directory.
        if share > maxPercent, revocations > 1 {
            let shown = (share * 10).rounded() / 10
            return BreakerTrip(reason: "The plan would lock or deactivate \(revocations) of \(activeUsersBefore) active users (\(shown) %), more than the limit of \(maxPercent) % (safety.max_deactivation_percent).")
        }
        return nil
    }
}
