import LDAPKit
import SlapdHarness
import Testing

@Suite("Search against a real slapd")
struct SearchTests {
    @Test("Paging streams 2,500 entries in pages of 1,000 past a server size limit of 1,000")
    func pagingAcrossSizeLimit() async throws {
        let suffix = "dc=paging,dc=test"
        let server = try await SlapdServer.start(
            suffix: suffix,
            ldif: TestDirectory.units(suffix) + TestDirectory.people(2500, suffix: suffix),
            extraConfiguration: "limits anonymous size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited")
        defer { server.shutdown() }
        let anonymous = LDAPConfiguration(urls: [server.url], security: .plaintext)
        let connection = try await LDAPConnection.connect(anonymous)
        #expect(await connection.readsAhead)

        // Without paging the server stops at its limit: proof that the paged run below pages.
        await #expect(throws: LDAPError.self) {
            _ = try await connection.search(base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)",
                                            attributes: ["uid"], pageSize: nil).collect()
        }
        var uids = Set<String>()
        for try await entry in connection.search(base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)",
                                                 attributes: ["uid", "mail"], pageSize: 1000) {
            #expect(entry.string("mail") == "\(entry.string("uid") ?? "")@clinic.example")
            uids.insert(try #require(entry.string("uid")))
        }
        #expect(uids.count == 2500)
        #expect(uids.contains("user02500"))
        // A page larger than the server allows is refused, not silently truncated.
        let error = await #expect(throws: LDAPError.self) {
            _ = try await connection.search(base: "ou=people,\(suffix)", attributes: ["uid"], pageSize: 1500).collect()
        }
        #expect(error?.code == .sizeLimitExceeded || error?.code == .adminLimitExceeded)
        await connection.close()
    }

    @Test("A paged search left after its first entries gives up its requested page; the connection serves the next search whole")
    func pagedSearchLeftEarly() async throws {
        // The next page is asked for before a page's entries are handed over: leaving early
        // must abandon that request, so its entries never reach the search after it.
        let suffix = "dc=leftearly,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix) + TestDirectory.people(2500, suffix: suffix))
        defer { server.shutdown() }
        let connection = try await LDAPConnection.connect(LDAPConfiguration(urls: [server.url], security: .plaintext))
        for round in 1...3 {
            var seen = 0
            for try await entry in connection.search(base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)",
                                                     attributes: ["uid"], pageSize: 500) {
                #expect(entry.string("uid") != nil)
                seen += 1
                if seen == 10 * round { break }
            }
            #expect(seen == 10 * round)
        }
        let mails = try await connection.search(base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)",
                                                attributes: ["mail"], pageSize: 700).collect()
        #expect(mails.count == 2500)
        #expect(mails.allSatisfy { $0.has("mail") && !$0.has("uid") })
        #expect(Set(mails.map(\.dn)).count == 2500)
        await connection.close()
    }

    @Test("Entries of one search with different attributes each keep their own names and values")
    func entriesWithDifferentAttributes() async throws {
        // Units and people interleave in one subtree search: the names of the entry parsed
        // before are reused only where they are the same.
        let suffix = "dc=mixed,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix) + TestDirectory.people(5, suffix: suffix))
        defer { server.shutdown() }
        let connection = try await LDAPConnection.connect(LDAPConfiguration(urls: [server.url], security: .plaintext))
        let entries = try await connection.search(base: suffix, attributes: ["*", "entryUUID"], pageSize: 2).collect()
        #expect(entries.count >= 7)
        #expect(Set(entries.map { $0.attributes.count }).count > 1)
        for entry in entries {
            let alone = try #require(try await connection.read(entry.dn, attributes: ["*", "entryUUID"]))
            #expect(entry == alone)
            #expect(entry.attributes.map(\.name) == alone.attributes.map(\.name))
        }
        await connection.close()
    }

    @Test("A 3,000-member group is read whole")
    func largeGroup() async throws {
        let suffix = "dc=biggroup,dc=test"
        let members = (1...3000).map { TestDirectory.dn(TestDirectory.uid("m", $0), suffix: suffix) }
        let server = try await SlapdServer.start(
            suffix: suffix,
            ldif: TestDirectory.units(suffix) + TestDirectory.people(3000, prefix: "m", suffix: suffix)
                + TestDirectory.group("everyone", suffix: suffix, members: members))
        defer { server.shutdown() }
        let connection = try await LDAPConnection.connect(server.adminConfiguration())
        let values = try await connection.readAllValues(of: "member", dn: "cn=everyone,ou=groups,\(suffix)")
        #expect(values.count == 3000)
        #expect(Set(values.compactMap(\.string)) == Set(members))
        #expect(try await connection.read("uid=nobody,ou=people,\(suffix)") == nil)
        await connection.close()
    }

    @Test("Values are bytes with string access; names compare case-insensitively")
    func valuesAndNames() async throws {
        let suffix = "dc=values,dc=test"
        let server = try await SlapdServer.start(
            suffix: suffix,
            ldif: TestDirectory.units(suffix) + TestDirectory.person("smith", suffix: suffix, givenName: "Zoë", surname: "Smith, Jr"))
        defer { server.shutdown() }
        let connection = try await LDAPConnection.connect(server.adminConfiguration())
        let entry = try #require(try await connection.read(TestDirectory.dn("smith", suffix: suffix), attributes: ["*", "entryUUID"]))
        #expect(entry.string("GIVENNAME") == "Zoë")
        #expect(entry["givenName"].first?.bytes == Array("Zoë".utf8))
        #expect(entry.string("sn") == "Smith, Jr")
        #expect(entry.string("entryUUID")?.count == 36)
        try await connection.modify(entry.dn, [.replace("title", ["Surgeon"]), .add("description", ["a", "b"])])
        let changed = try #require(try await connection.read(entry.dn, attributes: ["title", "description"]))
        #expect(changed.string("title") == "Surgeon")
        #expect(Set(changed.strings("description")) == ["a", "b"])
        await connection.close()
    }
}
