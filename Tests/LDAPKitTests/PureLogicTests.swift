@testable import LDAPKit
import Testing

@Suite("LDAPKit pure logic")
struct PureLogicTests {
    @Test("Range options of ranged retrieval parse, and name the next part")
    func attributeRanges() {
        let first = AttributeRange(attributeName: "member;range=0-1499")
        #expect(first == AttributeRange(attributeName: "member;range=0-1499"))
        #expect(first?.attribute == "member")
        #expect(first?.low == 0)
        #expect(first?.high == 1499)
        #expect(first?.nextRequest == "member;range=1500-*")
        let last = AttributeRange(attributeName: "Member;Range=1500-*")
        #expect(last?.high == nil)
        #expect(last?.nextRequest == nil)
        #expect(AttributeRange(attributeName: "member;binary;range=0-9")?.attribute == "member;binary")
        for bad in ["member", "member;range=", "member;range=5-1", "member;range=a-b", "member;range=-1-5", "member;lang-en"] {
            #expect(AttributeRange(attributeName: bad) == nil, "\(bad)")
        }
    }

    @Test("entryUUID text and bytes round-trip; malformed text is refused")
    func entryUUIDs() throws {
        let text = "98154100-7ba9-1041-8002-1f5b7be6a795"
        let id = try #require(EntryUUID(text))
        #expect(id.description == text)
        #expect(EntryUUID(text.uppercased()) == id)
        #expect(EntryUUID(bytes: id.bytes) == id)
        #expect(id.bytes.count == 16)
        for bad in ["", "98154100-7ba9-1041-8002-1f5b7be6a79", "98154100-7ba9-1041-8002-1f5b7be6a7950",
                    "9815410007ba9-1041-8002-1f5b7be6a795", "98154100-7ba9-1041-8002-1f5b7be6a79g"] {
            #expect(EntryUUID(bad) == nil, "\(bad)")
        }
        #expect(EntryUUID(bytes: [1, 2, 3]) == nil)
    }

    @Test("389-ds nsUniqueId text carries the same bytes as the content-synchronization plugin's sync UUID")
    func nsUniqueIDs() throws {
        // As 389-ds printed them for one entry: nsUniqueId, and the sync state control's UUID.
        let id = try #require(EntryUUID(nsUniqueID: "13E3DE8C-e8c811f1-a189a621-707a9b00"))
        #expect(id == EntryUUID("13e3de8c-e8c8-11f1-a189-a621707a9b00"))
        #expect(id.nsUniqueID == "13e3de8c-e8c811f1-a189a621-707a9b00")
        for bad in ["", "13e3de8c-e8c8-11f1-a189-a621707a9b00", "13e3de8c-e8c811f1-a189a621-707a9b0", "13e3de8c-e8c811f1-a189a621707a9b00",
                    "13e3de8c-e8c811f1-a189a621-707a9b0g", "13e3de8c-e8c811f1-a189a621-707a9b00-"] {
            #expect(EntryUUID(nsUniqueID: bad) == nil, "\(bad)")
        }
    }

    @Test("Backoff grows exponentially to its cap and resets")
    func backoff() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), multiplier: 2, jitter: 0)
        let delays = (0..<8).map { _ in backoff.nextDelay() }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                           .milliseconds(1600), .seconds(2), .seconds(2), .seconds(2)])
        backoff.reset()
        #expect(backoff.nextDelay() == .milliseconds(100))
    }

    @Test("Jittered delays stay within the jitter band and under the cap")
    func backoffJitter() {
        var backoff = Backoff(initial: .seconds(1), maximum: .seconds(10), multiplier: 3, jitter: 0.5)
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<20 {
            let delay = backoff.nextDelay(using: &generator)
            let base = min(1.0 * Double([1, 3, 9, 27, 81][min(attempt, 4)]), 10)
            #expect(delay >= .milliseconds(Int64(base * 500)) && delay <= .seconds(10))
        }
    }

    @Test("Entries keep attribute order and compare names case-insensitively")
    func entries() {
        var entry = LDAPEntry(dn: "uid=a,dc=x", attributes: [("cn", [LDAPValue("A")]), ("Mail", [LDAPValue("a@x")])])
        #expect(entry.string("MAIL") == "a@x")
        entry.append("mail", [LDAPValue("b@x")])
        #expect(entry.strings("mail") == ["a@x", "b@x"])
        entry.set("CN", nil)
        #expect(!entry.has("cn"))
        #expect(entry.attributes.map(\.name) == ["Mail"])
        #expect(LDAPValue([0xff, 0xfe]).string == nil)
        #expect(LDAPValue([0xff]).description == "<1 bytes>")
        #expect(LDAPValue(Array("abc".utf8)) == LDAPValue("abc"))
        #expect(LDAPValue("abc").bytes == Array("abc".utf8))
        #expect(LDAPValue([0xff, 0x41]).bytes == [0xff, 0x41])
        // Values compare by their bytes: canonically equivalent text is not the same value.
        #expect(LDAPValue("\u{E9}") != LDAPValue("e\u{301}"))
        #expect(Set([LDAPValue("a"), LDAPValue(Array("a".utf8))]).count == 1)
        #expect(entry.string("mAiL") == "a@x" && !entry.has("mai"))
        #expect(LDAPEntry(dn: "x", attributes: [("ÄB", [LDAPValue("1")])]).string("äb") == "1")
        // ASCII names: letters fold, nothing else does ('@' and '`' differ only in the bit that folds letters).
        let ascii = LDAPEntry(dn: "x", attributes: [("a@b", [LDAPValue("1")]), ("member;range=0-1499", [LDAPValue("2")]), ("x-1", [LDAPValue("3")])])
        #expect(!ascii.has("a`b") && !ascii.has("A`B") && ascii.string("A@B") == "1")
        #expect(ascii.string("MEMBER;RANGE=0-1499") == "2" && !ascii.has("member;range=0-149") && ascii.string("X-1") == "3")
        // An entry with a name that is not ASCII still finds its ASCII names, in any case.
        let mixed = LDAPEntry(dn: "x", attributes: [("ÄB", [LDAPValue("1")]), ("givenName", [LDAPValue("2")])])
        #expect(mixed.string("GIVENNAME") == "2" && mixed.string("äb") == "1" && !mixed.has("givenNam"))
    }

    @Test("Errors read as sentences with code, operation, target and hint")
    func errorText() {
        let error = LDAPError(code: .invalidCredentials, operation: .bind, diagnosticMessage: " bad\n",
                              target: "cn=roster,dc=x at ldap://h", hint: "Check the password file.")
        #expect(error.description == "LDAP bind (cn=roster,dc=x at ldap://h) failed: Invalid credentials (49); the server said: bad. Check the password file.")
    }

    @Test("Configuration is checked before anything is sent")
    func configurationValidation() {
        #expect(throws: LDAPError.self) { try LDAPConfiguration(urls: []).validate() }
        #expect(throws: LDAPError.self) { try LDAPConfiguration(urls: ["http://x"]).validate() }
        #expect(throws: LDAPError.self) { try LDAPConfiguration(urls: ["ldap://x"], security: .tls(.init(caFile: "/nonexistent.pem"))).validate() }
        #expect(throws: LDAPError.self) { try LDAPConfiguration(urls: ["ldap://x"], security: .tls(.init(certificateFile: "/etc/hostname"))).validate() }
        #expect(throws: LDAPError.self) { try LDAPConfiguration(urls: ["ldap://x"], credentials: .saslExternal).validate() }
        #expect(throws: Never.self) { try LDAPConfiguration(urls: ["ldap://x", "ldaps://y"]).validate() }
        #expect(throws: Never.self) { try LDAPConfiguration(urls: ["ldapi:///"], security: .plaintext, credentials: .saslExternal).validate() }
    }
}
