/// The one line `roster check-config` prints for a valid configuration, e.g.
/// `roster.yaml is valid: openldap directory at ldaps://dc1.clinic.example, 3 health centers,
/// 7 care venues, 2 pools, 4 group mappings, 2 pattern rules, 3 roles.`
public func summary(of configuration: RosterConfiguration, file: String = "roster.yaml") -> String {
    func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }
    let directory = configuration.directory
    return "\(file) is valid: \(directory.flavor.rawValue) directory at \(directory.urls.joined(separator: ", ")), "
        + [
            count(configuration.healthCenters.count, "health center"),
            count(configuration.healthCenters.reduce(0) { $0 + $1.careVenues.count }, "care venue"),
            count(configuration.pools.count, "pool"),
            count(configuration.groups.mappings.count, "group mapping"),
            count(configuration.groups.patternRules.count, "pattern rule"),
            count(configuration.roles.count, "role"),
        ].joined(separator: ", ") + "."
}
