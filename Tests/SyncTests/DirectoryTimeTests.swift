import Foundation
import LDAPKit
import RosterConfig
@testable import Sync
import Testing

@Suite("Directory time values and account states")
struct DirectoryTimeTests {
    @Test("GeneralizedTime parses with and without seconds, fractions and offsets", arguments: [
        ("20261123164942Z", 1_795_452_582.0),
        ("20261123164942.5Z", 1_795_452_582.5),
        ("202611231649Z", 1_795_452_540.0),
        ("2026112316Z", 1_795_449_600.0),
        ("20261123174942+0100", 1_795_452_582.0),
        ("20261123154942-0100", 1_795_452_582.0),
        ("19700101000000Z", 0.0),
        ("20240229120000Z", 1_709_208_000.0),
    ])
    func generalizedTime(text: String, expected: Double) throws {
        let date = try #require(DirectoryTime.parseGeneralizedTime(text))
        #expect(abs(date.timeIntervalSince1970 - expected) < 0.001)
    }

    @Test("Malformed GeneralizedTime is refused", arguments: [
        "", "2026", "20261123164942", "20261323164942Z", "20230229120000Z", "20261123246000Z", "20261123164942.Z",
        "20261123164942Zjunk", "2026112316494xZ", "20261123164942+25", "٢٠٢٦١١٢٣١٦٤٩٤٢Z",
    ])
    func malformedGeneralizedTime(text: String) {
        #expect(DirectoryTime.parseGeneralizedTime(text) == nil)
    }

    @Test("Dates format as GeneralizedTime and parse back", arguments: [0.0, 951_782_400, 1_795_452_582, 4_102_444_799, -86_400, -62_167_219_200, -61_000_000_000])
    func formatRoundTrip(seconds: Double) throws {
        let text = DirectoryTime.generalizedTime(Date(timeIntervalSince1970: seconds))
        #expect(text.count == 15 && text.hasSuffix("Z"))
        #expect(try #require(DirectoryTime.parseGeneralizedTime(text)).timeIntervalSince1970 == seconds)
    }

    @Test("A sync cookie dates its newest change by its CSNs; a cookie without one has no date", arguments: [
        ("rid=000,csn=20261123164942.250000Z#000000#000#000000", 1_795_452_582.25),
        ("rid=001,sid=002,csn=20261123164942.000000Z#000000#001#000000;20261123164943.500000Z#000002#002#000000", 1_795_452_583.5),
        ("csn=20261123164942.000001Z#000000#000#000000", 1_795_452_582.000001),
    ])
    func cookieDate(cookie: String, expected: Double) throws {
        let date = try #require(DirectoryTime.newestChange(inCookie: Array(cookie.utf8)))
        #expect(abs(date.timeIntervalSince1970 - expected) < 0.000_002)
    }

    @Test("Cookies without a readable CSN have no date", arguments: ["", "rid=000", "rid=000,csn=", "rid=000,csn=garbage#000000#000#000000"])
    func undatedCookie(cookie: String) {
        #expect(DirectoryTime.newestChange(inCookie: Array(cookie.utf8)) == nil)
        #expect(DirectoryTime.newestChange(inCookie: [0xff, 0xfe]) == nil)
    }

    @Test("Windows file times: 0 and max mean never")
    func windowsFileTime() throws {
        #expect(DirectoryTime.parseWindowsFileTime("0") == nil)
        #expect(DirectoryTime.parseWindowsFileTime("9223372036854775807") == nil)
        #expect(DirectoryTime.parseWindowsFileTime("x") == nil)
        let date = try #require(DirectoryTime.parseWindowsFileTime("116444736000000000"))
        #expect(date.timeIntervalSince1970 == 0)
        #expect(try #require(DirectoryTime.parseShadowExpire("2")).timeIntervalSince1970 == 172_800)
        #expect(DirectoryTime.parseShadowExpire("-1") == nil)
    }

    static let now = Date(timeIntervalSince1970: 1_795_452_582)

    func entry(_ attributes: [String: String]) -> LDAPEntry {
        LDAPEntry(dn: "uid=x,dc=t", attributes: attributes.map { ($0.key, [LDAPValue($0.value)]) })
    }

    @Test("OpenLDAP ppolicy: permanent locks, lockouts with a duration and their end")
    func openLDAP() {
        let permanent = AccountStateReader(flavor: .openldap).state(of: entry(["pwdAccountLockedTime": "000001010000Z"]), at: Self.now)
        #expect(permanent.locked && !permanent.inactive && permanent.nextChange == nil)
        let reader = AccountStateReader(flavor: .openldap, lockoutDuration: 600)
        let recent = reader.state(of: entry(["pwdAccountLockedTime": "20261123164442Z"]), at: Self.now)
        #expect(recent.locked)
        #expect(recent.nextChange == Self.now.addingTimeInterval(300))
        let expired = reader.state(of: entry(["pwdAccountLockedTime": "20261123163442Z"]), at: Self.now)
        #expect(!expired.locked)
        let garbage = reader.state(of: entry(["pwdAccountLockedTime": "soon"]), at: Self.now)
        #expect(garbage.locked, "an unreadable lock must never let someone in")
        #expect(reader.state(of: entry([:]), at: Self.now) == .active)
        let shadow = reader.state(of: entry(["shadowExpire": "20000"]), at: Self.now)
        #expect(shadow.inactive)
        let future = reader.state(of: entry(["shadowExpire": "30000"]), at: Self.now)
        #expect(!future.inactive && future.nextChange == Date(timeIntervalSince1970: 30000 * 86400))
    }

    @Test("OpenLDAP ppolicy with several policies: a user's pwdPolicySubentry picks the duration; an unknown policy gives none")
    func openLDAPPolicyPerUser() {
        let strict = "cn=Strict,ou=policies,dc=t"
        let policy = LockoutPolicy(defaultDuration: 600, durationsByPolicy: [DN.normalize(strict): 1200, "cn=forever,ou=policies,dc=t": 0])
        let reader = AccountStateReader(flavor: .openldap, lockout: policy)
        let since = "20261123164442Z"  // 300 s before now
        let byDefault = reader.state(of: entry(["pwdAccountLockedTime": since]), at: Self.now)
        #expect(byDefault.locked && byDefault.nextChange == Self.now.addingTimeInterval(300))
        let byStrict = reader.state(of: entry(["pwdAccountLockedTime": since, "pwdPolicySubentry": "CN=strict, ou=Policies,dc=t"]), at: Self.now)
        #expect(byStrict.locked && byStrict.nextChange == Self.now.addingTimeInterval(900))
        let untilUnlocked = reader.state(of: entry(["pwdAccountLockedTime": since, "pwdPolicySubentry": "cn=forever,ou=policies,dc=t"]), at: Self.now)
        #expect(untilUnlocked.locked && untilUnlocked.nextChange == nil)
        let unknown = reader.state(of: entry(["pwdAccountLockedTime": "20261123163442Z", "pwdPolicySubentry": "cn=gone,dc=t"]), at: Self.now)
        #expect(unknown.locked && unknown.nextChange == nil, "a policy Roster could not read never ends a lockout early")
        #expect(reader.attributes.contains("pwdPolicySubentry"))
        #expect(policy.description == LockoutPolicy(defaultDuration: 600, durationsByPolicy: policy.durationsByPolicy).description)
    }

    @Test("Active Directory: disabled bit, computed lockout bit, account expiry")
    func activeDirectory() {
        let reader = AccountStateReader(flavor: .activedirectory)
        #expect(reader.state(of: entry(["userAccountControl": "514"]), at: Self.now).inactive)
        #expect(!reader.state(of: entry(["userAccountControl": "512"]), at: Self.now).inactive)
        #expect(reader.state(of: entry(["msDS-User-Account-Control-Computed": "16"]), at: Self.now).locked)
        #expect(reader.state(of: entry(["accountExpires": "116444736000000000"]), at: Self.now).inactive)
        #expect(!reader.state(of: entry(["accountExpires": "0"]), at: Self.now).inactive)
        let later = reader.state(of: entry(["accountExpires": "199999999999999999"]), at: Self.now)
        #expect(!later.inactive && later.nextChange != nil)
    }

    @Test("Active Directory: a lockout ends after the user's fine-grained policy's duration; an unread policy gives the domain's")
    func activeDirectoryFineGrainedPolicies() {
        let reader = AccountStateReader(flavor: .activedirectory,
                                        lockout: LockoutPolicy(defaultDuration: 600, durationsByPolicy: ["cn=long,cn=password settings container,cn=system,dc=t": 3600]))
        let since = String(Int64((Self.now.timeIntervalSince1970 - 300 + 11_644_473_600) * 10_000_000))
        func end(_ pso: String?) -> Date? {
            var attributes = ["msDS-User-Account-Control-Computed": "16", "lockoutTime": since]
            if let pso { attributes["msDS-ResultantPSO"] = pso }
            return reader.state(of: entry(attributes), at: Self.now).nextChange
        }
        // A second's margin for the DC's clock.
        #expect(end(nil) == Self.now.addingTimeInterval(301))
        #expect(end("CN=Long,CN=Password Settings Container,CN=System,DC=t") == Self.now.addingTimeInterval(3301))
        #expect(end("CN=Unread,CN=Password Settings Container,CN=System,DC=t") == Self.now.addingTimeInterval(301))
        #expect(reader.attributes.contains("msDS-ResultantPSO"))
    }

    @Test("389-ds: nsAccountLock deactivates, accountUnlockTime locks until then, or until a password reset when it is the epoch; an unreadable one locks")
    func ds389() {
        let reader = AccountStateReader(flavor: .ds389)
        #expect(reader.state(of: entry(["nsAccountLock": "TRUE"]), at: Self.now).inactive)
        #expect(!reader.state(of: entry(["nsAccountLock": "false"]), at: Self.now).inactive)
        let locked = reader.state(of: entry(["accountUnlockTime": "20261123170000Z"]), at: Self.now)
        #expect(locked.locked && locked.nextChange != nil)
        // The lockout has ended: unlocked, nothing more to wait for.
        let ended = reader.state(of: entry(["accountUnlockTime": "20251123170000Z", "passwordRetryCount": "3"]), at: Self.now)
        #expect(!ended.locked && ended.nextChange == nil)
        // 389-ds writes the epoch when the lockout lasts until an administrator resets the password.
        let untilReset = reader.state(of: entry(["accountUnlockTime": "19700101000000Z", "passwordRetryCount": "3"]), at: Self.now)
        #expect(untilReset.locked && untilReset.nextChange == nil)
        #expect(untilReset.reason?.contains("administrator resets the password") == true, "\(untilReset.reason ?? "")")
        // After the reset the retry count is 0 again: unlocked, whatever accountUnlockTime still says.
        #expect(!reader.state(of: entry(["accountUnlockTime": "19700101000000Z", "passwordRetryCount": "0"]), at: Self.now).locked)
        // An unreadable value locks (never let someone in on a parse error), as with OpenLDAP.
        #expect(reader.state(of: entry(["accountUnlockTime": "soon", "passwordRetryCount": "3"]), at: Self.now).locked)
    }

    @Test("FreeIPA: a past krbPrincipalExpiration deactivates, a future one sets a timer, an unreadable one deactivates")
    func freeIPAPrincipalExpiration() {
        let reader = AccountStateReader(flavor: .ds389)
        let expired = reader.state(of: entry(["krbPrincipalExpiration": "20251123170000Z"]), at: Self.now)
        #expect(expired.inactive && expired.nextChange == nil)
        #expect(expired.reason?.contains("krbPrincipalExpiration") == true, "\(expired.reason ?? "")")
        let later = reader.state(of: entry(["krbPrincipalExpiration": "20271123170000Z"]), at: Self.now)
        #expect(!later.inactive && later.nextChange == DirectoryTime.parseGeneralizedTime("20271123170000Z"))
        #expect(reader.state(of: entry(["krbPrincipalExpiration": "never"]), at: Self.now).inactive)
        // Other flavors do not read it.
        #expect(!AccountStateReader(flavor: .openldap).state(of: entry(["krbPrincipalExpiration": "20251123170000Z"]), at: Self.now).inactive)
    }

    @Test("DNs normalize for comparison; the first RDN value unescapes")
    func distinguishedNames() {
        #expect(DN.normalize("CN=Ortho MOAs, OU=Groups,dc=Clinic") == DN.normalize("cn=ortho moas,ou=groups,DC=clinic"))
        #expect(DN.normalize("cn=Smith\\, John,ou=people") == "cn=smith\\, john,ou=people")
        #expect(DN.firstValue("cn=Smith\\, John,ou=people") == "Smith, John")
        #expect(DN.firstValue("cn=hc1-office2-moa,ou=groups") == "hc1-office2-moa")
        #expect(escapeFilterValue("a*(b)\\c") == "a\\2a\\28b\\29\\5cc")
        #expect(escapeFilterValue("Zoë") == "Zoë")
    }

    @Test("The byte-wise DN normalization gives what the character-wise one gives", arguments: [
        "CN=Ortho MOAs, OU=Groups,dc=Clinic", "  cn = a  b ,ou=x  ", "cn=Smith\\, John,ou=people", "cn=a\\ ,ou=B",
        "uid=X+cn=Y ,DC=Z", "", " ", "\\", "cn=a\\\\,ou=b", "cn=Zoë Ärger,ou=people", "cn=a\r\nb,ou=c", "CN=A\tB,OU=C",
        "cn=\\E4\\C3,dc=x", "cn=a,,ou=b", "=,+", "cn=a ,  ,ou=b",
    ])
    func normalizationPaths(dn: String) {
        #expect(DN.normalize(dn) == DN.normalizeCharacters(dn))
    }

    @Test("Pattern templates fill each placeholder once, leaving other braces")
    func templateFill() {
        let values = ["hc": "1", "office": "office{hc}"]
        #expect(DirectoryMapper.fill("HC{hc} {office} MOAs", with: values) == "HC1 office{hc} MOAs")
        #expect(DirectoryMapper.fill("{{hc}} {unknown} {", with: values) == "{1} {unknown} {")
        #expect(DirectoryMapper.fill("plain", with: values) == "plain")
    }
}
