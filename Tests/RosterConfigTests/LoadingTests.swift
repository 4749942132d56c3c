import AccessModel
import Foundation
import RosterConfig
import Testing

@Suite struct LoadingTests {
    static let examplePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/roster.yaml").path

    @Test func theAnnotatedExampleLoadsWithItsValues() throws {
        let yaml = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
        let config = try ConfigurationLoader.load(yaml: yaml, file: "roster.yaml", files: FakeFiles.example)

        #expect(config.directory.urls == ["ldaps://dc1.clinic.example", "ldaps://dc2.clinic.example:636"])
        #expect(config.directory.bind == .simple(dn: "cn=roster,ou=services,dc=clinic,dc=example",
                                                 passwordFile: "/etc/roster/bind-password"))
        #expect(config.directory.caFile == "/etc/roster/ca.pem")
        #expect(config.directory.plaintext == false)
        #expect(config.users.base == "ou=people,dc=clinic,dc=example")
        #expect(config.users.attributes.healthCenters == "clinicHealthCenter")
        #expect(config.users.flags == ["gi_dsp": "clinicGIDSP", "can_book_overtime": "clinicOvertime"])
        #expect(config.users.breakGlassUserCodes == ["breakglass1", "breakglass2"])
        #expect(config.providers.ownGroup?.modules[.reports] == .init(privilege: .readOnly))
        #expect(config.healthCenters.map(\.id) == ["HC1", "HC2", "HC3"])
        #expect(config.pools.map(\.visibility) == [.allProviders, .reachableProvidersOnly])

        let mappings = config.groups.mappings
        #expect(mappings.count == 4)
        #expect(mappings[0].group.providers == .allInHealthCenter)
        #expect(mappings[0].group.autoAddNewProviders)
        #expect(mappings[1].group.providers == .listed(["drgrey", "drshepherd"]))
        #expect(mappings[1].group.modules[.providersOffice]?.overrides["drshepherd"]
                == .init(privilege: .readOnly, privacy: .forcedPatientAndProvider))
        #expect(mappings[2].group.providers == .membersOf("cn=hc2-surgeons,ou=groups,dc=clinic,dc=example"))
        #expect(mappings[2].group.schedulingAbility == false)
        #expect(mappings[2].group.modules[.patientRegistration] == .init())
        #expect(mappings[3].group.kind == .pool)
        #expect(mappings[3].group.providers == .pools(["hc1-ortho"]))
        #expect(config.groups.patternRules.map(\.target) == [.cn, .dn])
        #expect(config.groups.patternRules[0].template.careVenues == ["{hc}-CLINIC"])
        #expect(config.roles.map(\.name) == ["Staff", "Clinical Manager", "All Access", "Patient Coordinator", "Medical Director"])
        #expect(config.modelRoles.filter(\.isBase).map(\.name) == ["Staff"] && config.roles[2].isAllAccess && config.roles[2].modules.isEmpty)
        #expect(config.roles[4].directoryGroup == nil)
        #expect(config.http.tokenFile == "/etc/roster/http-token")
        #expect(config.mirror.readerGroup == "clinicapp")

        #expect(summary(of: config) == "roster.yaml is valid: openldap directory at ldaps://dc1.clinic.example, "
                + "ldaps://dc2.clinic.example:636, 3 health centers, 6 care venues, 2 pools, 4 group mappings, "
                + "2 pattern rules, 5 roles.")
    }

    @Test func theExampleNeedsItsFiles() throws {
        let yaml = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
        let found = problems(yaml, files: FakeFiles())
        #expect(found.map(\.keyPath).sorted() == [
            "directory.bind.password_file", "directory.tls.ca_file", "directory.tls.certificate_file",
            "directory.tls.key_file", "http.token_file",
        ])
    }

    @Test("Loaded for a command that only uses the mirror, the configuration does not need the files it names")
    func theMirrorCommandsDoNotNeedTheNamedFiles() throws {
        let yaml = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
        let config = try ConfigurationLoader.load(yaml: yaml, file: "roster.yaml", files: FakeFiles(), checkingNamedFiles: false)
        #expect(config.mirror.path == "/var/lib/roster/roster.sqlite")
        // Every other problem is still reported.
        let broken = yaml.replacingOccurrences(of: "base_dn: dc=clinic,dc=example", with: "base_dn: not a dn")
        #expect(throws: ConfigurationErrors.self) {
            try ConfigurationLoader.load(yaml: broken, file: "roster.yaml", files: FakeFiles(), checkingNamedFiles: false)
        }
    }

    @Test func omittedKeysTakeTheInitializersDefaults() throws {
        let config = try ConfigurationLoader.load(yaml: minimalYAML, file: "roster.yaml", files: FakeFiles())
        #expect(config.directory == .init(urls: ["ldaps://dc1.clinic.example"], baseDN: "dc=clinic,dc=example"))
        #expect(config.users == .init(base: "dc=clinic,dc=example"))
        #expect(config.groups == .init(base: "dc=clinic,dc=example"))
        #expect(config.providers == .init())
        #expect(config.pools.isEmpty && config.roles.isEmpty)
        #expect(config.safety == .init())
        #expect(config.schedule == .init())
        #expect(config.mirror == .init())
        #expect(config.http == .init())
        #expect(config.healthCenters[0].careVenues.map(\.id) == ["HC1-OR1", "HC1-CLINIC"])
        #expect(summary(of: config, file: "/etc/roster/roster.yaml") == "/etc/roster/roster.yaml is valid: openldap directory "
                + "at ldaps://dc1.clinic.example, 2 health centers, 3 care venues, 0 pools, 0 group mappings, "
                + "0 pattern rules, 0 roles.")
    }

    @Test("Roles: a base role marked base: true replaces Roster's own; an All Access role lists no modules")
    func baseAndAllAccessRoles() throws {
        let plain = try ConfigurationLoader.load(yaml: minimalYAML + "roles:\n  - {name: Nurse, modules: {reports: read_only}}\n",
                                                 file: "roster.yaml", files: FakeFiles())
        #expect(plain.modelRoles.filter(\.isBase) == [RosterConfiguration.builtInBaseRole])
        #expect(plain.modelRoles.map(\.name) == ["Nurse", "Base"])
        let marked = try ConfigurationLoader.load(yaml: minimalYAML + """
            roles:
              - {name: Staff, base: true, modules: {erequest: read_only}}
              - {name: All Access, all_access: true, directory_group: 'cn=all,dc=clinic,dc=example'}
            """, file: "roster.yaml", files: FakeFiles())
        let markedBase = marked.modelRoles.filter(\.isBase)
        #expect(markedBase.map(\.name) == ["Staff"] && markedBase.first?.modules == [.eRequest: .readOnly])
        #expect(marked.modelRoles.map(\.name) == ["Staff", "All Access"])
        #expect(marked.roles[1].isAllAccess && marked.roles[1].modules.isEmpty && !marked.roles[1].isBase)
    }

    @Test func nullAttributesAreNotReadAndOwnGroupTakesDefaults() throws {
        let config = try ConfigurationLoader.load(yaml: minimalYAML + """
            users:
              attributes: {email: ~, title: null, user_code: sAMAccountName}
            providers:
              own_group:
            """, file: "roster.yaml", files: FakeFiles())
        #expect(config.users.attributes.email == nil)
        #expect(config.users.attributes.title == nil)
        #expect(config.users.attributes.userCode == "sAMAccountName")
        #expect(config.users.attributes.firstName == "givenName")
        #expect(config.providers.ownGroup == .init())
    }

    @Test func nestedGroupsDefaultByFlavorAndDirSyncIntervalIsRead() throws {
        let ad = minimalYAML.replacingOccurrences(of: "  base_dn: dc=clinic,dc=example\n",
                                                  with: "  base_dn: dc=clinic,dc=example\n  flavor: activedirectory\n")
        #expect(try ConfigurationLoader.load(yaml: ad, file: "roster.yaml", files: FakeFiles()).groups.nested)
        #expect(try !ConfigurationLoader.load(yaml: minimalYAML, file: "roster.yaml", files: FakeFiles()).groups.nested)
        let off = try ConfigurationLoader.load(yaml: ad + "groups: {nested: false}\nschedule: {dirsync_interval_seconds: 0.2}\n",
                                               file: "roster.yaml", files: FakeFiles())
        #expect(!off.groups.nested)
        #expect(off.schedule.dirSyncIntervalSeconds == 0.2)
        #expect(problems(minimalYAML + "schedule: {dirsync_interval_seconds: 0}\n", files: FakeFiles()).map(\.keyPath)
                == ["schedule.dirsync_interval_seconds"])
    }

    @Test func fullReconcileEveryIsAWholeNumberOfOneOrMore() throws {
        #expect(try ConfigurationLoader.load(yaml: minimalYAML, file: "roster.yaml", files: FakeFiles()).schedule.fullReconcileEvery == 24)
        let always = try ConfigurationLoader.load(yaml: minimalYAML + "schedule: {full_reconcile_every: 1}\n", file: "roster.yaml", files: FakeFiles())
        #expect(always.schedule.fullReconcileEvery == 1)
        for bad in ["0", "-3", "2.5", "often"] {
            #expect(problems(minimalYAML + "schedule: {full_reconcile_every: \(bad)}\n", files: FakeFiles()).map(\.keyPath)
                    == ["schedule.full_reconcile_every"], "\(bad)")
        }
    }

    @Test func relativeFilePathsAreTakenFromTheConfigurationsDirectory() throws {
        let yaml = """
            directory:
              urls: [ldaps://dc1.clinic.example]
              base_dn: dc=clinic,dc=example
              bind: {method: simple, dn: 'cn=roster,dc=clinic,dc=example', password_file: secrets/bind}
            health_centers: [{id: HC1, name: North, care_venues: []}]
            """
        let files = FakeFiles(["/etc/roster/roster.yaml": yaml, "/etc/roster/secrets/bind": "pw"])
        let config = try ConfigurationLoader.load(path: "/etc/roster/roster.yaml", files: files)
        #expect(config.directory.bind == .simple(dn: "cn=roster,dc=clinic,dc=example", passwordFile: "/etc/roster/secrets/bind"))
    }

    @Test func anUnreadableFileIsOneProblem() {
        #expect(throws: ConfigurationErrors(problems: [ConfigurationProblem(
            file: "/etc/roster/roster.yaml", line: 0, column: 0, keyPath: "",
            message: "the configuration file cannot be read; check that it exists and that roster may read it")])) {
            try ConfigurationLoader.load(path: "/etc/roster/roster.yaml", files: FakeFiles())
        }
    }
}
