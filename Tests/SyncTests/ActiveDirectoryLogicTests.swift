import Foundation
import LDAPKit
import RosterConfig
@testable import Sync
import Testing

@Suite("Active Directory logic without a directory: nesting, DirSync checkpoints, change classification, lockout ends")
struct ActiveDirectoryLogicTests {
    // Groups a ⊃ b ⊃ c; c ⊃ a (a cycle); d stands alone.
    let nesting = GroupNesting(direct: [
        "cn=a": ["cn=b", "uid=1"],
        "cn=b": ["cn=c", "uid=2"],
        "cn=c": ["uid=3", "cn=a"],
        "cn=d": ["uid=4", "cn=unknown-group-outside-scope"],
    ])

    @Test("Effective members follow nesting at any depth, once through a cycle, and list no known groups")
    func effectiveMembers() {
        #expect(nesting.effectiveMembers(of: "cn=a") == ["uid=1", "uid=2", "uid=3"])
        #expect(nesting.effectiveMembers(of: "cn=c") == ["uid=1", "uid=2", "uid=3"])
        // A member DN that is not a known group counts as a member (it may be a user).
        #expect(nesting.effectiveMembers(of: "cn=d") == ["uid=4", "cn=unknown-group-outside-scope"])
        #expect(nesting.effectiveMembers(of: "cn=none") == [])
    }

    @Test("A change to a nested group reaches every group containing it; removal stops the derived membership")
    func containingAndRemoval() {
        #expect(nesting.containing("cn=c") == ["cn=a", "cn=b", "cn=c"])
        #expect(nesting.containing("cn=d") == ["cn=d"])
        var flat = GroupNesting(direct: ["cn=parent": ["cn=child", "uid=1"], "cn=child": ["uid=2"]])
        #expect(flat.effectiveMembers(of: "cn=parent") == ["uid=1", "uid=2"])
        flat.update(group: "cn=child", members: [])
        #expect(flat.effectiveMembers(of: "cn=parent") == ["uid=1"])
        flat.update(group: "cn=child", members: ["uid=3"])
        flat.remove(group: "cn=child")
        // A forgotten group is no longer expanded; its DN stays a (harmless) member value.
        #expect(!flat.effectiveMembers(of: "cn=parent").contains("uid=3"))
    }

    @Test("Nested expansion of groups read by a reconcile")
    func expandRead() {
        let groups = [DirectoryGroup(dn: "cn=outer", cn: "outer", members: ["cn=inner", "uid=1"]),
                      DirectoryGroup(dn: "cn=inner", cn: "inner", members: ["uid=2"])]
        let expanded = DirectoryReader.expandNested(groups)
        #expect(expanded[0].members == ["uid=1", "uid=2"])
        #expect(expanded[1].members == ["uid=2"])
    }

    @Test("DirSync checkpoints round-trip and refuse foreign bytes")
    func checkpointEncoding() {
        let checkpoint = DirSyncCheckpoint(invocationID: "9bff4067-a3f5-42ab-8f37-7401e216a7d1", cookie: [0, 10, 255, 10, 1])
        #expect(DirSyncCheckpoint(encoded: checkpoint.encoded) == checkpoint)
        #expect(DirSyncCheckpoint(encoded: Array("rid=000,csn=20261123".utf8)) == nil)
        #expect(DirSyncCheckpoint(encoded: []) == nil)
    }

    @Test("Resume only from a cookie the same DC database issued")
    func resumeDecision() {
        let stored = DirSyncCheckpoint(invocationID: "AAAA", cookie: [1, 2, 3])
        #expect(DirSyncCheckpoint.resume(from: stored, serverInvocationID: "aaaa") == .resume([1, 2, 3]))
        guard case .fullReload(let why) = DirSyncCheckpoint.resume(from: stored, serverInvocationID: "bbbb") else {
            Issue.record("another DC must reload")
            return
        }
        #expect(why.contains("invocationId"))
        #expect(DirSyncCheckpoint.resume(from: nil, serverInvocationID: "aaaa") != .resume([]))
        #expect(DirSyncCheckpoint.resume(from: DirSyncCheckpoint(invocationID: "aaaa", cookie: []), serverInvocationID: "aaaa") != .resume([]))
    }

    @Test("DirSync changes: tombstones and scope exits of known users deactivate; unknown objects are ignored")
    func classification() throws {
        let id = try #require(EntryUUID("12d9e85b-fad0-c344-8401-47ae962d69d1"))
        let users = "OU=People,DC=x"
        let groups = "OU=Groups,DC=x"
        func classify(deleted: Bool = false, user: LDAPEntry? = nil, group: LDAPEntry? = nil, known: Bool = false, groupDN: String? = nil) -> DirSyncChange {
            DirSyncChange.classify(id: id, isDeleted: deleted, asUser: user, asGroup: group, usersBase: users, groupsBase: groups,
                                   knownUser: known, knownGroupDN: groupDN)
        }
        let alice = LDAPEntry(dn: "CN=alice,OU=People,DC=x")
        let moved = LDAPEntry(dn: "CN=alice,CN=Users,DC=x")
        let team = LDAPEntry(dn: "CN=team,OU=Groups,DC=x")
        #expect(classify(user: alice, known: true) == .user(id, alice))
        #expect(classify(user: alice) == .user(id, alice), "a new user")
        #expect(classify(deleted: true, known: true) == .userGone(id, why: "deleted from Active Directory (tombstone)"))
        #expect(classify(user: moved, known: true) == .userGone(id, why: "no longer within the configured user base and filter"))
        #expect(classify(known: true) == .userGone(id, why: "no longer within the configured user base and filter"))
        #expect(classify(group: team) == .group(id, team))
        #expect(classify(deleted: true, groupDN: "cn=team,ou=groups,dc=x") == .groupGone(id, dn: "cn=team,ou=groups,dc=x"))
        #expect(classify() == .ignored, "a computer or an object out of scope Roster never knew")
        #expect(classify(deleted: true) == .ignored)
    }

    @Test("An AD lockout ends at lockoutTime plus the domain's duration; a permanent one sets no timer")
    func lockoutEnd() throws {
        let now = Date(timeIntervalSince1970: 1_795_452_582)
        let lockedAt = now.addingTimeInterval(-10)
        let fileTime = String(Int64((lockedAt.timeIntervalSince1970 + 11_644_473_600) * 10_000_000))
        let entry = LDAPEntry(dn: "CN=a,DC=x", attributes: [
            ("userAccountControl", [LDAPValue("512")]), ("msDS-User-Account-Control-Computed", [LDAPValue("16")]),
            ("lockoutTime", [LDAPValue(fileTime)]), ("accountExpires", [LDAPValue("9223372036854775807")]),
        ])
        let timed = AccountStateReader(flavor: .activedirectory, lockoutDuration: 30).state(of: entry, at: now)
        #expect(timed.locked && !timed.inactive)
        let next = try #require(timed.nextChange)
        #expect(abs(next.timeIntervalSince(lockedAt.addingTimeInterval(31))) < 0.01)
        let permanent = AccountStateReader(flavor: .activedirectory, lockoutDuration: 0).state(of: entry, at: now)
        #expect(permanent.locked && permanent.nextChange == nil)
        // The DC still says locked after the computed end (clock skew): look again soon.
        let stale = AccountStateReader(flavor: .activedirectory, lockoutDuration: 5).state(of: entry, at: now)
        #expect(stale.locked && stale.nextChange == now.addingTimeInterval(2))
        #expect(DirectoryTime.parseADInterval("-600000000") == 60)
        #expect(DirectoryTime.parseADInterval("-9223372036854775808") == 0)
        #expect(DirectoryTime.parseADInterval("soon") == nil)
    }

    @Test("DNs within a base compare normalized", arguments: [
        ("CN=a,OU=People,DC=x", "ou=people,dc=x", true), ("ou=people,dc=x", "OU=People, DC=x", true),
        ("CN=a,OU=PeopleX,DC=x", "OU=People,DC=x", false), ("CN=a,OU=Other,DC=x", "OU=People,DC=x", false),
    ])
    func within(dn: String, base: String, expected: Bool) {
        #expect(DN.isWithin(dn, base: base) == expected)
    }
}
