import LDAPKit
import SlapdHarness
import Testing

/// Reads events until `predicate` matches one, or fails after `timeout`.
func nextEvent(
    _ iterator: inout LDAPSyncStream.Events.Iterator, within timeout: Duration = .seconds(1),
    sourceLocation: SourceLocation = #_sourceLocation, where predicate: (SyncEvent) -> Bool
) async throws -> SyncEvent {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        // The persist phase blocks until the server sends something; the tests always
        // cause an event before waiting, so a missing one shows up as the deadline.
        guard let event = try await iterator.next() else { break }
        if predicate(event) {
            #expect(clock.now <= deadline, "the event came after \(timeout)", sourceLocation: sourceLocation)
            return event
        }
    }
    Issue.record("no matching event within \(timeout)", sourceLocation: sourceLocation)
    throw HarnessError("no matching sync event")
}

@Suite("RFC 4533 sync stream against a real slapd")
struct SyncStreamTests {
    static let attributes = ["*", "entryUUID", "pwdAccountLockedTime"]

    @Test("A refresh-only sync delivers every entry once, a refresh-done marker and a cookie")
    func refreshOnly() async throws {
        let suffix = "dc=refresh,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix) + TestDirectory.people(2500, suffix: suffix))
        defer { server.shutdown() }
        let stream = try await LDAPSyncStream.start(server.adminConfiguration(), SyncRequest(
            base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)", attributes: Self.attributes, mode: .refreshOnly))
        var ids = Set<EntryUUID>()
        var uids = Set<String>()
        var cookie: [UInt8]?
        var done = false
        for try await event in stream.events {
            switch event {
            case .add(let id, let entry):
                ids.insert(id)
                uids.insert(entry.string("uid") ?? "")
                #expect(EntryUUID(entry.string("entryUUID") ?? "") == id)
            case .cookie(let value): cookie = value
            case .refreshDone: done = true
            default: Issue.record("unexpected \(event)")
            }
        }
        #expect(ids.count == 2500)
        #expect(uids.count == 2500)
        #expect(done)
        #expect(cookie != nil)
    }

    @Test("Persist delivers add, modify, delete and a ppolicy lock within one second each")
    func persist() async throws {
        let suffix = "dc=persist,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix) + TestDirectory.people(50, suffix: suffix))
        defer { server.shutdown() }
        let writer = try await LDAPConnection.connect(server.adminConfiguration())
        let stream = try await LDAPSyncStream.start(server.adminConfiguration(), SyncRequest(
            base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)", attributes: Self.attributes))
        var events = stream.events.makeAsyncIterator()
        var known: [String: EntryUUID] = [:]
        while true {
            let event = try #require(try await events.next())
            if case .add(let id, let entry) = event { known[entry.dn] = id }
            if case .refreshDone = event { break }
        }
        #expect(known.count == 50)

        let newDN = TestDirectory.dn("newcomer", suffix: suffix)
        try await writer.add(newDN, [("objectClass", [LDAPValue("inetOrgPerson")]), ("uid", [LDAPValue("newcomer")]),
                                     ("cn", [LDAPValue("New Comer")]), ("sn", [LDAPValue("Comer")])])
        let added = try await nextEvent(&events) { if case .add = $0 { true } else { false } }
        guard case .add(let newID, let newEntry) = added else { return }
        #expect(newEntry.dn == newDN)
        #expect(known[newDN] == nil)

        let target = TestDirectory.dn(TestDirectory.uid("user", 7), suffix: suffix)
        try await writer.modify(target, [.replace("title", ["Locum"])])
        let modified = try await nextEvent(&events) { if case .modify = $0 { true } else { false } }
        #expect(modified == .modify(try #require(known[target]), try #require(await writer.read(target, attributes: Self.attributes))))

        try await writer.modify(target, [.replace("pwdAccountLockedTime", ["000001010000Z"])])
        let locked = try await nextEvent(&events) { if case .modify = $0 { true } else { false } }
        guard case .modify(let lockedID, let lockedEntry) = locked else { return }
        #expect(lockedID == known[target])
        #expect(lockedEntry.string("pwdAccountLockedTime") == "000001010000Z")

        try await writer.delete(newDN)
        let deleted = try await nextEvent(&events) { if case .delete = $0 { true } else { false } }
        guard case .delete(let deletedID, _) = deleted else { return }
        #expect(deletedID == newID)

        // A burst of changes arrives whole: every change once, none lost or repeated.
        let burst = (10...49).map { TestDirectory.dn(TestDirectory.uid("user", $0), suffix: suffix) }
        for dn in burst { try await writer.modify(dn, [.replace("description", ["burst"])]) }
        var seen: [EntryUUID] = []
        while seen.count < burst.count {
            let event = try await nextEvent(&events, within: .seconds(5)) { if case .modify = $0 { true } else { false } }
            if case .modify(let id, let entry) = event {
                #expect(entry.string("description") == "burst")
                seen.append(id)
            }
        }
        #expect(Set(seen) == Set(burst.compactMap { known[$0] }))
        #expect(seen.count == burst.count)
        stream.cancel()
        await writer.close()
    }

    @Test("Resuming from a cookie after a consumer restart delivers exactly the changes made while away")
    func resumeFromCookie() async throws {
        let suffix = "dc=resume,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix) + TestDirectory.people(200, suffix: suffix))
        defer { server.shutdown() }
        let request = SyncRequest(base: "ou=people,\(suffix)", filter: "(objectClass=inetOrgPerson)", attributes: Self.attributes)

        // First consumer: full refresh, remember the cookie and the entries, stop.
        var ids: [String: EntryUUID] = [:]
        var cookie: [UInt8]?
        do {
            let first = try await LDAPSyncStream.start(server.adminConfiguration(), request)
            var events = first.events.makeAsyncIterator()
            var refreshed = false
            while let event = try await events.next() {
                if case .add(let id, let entry) = event { ids[entry.dn] = id }
                if case .refreshDone = event { refreshed = true }
                // The cookie that covers the whole refresh follows its refresh-done marker.
                if case .cookie(let value) = event, refreshed {
                    cookie = value
                    break
                }
            }
            first.cancel()
        }
        #expect(ids.count == 200)
        let stored = try #require(cookie)

        // While away: one add, one modify, one lock, two deletes.
        let writer = try await LDAPConnection.connect(server.adminConfiguration())
        let dn = { (index: Int) in TestDirectory.dn(TestDirectory.uid("user", index), suffix: suffix) }
        try await writer.add(TestDirectory.dn("late", suffix: suffix), [("objectClass", [LDAPValue("inetOrgPerson")]),
            ("uid", [LDAPValue("late")]), ("cn", [LDAPValue("Late Hire")]), ("sn", [LDAPValue("Hire")])])
        try await writer.modify(dn(3), [.replace("title", ["Surgeon"])])
        try await writer.modify(dn(4), [.replace("pwdAccountLockedTime", ["000001010000Z"])])
        try await writer.delete(dn(5))
        try await writer.delete(dn(6))

        // Second consumer, from the cookie.
        var request2 = request
        request2.cookie = stored
        let second = try await LDAPSyncStream.start(server.adminConfiguration(), request2)
        var changed = Set<String>()
        var deleted = Set<EntryUUID>()
        var presentPhase = false
        var present = 0
        var events = second.events.makeAsyncIterator()
        while let event = try await events.next() {
            switch event {
            case .add(_, let entry), .modify(_, let entry): changed.insert(entry.dn)
            case .delete(let id, _): deleted.insert(id)
            case .deleteIDs(let list): deleted.formUnion(list)
            case .present, .presentIDs: present += 1
            case .refreshDone(let wasPresentPhase):
                presentPhase = wasPresentPhase
            case .cookie, .refreshRequired: break
            }
            if case .refreshDone = event { break }
        }
        second.cancel()
        #expect(changed == [TestDirectory.dn("late", suffix: suffix), dn(3), dn(4)])
        #expect(deleted == [try #require(ids[dn(5)]), try #require(ids[dn(6)])])
        #expect(!presentPhase)
        #expect(present == 0)
        await writer.close()
    }

    @Test("A sync on a missing base fails with noSuchObject naming the base")
    func missingBase() async throws {
        let suffix = "dc=nobase,dc=test"
        let server = try await SlapdServer.start(suffix: suffix, ldif: TestDirectory.units(suffix))
        defer { server.shutdown() }
        let stream = try await LDAPSyncStream.start(server.adminConfiguration(), SyncRequest(base: "ou=missing,\(suffix)"))
        let error = await #expect(throws: LDAPError.self) {
            for try await _ in stream.events {}
        }
        #expect(error?.code == .noSuchObject)
        #expect(error?.description.contains("ou=missing,\(suffix)") == true)
    }
}
