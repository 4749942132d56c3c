import AccessModel
import PropertyBased
import Testing

@Suite struct LevelTests {
    static let levels = Privilege.allCases.flatMap { p in PrivacyLevel.allCases.map { AccessLevel(p, $0) } }

    @Test func readOnlyIsMoreRestrictiveThanFullAccess() {
        #expect(Privilege.readOnly < .fullAccess)
        let combined = AccessLevel(.fullAccess, .toggleDefaultOn).combined(with: AccessLevel(.readOnly, .toggleDefaultOff))
        #expect(combined == AccessLevel(.readOnly, .toggleDefaultOn))
    }

    @Test func privacyLevelsAreOrderedFromLeastToMostPrivate() {
        #expect(PrivacyLevel.allCases.map(\.rawValue) == [1, 2, 3, 4])
        #expect(PrivacyLevel.allCases.filter(\.isForced) == [.forcedPatient, .forcedPatientAndProvider])
    }

    @Test func combiningIsCommutativeAssociativeAndIdempotent() async {
        let level = Gen.element(of: Self.levels).map { $0! }
        await propertyCheck(input: level, level, level) { a, b, c in
            #expect(a.combined(with: b) == b.combined(with: a))
            #expect(a.combined(with: b).combined(with: c) == a.combined(with: b.combined(with: c)))
            #expect(a.combined(with: a) == a)
            #expect(a.combined(with: b).isAtLeastAsRestrictive(as: a))
            #expect(a.combined(with: .unrestricted) == a)
        }
    }
}
