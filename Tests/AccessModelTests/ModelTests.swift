import AccessModel
import Testing

@Suite struct ModelInvariantTests {
    @Test func userCodesCompareCaseInsensitivelyAndKeepTheirSpelling() {
        let a = UserCode("RGrey")
        let b = UserCode("rgrey")
        #expect(a == b)
        #expect(Set([a, b]).count == 1)
        #expect(a.rawValue == "RGrey")
        #expect(a.key == "rgrey")
    }

    @Test func aGroupNeedsACareVenue() {
        #expect(throws: ModelError.groupWithoutCareVenue(group: "HC1 Ortho MOAs", healthCenter: "HC1")) {
            try Group(id: "g1", name: "HC1 Ortho MOAs", kind: .provider, healthCenter: "HC1", careVenues: [])
        }
        let error = ModelError.groupWithoutCareVenue(group: "HC1 Ortho MOAs", healthCenter: "HC1")
        #expect(error.description == "Group 'HC1 Ortho MOAs' in health center HC1 has no care venue: a group covers at least one care venue.")
    }

    @Test func everyGroupGrantsUserPreferences() throws {
        let group = try Group(id: "g1", name: "MOAs", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"])
        #expect(group.modules[.userPreferences] != nil)
        #expect(group.schedulingAbility)
        #expect(!group.autoAddNewProviders)
    }

    @Test func aGroupKeepsItsHealthCenterAndKind() throws {
        let stored = try Group(id: "g1", name: "HC1 Ortho MOAs", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"])
        let moved = try Group(id: "g1", name: "HC1 Ortho MOAs", kind: .provider, healthCenter: "HC2", careVenues: ["HC2-MAIN"])
        let error = #expect(throws: ModelError.self) { try moved.checkTransition(from: stored) }
        #expect(error?.description == "Group 'HC1 Ortho MOAs' cannot move from health center HC1 to HC2: a group's health center never changes.")
        let pooled = try Group(id: "g1", name: "HC1 Ortho MOAs", kind: .pool, healthCenter: "HC1", careVenues: ["HC1-OR1"])
        let kindError = #expect(throws: ModelError.self) { try pooled.checkTransition(from: stored) }
        #expect(kindError?.description == "Group 'HC1 Ortho MOAs' cannot change from a provider group to a pool group: a group's kind never changes.")
        let renamed = try Group(id: "g1", name: "Ortho office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR2"])
        try renamed.checkTransition(from: stored)
    }

    @Test func onlyForcedPrivacyLevelsMayBeOverriddenPerProvider() throws {
        #expect(throws: ModelError.self) {
            try Group(id: "g", name: "Office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
                .providersOffice: .providers(["grey": TargetGrant(.fullAccess, privacyOverride: .forcedPatient)], privacy: .toggleDefaultOn),
            ])
        }
        #expect(throws: ModelError.self) {
            try Group(id: "g", name: "Office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
                .providersOffice: .providers(["grey": TargetGrant(.fullAccess, privacyOverride: .toggleDefaultOn)], privacy: .forcedPatient),
            ])
        }
        let allowed = try Group(id: "g", name: "Office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .providersOffice: .providers(["grey": TargetGrant(.fullAccess, privacyOverride: .forcedPatientAndProvider)], privacy: .forcedPatient),
        ])
        #expect(allowed.modules[.providersOffice]?.targets["grey"]?.privacyOverride == .forcedPatientAndProvider)
    }

    @Test func aGroupListsTheMostRestrictiveOfItsEntries() throws {
        let group = try Group(id: "g", name: "Office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .providersOffice: .providers(["grey": TargetGrant(.fullAccess), "banner": TargetGrant(.readOnly)]),
            .reports: .providers(["grey": TargetGrant(.fullAccess)], privacy: .toggleDefaultOn),
        ])
        #expect(group.listedLevel == AccessLevel(.readOnly, .toggleDefaultOn))
    }

    @Test func aLocalLockSurvivesADirectoryUnlock() {
        var state = AccountState.active.updatedByDirectory(locked: true, inactive: false, reason: "pwdAccountLockedTime")
        #expect(state.isLocked && state.source == .directory)
        state.lockedLocally = true
        state = state.updatedByDirectory(locked: false, inactive: false)
        #expect(state.isLocked)
        #expect(state.source == .local)
        state.lockedLocally = false
        #expect(!state.isLocked && state.isActive && state.source == nil)
    }

    @Test func aDeletedUserIsRejected() {
        let changeset = Changeset(deletedUsers: ["jdoe"])
        let error = #expect(throws: ModelError.self) { try changeset.validateStandalone() }
        #expect(error?.description == "User 'jdoe' cannot be deleted: users are never deleted, only made inactive.")
    }

    @Test func aUserCodeTwiceIsRejectedInAnyOrder() throws {
        let codes: [[UserCode]] = [["ann", "bob", "ANN"], ["ann", "Ann", "bob"], ["bob", "ann", "cy", "Bob"]]
        for list in codes {
            let changeset = Changeset(users: try list.map { try User(code: $0) })
            let error = #expect(throws: ModelError.self, "\(list)") { try changeset.validateStandalone() }
            #expect(error?.description.contains("appears twice") == true, "\(String(describing: error))")
        }
        for list: [UserCode] in [["ann", "bob", "cy"], ["cy", "ann", "bob"], []] {
            #expect(throws: Never.self) { try Changeset(users: try list.map { try User(code: $0) }).validateStandalone() }
        }
    }

    @Test func snapshotValidationNamesTheBrokenReference() throws {
        let group = try Group(id: "g", name: "Office", kind: .provider, healthCenter: "HC1", careVenues: ["HC2-MAIN"])
        let snapshot = Clinic.snapshot(users: [], groups: [group], members: [:])
        let error = #expect(throws: ModelError.self) { try snapshot.validate() }
        #expect(error?.description == "Group 'Office' belongs to health center HC1 but refers to care venue 'HC2-MAIN' of health center HC2: both must be in the same health center.")
        let poolInProviderGroup = try Group(id: "g", name: "Office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .reports: ModuleGrant(targets: ["ortho": TargetGrant()]),
        ])
        #expect(throws: ModelError.wrongTargetKind(group: "Office", kind: .provider, module: .reports, target: "ortho")) {
            try Clinic.snapshot(users: [], groups: [poolInProviderGroup], members: [:]).validate()
        }
    }

    @Test func rule6AddsANewProviderToAutoAddGroups() throws {
        let group = try Group(id: "g", name: "OR booking", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"], modules: [
            .careVenue: .providers(["grey": TargetGrant()], defaultPrivilege: .readOnly),
        ], autoAddNewProviders: true)
        let added = group.addingProvider("banner")
        #expect(added.modules[.careVenue]?.targets["banner"] == TargetGrant(.readOnly, addedAutomatically: true))
        #expect(added.modules[.careVenue]?.targets["grey"]?.addedAutomatically == false)
        #expect(added.modules[.userPreferences]?.targets.isEmpty == true)
        let own = try Group.providerGroup(for: Clinic.house, id: "house-group", careVenues: ["HC1-OR1"])
        #expect(own.name == "House, Gregory" && own.healthCenter == "HC1")
        #expect(own.modules[.providersOffice]?.targets["house"] == TargetGrant(.fullAccess))
    }
}

@Suite("Shared sets of health centers (no I/O)")
struct HealthCenterSetsTests {
    @Test("Each distinct set comes back equal to what was asked for, however many users share it")
    func sharedCopiesAreEqualToTheirSets() {
        var sets = HealthCenterSets()
        let one: Set<HealthCenterID> = ["HC1"]
        let two: Set<HealthCenterID> = ["HC2", "HC1"]
        for _ in 0..<3 {
            #expect(sets.shared(one) == one)
            #expect(sets.shared(two) == two)
            #expect(sets.shared(["HC1", "HC2"]) == two)
            #expect(sets.shared([]) == [])
        }
        // A user changed after sharing gets its own copy; the shared one stays as it was.
        var user = try! User(code: "a", healthCenters: sets.shared(one))
        user.healthCenters.insert("HC3")
        #expect(sets.shared(one) == ["HC1"])
        #expect(user.healthCenters == ["HC1", "HC3"])
    }
}

@Suite("Default views (no I/O)")
struct DefaultViewsTests {
    @Test("Each field reads back what was set, alone or together; equal views are equal and hash alike")
    func fieldsAndEquality() {
        var views = DefaultViews()
        #expect(views.workflow == nil && views.patient == nil && views.documentTab == nil)
        views.patient = "chart"
        #expect(views == DefaultViews(patient: "chart"))
        views.workflow = "today"
        views.documentTab = "notes"
        let all = DefaultViews(workflow: "today", patient: "chart", documentTab: "notes")
        #expect(views == all)
        #expect(Set([views, all]).count == 1)
        let copy = views
        views.patient = nil
        #expect(copy.patient == "chart", "a copy keeps its own value")
        #expect(views != all && views == DefaultViews(workflow: "today", documentTab: "notes"))
        views.workflow = nil
        views.documentTab = nil
        #expect(views == DefaultViews())
    }
}
