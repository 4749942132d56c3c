extension Changeset {
    /// This complete changeset reduced to what differs from `stored`, as a partial changeset that
    /// brings a mirror holding `stored` to the same state: the entities that are new or differ,
    /// the full member (holder) set of each group (role) whose set differs or that is new or
    /// changed, and the stored groups it does not list, as removals.
    ///
    /// A mirror applies a complete changeset by comparing every stored entity inside its write
    /// transaction (1-1.3 s at 100k users, during which every revocation waits); the reduced one
    /// holds the write lock only for what changed. Entities that are equal here are left as they
    /// are there, which is also what the complete changeset would do with them.
    ///
    /// Nil when the reduction cannot say the same thing: a changeset that is not complete, an
    /// empty `stored` (a first load writes everything anyway, in bulk), or a removal of something
    /// other than a group (only a complete changeset removes health centers, care venues,
    /// providers, pools or roles).
    public func delta(from stored: AccessSnapshot) -> Changeset? {
        guard scope == .complete, !stored.users.isEmpty else { return nil }
        func removesAny<ID: Hashable, Entity: Identifiable>(_ listed: [Entity], _ stored: [ID: Entity]) -> Bool where Entity.ID == ID {
            let kept = Set(listed.map(\.id))
            return stored.keys.contains { !kept.contains($0) }
        }
        if removesAny(healthCenters, stored.healthCenters) || removesAny(careVenues, stored.careVenues)
            || removesAny(providers, stored.providers) || removesAny(pools, stored.pools) || removesAny(roles, stored.roles) {
            return nil
        }
        func differing<ID: Hashable, Entity: Identifiable & Equatable>(_ listed: [Entity], _ stored: [ID: Entity]) -> [Entity] where Entity.ID == ID {
            listed.filter { stored[$0.id] != $0 }
        }
        var delta = Changeset(scope: .partial)
        delta.healthCenters = differing(healthCenters, stored.healthCenters)
        delta.careVenues = differing(careVenues, stored.careVenues)
        delta.providers = differing(providers, stored.providers)
        delta.pools = differing(pools, stored.pools)
        delta.roles = differing(roles, stored.roles)
        delta.groups = differing(groups, stored.groups)
        // By index: iterating the users themselves copies each (every field retained and released).
        for index in users.indices where stored.users[users[index].code] != users[index] {
            delta.users.append(users[index])
        }
        // A complete changeset gives every group (role) it lists the set it names, or none; sets
        // named for groups (roles) it does not list are passed on as they are.
        func changedSets<ID: Hashable, Member: Hashable>(listed: [ID], rewritten: [ID], desired: [ID: Set<Member>],
                                                          stored: [ID: Set<Member>]) -> [ID: Set<Member>] {
            let rewritten = Set(rewritten)
            var result: [ID: Set<Member>] = [:]
            for id in listed {
                let members = desired[id] ?? []
                if rewritten.contains(id) || members != stored[id] ?? [] { result[id] = members }
            }
            let listed = Set(listed)
            for (id, members) in desired where !listed.contains(id) { result[id] = members }
            return result
        }
        delta.groupMembers = changedSets(listed: groups.map(\.id), rewritten: delta.groups.map(\.id), desired: groupMembers,
                                         stored: stored.groupMembers)
        delta.roleHolders = changedSets(listed: roles.map(\.id), rewritten: delta.roles.map(\.id), desired: roleHolders,
                                        stored: stored.roleHolders)
        let listedGroups = Set(groups.map(\.id))
        delta.removedGroups = stored.groups.keys.filter { !listedGroups.contains($0) }.sorted()
        return delta
    }
}
