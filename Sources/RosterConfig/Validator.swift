import AccessModel

/// The semantic checks, run on a structurally sound configuration: references between
/// sections, identifiers, DNs, filters, patterns, TLS and bind settings, and files.
/// Problems point at the remembered position of the offending value.
struct Validator {
    let configuration: RosterConfiguration
    let collector: ProblemCollector
    let files: any FileChecks
    /// Whether the files the configuration names (secrets, certificates) are checked.
    let checksNamedFiles: Bool

    private let healthCenters: [HealthCenterID: RosterConfiguration.HealthCenterConfig]
    private let venueOwners: [CareVenueID: HealthCenterID]
    private let pools: [PoolID: RosterConfiguration.PoolConfig]

    init(configuration: RosterConfiguration, collector: ProblemCollector, files: any FileChecks, checksNamedFiles: Bool = true) {
        self.configuration = configuration
        self.collector = collector
        self.files = files
        self.checksNamedFiles = checksNamedFiles
        healthCenters = Dictionary(configuration.healthCenters.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        venueOwners = Dictionary(configuration.healthCenters.flatMap { center in center.careVenues.map { ($0.id, center.id) } },
                                 uniquingKeysWith: { first, _ in first })
        pools = Dictionary(configuration.pools.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func report(_ message: String, _ path: String) { collector.report(message, path: path) }

    func run() {
        let base = directory()
        users(base: base)
        providers()
        identifiers()
        let groupsBase = groups(base: base)
        for (index, pool) in configuration.pools.enumerated() {
            let path = child("pools", index)
            healthCenter(pool.healthCenter.rawValue, child(path, "health_center"))
            directoryGroup(pool.providersGroup, child(path, "providers_group"), groupsBase: groupsBase)
        }
        for (index, role) in configuration.roles.enumerated() {
            if let dn = role.directoryGroup {
                directoryGroup(dn, child(child("roles", index), "directory_group"), groupsBase: groupsBase)
            }
        }
        baseRole()
        for (index, dn) in configuration.users.superAdministratorGroups.enumerated() {
            directoryGroup(dn, child("users.super_administrator_groups", index), groupsBase: groupsBase)
        }
        http()
    }

    // MARK: directory

    /// Checks `directory:` and returns its parsed base DN.
    private func directory() -> DistinguishedName? {
        let directory = configuration.directory
        for (index, url) in directory.urls.enumerated() {
            let lower = url.lowercased()
            let scheme = lower.prefix { $0 != ":" }
            if !["ldap", "ldaps", "ldapi"].contains(scheme) || !lower.contains("://") {
                report("'\(url)' is not an LDAP URL; write ldaps://host[:port], ldap://host[:port] (StartTLS) or ldapi://",
                       child("directory.urls", index))
            }
        }
        if directory.urls.count != Set(directory.urls.map { $0.lowercased() }).count {
            report("a URL is listed twice; list each directory server once", "directory.urls")
        }
        let base = dn(directory.baseDN, "directory.base_dn")
        if let policy = directory.defaultPasswordPolicy {
            if directory.flavor == .openldap || directory.flavor == .generic {
                searchBase(policy, "directory.default_password_policy", directoryBase: base)
            } else {
                report("default_password_policy names an OpenLDAP password policy; \(directory.flavor.rawValue) keeps its lockout "
                       + "durations elsewhere: remove it", "directory.default_password_policy")
            }
        }
        switch directory.bind {
        case .simple(let bindDN, let passwordFile):
            _ = dn(bindDN, "directory.bind.dn")
            file(passwordFile, "directory.bind.password_file", what: "password file", nonEmpty: "write the bind password into it")
        case .saslExternal:
            if directory.certificateFile == nil, !directory.urls.allSatisfy({ $0.lowercased().hasPrefix("ldapi://") }) {
                report("SASL EXTERNAL over the network authenticates with a TLS client certificate; set tls.certificate_file "
                       + "and tls.key_file, or use an ldapi:// URL", "directory.bind.method")
            }
        case .anonymous:
            break
        }
        if (directory.certificateFile == nil) != (directory.keyFile == nil) {
            report("a TLS client certificate needs both certificate_file and key_file", directory.certificateFile == nil
                   ? "directory.tls.key_file" : "directory.tls.certificate_file")
        }
        file(directory.caFile, "directory.tls.ca_file", what: "CA file", pem: true)
        file(directory.certificateFile, "directory.tls.certificate_file", what: "certificate file", pem: true)
        file(directory.keyFile, "directory.tls.key_file", what: "key file")
        return base
    }

    // MARK: users and providers

    private func users(base: DistinguishedName?) {
        let users = configuration.users
        searchBase(users.base, "users.base", directoryBase: base)
        filter(users.filter, "users.filter")
        let attributes = users.attributes
        let named: [(String, String?)] = [
            ("user_code", attributes.userCode), ("first_name", attributes.firstName), ("last_name", attributes.lastName),
            ("display_name", attributes.displayName), ("email", attributes.email), ("title", attributes.title),
            ("health_centers", attributes.healthCenters), ("auto_logout_minutes", attributes.autoLogoutMinutes),
            ("default_workflow_view", attributes.defaultWorkflowView), ("default_patient_view", attributes.defaultPatientView),
            ("default_document_tab", attributes.defaultDocumentTab),
        ]
        for case let (key, name?) in named { attribute(name, child("users.attributes", key)) }
        for (flag, name) in users.flags { attribute(name, child("users.flags", flag)) }
        for (index, id) in users.defaultHealthCenters.enumerated() {
            healthCenter(id.rawValue, child("users.default_health_centers", index))
        }
        duplicates(users.breakGlassUserCodes.map { $0.lowercased() }, "users.break_glass_user_codes", what: "user code")
    }

    private func providers() {
        let providers = configuration.providers
        if let filter = providers.filter { self.filter(filter, "providers.filter") }
        if let name = providers.healthCenterAttribute { attribute(name, "providers.health_center_attribute") }
        if providers.filter != nil, providers.healthCenterAttribute == nil, configuration.users.attributes.healthCenters == nil,
           configuration.users.defaultHealthCenters.isEmpty {
            report("Roster cannot tell a provider's health center; set providers.health_center_attribute, "
                   + "users.attributes.health_centers or users.default_health_centers", "providers.filter")
        }
        for (index, venue) in (providers.ownGroup?.careVenues ?? []).enumerated() {
            careVenue(venue.rawValue, in: nil, child("providers.own_group.care_venues", index))
        }
    }

    // MARK: identifiers

    private func identifiers() {
        duplicates(configuration.healthCenters.map(\.id.rawValue), "health_centers", what: "health center id", key: "id")
        var venues: [String] = []
        var venuePaths: [String] = []
        for (index, center) in configuration.healthCenters.enumerated() {
            for (venueIndex, venue) in center.careVenues.enumerated() {
                venues.append(venue.id.rawValue)
                venuePaths.append(child(child(child("health_centers", index), "care_venues"), venueIndex))
            }
        }
        duplicates(venues, paths: venuePaths, what: "care venue id", key: "id")
        duplicates(configuration.pools.map(\.id.rawValue), "pools", what: "pool id", key: "id")
        duplicates(configuration.roles.map(\.name.rawValue), "roles", what: "role name", key: "name")
        duplicates(configuration.groups.mappings.map(\.group.name), "groups.mappings", what: "clinic group name", key: "name")
    }

    // MARK: roles

    /// One base role at most; without one, Roster's own (``RosterConfiguration/builtInBaseRole``)
    /// is named Base, which no other role may be.
    private func baseRole() {
        let bases = configuration.roles.indices.filter { configuration.roles[$0].isBase }
        for index in bases.dropFirst() {
            report("'\(configuration.roles[bases[0]].name)' is already the base role (roles[\(bases[0])]); every user holds one "
                   + "base role, so mark only one role base: true", child(child("roles", index), "base"))
        }
        if bases.isEmpty, let index = configuration.roles.firstIndex(where: { $0.name == RosterConfiguration.builtInBaseRole.name }) {
            report("'\(RosterConfiguration.builtInBaseRole.name)' names the base role Roster gives every user when no role is "
                   + "base: true; mark this role base: true to make it that role, or rename it", child(child("roles", index), "name"))
        }
    }

    // MARK: groups

    private func groups(base: DistinguishedName?) -> DistinguishedName? {
        let groups = configuration.groups
        let groupsBase = searchBase(groups.base, "groups.base", directoryBase: base)
        filter(groups.filter, "groups.filter")
        attribute(groups.memberAttribute, "groups.member_attribute")
        var seen: [DistinguishedName: Int] = [:]
        for (index, mapping) in groups.mappings.enumerated() {
            let path = child("groups.mappings", index)
            if let dn = directoryGroup(mapping.directoryGroup, child(path, "directory_group"), groupsBase: groupsBase) {
                if let first = seen[dn] {
                    report("this directory group is already mapped by groups.mappings[\(first)]; map it once "
                           + "(one mapping may grant several modules)", child(path, "directory_group"))
                } else {
                    seen[dn] = index
                }
            }
            spec(mapping.group, path, captures: nil, groupsBase: groupsBase)
        }
        for (index, rule) in groups.patternRules.enumerated() {
            let path = child("groups.pattern_rules", index)
            var captures: Set<String> = []
            do {
                _ = try Regex(rule.pattern)
                captures = namedCaptures(rule.pattern)
            } catch {
                report("the pattern is not a valid regular expression: \(error)", child(path, "pattern"))
            }
            spec(rule.template, child(path, "template"), captures: captures, groupsBase: groupsBase)
        }
        return groupsBase
    }

    /// Checks a clinic group (a mapping's, or a pattern rule's template when `captures` is given).
    private func spec(_ spec: RosterConfiguration.ClinicGroupSpec, _ path: String, captures: Set<String>?,
                      groupsBase: DistinguishedName?) {
        func resolvable(_ text: String, _ keyPath: String) -> Bool {
            guard let captures else { return true }
            let names = placeholders(in: text)
            for name in names where !captures.contains(name) {
                let known = captures.isEmpty ? "the pattern has no named captures; write (?<name>...)"
                    : "the pattern's named captures are \(captures.sorted().joined(separator: ", "))"
                report("'{\(name)}' is not a named capture of the pattern\(suggestion(for: name, among: captures.sorted())); \(known)",
                       keyPath)
            }
            return names.isEmpty
        }
        _ = resolvable(spec.name, child(path, "name"))
        let center: HealthCenterID? = resolvable(spec.healthCenter, child(path, "health_center"))
            && healthCenter(spec.healthCenter, child(path, "health_center")) ? HealthCenterID(spec.healthCenter) : nil
        for (index, venue) in spec.careVenues.enumerated() {
            let venuePath = child(child(path, "care_venues"), index)
            if resolvable(venue, venuePath) { careVenue(venue, in: center, venuePath) }
        }
        let providersPath = child(path, "providers")
        switch (spec.kind, spec.providers) {
        case (.pool, .pools), (.provider, .allInHealthCenter), (.provider, .membersOf), (.provider, .listed):
            break
        case (.pool, _):
            report("a pool group (kind: pool) grants pools; write providers: {pools: [pool ids]}", providersPath)
        case (.provider, .pools):
            report("only a pool group names pools; set kind: pool, or name providers with all_in_health_center, "
                   + "{members_of: dn} or {listed: [user codes]}", providersPath)
        }
        switch spec.providers {
        case .allInHealthCenter:
            break
        case .membersOf(let dn):
            let dnPath = child(providersPath, "members_of")
            if resolvable(dn, dnPath) {
                directoryGroup(dn, dnPath, groupsBase: groupsBase)
            } else {
                // Check the shape with each placeholder standing for a plain value.
                directoryGroup(dn.replacing(#/\{[A-Za-z_][A-Za-z0-9_]*\}/#, with: "x"), dnPath, groupsBase: groupsBase)
            }
        case .listed(let codes):
            for (index, code) in codes.enumerated() { _ = resolvable(code, child(child(providersPath, "listed"), index)) }
            duplicates(codes.map { $0.lowercased() }, child(providersPath, "listed"), what: "user code")
            let listed = Set(codes.map { $0.lowercased() })
            for (module, setting) in spec.modules {
                for code in setting.overrides.keys where !listed.contains(code.lowercased()) {
                    report("'\(code)' is not among the group's listed providers; add it to providers.listed or remove the override",
                           child(child(child(child(path, "modules"), module.rawValue), "overrides"), code))
                }
            }
        case .pools(let ids):
            for (index, id) in ids.enumerated() {
                let poolPath = child(child(providersPath, "pools"), index)
                guard resolvable(id.rawValue, poolPath) else { continue }
                guard let pool = pools[id] else {
                    report("unknown pool '\(id)'" + known(id.rawValue, configuration.pools.map(\.id.rawValue), "pools"), poolPath)
                    continue
                }
                if let center, pool.healthCenter != center {
                    report("pool '\(id)' belongs to health center \(pool.healthCenter), not to the group's \(center)", poolPath)
                }
            }
        }
    }

    // MARK: http

    private func http() {
        let http = configuration.http
        var address = Substring(http.address.lowercased())
        if address.hasPrefix("["), address.hasSuffix("]") { address = address.dropFirst().dropLast() }
        let loopback = address == "localhost" || address.hasPrefix("127.") || address == "::1"
        if !loopback, http.tokenFile == nil {
            report("the HTTP endpoint on \(http.address) is reachable from other hosts; set http.token_file to a file "
                   + "holding the bearer token, or listen on 127.0.0.1", "http.address")
        }
        file(http.tokenFile, "http.token_file", what: "token file", nonEmpty: "write the bearer token into it")
        if (http.tlsCertificateFile == nil) != (http.tlsKeyFile == nil) {
            report("HTTPS needs both certificate_file and key_file", http.tlsCertificateFile == nil ? "http.tls.certificate_file" : "http.tls.key_file")
        }
        file(http.tlsCertificateFile, "http.tls.certificate_file", what: "certificate file", pem: true)
        file(http.tlsKeyFile, "http.tls.key_file", what: "key file")
    }

    // MARK: helpers

    /// Parses a DN, reporting it when malformed.
    @discardableResult
    private func dn(_ text: String, _ path: String) -> DistinguishedName? {
        guard !text.isEmpty else { return nil }  // reported as missing or empty already
        do {
            let name = try DistinguishedName(parsing: text)
            if name.rdns.isEmpty { report("the DN is empty", path) }
            return name.rdns.isEmpty ? nil : name
        } catch {
            report("'\(text)' is not a valid DN: \(error.message) (at offset \(error.offset)); "
                   + "write e.g. cn=Smith\\, John,ou=people,dc=clinic,dc=example", path)
            return nil
        }
    }

    /// A hint for a DN cut short at its first comma by a YAML flow collection.
    private func quoting(_ name: DistinguishedName) -> String {
        name.rdns.count == 1 ? " (a DN written inside {...} or [...] must be quoted, as commas separate entries there)" : ""
    }

    @discardableResult
    private func searchBase(_ text: String, _ path: String, directoryBase: DistinguishedName?) -> DistinguishedName? {
        // The default, the directory's base DN, was checked as directory.base_dn.
        if text == configuration.directory.baseDN { return directoryBase }
        guard let name = dn(text, path) else { return nil }
        if let directoryBase, !name.isWithin(directoryBase) {
            report("'\(text)' is not under directory.base_dn '\(directoryBase)'; searches start at the base DN" + quoting(name), path)
        }
        return name
    }

    /// A directory group DN: well formed and inside the groups base, where Roster reads groups.
    @discardableResult
    private func directoryGroup(_ text: String, _ path: String, groupsBase: DistinguishedName?) -> DistinguishedName? {
        guard let name = dn(text, path) else { return nil }
        if let groupsBase, !name.isWithin(groupsBase) {
            report("'\(text)' is not under groups.base '\(groupsBase)', where Roster reads directory groups; "
                   + "fix the DN or widen groups.base" + quoting(name), path)
        }
        return name
    }

    private func filter(_ text: String, _ path: String) {
        if let problem = filterSyntaxProblem(text) { report("not a valid LDAP filter: \(problem)", path) }
    }

    private func attribute(_ name: String, _ path: String) {
        let parts = name.split(separator: ";", omittingEmptySubsequences: false)
        let type = parts[0]
        let isName = type.first?.isLetter == true && type.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        let arcs = type.split(separator: ".", omittingEmptySubsequences: false)
        let isOID = arcs.count >= 2 && arcs.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
        let options = parts.dropFirst().allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } }
        if !(isName || isOID) || !options {
            report("'\(name)' is not an LDAP attribute name; write a name such as mail or sAMAccountName", path)
        }
    }

    /// Whether the health center exists; reports it when not.
    @discardableResult
    private func healthCenter(_ id: String, _ path: String) -> Bool {
        guard !id.isEmpty else { return false }
        if healthCenters[HealthCenterID(id)] != nil { return true }
        report("unknown health center '\(id)'" + known(id, configuration.healthCenters.map(\.id.rawValue), "health_centers"), path)
        return false
    }

    private func careVenue(_ id: String, in center: HealthCenterID?, _ path: String) {
        guard !id.isEmpty else { return }
        guard let owner = venueOwners[CareVenueID(id)] else {
            let candidates = configuration.healthCenters.filter { center == nil || $0.id == center }
                .flatMap { $0.careVenues.map(\.id.rawValue) }
            report("unknown care venue '\(id)'" + known(id, candidates, center.map { "health center \($0)" } ?? "health_centers"), path)
            return
        }
        if let center, owner != center {
            report("care venue '\(id)' belongs to health center \(owner), not to the group's health center \(center)", path)
        }
    }

    /// `"; did you mean 'HC1'?"`, or the list of known values.
    private func known(_ value: String, _ candidates: [String], _ place: String) -> String {
        let hint = suggestion(for: value, among: candidates)
        if !hint.isEmpty { return hint }
        return candidates.isEmpty ? "; none is defined in \(place)" : "; \(place) defines \(candidates.joined(separator: ", "))"
    }

    private func duplicates(_ values: [String], _ path: String, what: String, key: String? = nil) {
        duplicates(values, paths: values.indices.map { child(path, $0) }, what: what, key: key)
    }

    private func duplicates(_ values: [String], paths: [String], what: String, key: String? = nil) {
        var seen: Set<String> = []
        for (value, path) in zip(values, paths) where !value.isEmpty {
            if !seen.insert(value).inserted {
                report("the \(what) '\(value)' is used twice; \(what)s must be unique", key.map { child(path, $0) } ?? path)
            }
        }
    }

    private func file(_ path: String?, _ keyPath: String, what: String, pem: Bool = false, nonEmpty: String? = nil) {
        guard checksNamedFiles, let path, !path.isEmpty else { return }
        guard files.isReadableFile(path) else {
            report("the \(what) '\(path)' does not exist or roster cannot read it; create it (owned by roster, mode 0600 for "
                   + "secrets) or fix the path", keyPath)
            return
        }
        guard pem || nonEmpty != nil else { return }
        let contents = files.fileContents(path) ?? ""
        if let nonEmpty, contents.allSatisfy(\.isWhitespace) {
            report("the \(what) '\(path)' is empty; \(nonEmpty)", keyPath)
        }
        if pem, !contents.contains("-----BEGIN CERTIFICATE-----") {
            report("'\(path)' is not a PEM certificate (it has no '-----BEGIN CERTIFICATE-----' line); convert a DER file "
                   + "with: openssl x509 -inform der -in FILE -out FILE.pem", keyPath)
        }
    }
}

/// The `{name}` placeholders in a template string.
func placeholders(in text: String) -> [String] {
    text.matches(of: #/\{([A-Za-z_][A-Za-z0-9_]*)\}/#).map { String($0.output.1) }
}

/// The names of a regular expression's named captures: `(?<name>…)`, `(?P<name>…)`, `(?'name'…)`.
func namedCaptures(_ pattern: String) -> Set<String> {
    var names: Set<String> = []
    var escaped = false
    var inClass = false
    let characters = Array(pattern)
    for (index, character) in characters.enumerated() {
        if escaped { escaped = false; continue }
        switch character {
        case "\\": escaped = true
        case "[": inClass = true
        case "]": inClass = false
        case "(" where !inClass:
            var rest = String(characters[(index + 1)...])
            guard rest.hasPrefix("?") else { continue }
            rest.removeFirst()
            if rest.hasPrefix("P") { rest.removeFirst() }
            guard let open = rest.first, open == "<" || open == "'" else { continue }
            let close: Character = open == "<" ? ">" : "'"
            let name = rest.dropFirst().prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !name.isEmpty, rest.dropFirst(name.count + 1).first == close { names.insert(String(name)) }
        default: break
        }
    }
    return names
}
