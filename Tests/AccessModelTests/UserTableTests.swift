import AccessModel
import Testing

/// The snapshot's table of users reads and writes like a dictionary keyed by user code.
@Suite struct UserTableTests {
    private func codes(_ table: UserTable) -> [String] { table.map(\.key.rawValue).sorted() }

    @Test func findsUsersByCodeWithoutCase() {
        var table = UserTable([Clinic.user("Rita"), Clinic.user("moa")])
        #expect(table.count == 2 && !table.isEmpty)
        #expect(table["RITA"]?.code.rawValue == "Rita")
        #expect(table["nobody"] == nil)
        table["rita"] = Clinic.user("rita", healthCenters: ["HC2"])
        #expect(table.count == 2, "setting an existing code replaces its user")
        #expect(table["Rita"]?.healthCenters == ["HC2"])
        #expect(codes(table) == ["Rita", "moa"], "the key it was first stored under stays, as in a dictionary")
    }

    @Test func theLastOfTwoUsersWithOneCodeIsKept() {
        let table = UserTable([Clinic.user("rita"), Clinic.user("RITA", healthCenters: ["HC2"])])
        #expect(table.count == 1 && table["rita"]?.healthCenters == ["HC2"])
    }

    @Test func removingMovesTheLastUserIntoTheGap() {
        var table = UserTable(["a", "b", "c", "d"].map { Clinic.user($0) })
        #expect(table.removeValue(forKey: "b")?.code.rawValue == "b")
        #expect(table.removeValue(forKey: "b") == nil)
        #expect(codes(table) == ["a", "c", "d"])
        for code in ["a", "c", "d"] { #expect(table[UserCode(code)]?.code.rawValue == code) }
        table["d"] = nil
        table["a"] = nil
        #expect(codes(table) == ["c"] && table["c"] != nil && table["a"] == nil)
        table["c"] = nil
        #expect(table.isEmpty && table.values.isEmpty && table.keys.isEmpty)
        table["e"] = Clinic.user("e")
        #expect(codes(table) == ["e"])
    }

    @Test func valuesAndKeysLineUp() {
        let table = UserTable(["x", "y", "z"].map { Clinic.user($0) })
        #expect(zip(table.keys, table.values).allSatisfy { $0 == $1.code })
        #expect(Set(table.values.map(\.code.rawValue)) == ["x", "y", "z"])
    }

    @Test func equalityAndHashingIgnoreOrder() {
        let forward = UserTable(["a", "b", "c"].map { Clinic.user($0) })
        let backward = UserTable(["c", "b", "a"].map { Clinic.user($0) })
        #expect(forward == backward && forward.hashValue == backward.hashValue)
        var changed = backward
        changed["b"] = Clinic.user("b", state: AccountState(lockedLocally: true))
        #expect(changed != forward)
        var fewer = forward
        fewer["c"] = nil
        #expect(fewer != forward && forward != fewer)
        var other = fewer
        other["d"] = Clinic.user("d")
        #expect(other != forward, "same count, another user")
    }
}
