import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig

/// The change streams Roster follows, each with its own filter and cookie: users and groups;
/// with 389-ds also its roles and classes of service (``roles``).
public enum ChangeStreamKind: String, Sendable, CaseIterable {
    case users, groups
    /// 389-ds's role and class-of-service definitions: a lock through a role (a virtual
    /// `nsAccountLock`) changes no user entry, only these; any change to them asks for a
    /// full reconcile, which reads every user's `nsAccountLock`.
    case roles

    /// The streams Roster follows for a directory of this flavor (over RFC 4533).
    public static func followed(by flavor: RosterConfiguration.Flavor) -> [ChangeStreamKind] {
        flavor == .ds389 ? [.users, .groups, .roles] : [.users, .groups]
    }

    /// 389-ds's role and class-of-service entries (and other LDAP subentries, which 389-ds
    /// returns only to a filter naming `ldapsubentry`).
    public static let roleDefinitionsFilter = "(|(objectClass=ldapsubentry)(objectClass=nsRoleDefinition)(objectClass=cosSuperDefinition)(objectClass=cosTemplate))"

    /// The sync-state key of this stream's cookie.
    public func stateKey(_ directory: String) -> String { "\(directory)/\(rawValue)" }
}

/// What applying one change did.
public struct AppliedChange: Sendable, Equatable {
    /// Rows changed in the mirror (0 when the change was already there).
    public var changes = 0
    /// Whether someone lost access (locked, deactivated, removed from a group).
    public var revocation = false
    /// Why the change needs a full reconcile to be reflected completely (a new provider, a
    /// group used as a provider source, a group deleted...), or nil.
    public var fullReconcileReason: String?
    public var needsFullReconcile: Bool { fullReconcileReason != nil }
    /// Entries skipped, with why.
    public var problems: [MappingProblem] = []
    /// When users' directory states change by themselves next (expiry, lockout end): the user
    /// the change was about, and any member a group's change made the stream read first.
    public var nextChanges: [(UserCode, Date)] = []
    /// The user the change was about, when it was about one.
    public var user: UserCode?
    /// Set when the stream's safety breaker held deactivations back (see `DisappearanceLimit`).
    public var held: BreakerTrip?

    /// Takes in what a change applied on the way to this one did (a group's member that was
    /// read and applied first).
    mutating func absorb(_ other: AppliedChange) {
        changes += other.changes
        revocation = revocation || other.revocation
        fullReconcileReason = fullReconcileReason ?? other.fullReconcileReason
        problems += other.problems
        nextChanges += other.nextChanges
        if held == nil { held = other.held }
    }

    public static func == (lhs: AppliedChange, rhs: AppliedChange) -> Bool {
        lhs.changes == rhs.changes && lhs.revocation == rhs.revocation && lhs.fullReconcileReason == rhs.fullReconcileReason
            && lhs.problems == rhs.problems
    }
}

/// Applies directory changes one at a time, each in its own small transaction with its
/// audit rows, events and the stream's cookie: the real-time path. Used by one task.
public final class ChangeApplier {
    public let configuration: RosterConfiguration
    public let mirror: Mirror
    private var identity: DirectoryIdentity { DirectoryIdentity(flavor: configuration.directory.flavor) }
    /// A connection for the few lookups a change needs (is this user a provider?),
    /// opened again when it drops.
    private let ldap: LDAPConfiguration
    private var current: LDAPConnection?
    private let actor: Actor
    private var codeByID: [String: UserCode] = [:]
    private var codeByDN: [String: UserCode] = [:]
    /// Member DNs under the users' base that a group listed and a lookup found no mapped user
    /// at (a deleted entry the group still names, a nested group, a computer, an entry the
    /// mapping skips): not looked up again. A user who appears or becomes mappable there later
    /// is seen first by the users' stream, which then adds them to the groups listing the DN
    /// (``groupsListing(_:)``).
    private var absentMemberDNs: Set<String> = []
    private var groupsByDN: [String: [GroupID]] = [:]
    /// The stored groups' identities ``groupsByDN`` and ``referencedGroups`` were built from.
    private var indexedGroups: [GroupID: String]?
    /// DNs of directory groups the mapping reads beyond membership (provider sources,
    /// pools, roles, super administrators): a change to one needs a full reconcile. Those the
    /// configuration names, and the provider sources of the stored groups that pattern rules
    /// map (`members_of` filled in with each group's captures), found again at each reload.
    private var referencedGroups: Set<String>
    private let configuredReferences: Set<String>
    private let superAdministratorGroups: Set<String>
    /// The roles each directory group gives (normalized DN; the base role has none).
    private let rolesByDN: [String: [RoleName]]
    /// Entries reported during the current refresh (for a present phase).
    private var seenInRefresh: [ChangeStreamKind: Set<String>] = [:]
    /// How long the directory's lockouts last, for lockout-end timers: read on the lookup
    /// connection when first needed and again each time the applier readies for changes (a
    /// changed policy counts from then).
    private var lockoutPolicy: LockoutPolicy?
    /// How many users may still disappear before the stream's breaker holds.
    private var disappearances: DisappearanceLimit
    /// Active, unlocked users when the breaker last started counting (the base of its
    /// percentage); nil until a deactivation needs it (a count of every stored user).
    private var activeUsers: Int?
    private let patternRules: PatternRules
    /// Normalized DNs of the directory groups named by explicit mappings.
    private let explicitlyMapped: Set<String>
    /// Whether group changes are expanded through nested groups here (`groups.nested`): for the
    /// RFC 4533 and polled streams. Active Directory's stream hands over groups with their
    /// effective members already (its `GroupIndex`).
    private let expandsNesting: Bool

    public init(configuration: RosterConfiguration, mirror: Mirror) {
        self.configuration = configuration
        self.mirror = mirror
        self.ldap = Reconciler.ldapConfiguration(configuration.directory)
        actor = .directory(configuration.directory.name)
        var referenced = Set(configuration.pools.map { DN.normalize($0.providersGroup) })
        referenced.formUnion(configuration.roles.compactMap { $0.directoryGroup.map(DN.normalize) })
        for mapping in configuration.groups.mappings {
            if case .membersOf(let dn) = mapping.group.providers { referenced.insert(DN.normalize(dn)) }
        }
        superAdministratorGroups = Set(configuration.users.superAdministratorGroups.map(DN.normalize))
        rolesByDN = Dictionary(grouping: configuration.roles.filter { !$0.isBase && $0.directoryGroup != nil },
                               by: { DN.normalize($0.directoryGroup!) }).mapValues { $0.map(\.name) }
        referenced.formUnion(superAdministratorGroups)
        configuredReferences = referenced
        referencedGroups = referenced
        patternRules = PatternRules(configuration.groups.patternRules)
        explicitlyMapped = Set(configuration.groups.mappings.map { DN.normalize($0.directoryGroup) })
        expandsNesting = configuration.groups.nested && configuration.directory.flavor != .activedirectory
        disappearances = DisappearanceLimit(maxDeactivations: configuration.safety.maxDeactivations,
                                            maxPercent: configuration.safety.maxDeactivationPercent)
    }

    /// Loads the identities of stored users and groups (call after each full reconcile);
    /// the stream's safety breaker starts counting again.
    public func reload() throws {
        let identities = try mirror.directoryIdentities()
        codeByID = [:]
        codeByDN = [:]
        codeByID.reserveCapacity(identities.users.count)
        codeByDN.reserveCapacity(identities.users.count)
        var active = 0
        disappearances.reset()
        for user in identities.users where user.isActiveAndUnlocked { active += 1 }
        // Inactive accounts first: where an active one shares an id or DN with them (a login
        // renamed in the directory), it is indexed last and holds it.
        for user in identities.users where !user.isActive { index(user) }
        for user in identities.users where user.isActive { index(user) }
        activeUsers = active
        index(groups: identities.groups)
    }

    /// After a full reconcile that changed the mirror: reads again only the identities of the
    /// users with an audit row after `mark` (taken before the reconcile), and every group's if
    /// a group has one too, instead of all the stored users' (250 ms at 100k users, while the
    /// next change waits; this takes about 20). Falls back to ``reload()`` when many users
    /// changed. Returns how many users it read again; nil after a whole reload.
    @discardableResult
    public func reload(changedAfter mark: Int64) throws -> Int? {
        guard let changed = try mirror.directoryIdentities(ofUsersChangedAfter: mark, limit: Self.partialReloadLimit) else {
            try reload()
            return nil
        }
        // A user already indexed by the DN and directory id they have now was indexed by the
        // stream itself, which dropped what they had before. Only otherwise (a rename the
        // reconcile found) can an old DN or id still name them: then what the changed users were
        // known by goes, found by one pass over the two maps (about 45 ms at 100k users).
        let reindexed = changed.users.filter { user in
            user.directoryID.map { codeByID[$0.lowercased()] != user.code } ?? false
                || user.directoryDN.map { codeByDN[DN.normalize($0)] != user.code } ?? false
        }
        if !reindexed.isEmpty {
            let codes = Set(reindexed.map(\.code))
            for dn in codeByDN.compactMap({ codes.contains($0.value) ? $0.key : nil }) { codeByDN[dn] = nil }
            for id in codeByID.compactMap({ codes.contains($0.value) ? $0.key : nil }) { codeByID[id] = nil }
            for user in reindexed {
                // An inactive account does not take an id or DN from an active one that holds it.
                try index(user, unlessHeldBy: { try mirror.user($0)?.state.isActive == true })
            }
        }
        if let groups = changed.groups { index(groups: groups) }
        restartBreaker()
        return changed.users.count
    }

    /// At most this many changed users are read again one by one after a reconcile.
    static let partialReloadLimit = 5_000

    /// Indexes `user` by their directory id and DN. Two stored accounts can share them (a login
    /// renamed in the directory keeps its entry): the index names the account that holds the
    /// entry now, the active one, so that the entry's deletion or a group's change revokes it.
    /// `isActive` answers for an account already indexed that `user`, inactive, would replace.
    private func index(_ user: DirectoryIdentities.StoredUser, unlessHeldBy isActive: (UserCode) throws -> Bool) rethrows {
        func takes(_ holder: UserCode?) throws -> Bool {
            guard let holder, holder != user.code, !user.isActive else { return true }
            return try !isActive(holder)
        }
        if let id = user.directoryID?.lowercased(), try takes(codeByID[id]) { codeByID[id] = user.code }
        if let dn = user.directoryDN.map(DN.normalize), try takes(codeByDN[dn]) { codeByDN[dn] = user.code }
    }

    /// Indexes `user`, in a reload that indexes every inactive account before the active ones.
    private func index(_ user: DirectoryIdentities.StoredUser) {
        index(user, unlessHeldBy: { _ in false })
    }

    private func index(groups: [(id: GroupID, directoryDN: String)]) {
        // Unchanged groups keep their index (resolving 10k groups' pattern rules takes 30 ms).
        let identities = Dictionary(groups.map { ($0.id, $0.directoryDN) }, uniquingKeysWith: { first, _ in first })
        guard identities != indexedGroups else { return }
        indexedGroups = identities
        groupsByDN = [:]
        for (id, dn) in groups { groupsByDN[DN.normalize(dn), default: []].append(id) }
        let mapper = DirectoryMapper(configuration: configuration, now: Date())
        referencedGroups = configuredReferences.union(groupsByDN.keys.compactMap { patternProviderSource($0, mapper: mapper) })
    }

    /// The providers group a pattern rule reads for the stored group mapped from `dn` (its
    /// `members_of` with the captures of `dn`), normalized; nil when no pattern rule maps it
    /// (an explicit mapping comes first, as in the mapping) or the rule names no such group.
    /// Stored groups keep their DN, not their cn: a rule on the cn is matched against the DN's
    /// first value, as `MappingOrigins` does.
    private func patternProviderSource(_ dn: String, mapper: DirectoryMapper) -> String? {
        guard !explicitlyMapped.contains(dn), let (rule, match) = patternRules.firstMatch(dn: dn, cn: nil) else { return nil }
        guard case .membersOf(let source) = mapper.resolve(rule.template, captures: match).providers else { return nil }
        return DN.normalize(source)
    }

    /// After a full reconcile that changed nothing, the stored identities are those already
    /// indexed (the stream indexes its own changes as it applies them): only the stream's safety
    /// breaker starts counting again, over the active users counted when a deactivation first
    /// needs them (a count of every stored user: 20-200 ms at 100k, which the next change would
    /// otherwise wait for). A reload would read and index every stored identity again (about
    /// 250 ms at 100k users).
    public func restartBreaker() {
        activeUsers = nil
        disappearances.reset()
    }

    /// Applies one event of a stream; `cookie` (the cookie that came with it) is stored in
    /// the same transaction.
    public func apply(_ event: SyncEvent, from stream: ChangeStreamKind, cookie: [UInt8]?, now: Date = Date()) async throws -> AppliedChange {
        let state = cookie.map { SyncState(directory: stream.stateKey(configuration.directory.name), cookie: $0,
                                           lastChangeApplied: now.formatted(.iso8601)) }
        var result = AppliedChange()
        switch (stream, event) {
        case (.users, .add(let id, let entry)), (.users, .modify(let id, let entry)):
            seenInRefresh[.users]?.insert(id.description)
            result = try await applyUser(entry, id: id, saving: state, now: now)
        case (.users, .delete(let id, _)):
            result = try deactivate([id], saving: state, now: now)
        case (.users, .deleteIDs(let ids)):
            result = try deactivate(ids, bulk: true, saving: state, now: now)
        case (.groups, .add(let id, let entry)), (.groups, .modify(let id, let entry)):
            seenInRefresh[.groups]?.insert(id.description)
            result = try await applyGroup(entry, saving: state, now: now)
        case (.groups, .delete(let id, _)):
            if try await mayBeMappedGroup(id) { result.fullReconcileReason = "a deleted group may have been a mapped one" }
            if let state { try mirror.saveSyncState(state) }
        case (.groups, .deleteIDs(let ids)):
            for id in ids where try await mayBeMappedGroup(id) {
                result.fullReconcileReason = "a deleted group may have been a mapped one"
                break
            }
            if let state { try mirror.saveSyncState(state) }
        case (.roles, .add), (.roles, .modify), (.roles, .delete), (.roles, .deleteIDs):
            result.fullReconcileReason = "a role or class of service changed (a lock through a role changes no user entry)"
            if let state { try mirror.saveSyncState(state) }
        case (.roles, .refreshDone):
            seenInRefresh[.roles] = nil
            if let state { try mirror.saveSyncState(state) }
        case (_, .present(let id, _)):
            seenInRefresh[stream]?.insert(id.description)
        case (_, .presentIDs(let ids)):
            seenInRefresh[stream, default: []].formUnion(ids.map(\.description))
        case (.users, .refreshDone(let presentPhase)):
            // After a present phase (a resumed refresh the server had no session log for, as
            // after its restart), a known user it did not report is gone or out of scope: each
            // active one is confirmed by a lookup and deactivated through the stream's breaker.
            let seen = seenInRefresh[.users]
            seenInRefresh[.users] = nil
            if presentPhase, let seen {
                result = try deactivate(try await absentUsers(seen: seen), bulk: true, saving: state, now: now)
            } else if let state {
                try mirror.saveSyncState(state)
            }
        case (.groups, .refreshDone(let presentPhase)):
            // After a present phase, only a vanished group that the mapping uses matters, and
            // then the full reconcile maps it (unchanged groups stay as they are).
            seenInRefresh[.groups] = nil
            if presentPhase, try await usedGroupVanished() {
                result.fullReconcileReason = "a group the mapping uses left the directory while the stream was away"
            }
            if let state { try mirror.saveSyncState(state) }
        case (_, .cookie):
            if let state { try mirror.saveSyncState(state) }
        case (_, .refreshRequired):
            result.fullReconcileReason = "the directory asks for a full refresh"
        }
        return result
    }

    /// Whether a stored user has this directory identity.
    public func isKnownUser(_ id: EntryUUID) throws -> Bool {
        try codeByID[id.description.lowercased()] != nil || mirror.userCode(directoryID: id.description) != nil
    }

    /// Whether a directory group (DN) is mapped to at least one clinic group.
    public func isMappedGroup(_ dn: String) -> Bool { groupsByDN[DN.normalize(dn)] != nil }

    /// Whether the mapping reads this group beyond membership (a provider source, pool,
    /// role or super-administrator group): a change to it needs a full reconcile.
    public func isReferencedGroup(_ dn: String) -> Bool { referencedGroups.contains(DN.normalize(dn)) }

    /// Whether a change to an unmapped group may make it mapped: it is named by an explicit
    /// mapping (a group created after the last reconcile), or a pattern rule matches its cn or
    /// DN. Any other group (a distribution list, say) is none of Roster's business and needs
    /// no full reconcile.
    public func mayBecomeMapped(_ dn: String, cn: String?) -> Bool {
        let normalized = DN.normalize(dn)
        return explicitlyMapped.contains(normalized) || patternRules.firstMatch(dn: dn, cn: cn) != nil
    }

    /// Marks the start of a refresh (for present-phase bookkeeping).
    public func refreshStarted(_ stream: ChangeStreamKind) { seenInRefresh[stream] = [] }

    /// Marks the end of a refresh completed by a full reconcile, which made the present-phase
    /// bookkeeping moot.
    public func refreshEnded(_ stream: ChangeStreamKind) { seenInRefresh[stream] = nil }

    private func applyUser(_ sent: LDAPEntry, id: EntryUUID, saving state: SyncState?, now: Date) async throws -> AppliedChange {
        var result = AppliedChange()
        let mapper = DirectoryMapper(configuration: configuration, now: now, lockout: await lockout())
        var entry = sent
        if identity.id(of: sent) == nil {
            // 389-ds sends the entries of a resumed refresh without the operational attributes
            // asked for (nsUniqueId, nsAccountLock): mapped as sent, a locked account would
            // look unlocked. The entry is read whole instead; when it is no longer there (or
            // out of scope), the stream's next event about it says what became of it.
            guard let whole = try await lookupEntry(sent.dn, filter: configuration.users.filter, attributes: mapper.userAttributes),
                  identity.id(of: whole) == id else {
                if let state { try mirror.saveSyncState(state) }
                return result
            }
            entry = whole
        }
        let dn = DN.normalize(entry.dn)
        let isProvider = try await isProvider(entry.dn)
        var isSuperAdministrator = try await isSuperAdministrator(entry.dn)
        if !isSuperAdministrator, configuration.groups.nested, !superAdministratorGroups.isEmpty {
            // Through nested groups: looked up for a user stored as one (whom an unrelated change
            // must not demote) or new to the stream. A grant to anyone else waits for the full
            // reconcile that the change of their group asks for.
            let known = codeByID[id.description.lowercased()]
            if try known == nil || mirror.user(known!)?.isSuperAdministrator == true {
                isSuperAdministrator = try await isSuperAdministratorThroughNesting(entry.dn)
            }
        }
        let mapped: MappedUser
        switch mapper.mapUser(entry, isProvider: isProvider, superAdministrator: isSuperAdministrator) {
        case .success(let value): mapped = value
        case .failure(let problem):
            result.problems = [problem]
            if let state { try mirror.saveSyncState(state) }
            return result
        }
        var user = mapped.user
        result.problems = mapped.notes
        let stored = try mirror.user(user.code)
        if let stored {
            user.state = stored.state.updatedByDirectory(locked: mapped.directoryState.locked, inactive: mapped.directoryState.inactive,
                                                         reason: mapped.directoryState.reason)
            result.revocation = (stored.state.isActive && !user.state.isActive) || (!stored.state.isLocked && user.state.isLocked)
        } else {
            if isProvider { result.fullReconcileReason = "a new provider (its own group, auto-add groups)" }
        }
        if let next = mapped.directoryState.nextChange { result.nextChanges = [(user.code, next)] }
        result.user = user.code
        if isProvider, let stored, try mirror.isMissingProvider(stored.code) {
            result.fullReconcileReason = "a user became a provider"
        }
        var previous = (code: user.code, dn: stored?.directoryDN)
        if let code = codeByID[id.description.lowercased()], code != user.code, let old = try mirror.user(code) {
            previous = (code, old.directoryDN)
            if old.state.isActive {
                // The login was renamed: the old code is no longer this person's account.
                let summary = try mirror.setDirectoryState(of: code, locked: old.state.lockedByDirectory, inactive: true,
                                                           reason: "renamed to \(user.code.rawValue) in the directory", actor: actor, at: now)
                result.changes += summary.changes.count
                result.revocation = true
            }
        }
        codeByID[id.description.lowercased()] = user.code
        // A DN the entry no longer has names nobody: a group that still lists it (a rename
        // without referential integrity) does not grant this user anything through it, as in a
        // full reconcile, which resolves members by the DNs it reads.
        if let previousDN = previous.dn.map(DN.normalize), previousDN != dn, codeByDN[previousDN] == previous.code {
            codeByDN[previousDN] = nil
        }
        let seenAtThisDN = codeByDN[dn] == user.code
        codeByDN[dn] = user.code
        if stored == user {
            if let state { try mirror.saveSyncState(state) }
            return result
        }
        // The first change of this user at this DN (a new user, or a rename): groups may list the
        // DN already, and their own changes came before the stream knew whom it names.
        var grants: [(user: UserCode, group: GroupID)] = []
        if !seenAtThisDN {
            let listing = try await groupsListing(entry.dn)
            grants = listing.mapped.map { (user.code, $0) }
            if listing.readBeyondMembership {
                result.fullReconcileReason = result.fullReconcileReason
                    ?? "a group read for providers, pools or roles lists a user the change stream had not seen at that DN"
            }
        }
        let summary = try mirror.apply(Changeset(scope: .partial, users: [user]), actor: actor, at: now, saving: state,
                                       addingMemberships: grants)
        result.changes += summary.changes.count
        return result
    }

    /// The mapped groups whose member lists name `dn` (compared by the directory's own DN
    /// matching), and whether a group the mapping reads beyond membership names it too.
    private func groupsListing(_ dn: String) async throws -> (mapped: [GroupID], readBeyondMembership: Bool) {
        let member = configuration.groups.memberAttribute
        let found = try await lookupSearch(base: configuration.groups.base,
                                           filter: "(&\(configuration.groups.filter)(\(member)=\(escapeFilterValue(dn))))",
                                           pageSize: configuration.directory.pageSize)
        let groups = found.map { DN.normalize($0.dn) }
        return (groups.flatMap { groupsByDN[$0] ?? [] },
                groups.contains { referencedGroups.contains($0) && !superAdministratorGroups.contains($0) })
    }

    private func deactivate(_ ids: [EntryUUID], bulk: Bool = false, saving state: SyncState?, now: Date) throws -> AppliedChange {
        var result = AppliedChange()
        var codes: [UserCode] = []
        for id in ids {
            if let code = try codeByID[id.description.lowercased()] ?? mirror.userCode(directoryID: id.description) { codes.append(code) }
        }
        if bulk {
            // A bulk change (a set of deletes, or the users a present phase did not report)
            // never changes an emergency account, as a full reconcile's plan never does: each
            // is left as it is and reported. A delete of its own still deactivates it.
            let kept = try codes.filter { try mirror.user($0)?.isBreakGlass == true }
            codes.removeAll { kept.contains($0) }
            result.problems = try kept.map { code in
                MappingProblem(dn: try mirror.user(code)?.directoryDN ?? code.rawValue,
                               message: "is gone from the directory in a bulk change; break-glass account \(code.rawValue) is never changed by one and stays as it is")
            }
        }
        let leaving = try codes.filter { try mirror.user($0)?.state.isActive == true }
        let wasHolding = disappearances.trip != nil
        if !leaving.isEmpty, activeUsers == nil { activeUsers = try mirror.activeUnlockedUserCount() }
        if !leaving.isEmpty, !disappearances.admit(leaving.count, activeUsers: activeUsers ?? 0) {
            // The breaker holds: the users stay active for the next reconcile to judge,
            // each reported; the stream moves on (its cookie is saved).
            if !wasHolding { result.held = disappearances.trip }
            result.problems += try leaving.map { code in
                MappingProblem(dn: try mirror.user(code)?.directoryDN ?? code.rawValue,
                               message: "is gone from the directory, but the change stream's safety breaker holds the deactivation of \(code.rawValue) for the next reconcile")
            }
            if let state { try mirror.saveSyncState(state) }
            return result
        }
        if codes.isEmpty {
            if let state { try mirror.saveSyncState(state) }
            return result
        }
        for (index, code) in codes.enumerated() {
            guard let stored = try mirror.user(code) else { continue }
            let summary = try mirror.setDirectoryState(
                of: code, locked: stored.state.lockedByDirectory, inactive: true,
                reason: "deleted from the directory, or no longer matching the user filter", actor: actor, at: now,
                saving: index == codes.count - 1 ? state : nil)
            result.changes += summary.changes.count
            if stored.state.isActive { result.revocation = true }
            result.user = code
        }
        return result
    }

    /// A group's change, and with nesting expanded here (``expandsNesting``) the change it makes
    /// to the mapped and referenced groups it is nested in, at any depth: a removal from a group
    /// nested in a mapped one revokes as one from the mapped group does.
    private func applyGroup(_ entry: LDAPEntry, saving state: SyncState?, now: Date) async throws -> AppliedChange {
        var result = AppliedChange()
        if expandsNesting {
            for parent in try await groups(containing: entry.dn) where isMappedGroup(parent.dn) || isReferencedGroup(parent.dn) {
                result.absorb(try await applyGroupItself(parent, saving: nil, now: now))
            }
        }
        result.absorb(try await applyGroupItself(entry, saving: state, now: now))
        return result
    }

    /// The groups that list `dn`, and those that list them, at any depth, as they are now
    /// (found by their member values within the groups' base and filter, as the reconcile
    /// follows nesting), with their members.
    private func groups(containing dn: String) async throws -> [LDAPEntry] {
        let member = configuration.groups.memberAttribute
        var found: [LDAPEntry] = []
        var visited: Set<String> = [DN.normalize(dn)]
        var pending = [dn]
        while let child = pending.popLast() {
            let parents = try await lookupSearch(base: configuration.groups.base,
                                                 filter: "(&\(configuration.groups.filter)(\(member)=\(escapeFilterValue(child))))",
                                                 attributes: [member, "cn"])
            for parent in parents where visited.insert(DN.normalize(parent.dn)).inserted {
                pending.append(parent.dn)
                found.append(parent)
            }
        }
        return found
    }

    private func applyGroupItself(_ entry: LDAPEntry, saving state: SyncState?, now: Date) async throws -> AppliedChange {
        var result = AppliedChange()
        let dn = DN.normalize(entry.dn)
        if referencedGroups.contains(dn) {
            result.fullReconcileReason = "a group read for providers, pools, roles or super administrators changed"
        }
        let targets = groupsByDN[dn] ?? []
        let roles = rolesByDN[dn] ?? []
        let grantsSuperAdministrator = superAdministratorGroups.contains(dn)
        if targets.isEmpty && roles.isEmpty && !grantsSuperAdministrator {
            // Not mapped: a full reconcile only if a mapping or pattern rule may now apply.
            if mayBecomeMapped(entry.dn, cn: entry.string("cn")) {
                result.fullReconcileReason = "a group that a mapping or pattern rule may now map changed"
            }
            if let state { try mirror.saveSyncState(state) }
            return result
        }
        let members = try await members(of: entry, now: now, result: &result)
        // Privileges a role's or the super administrators' group gave are revoked at once; what
        // the group grants anew waits for the full reconcile asked for above.
        for role in roles { result.absorb(try revoke(role, keeping: members, now: now)) }
        if grantsSuperAdministrator { result.absorb(try await revokeSuperAdministrators(keeping: members, changed: dn, now: now)) }
        for (index, group) in targets.enumerated() {
            let summary = try mirror.setMembers(of: group, to: members, actor: actor, at: now,
                                                saving: index == targets.count - 1 ? state : nil)
            result.changes += summary.changes.count
            if summary.changes.contains(where: { $0.action == "membership.removed" }) { result.revocation = true }
        }
        if targets.isEmpty, let state { try mirror.saveSyncState(state) }
        return result
    }

    /// The users a group entry lists, each by the DN the stream knows them at; with nesting
    /// expanded here, also those of the groups it holds, at any depth. A DN under the users'
    /// base that names no known user is read and applied as a user change first (see below).
    private func members(of entry: LDAPEntry, now: Date, result: inout AppliedChange) async throws -> Set<UserCode> {
        var members = Set<UserCode>()
        var unseen: [(dn: String, normalized: String)] = []
        var pending = entry.strings(configuration.groups.memberAttribute)
        var visitedGroups: Set<String> = [DN.normalize(entry.dn)]
        while let value = pending.popLast() {
            let member = DN.normalize(value)
            if let code = codeByDN[member] {
                members.insert(code)
                continue
            }
            if absentMemberDNs.contains(member) { continue }
            if expandsNesting, DN.isWithin(member, base: configuration.groups.base) {
                guard visitedGroups.insert(member).inserted else { continue }
                if let nested = try await lookupEntry(value, filter: configuration.groups.filter,
                                                      attributes: [configuration.groups.memberAttribute]) {
                    pending += nested.strings(configuration.groups.memberAttribute)
                    continue
                }
            }
            if DN.isWithin(member, base: configuration.users.base) {
                unseen.append((value, member))
            }
        }
        for (dn, normalized) in unseen.prefix(Self.unseenMemberLimit) {
            // A user whose own change has not arrived yet (the users' and the groups' streams are
            // not ordered with each other): a new user just added to this group, or a rename that
            // the directory's referential integrity carried into the group first. Read and applied
            // now, so that the group neither misses nor drops them. Past the limit (a subtree
            // moved at once), the rest count as non-members for now; each one's own change adds
            // them back to the groups that list them.
            let applied = try await applyUnseenMember(dn, now: now)
            result.absorb(applied)
            if let code = codeByDN[normalized] {
                members.insert(code)
            } else if absentMemberDNs.count < Self.absentMemberDNLimit {
                absentMemberDNs.insert(normalized)
            }
        }
        return members
    }

    /// Takes `role` from its holders who are not among `members` (its directory group's members now).
    private func revoke(_ role: RoleName, keeping members: Set<UserCode>, now: Date) throws -> AppliedChange {
        var result = AppliedChange()
        let holders = try mirror.roleHolders(of: role)
        let kept = holders.filter { members.contains($0) }
        guard kept.count < holders.count else { return result }
        let summary = try mirror.apply(Changeset(roleHolders: [role: kept]), actor: actor, at: now)
        result.changes += summary.changes.count
        result.revocation = true
        return result
    }

    /// Clears the super-administrator flag of each flagged user who is in none of the
    /// super administrators' groups now: `members` for the group `changed`, the others read.
    /// When one of the others cannot be judged here (Active Directory's nesting, which its
    /// stream expands from its own index), the full reconcile decides instead.
    private func revokeSuperAdministrators(keeping members: Set<UserCode>, changed: String, now: Date) async throws -> AppliedChange {
        var result = AppliedChange()
        var leaving = try mirror.superAdministratorCodes().filter { !members.contains($0) }
        guard !leaving.isEmpty else { return result }
        let others = configuration.users.superAdministratorGroups.filter { DN.normalize($0) != changed }
        if !others.isEmpty && configuration.groups.nested && !expandsNesting { return result }
        for other in others where !leaving.isEmpty {
            guard let entry = try await lookupEntry(other, filter: configuration.groups.filter,
                                                    attributes: [configuration.groups.memberAttribute]) else { continue }
            let otherMembers = try await self.members(of: entry, now: now, result: &result)
            leaving.subtract(otherMembers)
        }
        var users: [User] = []
        for code in leaving.sorted() {
            guard var user = try mirror.user(code), user.isSuperAdministrator else { continue }
            user.isSuperAdministrator = false
            users.append(user)
        }
        guard !users.isEmpty else { return result }
        let summary = try mirror.apply(Changeset(users: users), actor: actor, at: now)
        result.changes += summary.changes.count
        result.revocation = true
        return result
    }

    /// At most this many unseen members of one group change are read one by one (each a lookup
    /// of about a millisecond), so that one change cannot hold the stream back for long.
    static let unseenMemberLimit = 64
    /// At most this many DNs are remembered as naming no mapped user (memory bound).
    static let absentMemberDNLimit = 200_000

    /// Reads the user entry at `dn` (within the users' base and filter) and applies it as a
    /// change of the users' stream; nothing when no user is there.
    private func applyUnseenMember(_ dn: String, now: Date) async throws -> AppliedChange {
        let mapper = DirectoryMapper(configuration: configuration, now: now, lockout: await lockout())
        guard let entry = try await lookupEntry(dn, filter: configuration.users.filter, attributes: mapper.userAttributes),
              let id = identity.id(of: entry) else { return AppliedChange() }
        return try await apply(.modify(id, entry), from: .users, cookie: nil, now: now)
    }

    /// Stored active users with a directory identity that a present phase did not report,
    /// and that a lookup by identity (entryUUID, nsUniqueId) within the users' base and filter does not find.
    private func absentUsers(seen: Set<String>) async throws -> [EntryUUID] {
        var absent: [EntryUUID] = []
        for (id, code) in codeByID.sorted(by: { $0.key < $1.key }) where !seen.contains(id) {
            guard let uuid = EntryUUID(id), try mirror.user(code)?.state.isActive == true else { continue }
            let found = try await lookupSearch(base: configuration.users.base,
                                               filter: "(&\(configuration.users.filter)\(identity.filter(uuid)))")
            if found.isEmpty { absent.append(uuid) }
        }
        return absent
    }

    /// Whether a group the mapping uses (mapped, or read for providers, pools, roles or super
    /// administrators) is no longer under the groups' base and filter.
    private func usedGroupVanished() async throws -> Bool {
        let current = try await lookupSearch(base: configuration.groups.base, filter: configuration.groups.filter,
                                             pageSize: configuration.directory.pageSize)
        let present = Set(current.map { DN.normalize($0.dn) })
        return groupsByDN.keys.contains { !present.contains($0) } || referencedGroups.contains { !present.contains($0) }
    }

    /// Searches on the lookup connection, reconnecting once when it has dropped.
    private func lookupSearch(base: String, scope: LDAPScope = .subtree, filter: String, attributes: [String] = ["1.1"],
                              pageSize: Int? = nil) async throws -> [LDAPEntry] {
        try await onLookupConnection { connection in
            try await connection.search(base: base, scope: scope, filter: filter, attributes: attributes, pageSize: pageSize).collect()
        }
    }

    /// Runs `body` on the lookup connection, on a new one when the connection has dropped.
    private func onLookupConnection<Value>(_ body: (LDAPConnection) async throws -> Value) async throws -> Value {
        do {
            return try await body(lookupConnection())
        } catch let error as LDAPError where error.code.isConnectionFailure {
            await current?.close()
            current = nil
            return try await body(lookupConnection())
        }
    }

    /// The entry at `dn` if it matches `filter`; nil when it does not, or there is no such entry.
    private func lookupEntry(_ dn: String, filter: String, attributes: [String] = ["1.1"]) async throws -> LDAPEntry? {
        do {
            return try await lookupSearch(base: dn, scope: .base, filter: filter, attributes: attributes).first
        } catch let error as LDAPError where error.code == .noSuchObject {
            return nil
        }
    }

    /// The lookup connection, opened if there is none.
    private func lookupConnection() async throws -> LDAPConnection {
        if let current { return current }
        let opened = try await LDAPConnection.connect(ldap)
        current = opened
        return opened
    }

    /// Readies the applier for the first changes after the stream reports ready, so that they
    /// wait for neither of these (each 20-140 ms of the first revocations' latency at 100k users):
    /// - the lookup connection's connect and bind, and the lockout policy read on it: done now;
    ///   a failure here is not one, the first change that needs them tries again;
    /// - the mirror's background checkpoint of the reconcile just applied, which ends by emptying
    ///   its large WAL while holding the write lock (see `Checkpointer`): waited for.
    public func prepareForChanges() async {
        let checkpoint = offPool { [mirror] in mirror.waitForCheckpoint() }
        forgetLockoutPolicy()
        _ = await lockout()
        _ = try? await checkpoint.value
    }

    /// Makes the next change that needs the lockout policy read it again.
    public func forgetLockoutPolicy() { lockoutPolicy = nil }

    /// The directory's lockout policy, read on the lookup connection if not yet read. One that
    /// cannot be read gives no durations, so a timed lockout lasts until the directory clears
    /// it: too long, never too short. A dropped connection is tried again by the next change;
    /// any other failure (no right to read the policies, say) stands until the next refresh.
    private func lockout() async -> LockoutPolicy {
        if let lockoutPolicy { return lockoutPolicy }
        let configuration = configuration
        do {
            lockoutPolicy = try await onLookupConnection { try await LockoutPolicy.read(configuration, connection: $0) }
        } catch let error as LDAPError where error.code.isConnectionFailure {
            return LockoutPolicy()
        } catch {
            lockoutPolicy = LockoutPolicy()
        }
        return lockoutPolicy ?? LockoutPolicy()
    }

    /// Closes the lookup connection.
    public func close() async {
        await current?.close()
        current = nil
    }

    /// Whether a UUID the groups stream reports deleted may be a mapped group. syncprov
    /// also reports entries outside the stream's scope (users changed while away) as
    /// deleted; those still exist, or are known users.
    private func mayBeMappedGroup(_ id: EntryUUID) async throws -> Bool {
        if codeByID[id.description.lowercased()] != nil { return false }
        let found = try await lookupSearch(base: configuration.directory.baseDN, filter: identity.filter(id))
        guard let entry = found.first else { return true }  // gone: perhaps a group
        return groupsByDN[DN.normalize(entry.dn)] != nil  // a mapped group that left the groups filter
    }

    private func isProvider(_ dn: String) async throws -> Bool {
        guard let filter = configuration.providers.filter else { return false }
        return try await lookupEntry(dn, filter: "(&\(configuration.users.filter)\(filter))") != nil
    }

    /// Whether a super administrators' group holds `dn` through groups nested in it, at any depth.
    private func isSuperAdministratorThroughNesting(_ dn: String) async throws -> Bool {
        try await groups(containing: dn).contains { superAdministratorGroups.contains(DN.normalize($0.dn)) }
    }

    private func isSuperAdministrator(_ dn: String) async throws -> Bool {
        guard !configuration.users.superAdministratorGroups.isEmpty else { return false }
        let member = configuration.groups.memberAttribute
        for group in configuration.users.superAdministratorGroups
        where try await lookupEntry(group, filter: "(\(member)=\(escapeFilterValue(dn)))") != nil {
            return true
        }
        return false
    }
}
