import AccessModel
import Foundation
import LDAPKit
import RosterConfig

/// Turns directory entries into the clinic model, as the configuration says. Pure: no I/O,
/// the same input always gives the same changeset.
public struct DirectoryMapper: Sendable {
    public let configuration: RosterConfiguration
    public let stateReader: AccountStateReader
    public let now: Date
    private let healthCenterIDs: [String: HealthCenterID]
    private let careVenueIDs: [String: CareVenue]
    private let breakGlassCodes: Set<UserCode>

    public init(configuration: RosterConfiguration, now: Date, lockout: LockoutPolicy = LockoutPolicy()) {
        self.configuration = configuration
        self.now = now
        self.stateReader = AccountStateReader(flavor: configuration.directory.flavor, lockout: lockout)
        breakGlassCodes = Set(configuration.users.breakGlassUserCodes.map { UserCode($0) })
        healthCenterIDs = Dictionary(configuration.healthCenters.map { ($0.id.rawValue.lowercased(), $0.id) }, uniquingKeysWith: { a, _ in a })
        careVenueIDs = Dictionary(configuration.healthCenters.flatMap { center in
            center.careVenues.map { ($0.id.rawValue.lowercased(), CareVenue(id: $0.id, healthCenter: center.id, name: $0.name)) }
        }, uniquingKeysWith: { a, _ in a })
    }

    /// The attributes a user search must request.
    public var userAttributes: [String] {
        let names = configuration.users.attributes
        var list = [names.userCode, names.firstName, names.lastName, names.displayName, names.email, names.title,
                    names.healthCenters, names.autoLogoutMinutes, names.defaultWorkflowView, names.defaultPatientView,
                    names.defaultDocumentTab, configuration.providers.healthCenterAttribute].compactMap { $0 }
        list += configuration.users.flags.values
        list += stateReader.attributes
        list += [DirectoryIdentity(flavor: configuration.directory.flavor).attribute]
        var seen = Set<String>()
        return list.filter { seen.insert($0.lowercased()).inserted }
    }

    /// The entry's stable directory identity as text.
    public func directoryID(of entry: LDAPEntry) -> String? {
        DirectoryIdentity(flavor: configuration.directory.flavor).text(of: entry)
    }

    /// Maps one user entry; a problem when it cannot be mapped. `normalizedDN` is
    /// `DN.normalize(entry.dn)` when the caller has it already.
    public func mapUser(_ entry: LDAPEntry, normalizedDN: String? = nil, isProvider: Bool, superAdministrator: Bool) -> Swift.Result<MappedUser, MappingProblem> {
        let names = configuration.users.attributes
        func fail(_ message: String) -> Swift.Result<MappedUser, MappingProblem> { .failure(MappingProblem(dn: entry.dn, message: message)) }
        let codeValues = entry[names.userCode]
        guard let codeValue = codeValues.first else {
            return fail("has no \(names.userCode) (the user code attribute); skipped")
        }
        guard let code = codeValue.string, !code.trimmingWhitespace().isEmpty else {
            return fail("its \(names.userCode) is not valid UTF-8 text; skipped")
        }
        guard codeValues.count == 1 else {
            return fail("has \(codeValues.count) values of \(names.userCode), which must hold exactly one user code; skipped")
        }
        var healthCenters = Set<HealthCenterID>()
        if let attribute = names.healthCenters {
            for value in entry[attribute] {
                guard let text = value.string, let id = healthCenterIDs[text.lowercased().trimmingWhitespace()] else {
                    return fail("names health center '\(value)' in \(attribute), which is not configured; skipped")
                }
                healthCenters.insert(id)
            }
        }
        if healthCenters.isEmpty { healthCenters = Set(configuration.users.defaultHealthCenters) }

        // Attributes that hold one value: several values, bytes that are not UTF-8 and
        // oversized text are each noted once; the entry still maps (the first value is
        // used; unreadable or oversized text counts as absent).
        var notes: [String] = []
        func text(_ attribute: String?) -> String? {
            guard let attribute else { return nil }
            let values = entry[attribute]
            guard let value = values.first else { return nil }
            if values.count > 1 { notes.append("has \(values.count) values of \(attribute), which holds one; the first is used") }
            guard let text = value.string else {
                notes.append("its \(attribute) is not valid UTF-8 text; taken as absent")
                return nil
            }
            guard text.utf8.count <= Self.maximumTextBytes else {
                notes.append("its \(attribute) is \(text.utf8.count) bytes long, more than the \(Self.maximumTextBytes) a text field may hold; taken as absent")
                return nil
            }
            return text
        }
        var first = text(names.firstName) ?? ""
        var last = text(names.lastName) ?? ""
        if first.isEmpty && last.isEmpty, let display = text(names.displayName) {
            // "Last, First" or "First Last"
            if let comma = display.firstIndex(of: ",") {
                last = String(display[..<comma]).trimmingCharacters(in: .whitespaces)
                first = String(display[display.index(after: comma)...]).trimmingCharacters(in: .whitespaces)
            } else {
                last = display
            }
        }
        var autoLogout = configuration.users.defaultAutoLogoutMinutes
        if let attribute = names.autoLogoutMinutes, let value = text(attribute) {
            guard let minutes = Int(value), minutes > 0 else {
                return fail("has auto-logout minutes '\(value)' in \(attribute), which is not a positive whole number; skipped")
            }
            autoLogout = minutes
        }
        var flags: [String: Bool] = [:]
        for (flag, attribute) in configuration.users.flags {
            let values = Set(entry[attribute].map { ($0.string ?? "").uppercased() })
            guard !values.isEmpty else { continue }
            if values.count > 1 {
                notes.append("has conflicting values of \(attribute) (the flag \(flag)); the flag is taken as FALSE")
                flags[flag] = false
            } else {
                flags[flag] = values.first == "TRUE"
            }
        }
        let state = stateReader.state(of: entry, at: now)
        let userCode = UserCode(code)
        let breakGlass = breakGlassCodes.contains(userCode)
        let user: User
        do {
            user = try User(
                code: userCode, directoryID: directoryID(of: entry), directoryDN: entry.dn, firstName: first, lastName: last,
                title: text(names.title), email: text(names.email), healthCenters: healthCenters,
                isSuperAdministrator: superAdministrator,
                state: AccountState().updatedByDirectory(locked: state.locked, inactive: state.inactive, reason: state.reason),
                autoLogoutMinutes: autoLogout,
                defaultViews: DefaultViews(workflow: text(names.defaultWorkflowView), patient: text(names.defaultPatientView),
                                           documentTab: text(names.defaultDocumentTab)),
                isBreakGlass: breakGlass, flags: flags)
        } catch {
            return fail("\(error); skipped")
        }
        var providerHealthCenter: HealthCenterID?
        if isProvider {
            if let attribute = configuration.providers.healthCenterAttribute, let value = text(attribute) {
                providerHealthCenter = healthCenterIDs[value.lowercased()]
            } else {
                providerHealthCenter = healthCenters.sorted().first
            }
        }
        return .success(MappedUser(user: user, dn: normalizedDN ?? DN.normalize(entry.dn), directoryID: user.directoryID, isProvider: isProvider,
                                   providerHealthCenter: providerHealthCenter, directoryState: state,
                                   notes: notes.map { MappingProblem(dn: entry.dn, message: $0) }))
    }

    /// The longest text a single-valued attribute may bring (names, title, email, views).
    public static let maximumTextBytes = 4096

    /// What the reconcile knows about stored users the directory search did not return.
    public struct MissingUsers: Sendable {
        /// Confirmed gone (deleted, or out of the users' base or filter) by a direct lookup.
        public var gone: Set<UserCode>
        public init(gone: Set<UserCode> = []) { self.gone = gone }
    }

    /// The result of mapping a whole directory.
    public struct Mapping: Sendable {
        public var changeset: Changeset
        public var problems: [MappingProblem]
        /// Providers that appear for the first time.
        public var newProviders: [ProviderID]
        /// Users whose directory state changes by itself later (expiry, lockout end).
        public var nextChanges: [UserCode: Date]
    }

    /// Builds the complete desired model from mapped users and directory groups, against
    /// what the mirror holds now (`stored`): users are never dropped, directory-caused
    /// state never clears a local lock, break-glass accounts are left as they are, and new
    /// providers join auto-add groups.
    public func desiredState(users mappedUsers: consuming [MappedUser], groups directoryGroups: [DirectoryGroup],
                             stored: AccessSnapshot, missing: MissingUsers, problems initialProblems: [MappingProblem]) -> Mapping {
        var problems = initialProblems
        var reported = Set(problems.map(\.dn))
        func report(_ dn: String, _ message: String) {
            if reported.insert(dn).inserted { problems.append(MappingProblem(dn: dn, message: message)) }
        }

        // Users: one per code; two entries with one code are both skipped. Users are kept as
        // positions in `mappedUsers` until they are moved into the changeset (never copied: at
        // 100k users copying them and freeing the copies was a third of the mapping).
        var indexByCode: [UserCode: Int] = [:]
        indexByCode.reserveCapacity(mappedUsers.count)
        var duplicateCodes = Set<UserCode>()
        for index in mappedUsers.indices {
            let code = mappedUsers[index].user.code
            // One hash of the code per user: the first entry's position is put back on a duplicate.
            if let otherIndex = indexByCode.updateValue(index, forKey: code) {
                indexByCode[code] = otherIndex
                duplicateCodes.insert(code)
                let dn = mappedUsers[index].user.directoryDN ?? mappedUsers[index].dn
                let otherDN = mappedUsers[otherIndex].user.directoryDN ?? mappedUsers[otherIndex].dn
                report(dn, "has user code '\(code.rawValue)', which \(otherDN) also has (codes compare case-insensitively); both skipped")
                report(otherDN, "has user code '\(mappedUsers[otherIndex].user.code.rawValue)', which \(dn) also has (codes compare case-insensitively); both skipped")
            }
        }
        for code in duplicateCodes { indexByCode[code] = nil }
        /// The users mapped, one per code, in directory order.
        let accepted = indexByCode.values.sorted()
        var codeByDN: [String: UserCode] = [:]
        codeByDN.reserveCapacity(accepted.count)
        // The first entry with a DN wins: the last one written, going backwards (one hash each).
        for index in accepted.reversed() {
            codeByDN[mappedUsers[index].dn] = mappedUsers[index].user.code
        }

        // Providers.
        var providers: [ProviderID: Provider] = [:]
        for index in accepted where mappedUsers[index].isProvider {
            guard let center = mappedUsers[index].providerHealthCenter else {
                report(mappedUsers[index].user.directoryDN ?? mappedUsers[index].dn, "is a provider without a configured health center; not made a provider")
                continue
            }
            let id = ProviderID(mappedUsers[index].user.code.rawValue)
            providers[id] = Provider(id: id, healthCenter: center, displayName: mappedUsers[index].user.displayName,
                                     directoryID: mappedUsers[index].directoryID)
        }

        // Stored users kept as they are: emergency accounts (never changed by a bulk plan), and
        // users the search did not return unless a direct lookup confirmed them gone.
        func keptAsListed(_ previous: User, _ listed: User) -> Bool { previous.isBreakGlass || listed.isBreakGlass }
        func keptUnlisted(_ code: UserCode, _ previous: User) -> Bool { !missing.gone.contains(code) || previous.isBreakGlass }
        var keptAsStored = Set<UserCode>()
        if !stored.users.isEmpty {
            for index in accepted {
                if let previous = stored.users[mappedUsers[index].user.code], keptAsListed(previous, mappedUsers[index].user) {
                    keptAsStored.insert(mappedUsers[index].user.code)
                }
            }
            for (code, previous) in stored.users where indexByCode[code] == nil && keptUnlisted(code, previous) { keptAsStored.insert(code) }
        }

        // Health centers and care venues come from the configuration.
        let healthCenters = configuration.healthCenters.map { HealthCenter(id: $0.id, name: $0.name) }
        let careVenues = Array(careVenueIDs.values).sorted { $0.id < $1.id }

        for code in keptAsStored {
            let id = ProviderID(code.rawValue)
            if let provider = stored.providers[id] { providers[id] = provider }
        }
        let newProviders = providers.keys.filter { stored.providers[$0] == nil }.sorted()
        let newProvidersByCenter = Dictionary(grouping: newProviders) { providers[$0]!.healthCenter }

        // The groups, pools and roles are built on another thread while this one moves the users
        // into the changeset: the two share nothing they change.
        let finalProviders = providers
        let reportedSoFar = reported
        let codesByDN = codeByDN
        let kept = keptAsStored
        let (moved, clinicGroups) = Parallel.run(
            side: { [self] in
                self.clinicGroups(directoryGroups: directoryGroups, providers: finalProviders, newProvidersByCenter: newProvidersByCenter,
                                  codeByDN: codesByDN, careVenues: careVenues, keptAsStored: kept, stored: stored, reported: reportedSoFar)
            },
            main: { () -> (users: [User], nextChanges: [UserCode: Date]) in
                var users: [User] = []
                users.reserveCapacity(max(accepted.count, stored.users.count))
                var nextChanges: [UserCode: Date] = [:]
                var isAccepted = [Bool](repeating: false, count: mappedUsers.count)
                for index in accepted { isAccepted[index] = true }
                // Each entry is moved out of `mappedUsers`, the last first (the order does not
                // matter: the changeset's users are ordered by code below).
                var index = mappedUsers.count
                while var mapped = mappedUsers.popLast() {
                    index -= 1
                    guard isAccepted[index] else { continue }
                    let code = mapped.user.code
                    let previous = stored.users[code]
                    if let previous, keptAsListed(previous, mapped.user) {
                        users.append(previous)
                        continue
                    }
                    if let next = mapped.directoryState.nextChange { nextChanges[code] = next }
                    users.append(mapped.takeUser())
                    if let previous {
                        users[users.count - 1].state = previous.state.updatedByDirectory(locked: mapped.directoryState.locked,
                                                                                         inactive: mapped.directoryState.inactive,
                                                                                         reason: mapped.directoryState.reason)
                    }
                }
                for (code, previous) in stored.users where indexByCode[code] == nil {
                    if keptUnlisted(code, previous) {
                        users.append(previous)
                    } else {
                        var user = previous
                        user.state = previous.state.updatedByDirectory(locked: previous.state.lockedByDirectory, inactive: true,
                                                                       reason: "no longer in the directory (deleted or out of the configured scope)")
                        users.append(user)
                    }
                }
                return (Self.sortedByCode(consume users), nextChanges)
            })
        for problem in clinicGroups.problems where reported.insert(problem.dn).inserted { problems.append(problem) }

        let changeset = Changeset(
            scope: .complete, healthCenters: healthCenters, careVenues: careVenues,
            providers: providers.values.sorted { $0.id < $1.id }, pools: clinicGroups.pools,
            groups: clinicGroups.groups.values.sorted { $0.id < $1.id }, roles: clinicGroups.roles, users: moved.users,
            groupMembers: clinicGroups.groupMembers, roleHolders: clinicGroups.roleHolders)
        return Mapping(changeset: changeset, problems: problems, newProviders: newProviders, nextChanges: moved.nextChanges)
    }

    /// The pools, clinic groups (from mappings, pattern rules and providers' own groups) and
    /// roles of a directory, with their members, and the problems found building them (each
    /// DN at most once, none of those in `reported`).
    struct ClinicGroups: Sendable {
        var pools: [Pool] = []
        var groups: [GroupID: Group] = [:]
        var groupMembers: [GroupID: Set<UserCode>] = [:]
        var roles: [Role] = []
        var roleHolders: [RoleName: Set<UserCode>] = [:]
        var problems: [MappingProblem] = []
    }

    private func clinicGroups(directoryGroups: [DirectoryGroup], providers: [ProviderID: Provider],
                              newProvidersByCenter: [HealthCenterID: [ProviderID]], codeByDN: [String: UserCode],
                              careVenues: [CareVenue], keptAsStored: Set<UserCode>, stored: AccessSnapshot,
                              reported alreadyReported: Set<String>) -> ClinicGroups {
        var result = ClinicGroups()
        var reported = alreadyReported
        func report(_ dn: String, _ message: String) {
            if reported.insert(dn).inserted { result.problems.append(MappingProblem(dn: dn, message: message)) }
        }

        // Directory groups by normalized DN, with their members as user codes.
        var groupsByDN: [String: DirectoryGroup] = [:]
        for group in directoryGroups { groupsByDN[group.dn] = group }
        func memberCodes(_ dn: String) -> Set<UserCode> {
            Set((groupsByDN[DN.normalize(dn)]?.members ?? []).compactMap { codeByDN[$0] })
        }
        func providersAmongMembers(_ dn: String) -> [ProviderID] {
            memberCodes(dn).map { ProviderID($0.rawValue) }.filter { providers.index(forKey: $0) != nil }
        }

        // Pools. A pool holds providers of its own health center only: one of another center
        // listed in its directory group is left out and reported (the mirror would refuse the
        // pool, and with it the whole reconcile).
        for pool in configuration.pools {
            var members = Set<ProviderID>()
            for id in providersAmongMembers(pool.providersGroup) {
                guard let center = providers[id]?.healthCenter else { continue }
                if center == pool.healthCenter {
                    members.insert(id)
                } else {
                    report(DN.normalize(pool.providersGroup),
                           "lists provider '\(id)' of \(center) among the providers of pool '\(pool.id)' at \(pool.healthCenter); left out of the pool")
                }
            }
            result.pools.append(Pool(id: pool.id, healthCenter: pool.healthCenter, name: pool.name, providers: members, visibility: pool.visibility))
        }

        // Clinic groups from mappings and pattern rules.
        let explicit = Dictionary(configuration.groups.mappings.map { (DN.normalize($0.directoryGroup), $0) }, uniquingKeysWith: { a, _ in a })
        let rules = PatternRules(configuration.groups.patternRules)
        for directoryGroup in directoryGroups.sorted(by: { $0.dn < $1.dn }) {
            var spec: RosterConfiguration.ClinicGroupSpec?
            if let mapping = explicit[directoryGroup.dn] {
                spec = mapping.group
            } else if let (rule, match) = rules.firstMatch(dn: directoryGroup.dn, cn: directoryGroup.cn) {
                spec = resolve(rule.template, captures: match)
            }
            guard let spec else { continue }
            switch buildGroup(spec, directoryDN: directoryGroup.dn, providers: providers, providersAmongMembers: providersAmongMembers) {
            case .failure(let problem):
                report(problem.dn, problem.message)
            case .success(let (built, leftOut)):
                var group = built
                for provider in leftOut {
                    report(directoryGroup.dn, "lists provider '\(provider.id)' of \(provider.healthCenter) for clinic group '\(group.name)' at \(group.healthCenter); left out of the group")
                }
                if result.groups[group.id] != nil {
                    report(directoryGroup.dn, "maps to clinic group '\(group.name)' at \(group.healthCenter), which another directory group already maps to; skipped")
                    continue
                }
                if group.autoAddNewProviders, let previous = stored.groups[group.id] {
                    // Rule 6, for a group that existed before this reconcile: keep the providers
                    // it added automatically, and add the providers new since. Grants its
                    // configured providers gave go when the configuration stops giving them, and
                    // the providers a group finds when it is created are not new to it (a first
                    // sync grants only what the configuration says).
                    var modules = group.modules
                    for (module, grant) in previous.modules {
                        guard let privacy = modules[module]?.privacy else { continue }
                        // Only providers still of the group's health center (one who moved to
                        // another center leaves it).
                        for (target, entry) in grant.targets where entry.addedAutomatically
                        && providers[ProviderID(target)]?.healthCenter == group.healthCenter && modules[module]!.targets[target] == nil {
                            // A per-provider privacy override stays valid only on a forced level.
                            if entry.privacyOverride != nil && !privacy.isForced { continue }
                            modules[module]!.targets[target] = entry
                        }
                    }
                    group = (try? group.withModules(modules)) ?? group
                    if let arriving = newProvidersByCenter[group.healthCenter] { group.addProviders(arriving) }
                }
                result.groups[group.id] = group
                result.groupMembers[group.id] = Set(directoryGroup.members.compactMap { codeByDN[$0] })
            }
        }

        // Each provider's own group (rule 6), named after the provider. A group's name is unique
        // in its health center, and two providers may well share a name: then each such own
        // group is named with its provider's code too ("Smith, John (jsmith2)"), so that neither
        // fails the whole reconcile nor depends on which provider came first.
        if let own = configuration.providers.ownGroup {
            func nameKey(_ center: HealthCenterID, _ name: String) -> String { center.rawValue + "\u{0}" + name }
            var namesTaken = Set(result.groups.values.map { nameKey($0.healthCenter, $0.name) })
            var providersNamed: [String: Int] = [:]
            for provider in providers.values { providersNamed[nameKey(provider.healthCenter, provider.displayName), default: 0] += 1 }
            for provider in providers.values.sorted(by: { $0.id < $1.id }) {
                let plain = nameKey(provider.healthCenter, provider.displayName)
                let shared = providersNamed[plain, default: 0] > 1 || namesTaken.contains(plain)
                let name = shared ? "\(provider.displayName) (\(provider.id.rawValue))" : provider.displayName
                guard namesTaken.insert(nameKey(provider.healthCenter, name)).inserted else {
                    report(provider.id.rawValue, "its own provider group cannot be made: another group at \(provider.healthCenter) is named '\(name)'")
                    continue
                }
                let venues = own.careVenues.isEmpty
                    ? Set(careVenues.filter { $0.healthCenter == provider.healthCenter }.map(\.id))
                    : Set(own.careVenues)
                var modules: [Module: ModuleGrant] = [:]
                for (module, setting) in own.modules where module.isProviderScoped {
                    modules[module] = .providers([provider.id: TargetGrant(setting.privilege)], privacy: setting.privacy, defaultPrivilege: setting.privilege)
                }
                let id = Self.ownGroupID(of: provider)
                do {
                    let group = try Group(id: id, name: name, kind: .provider, healthCenter: provider.healthCenter,
                                          careVenues: venues, modules: modules)
                    if result.groups[id] == nil {
                        result.groups[id] = group
                        result.groupMembers[id] = []
                    }
                } catch {
                    report(provider.id.rawValue, "its own provider group cannot be made: \(error)")
                }
            }
        }

        // Users skipped but still in the directory keep their memberships in groups that remain.
        for code in keptAsStored {
            for (groupID, members) in stored.groupMembers where members.contains(code) && result.groups[groupID] != nil {
                result.groupMembers[groupID, default: []].insert(code)
            }
        }

        // Roles.
        // The base role (Roster's own when none is configured) is held by every user unassigned: no holders listed.
        for role in configuration.modelRoles {
            result.roles.append(Role(id: role.name, modules: role.modules, isAllAccess: role.isAllAccess, isBase: role.isBase,
                                     directoryDN: role.directoryGroup))
            result.roleHolders[role.name] = role.isBase ? [] : role.directoryGroup.map(memberCodes) ?? []
        }
        for code in keptAsStored {
            for (name, holders) in stored.roleHolders where holders.contains(code) && result.roleHolders[name] != nil {
                result.roleHolders[name, default: []].insert(code)
            }
        }

        return result
    }

    /// `users` ordered by code, each user moved once (sorting the users themselves moves
    /// large values many times over; copying them retains every field). Codes are unique, so
    /// the order is fully determined.
    static func sortedByCode(_ users: consuming [User]) -> [User] {
        let order: [Int]
        do {
            let keys = users.map { $0.code.key }
            order = keys.indices.sorted { keys[$0] < keys[$1] }
        }
        // Position p takes the user at order[p]: each cycle of the permutation is followed once,
        // swapping the user due at each position into it.
        // (A buffer's `swapAt` moves the two values; an array's copies them.)
        users.withUnsafeMutableBufferPointer { buffer in
            var placed = [Bool](repeating: false, count: buffer.count)
            for start in buffer.indices where !placed[start] {
                var position = start
                placed[position] = true
                while order[position] != start {
                    let next = order[position]
                    buffer.swapAt(position, next)
                    position = next
                    placed[position] = true
                }
            }
        }
        return users
    }

    /// A pattern rule's template with `{name}` placeholders replaced by the match's captures.
    func resolve(_ template: RosterConfiguration.ClinicGroupSpec, captures match: Regex<AnyRegexOutput>.Match) -> RosterConfiguration.ClinicGroupSpec {
        var values: [String: String] = [:]
        for element in match.output {
            if let name = element.name, let substring = element.substring { values[name] = String(substring) }
        }
        func fill(_ text: String) -> String { Self.fill(text, with: values) }
        var spec = template
        spec.name = fill(spec.name)
        spec.healthCenter = fill(spec.healthCenter)
        spec.careVenues = spec.careVenues.map(fill)
        switch spec.providers {
        case .membersOf(let dn): spec.providers = .membersOf(fill(dn))
        case .listed(let codes): spec.providers = .listed(codes.map(fill))
        case .pools(let ids): spec.providers = .pools(ids.map { PoolID(fill($0.rawValue)) })
        case .allInHealthCenter: break
        }
        return spec
    }

    /// `text` with each `{name}` of a name in `values` replaced by its value, in one pass (a
    /// value is never searched for placeholders itself); other braces stay as they are.
    static func fill(_ text: String, with values: [String: String]) -> String {
        guard text.utf8.contains(0x7B) else { return text }  // {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        var rest = text[...]
        while let open = rest.firstIndex(of: "{") {
            result += rest[..<open]
            let afterOpen = rest.index(after: open)
            if let close = rest[afterOpen...].firstIndex(of: "}"), let value = values[String(rest[afterOpen..<close])] {
                result += value
                rest = rest[rest.index(after: close)...]
            } else {
                result += "{"
                rest = rest[afterOpen...]
            }
        }
        result += rest
        return result
    }

    /// The clinic group a mapping describes, or why it cannot be built; with the providers its
    /// `listed` names that belong to another health center, which are left out (for the caller
    /// to report).
    func buildGroup(_ spec: RosterConfiguration.ClinicGroupSpec, directoryDN: String, providers: [ProviderID: Provider],
                    providersAmongMembers: (String) -> [ProviderID]) -> Swift.Result<(group: Group, leftOut: [Provider]), MappingProblem> {
        func fail(_ message: String) -> Swift.Result<(group: Group, leftOut: [Provider]), MappingProblem> {
            .failure(MappingProblem(dn: directoryDN, message: message))
        }
        guard let center = healthCenterIDs[spec.healthCenter.lowercased()] else {
            return fail("maps to health center '\(spec.healthCenter)', which is not configured; skipped")
        }
        var venues = Set<CareVenueID>()
        for name in spec.careVenues {
            guard let venue = careVenueIDs[name.lowercased()], venue.healthCenter == center else {
                return fail("maps to care venue '\(name)', which is not configured at \(center); skipped")
            }
            venues.insert(venue.id)
        }
        var targets: [String] = []
        var leftOut: [Provider] = []
        switch spec.providers {
        case .allInHealthCenter:
            targets = providers.values.filter { $0.healthCenter == center }.map(\.id.rawValue)
        case .membersOf(let dn):
            targets = providersAmongMembers(dn).filter { providers[$0]?.healthCenter == center }.map(\.rawValue)
        case .listed(let codes):
            for code in codes {
                guard let provider = providers.values.first(where: { $0.id.rawValue.lowercased() == code.lowercased() }) else { continue }
                if provider.healthCenter == center { targets.append(provider.id.rawValue) } else { leftOut.append(provider) }
            }
        case .pools(let ids):
            targets = ids.map(\.rawValue)
        }
        var modules: [Module: ModuleGrant] = [:]
        for (module, setting) in spec.modules {
            var entries: [String: TargetGrant] = [:]
            if module.isProviderScoped {
                for target in targets {
                    let override = setting.overrides.first { $0.key.lowercased() == target.lowercased() }?.value
                    entries[target] = TargetGrant(override?.privilege ?? setting.privilege, privacyOverride: override?.privacy)
                }
            }
            modules[module] = ModuleGrant(privacy: setting.privacy, defaultPrivilege: setting.privilege, targets: entries)
        }
        do {
            let group = try Group(id: GroupID("\(center.rawValue)/\(spec.name)"), name: spec.name, kind: spec.kind, healthCenter: center,
                                  careVenues: venues, modules: modules, schedulingAbility: spec.schedulingAbility,
                                  autoAddNewProviders: spec.autoAddNewProviders, directoryDN: directoryDN)
            return .success((group, leftOut))
        } catch {
            return fail("\(error); skipped")
        }
    }
}

extension String {
    /// `trimmingCharacters(in: .whitespaces)`, without a trip through Foundation when neither
    /// end is a space, a tab or a non-ASCII character (nearly every directory value).
    func trimmingWhitespace() -> String {
        guard let first = utf8.first, let last = utf8.last else { return self }
        func mayTrim(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte >= 0x80 }
        if !mayTrim(first) && !mayTrim(last) { return self }
        return trimmingCharacters(in: .whitespaces)
    }
}

extension DirectoryMapper {
    /// The id of `provider`'s own provider group (`providers.own_group`).
    static func ownGroupID(of provider: Provider) -> GroupID {
        GroupID("\(provider.healthCenter.rawValue)\(ownGroupMarker)\(provider.id.rawValue.lowercased())")
    }

    /// Whether `id` is the id of a provider's own group (``ownGroupID(of:)``).
    static func isOwnGroupID(_ id: GroupID) -> Bool {
        id.rawValue.contains(ownGroupMarker)
    }

    private static let ownGroupMarker = "/provider:"
}

/// The configuration's group pattern rules, compiled once (case-insensitive), in order.
struct PatternRules {
    /// Each rule with its position in the configuration's list.
    private let rules: [(index: Int, rule: RosterConfiguration.PatternRule, regex: Regex<AnyRegexOutput>)]

    init(_ patternRules: [RosterConfiguration.PatternRule]) {
        rules = patternRules.enumerated().compactMap { index, rule in
            (try? Regex(rule.pattern)).map { (index, rule, $0.ignoresCase()) }
        }
    }

    /// The first rule whose pattern matches the whole cn (the DN's first value when the entry
    /// has no cn) or DN of a directory group, with the match.
    func firstMatch(dn: String, cn: String?) -> (RosterConfiguration.PatternRule, Regex<AnyRegexOutput>.Match)? {
        firstIndexedMatch(dn: dn, cn: cn).map { ($0.rule, $0.match) }
    }

    /// ``firstMatch(dn:cn:)`` with the rule's position in the configuration's list.
    func firstIndexedMatch(dn: String, cn: String?) -> (index: Int, rule: RosterConfiguration.PatternRule, match: Regex<AnyRegexOutput>.Match)? {
        for (index, rule, regex) in rules {
            let subject = rule.target == .cn ? (cn ?? DN.firstValue(dn) ?? "") : dn
            if let match = try? regex.wholeMatch(in: subject) { return (index, rule, match) }
        }
        return nil
    }
}

/// Where in roster.yaml a clinic group or role of the mirror comes from, as a key path an admin
/// can look up (`groups.mappings[2]`, `groups.pattern_rules[0]`, `providers.own_group`,
/// `roles[1]`). For a group it makes the mapping's own choice: the explicit mapping of its
/// directory group first, then the first pattern rule that matches (by the DN's first value
/// where the rule looks at the cn: the mirror keeps the DN, not the cn). It holds the pattern
/// rules compiled once; Swift's `Regex` is not `Sendable`, so neither is this.
public struct MappingOrigins {
    private let explicit: [String: Int]
    private let patternRules: PatternRules
    private let ownGroups: Bool
    private let roles: [RoleName: Int]
    /// The base role's name when it is Roster's own, else nil.
    private let builtInBaseRole: RoleName?

    public init(_ configuration: RosterConfiguration) {
        explicit = Dictionary(configuration.groups.mappings.enumerated().map { (DN.normalize($0.element.directoryGroup), $0.offset) },
                              uniquingKeysWith: { first, _ in first })
        patternRules = PatternRules(configuration.groups.patternRules)
        ownGroups = configuration.providers.ownGroup != nil
        roles = Dictionary(configuration.roles.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { first, _ in first })
        builtInBaseRole = configuration.roles.contains(where: \.isBase) ? nil : RosterConfiguration.builtInBaseRole.name
    }

    /// The key path of what makes `group`, or nil when the configuration no longer makes it.
    public func origin(of group: Group) -> String? {
        if let dn = group.directoryDN {
            let normalized = DN.normalize(dn)
            if let index = explicit[normalized] { return "groups.mappings[\(index)]" }
            if let found = patternRules.firstIndexedMatch(dn: normalized, cn: nil) {
                return "groups.pattern_rules[\(found.index)] (\(found.rule.target.rawValue) matching '\(found.rule.pattern)')"
            }
            return nil
        }
        return ownGroups && DirectoryMapper.isOwnGroupID(group.id) ? "providers.own_group" : nil
    }

    /// The key path of the role mapping named `role`, or nil.
    public func origin(ofRole role: RoleName) -> String? {
        if let index = roles[role] { return "roles[\(index)]" }
        return role == builtInBaseRole ? "the base role Roster gives every user (no role in roles is base: true)" : nil
    }
}
