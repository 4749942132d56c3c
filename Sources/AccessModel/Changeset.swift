/// The desired state of part (or all) of the model, for the mirror to reach.
///
/// Entities listed are upserted as given. ``groupMembers`` and ``roleHolders`` give the *full*
/// member set of each listed group or role: members missing from the set are removed. With
/// ``Scope/complete`` the changeset is the whole desired model: groups, roles, pools, providers,
/// care venues and health centers it does not list are removed (their memberships with them),
/// and a stored user it does not list is an error, because users are never deleted.
public struct Changeset: Sendable, Hashable {
    /// Whether the changeset lists only what changed, or everything.
    public enum Scope: String, Sendable, Hashable {
        case partial
        case complete
    }

    public var scope: Scope
    public var healthCenters: [HealthCenter]
    public var careVenues: [CareVenue]
    public var providers: [Provider]
    public var pools: [Pool]
    public var groups: [Group]
    public var roles: [Role]
    public var users: [User]
    public var groupMembers: [GroupID: Set<UserCode>]
    public var roleHolders: [RoleName: Set<UserCode>]
    /// Groups to remove (partial scope); their memberships go with them, users stay (rule 7).
    public var removedGroups: [GroupID]
    /// Users asked to be deleted: always rejected, users are never deleted (only made inactive).
    public var deletedUsers: [UserCode]

    public init(
        scope: Scope = .partial, healthCenters: [HealthCenter] = [], careVenues: [CareVenue] = [],
        providers: [Provider] = [], pools: [Pool] = [], groups: [Group] = [], roles: [Role] = [],
        users: [User] = [], groupMembers: [GroupID: Set<UserCode>] = [:], roleHolders: [RoleName: Set<UserCode>] = [:],
        removedGroups: [GroupID] = [], deletedUsers: [UserCode] = []
    ) {
        self.scope = scope
        self.healthCenters = healthCenters
        self.careVenues = careVenues
        self.providers = providers
        self.pools = pools
        self.groups = groups
        self.roles = roles
        self.users = users
        self.groupMembers = groupMembers
        self.roleHolders = roleHolders
        self.removedGroups = removedGroups
        self.deletedUsers = deletedUsers
    }

    /// The complete changeset that makes a mirror equal to `snapshot`.
    public init(complete snapshot: AccessSnapshot) {
        self.init(
            scope: .complete,
            healthCenters: snapshot.healthCenters.values.sorted { $0.id < $1.id },
            careVenues: snapshot.careVenues.values.sorted { $0.id < $1.id },
            providers: snapshot.providers.values.sorted { $0.id < $1.id },
            pools: snapshot.pools.values.sorted { $0.id < $1.id },
            groups: snapshot.groups.values.sorted { $0.id < $1.id },
            roles: snapshot.roles.values.sorted { $0.id < $1.id },
            users: snapshot.users.values.sorted { $0.code < $1.code },
            groupMembers: snapshot.groupMembers, roleHolders: snapshot.roleHolders)
    }

    /// Checks what the changeset can check alone: no deleted users, no user code twice.
    public func validateStandalone() throws(ModelError) {
        if let user = deletedUsers.first { throw .userDeleted(user: user) }
        // Users ordered by code (as a reconcile's are) have no code twice if each code is
        // greater than the one before: one comparison per user instead of one hash. (By index:
        // iterating the users themselves copies each.)
        if users.indices.dropFirst().allSatisfy({ users[$0 - 1].code < users[$0].code }) { return }
        var seen = Set<UserCode>(minimumCapacity: users.count)
        for index in users.indices where !seen.insert(users[index].code).inserted {
            throw .duplicateUserCode(users[index].code)
        }
    }
}
