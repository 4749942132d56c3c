/// Builders for the LDIF the tests load: people, groups, policies.
public enum TestDirectory {
    /// The organizational units most tests use.
    public static func units(_ suffix: String, _ names: [String] = ["people", "groups", "policies"]) -> String {
        names.map { "dn: ou=\($0),\(suffix)\nobjectClass: organizationalUnit\nou: \($0)\n\n" }.joined()
    }

    /// An inetOrgPerson under `ou=people`.
    public static func person(_ uid: String, suffix: String, givenName: String? = nil, surname: String? = nil,
                              extra: [String] = []) -> String {
        let given = givenName ?? "Given\(uid)"
        let sn = surname ?? "Surname\(uid)"
        var text = "dn: uid=\(uid),ou=people,\(suffix)\nobjectClass: inetOrgPerson\nuid: \(uid)\ncn: \(given) \(sn)\n"
        text += "givenName: \(given)\nsn: \(sn)\nmail: \(uid)@clinic.example\nuserPassword: pw-\(uid)\n"
        for line in extra { text += line + "\n" }
        return text + "\n"
    }

    /// `count` people named `prefix0001`....
    public static func people(_ count: Int, prefix: String = "user", suffix: String) -> String {
        var text = ""
        text.reserveCapacity(count * 200)
        for index in 1...max(1, count) where count > 0 {
            text += person(uid(prefix, index), suffix: suffix)
        }
        return text
    }

    public static func uid(_ prefix: String, _ index: Int) -> String {
        let digits = String(index)
        return prefix + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// A groupOfNames under `ou=groups` with the given member DNs.
    public static func group(_ cn: String, suffix: String, members: [String]) -> String {
        var text = "dn: cn=\(cn),ou=groups,\(suffix)\nobjectClass: groupOfNames\ncn: \(cn)\n"
        for member in members.isEmpty ? ["cn=nobody"] : members { text += "member: \(member)\n" }
        return text + "\n"
    }

    /// The DN of a person built by `person`.
    public static func dn(_ uid: String, suffix: String) -> String { "uid=\(uid),ou=people,\(suffix)" }
}
