import AccessModel
import Yams

/// Reads `roster.yaml` into a ``RosterConfiguration``, checking every value.
///
/// The YAML is composed into nodes and walked by hand (not decoded), so every problem
/// carries its line, column and key path, and all problems are reported at once. After
/// the structure, the meaning is checked: references between sections, DNs, filters,
/// patterns, TLS and bind settings, and the files the configuration names.
///
/// Relative file paths in the configuration are taken relative to the configuration
/// file's directory, and stored resolved.
public enum ConfigurationLoader {
    /// Loads and checks the configuration file at `path`. With `checkingNamedFiles` false, the
    /// files it names (the bind password, the HTTP token, certificates and keys) are not looked
    /// at: for commands that only use the mirror and never open them.
    public static func load(path: String, files: any FileChecks = SystemFileChecks(),
                            checkingNamedFiles: Bool = true) throws(ConfigurationErrors) -> RosterConfiguration {
        guard let yaml = files.fileContents(path) else {
            throw ConfigurationErrors(problems: [ConfigurationProblem(
                file: path, line: 0, column: 0, keyPath: "",
                message: "the configuration file cannot be read; check that it exists and that roster may read it")])
        }
        return try load(yaml: yaml, file: path, files: files, checkingNamedFiles: checkingNamedFiles)
    }

    /// Loads and checks configuration text; `file` names it in problems and anchors relative paths.
    public static func load(yaml: String, file: String, files: any FileChecks = SystemFileChecks(),
                            checkingNamedFiles: Bool = true) throws(ConfigurationErrors) -> RosterConfiguration {
        let collector = ProblemCollector(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            let (position, message) = describe(yamlError: error)
            collector.report(message, at: position, path: "")
            throw ConfigurationErrors(problems: collector.problems)
        }
        guard let root else {
            collector.report("the file holds no configuration; see config/roster.yaml for an annotated example",
                             at: Position(line: 1, column: 1), path: "")
            throw ConfigurationErrors(problems: collector.problems)
        }
        let value = Value(node: root, path: "", collector: collector)
        collector.remember("", value.position)
        var reader = Reader(directory: directoryPart(of: file))
        let configuration = reader.configuration(value)
        if let configuration {
            Validator(configuration: configuration, collector: collector, files: files, checksNamedFiles: checkingNamedFiles).run()
        }
        guard let configuration, collector.problems.isEmpty else {
            let ordered = collector.problems.enumerated().sorted {
                ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
            }.map(\.element)
            throw ConfigurationErrors(problems: ordered)
        }
        return configuration
    }

    private static func directoryPart(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "" }
        return String(file[...slash])
    }

    private static func describe(yamlError error: any Error) -> (Position, String) {
        guard let error = error as? YamlError else { return (Position(line: 1, column: 1), "the YAML cannot be read: \(error)") }
        func text(_ context: YamlError.Context?, _ problem: String) -> String {
            "YAML syntax error: " + problem + (context.map { " (\($0.text) at line \($0.mark.line))" } ?? "")
        }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            return (Position(mark), text(context, problem))
        case .reader(let problem, _, _, _):
            return (Position(line: 1, column: 1), "the file is not valid UTF-8 text: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return (Position(context.mark), "the key \(keys) appears more than once in the same mapping; keep one")
        default:
            return (Position(line: 1, column: 1), "the YAML cannot be read: \(error)")
        }
    }
}

/// Turns nodes into configuration values, reporting structural problems (unknown keys,
/// wrong types, missing keys, values out of range) on the way.
private struct Reader {
    /// The configuration file's directory with a trailing slash, or empty.
    let directory: String

    func file(_ value: Value?) -> String? {
        guard let path = value?.nonEmptyString else { return nil }
        return path.hasPrefix("/") ? path : directory + path
    }

    func int(_ value: Value?, default fallback: Int, in range: ClosedRange<Int>, _ rule: String) -> Int {
        guard let value, let number = value.int else { return fallback }
        if !range.contains(number) { value.report("\(number) is out of range; \(rule)") }
        return number
    }

    /// A number of seconds or minutes, which must be more than 0.
    func positive(_ value: Value?, default fallback: Double, _ rule: String) -> Double {
        guard let value, let number = value.double else { return fallback }
        if number <= 0 { value.report("\(value.found) is out of range; \(rule)") }
        return number
    }

    mutating func configuration(_ root: Value) -> RosterConfiguration? {
        guard let top = root.fields(["directory", "users", "providers", "health_centers", "pools", "groups", "roles",
                                     "safety", "schedule", "mirror", "http"]) else { return nil }
        let directory = self.directory(top.required("directory", hint: "say how to reach the LDAP directory"))
        let baseDN = directory.baseDN
        let centers = top.required("health_centers", hint: "list the clinic's health centers and their care venues")
        let healthCenters = (centers?.items ?? []).map(healthCenter)
        if let centers, healthCenters.isEmpty, case .sequence = centers.node {
            centers.report("list at least one health center, e.g. [{id: HC1, name: North Hospital, care_venues: []}]")
        }
        return RosterConfiguration(
            directory: directory,
            users: users(top["users"], baseDN: baseDN),
            providers: providers(top["providers"]),
            healthCenters: healthCenters,
            pools: (top["pools"]?.items ?? []).map(pool),
            groups: groups(top["groups"], baseDN: baseDN, flavor: directory.flavor),
            roles: (top["roles"]?.items ?? []).map(role),
            safety: safety(top["safety"]),
            schedule: schedule(top["schedule"]),
            mirror: mirror(top["mirror"]),
            http: http(top["http"]))
    }

    // MARK: directory

    func directory(_ value: Value?) -> RosterConfiguration.Directory {
        let placeholder = RosterConfiguration.Directory(urls: [], baseDN: "")
        guard let value, let fields = value.fields(
            ["name", "urls", "flavor", "tls", "allow_plaintext", "bind", "base_dn", "page_size",
             "connect_timeout_seconds", "operation_timeout_seconds", "default_password_policy"],
            secrets: ["password": "bind.password_file", "bind_password": "bind.password_file"]) else { return placeholder }
        var result = placeholder
        result.name = fields["name"]?.nonEmptyString ?? result.name
        if let urls = fields.required("urls", hint: "give at least one ldaps://, ldap:// or ldapi:// URL") {
            if let list = urls.stringList {
                result.urls = list
                if list.isEmpty { urls.report("give at least one ldaps://, ldap:// or ldapi:// URL") }
            }
        }
        result.flavor = fields["flavor"]?.choice(RosterConfiguration.Flavor.self) ?? result.flavor
        if let tls = fields["tls"]?.fields(["mode", "ca_file", "certificate_file", "key_file", "verify_server"]) {
            result.plaintext = tls["mode"]?.choice([("tls", false), ("plaintext", true)]) ?? false
            result.caFile = file(tls["ca_file"])
            result.certificateFile = file(tls["certificate_file"])
            result.keyFile = file(tls["key_file"])
            result.verifyServer = tls["verify_server"]?.bool ?? true
        }
        let allowPlaintext = fields["allow_plaintext"]?.bool ?? false
        if result.plaintext {
            let modePath = child(child(value.path, "tls"), "mode")
            let tcp = result.urls.filter { !$0.lowercased().hasPrefix("ldapi://") }
            if let ldaps = result.urls.first(where: { $0.lowercased().hasPrefix("ldaps://") }) {
                value.collector.report("'\(ldaps)' is an ldaps:// URL, which always uses TLS; set tls.mode: tls or use ldap:// URLs",
                                       path: modePath)
            } else if !tcp.isEmpty, !allowPlaintext {
                value.collector.report("plaintext sends the bind password and all directory data unencrypted; use tls, or if "
                                       + "this is really wanted (a test directory) also set allow_plaintext: true",
                                       path: modePath)
            }
        }
        if let bind = fields["bind"]?.fields(["method", "dn", "password_file"], secrets: [
            "password": "password_file", "bind_password": "password_file", "secret": "password_file", "credentials": "password_file",
        ]) {
            let method = bind["method"]?.choice(["simple", "sasl_external", "anonymous"].map { ($0, $0) }) ?? "anonymous"
            if method == "simple" {
                let dn = bind.required("dn", hint: "give the DN roster binds as")?.nonEmptyString ?? ""
                let password = file(bind.required("password_file", hint: "name the file holding the bind password"))
                result.bind = .simple(dn: dn, passwordFile: password ?? "")
            } else {
                for key in ["dn", "password_file"] where bind.has(key) {
                    bind.values[key]?.report("'\(key)' is used only with method 'simple'; remove it or set method: simple")
                }
                result.bind = method == "sasl_external" ? .saslExternal : .anonymous
            }
        }
        result.baseDN = fields.required("base_dn", hint: "give the directory's base DN, e.g. dc=clinic,dc=example")?.nonEmptyString ?? ""
        result.pageSize = int(fields["page_size"], default: result.pageSize, in: 1...10_000, "page_size is 1 to 10000")
        result.connectTimeoutSeconds = positive(fields["connect_timeout_seconds"], default: result.connectTimeoutSeconds,
                                              "a timeout must be more than 0 seconds")
        result.operationTimeoutSeconds = positive(fields["operation_timeout_seconds"], default: result.operationTimeoutSeconds,
                                                "a timeout must be more than 0 seconds")
        result.defaultPasswordPolicy = fields["default_password_policy"]?.nonEmptyString
        return result
    }

    // MARK: users and providers

    func users(_ value: Value?, baseDN: String) -> RosterConfiguration.Users {
        var result = RosterConfiguration.Users(base: baseDN)
        guard let value, let fields = value.fields(
            ["base", "filter", "attributes", "default_auto_logout_minutes", "default_health_centers", "flags",
             "super_administrator_groups", "break_glass_user_codes"]) else { return result }
        result.base = fields["base"]?.nonEmptyString ?? baseDN
        result.filter = fields["filter"]?.string ?? result.filter
        if let attributes = fields["attributes"] { result.attributes = self.attributes(attributes) }
        result.defaultAutoLogoutMinutes = int(fields["default_auto_logout_minutes"], default: result.defaultAutoLogoutMinutes,
                                              in: 1...1440, "auto-logout is 1 to 1440 minutes")
        result.defaultHealthCenters = (fields["default_health_centers"]?.stringList ?? []).map { HealthCenterID($0) }
        for (name, attribute) in fields["flags"]?.entries ?? [] {
            if let attribute = attribute.nonEmptyString { result.flags[name] = attribute }
        }
        result.superAdministratorGroups = fields["super_administrator_groups"]?.stringList ?? []
        result.breakGlassUserCodes = fields["break_glass_user_codes"]?.stringList ?? []
        return result
    }

    func attributes(_ value: Value) -> RosterConfiguration.UserAttributes {
        var result = RosterConfiguration.UserAttributes()
        let keys: [(String, WritableKeyPath<RosterConfiguration.UserAttributes, String?>)] = [
            ("first_name", \.firstName), ("last_name", \.lastName), ("display_name", \.displayName), ("email", \.email),
            ("title", \.title), ("health_centers", \.healthCenters), ("auto_logout_minutes", \.autoLogoutMinutes),
            ("default_workflow_view", \.defaultWorkflowView), ("default_patient_view", \.defaultPatientView),
            ("default_document_tab", \.defaultDocumentTab),
        ]
        guard let fields = value.fields(["user_code"] + keys.map(\.0)) else { return result }
        result.userCode = fields.has("user_code")
            ? fields.required("user_code", hint: "the login attribute, e.g. uid or sAMAccountName")?.nonEmptyString ?? result.userCode
            : result.userCode
        for (key, property) in keys where fields.has(key) {
            // Written but null: the field is not read from the directory.
            result[keyPath: property] = fields[key]?.nonEmptyString
        }
        return result
    }

    func providers(_ value: Value?) -> RosterConfiguration.Providers {
        var result = RosterConfiguration.Providers()
        guard let value, let fields = value.fields(["filter", "health_center_attribute", "own_group"]) else { return result }
        result.filter = fields["filter"]?.string
        result.healthCenterAttribute = fields["health_center_attribute"]?.nonEmptyString
        if fields.has("own_group") {
            var own = RosterConfiguration.OwnGroup()
            if let group = fields["own_group"]?.fields(["care_venues", "modules"]) {
                own.careVenues = (group["care_venues"]?.stringList ?? []).map { CareVenueID($0) }
                if let modules = group["modules"] { own.modules = self.modules(modules) }
            }
            result.ownGroup = own
        }
        return result
    }

    // MARK: modules

    func module(_ name: String, _ value: Value) -> Module? {
        if let module = Module(rawValue: name) { return module }
        let names = Module.allCases.map(\.rawValue)
        value.collector.report("unknown module '\(name)'" + suggestion(for: name, among: names)
                               + " (modules: \(names.joined(separator: ", ")))",
                               path: value.path)
        return nil
    }

    static let privileges = Privilege.allCases.map { ($0.name, $0) }
    static let privacyLevels = PrivacyLevel.allCases.map { ($0.name, $0) }

    func modules(_ value: Value) -> [Module: RosterConfiguration.ModuleSetting] {
        var result: [Module: RosterConfiguration.ModuleSetting] = [:]
        for (name, setting) in value.entries ?? [] {
            guard let module = module(name, setting) else { continue }
            result[module] = moduleSetting(setting, module: module)
        }
        return result
    }

    func moduleSetting(_ value: Value, module: Module) -> RosterConfiguration.ModuleSetting {
        var result = RosterConfiguration.ModuleSetting()
        guard let fields = value.fields(["privacy", "privilege", "overrides"]) else { return result }
        result.privacy = fields["privacy"]?.choice(Self.privacyLevels) ?? result.privacy
        result.privilege = fields["privilege"]?.choice(Self.privileges) ?? result.privilege
        let overrides = fields["overrides"]?.entries ?? []
        if !overrides.isEmpty, !module.isProviderScoped {
            fields.values["overrides"]?.report("\(module.rawValue) names no providers, so it takes no per-provider overrides; remove them")
        }
        for (code, entry) in overrides {
            guard let override = entry.fields(["privilege", "privacy"]) else { continue }
            let item = RosterConfiguration.Override(privilege: override["privilege"]?.choice(Self.privileges),
                                                    privacy: override["privacy"]?.choice(Self.privacyLevels))
            if item.privilege == nil, item.privacy == nil, override["privilege"] == nil, override["privacy"] == nil {
                entry.report("the override for '\(code)' changes nothing; give privilege, privacy (forced levels only) or both")
            }
            if let privacy = item.privacy, !(result.privacy.isForced && privacy.isForced) {
                override.values["privacy"]?.report(
                    "a per-provider privacy override needs forced privacy levels (DOMAIN rule 4: toggle levels apply to all "
                    + "providers of the module); set \(module.rawValue).privacy and this override to forced_patient or "
                    + "forced_patient_and_provider, or remove the override's privacy")
            }
            result.overrides[code] = item
        }
        return result
    }

    // MARK: health centers and pools

    func healthCenter(_ value: Value) -> RosterConfiguration.HealthCenterConfig {
        var result = RosterConfiguration.HealthCenterConfig(id: "", name: "", careVenues: [])
        guard let fields = value.fields(["id", "name", "care_venues"]) else { return result }
        result.id = HealthCenterID(fields.required("id", hint: "a short code such as HC1")?.nonEmptyString ?? "")
        result.name = fields.required("name")?.nonEmptyString ?? ""
        result.careVenues = (fields["care_venues"]?.items ?? []).map { venue in
            guard let venue = venue.fields(["id", "name"]) else { return RosterConfiguration.CareVenueConfig(id: "", name: "") }
            return RosterConfiguration.CareVenueConfig(id: CareVenueID(venue.required("id")?.nonEmptyString ?? ""),
                                                       name: venue.required("name")?.nonEmptyString ?? "")
        }
        return result
    }

    func pool(_ value: Value) -> RosterConfiguration.PoolConfig {
        var result = RosterConfiguration.PoolConfig(id: "", name: "", healthCenter: "", visibility: .allProviders, providersGroup: "")
        guard let fields = value.fields(["id", "name", "health_center", "visibility", "providers_group"]) else { return result }
        result.id = PoolID(fields.required("id")?.nonEmptyString ?? "")
        result.name = fields.required("name")?.nonEmptyString ?? ""
        result.healthCenter = HealthCenterID(fields.required("health_center")?.nonEmptyString ?? "")
        result.visibility = fields.required("visibility", hint: "all_providers or reachable_providers_only")?
            .choice(PoolVisibility.self) ?? result.visibility
        result.providersGroup = fields.required("providers_group", hint: "the DN of the directory group whose members are the pool's providers")?
            .nonEmptyString ?? ""
        return result
    }

    // MARK: groups

    func groups(_ value: Value?, baseDN: String, flavor: RosterConfiguration.Flavor) -> RosterConfiguration.Groups {
        var result = RosterConfiguration.Groups(base: baseDN, nested: flavor == .activedirectory)
        guard let value, let fields = value.fields(["base", "filter", "member_attribute", "mappings", "pattern_rules", "nested"]) else {
            return result
        }
        result.nested = fields["nested"]?.bool ?? result.nested
        result.base = fields["base"]?.nonEmptyString ?? baseDN
        result.filter = fields["filter"]?.string ?? result.filter
        result.memberAttribute = fields["member_attribute"]?.nonEmptyString ?? result.memberAttribute
        result.mappings = (fields["mappings"]?.items ?? []).compactMap { item in
            guard let mapping = item.fields(["directory_group"] + Self.specKeys) else { return nil }
            let dn = mapping.required("directory_group", hint: "the DN of the directory group whose members get this clinic group")?
                .nonEmptyString ?? ""
            return RosterConfiguration.GroupMapping(directoryGroup: dn, group: spec(mapping))
        }
        result.patternRules = (fields["pattern_rules"]?.items ?? []).compactMap { item in
            guard let rule = item.fields(["match", "pattern", "template"]) else { return nil }
            let target = rule["match"]?.choice([("cn", RosterConfiguration.PatternRule.Target.cn), ("dn", .dn)]) ?? .cn
            let pattern = rule.required("pattern", hint: "a regular expression with named captures, e.g. '(?<hc>hc[0-9]+)-moa'")?
                .nonEmptyString ?? ""
            let template = rule.required("template", hint: "the clinic group to create, with {capture} placeholders")?
                .fields(Self.specKeys).map(spec) ?? spec(nil)
            return RosterConfiguration.PatternRule(target: target, pattern: pattern, template: template)
        }
        return result
    }

    static let specKeys = ["name", "kind", "health_center", "care_venues", "modules", "providers", "scheduling_ability",
                           "auto_add_new_providers"]

    func spec(_ fields: Fields?) -> RosterConfiguration.ClinicGroupSpec {
        var result = RosterConfiguration.ClinicGroupSpec(name: "", kind: .provider, healthCenter: "", careVenues: [], modules: [:],
                                                         providers: .allInHealthCenter)
        guard let fields else { return result }
        result.name = fields.required("name", hint: "the clinic group's name")?.nonEmptyString ?? ""
        result.kind = fields.required("kind", hint: "provider or pool")?.choice(GroupKind.self) ?? result.kind
        result.healthCenter = fields.required("health_center")?.nonEmptyString ?? ""
        if let venues = fields.required("care_venues", hint: "a group covers at least one care venue") {
            if let list = venues.stringList {
                result.careVenues = list
                if list.isEmpty { venues.report("a group covers at least one care venue; list its care venue ids") }
            }
        }
        if let modules = fields.required("modules", hint: "the modules the group grants, e.g. {providers_office: {privilege: full_access}}") {
            result.modules = self.modules(modules)
            if case .mapping(let mapping) = modules.node, mapping.isEmpty { modules.report("a group grants at least one module") }
        }
        if let providers = fields.required("providers", hint: "all_in_health_center, {members_of: dn}, {listed: [codes]} or {pools: [ids]}") {
            result.providers = providerSource(providers) ?? result.providers
        }
        result.schedulingAbility = fields["scheduling_ability"]?.bool ?? result.schedulingAbility
        result.autoAddNewProviders = fields["auto_add_new_providers"]?.bool ?? result.autoAddNewProviders
        return result
    }

    func providerSource(_ value: Value) -> RosterConfiguration.ProviderSource? {
        let forms = "write all_in_health_center, {members_of: dn}, {listed: [user codes]} or {pools: [pool ids]}"
        if case .scalar = value.node {
            guard value.string == "all_in_health_center" else {
                value.report("\(value.found) is not a provider source; \(forms)")
                return nil
            }
            return .allInHealthCenter
        }
        guard let fields = value.fields(["members_of", "listed", "pools"]) else { return nil }
        let given = ["members_of", "listed", "pools"].filter(fields.has)
        guard given.count == 1, let key = given.first else {
            value.report("give exactly one of members_of, listed or pools; \(forms)")
            return nil
        }
        guard let source = fields.required(key) else { return nil }
        switch key {
        case "members_of": return source.nonEmptyString.map { .membersOf($0) }
        case "listed": return source.stringList.map { .listed($0) }
        default: return source.stringList.map { .pools($0.map { PoolID($0) }) }
        }
    }

    // MARK: roles, safety, schedule, mirror, http

    func role(_ value: Value) -> RosterConfiguration.RoleConfig {
        var result = RosterConfiguration.RoleConfig(name: "", modules: [:], directoryGroup: nil)
        guard let fields = value.fields(["name", "modules", "directory_group", "base", "all_access"]) else { return result }
        result.name = RoleName(fields.required("name", hint: "e.g. Clinical Manager")?.nonEmptyString ?? "")
        result.isBase = fields["base"]?.bool ?? false
        result.isAllAccess = fields["all_access"]?.bool ?? false
        if result.isAllAccess {
            // Every module, provider and health center at Full Access: a list could only contradict it.
            if let modules = fields["modules"] {
                modules.report("an All Access role grants every module at Full Access; remove modules (or all_access)")
            }
            if result.isBase, let flag = fields["base"] {
                flag.report("the base role cannot be All Access: every user would be a super administrator")
            }
        } else {
            for (name, privilege) in fields.required("modules", hint: "e.g. {reports: read_only}")?.entries ?? [] {
                guard let module = module(name, privilege), let level = privilege.choice(Self.privileges) else { continue }
                result.modules[module] = level
            }
        }
        result.directoryGroup = fields["directory_group"]?.nonEmptyString
        if result.isBase, result.directoryGroup != nil, let group = fields["directory_group"] {
            group.report("every user holds the base role; a directory group cannot add to that (remove directory_group, or base)")
        }
        return result
    }

    func safety(_ value: Value?) -> RosterConfiguration.Safety {
        var result = RosterConfiguration.Safety()
        guard let fields = value?.fields(["max_deactivations", "max_deactivation_percent"]) else { return result }
        result.maxDeactivations = int(fields["max_deactivations"], default: result.maxDeactivations, in: 0...Int.max,
                                      "max_deactivations is 0 or more")
        if let percent = fields["max_deactivation_percent"], let number = percent.double {
            if !(0...100).contains(number) { percent.report("\(percent.found) is out of range; max_deactivation_percent is 0 to 100") }
            result.maxDeactivationPercent = number
        }
        return result
    }

    func schedule(_ value: Value?) -> RosterConfiguration.Schedule {
        var result = RosterConfiguration.Schedule()
        guard let fields = value?.fields(["reconcile_interval_minutes", "poll_interval_seconds", "staleness_limit_seconds",
                                          "dirsync_interval_seconds", "change_notifications", "full_reconcile_every"]) else {
            return result
        }
        let rule = "an interval must be more than 0"
        result.reconcileIntervalMinutes = positive(fields["reconcile_interval_minutes"], default: result.reconcileIntervalMinutes, rule)
        result.pollIntervalSeconds = positive(fields["poll_interval_seconds"], default: result.pollIntervalSeconds, rule)
        result.stalenessLimitSeconds = positive(fields["staleness_limit_seconds"], default: result.stalenessLimitSeconds, rule)
        result.dirSyncIntervalSeconds = positive(fields["dirsync_interval_seconds"], default: result.dirSyncIntervalSeconds, rule)
        result.changeNotifications = fields["change_notifications"]?.bool ?? result.changeNotifications
        if let value = fields["full_reconcile_every"], let number = value.double {
            // (`double` has reported a value that is not a number already.)
            if number >= 1, number == number.rounded(), number <= 1_000_000 {
                result.fullReconcileEvery = Int(number)
            } else {
                value.report("\(value.found) is out of range; a whole number of 1 or more is expected (1: every scheduled reconcile reads everything)")
            }
        }
        return result
    }

    func mirror(_ value: Value?) -> RosterConfiguration.MirrorConfig {
        var result = RosterConfiguration.MirrorConfig()
        guard let fields = value?.fields(["path", "reader_group"]) else { return result }
        result.path = file(fields["path"]) ?? result.path
        result.readerGroup = fields["reader_group"]?.nonEmptyString
        return result
    }

    func http(_ value: Value?) -> RosterConfiguration.HTTP {
        var result = RosterConfiguration.HTTP()
        guard let fields = value?.fields(["address", "port", "token_file", "tls"], secrets: ["token": "token_file"]) else { return result }
        result.address = fields["address"]?.nonEmptyString ?? result.address
        result.port = int(fields["port"], default: result.port, in: 1...65_535, "a port is 1 to 65535")
        result.tokenFile = file(fields["token_file"])
        if let tls = fields["tls"]?.fields(["certificate_file", "key_file"]) {
            result.tlsCertificateFile = file(tls["certificate_file"])
            result.tlsKeyFile = file(tls["key_file"])
        }
        return result
    }
}
