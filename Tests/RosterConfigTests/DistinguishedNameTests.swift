import RosterConfig
import Testing

@Suite struct DistinguishedNameTests {
    @Test(arguments: [
        ("cn=Smith\\, John,ou=People,dc=clinic,dc=example", "cn=Smith\\, John,ou=People,dc=clinic,dc=example"),
        ("CN=Smith\\2C John, OU=People , DC=clinic,DC=example", "cn=Smith\\, John,ou=People,dc=clinic,dc=example"),
        ("  cn = a b ,  ou = x  ", "cn=a b,ou=x"),
        ("cn=Ren\\C3\\A9 Dupont,dc=example", "cn=René Dupont,dc=example"),
        ("cn=\\#1 fan\\,\\+\\;\\<\\>\\\"\\\\,dc=example", "cn=\\#1 fan\\,\\+\\;\\<\\>\\\"\\\\,dc=example"),
        ("cn=trailing\\ ,dc=example", "cn=trailing\\ ,dc=example"),
        ("cn=\\ leading,dc=example", "cn=\\ leading,dc=example"),
        ("uid=jdoe+cn=John Doe,dc=example", "cn=John Doe+uid=jdoe,dc=example"),
        ("cn=a=b,dc=example", "cn=a=b,dc=example"),
        ("1.3.6.1.4.1.1466.0=#04024869,DC=example", "1.3.6.1.4.1.1466.0=#04024869,dc=example"),
        ("", ""),
    ])
    func normalizes(_ text: String, _ normalized: String) throws {
        #expect(try DistinguishedName(parsing: text).normalized == normalized)
    }

    @Test func escapesResolveToTheValue() throws {
        let name = try DistinguishedName(parsing: "cn=Smith\\2c John,ou=people,dc=example")
        #expect(name.rdns.count == 3)
        #expect(name.rdns[0] == [DistinguishedName.Attribute(type: "CN", value: "Smith, John")])
        #expect(name.parent == (try DistinguishedName(parsing: "ou=people,dc=example")))
    }

    @Test func equalityIgnoresCaseSpacingEscapeStyleAndAttributeOrder() throws {
        let a = try DistinguishedName(parsing: "CN=Smith\\, John+UID=jsmith, OU=People,DC=Clinic,DC=Example")
        let b = try DistinguishedName(parsing: "uid=JSMITH+cn=smith\\2C john,ou=people,dc=clinic,dc=example")
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(Set([a, b]).count == 1)
        #expect(a != (try DistinguishedName(parsing: "cn=Smith\\, John,ou=people,dc=clinic,dc=example")))
        #expect(try DistinguishedName(parsing: "cn=a,dc=x") != DistinguishedName(parsing: "cn=a,dc=x,dc=y"))
    }

    @Test func containment() throws {
        let base = try DistinguishedName(parsing: "dc=clinic,dc=example")
        #expect(try DistinguishedName(parsing: "ou=Groups,DC=Clinic,dc=example").isWithin(base))
        #expect(base.isWithin(base))
        #expect(try !DistinguishedName(parsing: "ou=groups,dc=other,dc=example").isWithin(base))
        #expect(try !DistinguishedName(parsing: "dc=example").isWithin(base))
        #expect(try !DistinguishedName(parsing: "dc=xclinic,dc=example").isWithin(base))
    }

    @Test(arguments: [
        ("cn=a,", "expected an attribute type"),
        ("cn", "expected '=' after the attribute type 'cn'"),
        ("=a,dc=example", "expected an attribute type"),
        ("cn=,dc=example", "the attribute 'cn' has an empty value"),
        ("cn=a;dc=example", "the character ';' in the value of 'cn' must be escaped"),
        ("cn=a\\qb", "'\\q' is not a valid escape"),
        ("cn=a\\", "the DN ends with a lone '\\'"),
        ("cn=\\C3,dc=example", "not valid UTF-8"),
        ("cn=#12G", "is not hex"),
        ("1.=a", "'1.' is not a numeric OID"),
        ("c n=a", "expected '=' after the attribute type 'c'"),
    ])
    func rejects(_ text: String, _ message: String) {
        #expect {
            try DistinguishedName(parsing: text)
        } throws: { error in
            (error as? DistinguishedNameError)?.message.contains(message) == true
        }
    }
}

@Suite struct FilterTests {
    @Test func escapesTheFiveSpecialCharacters() {
        #expect(escapeFilterValue("a*(b)\\c\0d") == "a\\2a\\28b\\29\\5cc\\00d")
        #expect(escapeFilterValue("O'Brien, René") == "O'Brien, René")
        #expect(escapeFilterValue("") == "")
        #expect(escapeFilterValue("*)(uid=*") == "\\2a\\29\\28uid=\\2a")
    }

    @Test(arguments: [
        "(objectClass=*)",
        "(&(objectClass=inetOrgPerson)(|(ou=a)(ou=b))(!(uid=guest)))",
        "(userAccountControl:1.2.840.113556.1.4.803:=2)",
        "(cn:dn:caseExactMatch:=Fred)",
        "(:1.2.3:=x)",
        "(cn=Smith\\2c John)",
        "(age>=21)", "(age<=65)", "(cn~=smyth)",
        "(cn;lang-en=x)",
        "(&)",
    ])
    func acceptsWellFormedFilters(_ filter: String) throws {
        // Accepted filters load as users.filter.
        let config = try ConfigurationLoader.load(yaml: minimalYAML + "users: {filter: '\(filter)'}\n", file: "roster.yaml",
                                                   files: FakeFiles())
        #expect(config.users.filter == filter)
    }

    @Test(arguments: [
        ("", "the filter is empty"),
        ("uid=x", "must be enclosed in parentheses"),
        ("(uid=x", "a ')' is missing"),
        ("(uid=x))", "unexpected text after the filter's closing ')'"),
        ("(uid=x)(cn=y)", "combine several filters"),
        ("(uid=a(b)", "unescaped '(' in the value of 'uid'"),
        ("(uid=a\\zz)", "invalid escape in the value of 'uid'"),
        ("(uid)", "'uid' has no operator"),
        ("()", "empty filter component"),
        ("(u id=x)", "'u id' is not an attribute description"),
        ("(&(uid=x)", "a ')' is missing"),
        ("(!uid=x)", "expected '('"),
    ])
    func rejectsMalformedFilters(_ filter: String, _ message: String) {
        let found = problems(minimalYAML + "users: {filter: '\(filter)'}\n")
        #expect(found.count == 1)
        #expect(found.first?.keyPath == "users.filter")
        #expect(found.first?.message.contains(message) == true, "\(found)")
    }
}
