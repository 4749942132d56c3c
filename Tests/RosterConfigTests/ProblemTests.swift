import RosterConfig
import Testing

/// One invalid configuration and the single problem it must produce.
struct ProblemCase: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var line: Int
    var path: String
    var text: String
    var testDescription: String { name }
}

/// A minimal configuration with one group mapping on lines 11-19, each key's value
/// replaceable; `extra` is appended from line 20.
func withMapping(_ values: [String: String] = [:], extra: String = "") -> String {
    let defaults: [(String, String)] = [
        ("directory_group", "cn=g,dc=clinic,dc=example"), ("name", "G"), ("kind", "provider"), ("health_center", "HC1"),
        ("care_venues", "[HC1-OR1]"), ("modules", "{reports: {privilege: read_only}}"), ("providers", "all_in_health_center"),
    ]
    let lines = defaults.enumerated().map { index, pair in
        (index == 0 ? "    - " : "      ") + pair.0 + ": " + (values[pair.0] ?? pair.1)
    }
    return minimalYAML + "groups:\n  mappings:\n" + lines.joined(separator: "\n") + "\n" + extra
}

/// A configuration whose `directory:` holds `urls` (line 2), `base_dn` (line 3) and `extra` from line 4.
func withDirectory(urls: String = "[ldaps://dc1.clinic.example]", baseDN: String = "dc=clinic,dc=example", _ extra: String = "") -> String {
    "directory:\n  urls: \(urls)\n  base_dn: \(baseDN)\n" + extra
        + "health_centers: [{id: HC1, name: North, care_venues: [{id: HC1-OR1, name: OR 1}]}]\n"
}

@Suite struct ProblemTests {
    static let structural: [ProblemCase] = [
        .init(name: "wrong type for a whole number", yaml: minimalYAML + "safety:\n  max_deactivations: abc\n",
              line: 12, path: "safety.max_deactivations", text: "expected a whole number, found 'abc'"),
        .init(name: "wrong type for a number", yaml: minimalYAML + "schedule:\n  poll_interval_seconds: often\n",
              line: 12, path: "schedule.poll_interval_seconds", text: "expected a number, found 'often'"),
        .init(name: "wrong type for a boolean", yaml: withMapping(extra: "      scheduling_ability: maybe\n"),
              line: 20, path: "groups.mappings[0].scheduling_ability", text: "expected true or false, found 'maybe'"),
        .init(name: "a mapping where a list belongs", yaml: minimalYAML + "roles: {name: x}\n",
              line: 11, path: "roles", text: "expected a list, found a mapping"),
        .init(name: "a list where a string belongs", yaml: minimalYAML + "users:\n  filter: [a, b]\n",
              line: 12, path: "users.filter", text: "expected a string, found a list"),
        .init(name: "missing required key", yaml: "directory:\n  urls: [ldaps://dc1.clinic.example]\n"
              + "health_centers: [{id: HC1, name: North, care_venues: []}]\n",
              line: 2, path: "directory.base_dn", text: "missing required key 'base_dn'"),
        .init(name: "missing key in a mapping", yaml: withMapping().replacingOccurrences("      name: G\n", ""),
              line: 13, path: "groups.mappings[0].name", text: "missing required key 'name'"),
        .init(name: "unknown enum value with suggestion", yaml: withMapping(["kind": "pol"]),
              line: 15, path: "groups.mappings[0].kind", text: "'pol' is not one of provider, pool; did you mean 'pool'?"),
        .init(name: "unknown module with suggestion", yaml: withMapping(["modules": "{reprts: {privilege: read_only}}"]),
              line: 18, path: "groups.mappings[0].modules.reprts", text: "unknown module 'reprts'; did you mean 'reports'?"),
        .init(name: "inline bind password", yaml: withDirectory("  bind: {method: anonymous, password: hunter2}\n"),
              line: 4, path: "directory.bind.password", text: "secrets are never written in roster.yaml; put it in a file"),
        .init(name: "inline HTTP token", yaml: minimalYAML + "http:\n  token: abc\n",
              line: 12, path: "http.token", text: "name that file with 'token_file'"),
    ]

    @Test(arguments: structural) func structuralProblem(_ problem: ProblemCase) {
        expectOne(problem.yaml, line: problem.line, path: problem.path, problem.text)
    }

    @Test func anUnquotedDNInAFlowMappingIsExplained() {
        // YAML splits `{members_of: cn=s,dc=clinic,dc=example}` at its commas.
        let found = problems(withMapping(["providers": "{members_of: cn=s,dc=clinic,dc=example}"]))
        #expect(found.map(\.keyPath) == ["groups.mappings[0].providers.members_of", "groups.mappings[0].providers.dc=clinic",
                                         "groups.mappings[0].providers.dc=example"])
        #expect(found.allSatisfy { $0.line == 19 && $0.message.contains("must be quoted, as commas separate entries there") })
        #expect(found.first?.message.hasPrefix("'cn=s' is not under groups.base 'dc=clinic,dc=example'") == true)
    }

    static let references: [ProblemCase] = [
        .init(name: "unknown health center", yaml: withMapping(["health_center": "HC9"]),
              line: 16, path: "groups.mappings[0].health_center", text: "unknown health center 'HC9'; did you mean 'HC1'?"),
        .init(name: "unknown care venue", yaml: withMapping(["care_venues": "[HC1-OR1, HC1-XRAY]"]),
              line: 17, path: "groups.mappings[0].care_venues[1]", text: "unknown care venue 'HC1-XRAY'; health center HC1 defines HC1-OR1, HC1-CLINIC"),
        .init(name: "care venue of another health center", yaml: withMapping(["care_venues": "[HC2-OR1]"]),
              line: 17, path: "groups.mappings[0].care_venues[0]", text: "care venue 'HC2-OR1' belongs to health center HC2, not to the group's health center HC1"),
        .init(name: "no care venue", yaml: withMapping(["care_venues": "[]"]),
              line: 17, path: "groups.mappings[0].care_venues", text: "a group covers at least one care venue"),
        .init(name: "unknown pool", yaml: withMapping(["kind": "pool", "providers": "{pools: [ortho]}"]),
              line: 19, path: "groups.mappings[0].providers.pools[0]", text: "unknown pool 'ortho'; none is defined in pools"),
        .init(name: "pool kind without pools", yaml: withMapping(["kind": "pool"]),
              line: 19, path: "groups.mappings[0].providers", text: "a pool group (kind: pool) grants pools; write providers: {pools: [pool ids]}"),
        .init(name: "pools for a provider group",
              yaml: withMapping(["providers": "{pools: [p1]}"], extra: "pools: [{id: p1, name: P, health_center: HC1, visibility: all_providers, providers_group: 'cn=p,dc=clinic,dc=example'}]\n"),
              line: 19, path: "groups.mappings[0].providers", text: "only a pool group names pools"),
        .init(name: "pool of another health center",
              yaml: withMapping(["kind": "pool", "providers": "{pools: [p1]}"], extra: "pools: [{id: p1, name: P, health_center: HC2, visibility: all_providers, providers_group: 'cn=p,dc=clinic,dc=example'}]\n"),
              line: 19, path: "groups.mappings[0].providers.pools[0]", text: "pool 'p1' belongs to health center HC2, not to the group's HC1"),
        .init(name: "pool with an unknown health center",
              yaml: minimalYAML + "pools:\n  - id: p1\n    name: P\n    health_center: HC3\n    visibility: all_providers\n    providers_group: cn=p,dc=clinic,dc=example\n",
              line: 14, path: "pools[0].health_center", text: "unknown health center 'HC3'"),
        .init(name: "two provider sources", yaml: withMapping(["providers": "{listed: [a], members_of: 'cn=s,dc=clinic,dc=example'}"]),
              line: 19, path: "groups.mappings[0].providers", text: "give exactly one of members_of, listed or pools"),
        .init(name: "override of an unlisted provider",
              yaml: withMapping(["modules": "{reports: {privilege: read_only, overrides: {drgrey: {privilege: full_access}}}}", "providers": "{listed: [drshepherd]}"]),
              line: 18, path: "groups.mappings[0].modules.reports.overrides.drgrey", text: "'drgrey' is not among the group's listed providers"),
        .init(name: "privacy override with a toggle level",
              yaml: withMapping(["modules": "{reports: {privacy: toggle_default_on, overrides: {drgrey: {privacy: forced_patient}}}}", "providers": "{listed: [drgrey]}"]),
              line: 18, path: "groups.mappings[0].modules.reports.overrides.drgrey.privacy", text: "DOMAIN rule 4"),
        .init(name: "unknown default health center", yaml: minimalYAML + "users:\n  default_health_centers: [HC1, HC7]\n",
              line: 12, path: "users.default_health_centers[1]", text: "unknown health center 'HC7'"),
        .init(name: "unknown care venue of the own group", yaml: minimalYAML + "providers:\n  own_group:\n    care_venues: [HC1-OR7]\n",
              line: 13, path: "providers.own_group.care_venues[0]", text: "unknown care venue 'HC1-OR7'"),
    ]

    static let roles: [ProblemCase] = [
        .init(name: "two base roles", yaml: minimalYAML + "roles:\n  - {name: Staff, base: true, modules: {reports: read_only}}\n"
              + "  - {name: Crew, base: true, modules: {}}\n",
              line: 13, path: "roles[1].base", text: "'Staff' is already the base role (roles[0]); every user holds one base role"),
        .init(name: "a base role with a directory group", yaml: minimalYAML + "roles:\n  - name: Staff\n    base: true\n"
              + "    modules: {reports: read_only}\n    directory_group: cn=s,dc=clinic,dc=example\n",
              line: 15, path: "roles[0].directory_group", text: "every user holds the base role; a directory group cannot add to that"),
        .init(name: "an All Access role listing modules", yaml: minimalYAML + "roles:\n  - name: All Access\n    all_access: true\n"
              + "    modules: {reports: read_only}\n",
              line: 14, path: "roles[0].modules", text: "an All Access role grants every module at Full Access; remove modules"),
        .init(name: "an All Access base role", yaml: minimalYAML + "roles:\n  - name: Everyone\n    base: true\n    all_access: true\n",
              line: 13, path: "roles[0].base", text: "the base role cannot be All Access: every user would be a super administrator"),
        .init(name: "a role named as Roster's base role", yaml: minimalYAML + "roles:\n  - {name: Base, modules: {reports: read_only}}\n",
              line: 12, path: "roles[0].name", text: "'Base' names the base role Roster gives every user when no role is base: true"),
    ]

    @Test(arguments: roles) func roleProblem(_ problem: ProblemCase) {
        expectOne(problem.yaml, line: problem.line, path: problem.path, problem.text)
    }

    @Test(arguments: references) func referenceProblem(_ problem: ProblemCase) {
        expectOne(problem.yaml, line: problem.line, path: problem.path, problem.text)
    }

    static let duplicates: [ProblemCase] = [
        .init(name: "duplicate care venue id",
              yaml: minimalYAML.replacingOccurrences("{id: HC2-OR1, name: OR 1}", "{id: HC1-OR1, name: OR 1}"),
              line: 10, path: "health_centers[1].care_venues[0].id", text: "the care venue id 'HC1-OR1' is used twice"),
        .init(name: "duplicate role name", yaml: minimalYAML + "roles:\n  - {name: Nurse, modules: {reports: read_only}}\n  - {name: Nurse, modules: {}}\n",
              line: 13, path: "roles[1].name", text: "the role name 'Nurse' is used twice"),
        .init(name: "duplicate directory group",
              yaml: withMapping(extra: "    - {directory_group: 'CN=G, dc=Clinic,dc=example', name: H, kind: provider, health_center: HC1, care_venues: [HC1-OR1], modules: {reports: {}}, providers: all_in_health_center}\n"),
              line: 20, path: "groups.mappings[1].directory_group", text: "this directory group is already mapped by groups.mappings[0]"),
        .init(name: "duplicate break-glass code", yaml: minimalYAML + "users:\n  break_glass_user_codes: [bg1, BG1]\n",
              line: 12, path: "users.break_glass_user_codes[1]", text: "the user code 'bg1' is used twice"),
    ]

    @Test(arguments: duplicates) func duplicateProblem(_ problem: ProblemCase) {
        expectOne(problem.yaml, line: problem.line, path: problem.path, problem.text)
    }

    @Test func duplicateHealthCenterIDs() {
        let yaml = minimalYAML.replacingOccurrences("  - id: HC2\n    name: South\n    care_venues: [{id: HC2-OR1, name: OR 1}]",
                                                    "  - id: HC1\n    name: South\n    care_venues: []")
        expectOne(yaml, line: 8, column: 9, path: "health_centers[1].id", "the health center id 'HC1' is used twice; health center ids must be unique")
    }

    static let directory: [ProblemCase] = [
        .init(name: "plaintext with ldaps", yaml: withDirectory("  tls: {mode: plaintext}\n  allow_plaintext: true\n"),
              line: 4, path: "directory.tls.mode", text: "'ldaps://dc1.clinic.example' is an ldaps:// URL, which always uses TLS"),
        .init(name: "plaintext not allowed", yaml: withDirectory(urls: "[ldap://dc1.clinic.example]", "  tls:\n    mode: plaintext\n"),
              line: 5, path: "directory.tls.mode", text: "also set allow_plaintext: true"),
        .init(name: "not an LDAP URL", yaml: withDirectory(urls: "[ldaps://dc1.clinic.example, https://dc2.clinic.example]"),
              line: 2, path: "directory.urls[1]", text: "'https://dc2.clinic.example' is not an LDAP URL"),
        .init(name: "simple bind without password file", yaml: withDirectory("  bind:\n    method: simple\n    dn: cn=roster,dc=clinic,dc=example\n"),
              line: 5, path: "directory.bind.password_file", text: "missing required key 'password_file'"),
        .init(name: "dn with anonymous bind", yaml: withDirectory("  bind:\n    dn: cn=roster,dc=clinic,dc=example\n"),
              line: 5, path: "directory.bind.dn", text: "'dn' is used only with method 'simple'"),
        .init(name: "missing password file", yaml: withDirectory("  bind: {method: simple, dn: 'cn=roster,dc=clinic,dc=example', password_file: /etc/roster/nope}\n"),
              line: 4, path: "directory.bind.password_file", text: "the password file '/etc/roster/nope' does not exist or roster cannot read it"),
        .init(name: "empty password file", yaml: withDirectory("  bind: {method: simple, dn: 'cn=roster,dc=clinic,dc=example', password_file: /etc/roster/empty}\n"),
              line: 4, path: "directory.bind.password_file", text: "the password file '/etc/roster/empty' is empty; write the bind password into it"),
        .init(name: "CA file not PEM", yaml: withDirectory("  tls:\n    ca_file: /etc/roster/ca.der\n"),
              line: 5, path: "directory.tls.ca_file", text: "'/etc/roster/ca.der' is not a PEM certificate"),
        .init(name: "certificate without key", yaml: withDirectory("  tls:\n    certificate_file: /etc/roster/client.pem\n"),
              line: 5, path: "directory.tls.certificate_file", text: "needs both certificate_file and key_file"),
        .init(name: "SASL EXTERNAL without certificate", yaml: withDirectory("  bind: {method: sasl_external}\n"),
              line: 4, path: "directory.bind.method", text: "SASL EXTERNAL over the network authenticates with a TLS client certificate"),
        .init(name: "invalid base DN", yaml: withDirectory(baseDN: "dc=clinic;dc=example"),
              line: 3, path: "directory.base_dn", text: "'dc=clinic;dc=example' is not a valid DN: the character ';' in the value of 'dc' must be escaped"),
        .init(name: "page size too large", yaml: withDirectory("  page_size: 20000\n"),
              line: 4, path: "directory.page_size", text: "20000 is out of range; page_size is 1 to 10000"),
        .init(name: "timeout of zero", yaml: withDirectory("  operation_timeout_seconds: 0\n"),
              line: 4, path: "directory.operation_timeout_seconds", text: "'0' is out of range; a timeout must be more than 0 seconds"),
        .init(name: "password policy outside base DN", yaml: withDirectory("  default_password_policy: cn=default,ou=policies,dc=other\n"),
              line: 4, path: "directory.default_password_policy", text: "'cn=default,ou=policies,dc=other' is not under directory.base_dn"),
        .init(name: "password policy for Active Directory", yaml: withDirectory("  flavor: activedirectory\n  default_password_policy: cn=p,dc=clinic,dc=example\n"),
              line: 5, path: "directory.default_password_policy", text: "default_password_policy names an OpenLDAP password policy; activedirectory keeps"),
        .init(name: "users base outside base DN", yaml: minimalYAML + "users:\n  base: ou=people,dc=other,dc=example\n",
              line: 12, path: "users.base", text: "'ou=people,dc=other,dc=example' is not under directory.base_dn 'dc=clinic,dc=example'"),
        .init(name: "groups base outside base DN", yaml: minimalYAML + "groups:\n  base: ou=groups,dc=other\n",
              line: 12, path: "groups.base", text: "is not under directory.base_dn"),
        .init(name: "role group outside groups base", yaml: minimalYAML + "groups: {base: 'ou=groups,dc=clinic,dc=example'}\nroles:\n  - name: R\n    modules: {reports: read_only}\n    directory_group: cn=r,ou=people,dc=clinic,dc=example\n",
              line: 15, path: "roles[0].directory_group", text: "is not under groups.base 'ou=groups,dc=clinic,dc=example'"),
        .init(name: "unbalanced filter", yaml: minimalYAML + "users:\n  filter: (&(objectClass=person)(uid=*)\n",
              line: 12, path: "users.filter", text: "not a valid LDAP filter: the parentheses are not balanced"),
        .init(name: "empty filter", yaml: minimalYAML + "groups:\n  filter: ''\n",
              line: 12, path: "groups.filter", text: "the filter is empty"),
        .init(name: "filter without parentheses", yaml: minimalYAML + "providers:\n  filter: employeeType=surgeon\n  health_center_attribute: hc\n",
              line: 12, path: "providers.filter", text: "must be enclosed in parentheses, e.g. '(employeeType=surgeon)'"),
        .init(name: "bad attribute name", yaml: minimalYAML + "users:\n  attributes:\n    email: e mail\n",
              line: 13, path: "users.attributes.email", text: "'e mail' is not an LDAP attribute name"),
        .init(name: "non-loopback HTTP without token", yaml: minimalYAML + "http:\n  address: 0.0.0.0\n",
              line: 12, path: "http.address", text: "set http.token_file"),
        .init(name: "percent out of range", yaml: minimalYAML + "safety: {max_deactivation_percent: 150}\n",
              line: 11, path: "safety.max_deactivation_percent", text: "max_deactivation_percent is 0 to 100"),
        .init(name: "port out of range", yaml: minimalYAML + "http: {port: 70000}\n",
              line: 11, path: "http.port", text: "a port is 1 to 65535"),
    ]

    @Test(arguments: directory) func settingProblem(_ problem: ProblemCase) {
        let files = FakeFiles(["/etc/roster/empty": "\n", "/etc/roster/ca.der": "0\u{82}\u{03}", "/etc/roster/client.pem": FakeFiles.pem])
        expectOne(problem.yaml, line: problem.line, path: problem.path, problem.text, files: files)
    }

    @Test func plaintextIsAcceptedWhenAllowedOrOverLDAPI() throws {
        for yaml in [withDirectory(urls: "[ldap://dc1.clinic.example]", "  tls: {mode: plaintext}\n  allow_plaintext: true\n"),
                     withDirectory(urls: "[ldapi://%2Frun%2Fslapd%2Fldapi]", "  tls: {mode: plaintext}\n  bind: {method: sasl_external}\n")] {
            let config = try ConfigurationLoader.load(yaml: yaml, file: "roster.yaml", files: FakeFiles())
            #expect(config.directory.plaintext)
        }
    }

    static let patternRules = minimalYAML + """
        groups:
          pattern_rules:
            - pattern: '(?<hc>HC[0-9]+)-moa'
              template: {name: '{hc} MOAs', kind: provider, health_center: '{hc}', care_venues: ['{hc}-CLINIC'],
                         modules: {reports: {}}, providers: all_in_health_center}
            - match: dn
              pattern: 'cn=(?<hc>HC[0-9]+)-(?<office>office[0-9]+),ou=groups,dc=clinic,dc=example'
              template:
                name: '{hc} {ofice}'
                kind: provider
                health_center: HC1
                care_venues: [HC1-CLINIC]
                modules:
                  reports:
                    privilege: readonly
                providers: {members_of: 'cn={hc}-{office}-providers,dc=clinic,dc=example'}
            - pattern: '(?<hc>HC[0-9+'
              template: {name: x, kind: provider, health_center: '{hc}', care_venues: ['{hc}-CLINIC'],
                         modules: {reports: {}}, providers: all_in_health_center}

        """

    @Test func patternRuleProblems() {
        let found = problems(Self.patternRules)
        #expect(found.map(\.keyPath) == [
            "groups.pattern_rules[1].template.name",
            "groups.pattern_rules[1].template.modules.reports.privilege",
            "groups.pattern_rules[2].pattern",
            "groups.pattern_rules[2].template.health_center",
            "groups.pattern_rules[2].template.care_venues[0]",
        ])
        #expect(found.map(\.line) == [19, 25, 27, 28, 28])
        #expect(found[0].message == "'{ofice}' is not a named capture of the pattern; did you mean 'office'?; the pattern's named captures are hc, office")
        #expect(found[1].description == "roster.yaml:25:24: groups.pattern_rules[1].template.modules.reports.privilege: "
                + "'readonly' is not one of read_only, full_access; did you mean 'read_only'?")
        #expect(found[2].message.hasPrefix("the pattern is not a valid regular expression"))
        // Without a compiled pattern there are no captures to use.
        #expect(found[3].message.contains("the pattern has no named captures"))
    }

    @Test func everyProblemIsReportedAtOnceInFileOrder() {
        let yaml = """
            directory:
              urls: [ldaps://dc1.clinic.example]
              base_dn: dc=clinic,dc=example
              page_size: many
            users:
              filtr: (uid=*)
            health_centers:
              - {id: HC1, name: North, care_venues: [{id: HC1-OR1, name: OR 1}]}
            pools:
              - {id: p1, name: P, health_center: HC9, visibility: everyone, providers_group: 'cn=p,dc=clinic,dc=example'}
            """
        #expect(throws: ConfigurationErrors.self) { try ConfigurationLoader.load(yaml: yaml, file: "roster.yaml", files: FakeFiles()) }
        let found = problems(yaml)
        #expect(found.map(\.description) == [
            "roster.yaml:4:14: directory.page_size: expected a whole number, found 'many'",
            "roster.yaml:6:3: users.filtr: unknown key 'filtr' in users; did you mean 'filter'?",
            "roster.yaml:10:38: pools[0].health_center: unknown health center 'HC9'; did you mean 'HC1'?",
            "roster.yaml:10:55: pools[0].visibility: 'everyone' is not one of all_providers, reachable_providers_only",
        ])
        let errors = ConfigurationErrors(problems: found)
        #expect(errors.description == found.map(\.description).joined(separator: "\n"))
    }

    @Test func unknownTopLevelKeySuggestsTheSection() {
        expectOne(minimalYAML + "shedule:\n  poll_interval_seconds: 10\n", line: 11, column: 1, path: "shedule",
                  "unknown key 'shedule' at the top level; did you mean 'schedule'?")
    }

    @Test func farOffKeysGetNoSuggestion() {
        expectOne(minimalYAML + "mirror: {path: /var/lib/roster/m.sqlite, colour: blue}\n", line: 11, path: "mirror.colour",
                  "unknown key 'colour' in mirror")
        #expect(problems(minimalYAML + "mirror: {colour: blue}\n").first?.message.contains("did you mean") == false)
    }

    @Test func yamlSyntaxErrorsCarryTheirPosition() {
        let found = problems(minimalYAML + "users:\n  filter: a: b\n")
        #expect(found.count == 1)
        #expect(found.first?.line == 12)
        #expect(found.first?.column == 12)
        #expect(found.first?.keyPath == "")
        #expect(found.first?.message.hasPrefix("YAML syntax error: mapping values are not allowed") == true)
    }

    @Test func duplicateYAMLKeysAreReported() {
        let found = problems(minimalYAML + "http:\n  port: 1\n  port: 2\n")
        #expect(found.count == 1)
        #expect(found.first?.line == 12)
        #expect(found.first?.message.contains("'port' appears more than once") == true)
    }

    @Test func anEmptyFileIsAProblem() {
        #expect(problems("# nothing\n").map(\.message) == ["the file holds no configuration; see config/roster.yaml for an annotated example"])
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        replacing(target, with: replacement)
    }
}

@Suite struct MoreProblemTests {
    @Test func aDocumentThatIsNotAMapping() {
        #expect(problems("just text\n").map(\.description)
                == ["roster.yaml:1:1: expected a mapping with keys such as 'directory', 'users', 'providers', found 'just text'"])
    }

    @Test func aWrongTypeIsReportedOnce() {
        expectOne(withDirectory(urls: "ldaps://dc1.clinic.example"), line: 2, path: "directory.urls",
                  "expected a list, found 'ldaps://dc1.clinic.example'")
        expectOne(withMapping(["modules": "reports"]), line: 18, path: "groups.mappings[0].modules",
                  "expected a mapping of names to values, found 'reports'")
        expectOne(withMapping(["modules": "{}"]), line: 18, path: "groups.mappings[0].modules", "a group grants at least one module")
    }

    @Test func atLeastOneHealthCenter() {
        expectOne(withDirectory().replacing(#/health_centers: .*\n/#, with: "health_centers: []\n"), line: 4, path: "health_centers",
                  "list at least one health center")
    }

    @Test(arguments: ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
    func loopbackNeedsNoToken(_ address: String) throws {
        let config = try ConfigurationLoader.load(yaml: minimalYAML + "http: {address: '\(address)'}\n", file: "roster.yaml",
                                                  files: FakeFiles())
        #expect(config.http.address == address)
    }

    @Test func aNonLoopbackAddressWithATokenFileIsAccepted() throws {
        let config = try ConfigurationLoader.load(yaml: minimalYAML + "http: {address: 10.0.0.5, token_file: /etc/roster/t}\n",
                                                  file: "roster.yaml", files: FakeFiles(["/etc/roster/t": "x"]))
        #expect(config.http.tokenFile == "/etc/roster/t")
        expectOne(minimalYAML + "http: {address: 10.0.0.5, token_file: /etc/roster/t}\n", line: 11, path: "http.token_file",
                  "the token file '/etc/roster/t' is empty", files: FakeFiles(["/etc/roster/t": " \n"]))
    }
}
