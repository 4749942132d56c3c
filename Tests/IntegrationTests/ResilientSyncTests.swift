import LDAPKit
import SlapdHarness
import Testing

@Suite("Reconnecting sync stream against a real slapd")
struct ResilientSyncTests {
    @Test("slapd killed and restarted: the stream reports the outage, reconnects from its cookie and delivers new changes")
    func reconnects() async throws {
        let suffix = "dc=resilient,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix) + TestDirectory.people(20, suffix: suffix))
        defer { server.shutdown() }
        let stream = ResilientSyncStream(
            configuration: server.adminConfiguration(operationTimeout: .seconds(2)),
            request: SyncRequest(base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)", attributes: ["uid", "title"]),
            backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(400)))
        var events = stream.makeAsyncIterator()
        #expect(try await events.next() == .connected(resumingFrom: nil))
        var adds = 0
        var sawCookie = false
        while true {
            let event = try #require(try await events.next())
            if case .sync(.add) = event { adds += 1 }
            if case .sync(.cookie) = event, adds == 20 { sawCookie = true; break }
        }
        #expect(sawCookie)
        let cookie = try #require(events.cookie)

        server.crash()
        var sawDisconnect = false
        // While slapd is down, every attempt fails and is reported with its delay.
        for _ in 0..<2 {
            let event = try #require(try await events.next())
            guard case .disconnected(let error, let delay) = event else {
                Issue.record("expected a disconnect, got \(event)")
                break
            }
            sawDisconnect = true
            #expect(error.code.isConnectionFailure)
            #expect(delay <= .milliseconds(480))
        }
        #expect(sawDisconnect)

        try await server.restart()
        let target = TestDirectory.dn(TestDirectory.uid("user", 3), suffix: suffix)
        var reconnected = false
        while !reconnected {
            let event = try #require(try await events.next())
            if case .connected(let from) = event {
                #expect(from == cookie)
                reconnected = true
            }
        }
        let writer = try await LDAPConnection.connect(server.adminConfiguration())
        try await writer.modify(target, [.replace("title", ["Back"])])
        while true {
            let event = try #require(try await events.next())
            if case .sync(.add(_, let entry)) = event { Issue.record("a resumed stream re-sent \(entry.dn)") }
            if case .sync(.modify(_, let entry)) = event {
                #expect(entry.dn == target)
                #expect(entry.string("title") == "Back")
                break
            }
        }
        await writer.close()
    }
}
