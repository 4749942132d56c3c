import AccessModel
import Testing

/// A user is a value: a changed copy leaves the original as it was, and every field takes part in
/// equality and hashing (which the model's diffs rely on).
@Suite struct UserValueTests {
    private func user() throws -> User {
        try User(code: "RGrey", directoryID: "a-b-c", directoryDN: "uid=rgrey,ou=people,dc=x", firstName: "Rosa", lastName: "Grey",
                 title: "Surgeon", email: "rgrey@clinic.example", healthCenters: ["HC1"], autoLogoutMinutes: 20, flags: ["beta": true])
    }

    @Test func aChangedCopyLeavesTheOriginalAsItWas() throws {
        let original = try user()
        var copy = original
        copy.state.lockedLocally = true
        copy.healthCenters.insert("HC2")
        copy.flags["beta"] = false
        #expect(!original.state.lockedLocally && original.healthCenters == ["HC1"] && original.flags == ["beta": true])
        #expect(copy.state.lockedLocally && copy.healthCenters == ["HC1", "HC2"] && copy.flags == ["beta": false])
        #expect(copy != original)
    }

    @Test func usersWithTheSameFieldsAreEqualAndHashAlike() throws {
        let one = try user(), other = try user()
        #expect(one == other && one.hashValue == other.hashValue)
        #expect(Set([one, other]).count == 1)
        var changed = other
        changed.email = "rosa.grey@clinic.example"
        #expect(changed != one && Set([one, changed]).count == 2)
        changed.email = one.email
        #expect(changed == one, "changed back, equal again")
    }

    @Test func everyFieldTakesPartInEquality() throws {
        let base = try user()
        let changes: [(inout User) -> Void] = [
            { $0.code = "RGrey2" }, { $0.directoryID = nil }, { $0.directoryDN = "uid=other" }, { $0.firstName = "R." },
            { $0.lastName = "G." }, { $0.title = nil }, { $0.email = nil }, { $0.healthCenters = [] },
            { $0.isSuperAdministrator = true }, { $0.state.inactiveByDirectory = true }, { $0.autoLogoutMinutes = 30 },
            { $0.defaultViews = DefaultViews(workflow: "schedule") }, { $0.isBreakGlass = true }, { $0.flags = [:] },
        ]
        for (index, change) in changes.enumerated() {
            var changed = base
            change(&changed)
            #expect(changed != base, "change \(index) went unnoticed")
        }
    }
}
