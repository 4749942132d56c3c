import AccessModel
import Foundation
import RosterConfig

/// A clinic-shaped directory for tests, benchmarks and the demo: health centers with
/// offices of surgeons and their medical office assistants, booking, screening,
/// registration and reporting teams, pools and super administrators; and the Roster
/// configuration that maps it.
public struct ClinicDirectory: Sendable {
    public var suffix: String
    public var healthCenters: Int
    public var officesPerCenter: Int
    public var providersPerOffice: Int
    public var assistantsPerOffice: Int
    public var teamSize: Int
    /// Extra staff per health center in no group (they have no access).
    public var extraStaffPerCenter: Int

    public init(suffix: String = "dc=clinic,dc=example", healthCenters: Int = 3, officesPerCenter: Int = 4,
                providersPerOffice: Int = 3, assistantsPerOffice: Int = 2, teamSize: Int = 5, extraStaffPerCenter: Int = 0) {
        self.suffix = suffix
        self.healthCenters = healthCenters
        self.officesPerCenter = officesPerCenter
        self.providersPerOffice = providersPerOffice
        self.assistantsPerOffice = assistantsPerOffice
        self.teamSize = teamSize
        self.extraStaffPerCenter = extraStaffPerCenter
    }

    /// A directory of about `users` users.
    public static func sized(_ users: Int, suffix: String = "dc=clinic,dc=example") -> ClinicDirectory {
        let centers = 5
        let perCenter = max(1, users / centers)
        let offices = max(1, perCenter / 40)
        let core = offices * 5 + 4 * 10
        return ClinicDirectory(suffix: suffix, healthCenters: centers, officesPerCenter: offices, providersPerOffice: 3,
                               assistantsPerOffice: 2, teamSize: 10, extraStaffPerCenter: max(0, perCenter - core))
    }

    public static let teams = ["booking", "screening", "registration", "reporting"]

    public func center(_ index: Int) -> String { "HC\(index)" }
    public func provider(_ center: Int, _ office: Int, _ index: Int) -> String { "hc\(center)-o\(office)-dr\(index)" }
    public func assistant(_ center: Int, _ office: Int, _ index: Int) -> String { "hc\(center)-o\(office)-moa\(index)" }
    public func teamMember(_ center: Int, _ team: String, _ index: Int) -> String { "hc\(center)-\(team)\(index)" }
    public func staff(_ center: Int, _ index: Int) -> String { "hc\(center)-staff\(index)" }
    public func dn(_ uid: String) -> String { "uid=\(uid),ou=people,\(suffix)" }
    public func groupDN(_ cn: String) -> String { "cn=\(cn),ou=groups,\(suffix)" }

    /// An LDIF change that adds a provider (a doctor of health center `center`) named `given surname`.
    public func addProviderLDIF(_ uid: String, center: Int, given: String = "Felicity", surname: String = "Grey") -> String {
        """
        dn: \(dn(uid))
        changetype: add
        objectClass: inetOrgPerson
        uid: \(uid)
        cn: \(given) \(surname)
        givenName: \(given)
        sn: \(surname)
        departmentNumber: HC\(center)
        employeeType: provider

        """
    }

    /// An LDIF change that adds `uid` to the directory group `cn`, or takes them out of it.
    public func membershipLDIF(_ uid: String, group cn: String, present: Bool) -> String {
        "dn: \(groupDN(cn))\nchangetype: modify\n\(present ? "add" : "delete"): member\nmember: \(dn(uid))\n"
    }
    public static let superAdministrators = ["it-admin1", "it-admin2"]
    public static let breakGlass = "breakglass1"

    /// Number of user entries the LDIF holds.
    public var userCount: Int {
        healthCenters * (officesPerCenter * (providersPerOffice + assistantsPerOffice) + Self.teams.count * teamSize + extraStaffPerCenter)
            + Self.superAdministrators.count + 1
    }

    /// The LDIF, suffix entry not included (the harness adds it).
    public func ldif() -> String {
        var text = TestDirectory.units(suffix, ["people", "groups", "policies"])
        text.reserveCapacity(userCount * 330)
        func person(_ uid: String, _ given: String, _ surname: String, center: Int?, provider: Bool = false) {
            text += "dn: uid=\(uid),ou=people,\(suffix)\nobjectClass: inetOrgPerson\nuid: \(uid)\ncn: \(given) \(surname)\n"
            text += "givenName: \(given)\nsn: \(surname)\nmail: \(uid)@clinic.example\ntitle: \(provider ? "Surgeon" : "Staff")\n"
            if let center { text += "departmentNumber: HC\(center)\n" }
            if provider { text += "employeeType: provider\n" }
            text += "\n"
        }
        func group(_ cn: String, _ members: [String]) {
            text += "dn: cn=\(cn),ou=groups,\(suffix)\nobjectClass: groupOfNames\ncn: \(cn)\n"
            for member in members.isEmpty ? ["cn=nobody"] : members { text += "member: \(member)\n" }
            text += "\n"
        }
        for c in 1...healthCenters {
            var allProviders: [String] = []
            for o in 1...officesPerCenter {
                let providers = (1...providersPerOffice).map { provider(c, o, $0) }
                let assistants = (1...assistantsPerOffice).map { assistant(c, o, $0) }
                for (i, uid) in providers.enumerated() { person(uid, "Doc\(i + 1)", "Office\(o)Hc\(c)", center: c, provider: true) }
                for (i, uid) in assistants.enumerated() { person(uid, "Moa\(i + 1)", "Office\(o)Hc\(c)", center: c) }
                group("hc\(c)-office\(o)-providers", providers.map(dn))
                group("hc\(c)-office\(o)-moa", assistants.map(dn))
                allProviders += providers
            }
            for team in Self.teams {
                let members = (1...teamSize).map { teamMember(c, team, $0) }
                for (i, uid) in members.enumerated() { person(uid, "\(team.capitalized)\(i + 1)", "Team\(c)", center: c) }
                group("hc\(c)-\(team)", members.map(dn))
            }
            if extraStaffPerCenter > 0 {
                for i in 1...extraStaffPerCenter { person(staff(c, i), "Staff\(i)", "Hc\(c)", center: c) }
            }
            // A pool of the first office's providers, and a pool group of the booking team.
            group("hc\(c)-ortho-pool", Array(allProviders.prefix(providersPerOffice)).map(dn))
        }
        for uid in Self.superAdministrators { person(uid, "Admin", uid.capitalized, center: 1) }
        group("roster-superadmins", Self.superAdministrators.map(dn))
        person(Self.breakGlass, "Emergency", "Access", center: 1)
        return text
    }

    /// The mapping configuration for this directory: `yaml(...)` loaded as Roster loads
    /// roster.yaml, so tests, the demo and the benchmarks map the directory the same way.
    public func configuration(url: String, passwordFile: String, bindDN: String, mirrorPath: String) throws -> RosterConfiguration {
        try ConfigurationLoader.load(yaml: yaml(url: url, passwordFile: passwordFile, bindDN: bindDN, mirrorPath: mirrorPath),
                                     file: "clinic.yaml")
    }
}
