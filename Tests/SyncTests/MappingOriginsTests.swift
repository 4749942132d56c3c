import AccessModel
import RosterConfig
import Sync
import Testing

@Suite("Where a group or role comes from in roster.yaml (no I/O)")
struct MappingOriginsTests {
    static var configuration: RosterConfiguration {
        var configuration = DirectoryMapperTests.configuration
        let template = configuration.groups.patternRules[0].template
        // An explicit mapping of a group the pattern rule matches too: the mapping wins, as in the mapping itself.
        configuration.groups.mappings = [.init(directoryGroup: "CN=hc1-special-moa, DC=t", group: template)]
        configuration.providers.ownGroup = .init()
        configuration.roles = [.init(name: "Auditor", modules: [.reports: .readOnly], directoryGroup: "cn=auditors,dc=t"),
                               .init(name: "Manager", modules: [.reports: .fullAccess], directoryGroup: nil)]
        return configuration
    }

    func group(_ id: String, dn: String?) throws -> Group {
        try Group(id: GroupID(id), name: id, kind: .provider, healthCenter: "HC1", careVenues: ["OR1"], modules: [:], directoryDN: dn)
    }

    @Test("An explicit mapping first, then the first matching pattern rule, the providers' own groups, and role mappings by name")
    func origins() throws {
        let origins = MappingOrigins(Self.configuration)
        #expect(origins.origin(of: try group("HC1/special", dn: "cn=hc1-special-moa,dc=t")) == "groups.mappings[0]")
        #expect(origins.origin(of: try group("HC1/ortho", dn: "cn=hc1-ortho-moa,dc=t"))
                == "groups.pattern_rules[0] (cn matching 'hc(?<n>[0-9])-(?<office>[a-z]+)-moa')")
        #expect(origins.origin(of: try group("HC1/provider:dra", dn: nil)) == "providers.own_group")
        #expect(origins.origin(of: try group("HC1/gone", dn: "cn=nothing-maps-this,dc=t")) == nil)
        #expect(origins.origin(ofRole: "Manager") == "roles[1]")
        #expect(origins.origin(ofRole: "Unknown") == nil)
    }

    @Test("An explanation given the configuration names each contribution's rule")
    func explanationNamesRules() throws {
        let ortho = try Group(id: "HC1/ortho", name: "Ortho MOAs", kind: .provider, healthCenter: "HC1", careVenues: ["OR1"],
                              modules: [.providersOffice: .providers(["dra": TargetGrant(.fullAccess)])], directoryDN: "cn=hc1-ortho-moa,dc=t")
        let moa = try User(code: "moa1", directoryDN: "uid=moa1,dc=t", healthCenters: ["HC1"])
        let snapshot = AccessSnapshot(healthCenters: [HealthCenter(id: "HC1", name: "One")], careVenues: [CareVenue(id: "OR1", healthCenter: "HC1", name: "OR 1")],
                                      providers: [Provider(id: "dra", healthCenter: "HC1", displayName: "A, Dr")], groups: [ortho],
                                      roles: [Role(id: "Manager", modules: [.reports: .fullAccess])], users: [moa],
                                      groupMembers: ["HC1/ortho": ["moa1"]], roleHolders: ["Manager": ["moa1"]])
        let explained = try AccessExplanation(user: "moa1", in: snapshot, origins: MappingOrigins(Self.configuration))
        let contributions = explained.lines.flatMap(\.contributions)
        #expect(contributions.contains { $0.kind == "group" && $0.rule?.hasPrefix("groups.pattern_rules[0]") == true })
        #expect(contributions.contains { $0.kind == "role" && $0.rule == "roles[1]" })
        let plain = try AccessExplanation(user: "moa1", in: snapshot)
        #expect(plain.lines.flatMap(\.contributions).allSatisfy { $0.rule == nil })
    }
}
