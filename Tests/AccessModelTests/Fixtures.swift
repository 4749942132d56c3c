import AccessModel

/// A small clinic: two health centers, surgeons, pools, and helpers to build groups and users.
enum Clinic {
    static let hc1 = HealthCenter(id: "HC1", name: "General Hospital")
    static let hc2 = HealthCenter(id: "HC2", name: "Lakeside Clinic")
    static let or1 = CareVenue(id: "HC1-OR1", healthCenter: "HC1", name: "OR 1")
    static let or2 = CareVenue(id: "HC1-OR2", healthCenter: "HC1", name: "OR 2")
    static let lake = CareVenue(id: "HC2-MAIN", healthCenter: "HC2", name: "Main clinic")
    static let grey = Provider(id: "grey", healthCenter: "HC1", displayName: "Grey, Felicity")
    static let banner = Provider(id: "banner", healthCenter: "HC1", displayName: "Banner, Bruce")
    static let strange = Provider(id: "strange", healthCenter: "HC1", displayName: "Strange, Stephen")
    static let house = Provider(id: "house", healthCenter: "HC1", displayName: "House, Gregory")
    static let quinn = Provider(id: "quinn", healthCenter: "HC2", displayName: "Quinn, Michaela")
    static let ross = Provider(id: "ross", healthCenter: "HC2", displayName: "Ross, Doug")
    static let ortho = Pool(id: "ortho", healthCenter: "HC1", name: "Orthopaedics", providers: ["grey", "banner", "strange"])
    static let cardio = Pool(id: "cardio", healthCenter: "HC1", name: "Cardiology", providers: ["strange", "house"], visibility: .reachableProvidersOnly)
    static let lakePool = Pool(id: "lake", healthCenter: "HC2", name: "Lakeside", providers: ["quinn", "ross"])

    static let providers = [grey, banner, strange, house, quinn, ross]
    static let pools = [ortho, cardio, lakePool]

    static func user(_ code: String, healthCenters: Set<HealthCenterID> = ["HC1"], superAdministrator: Bool = false, state: AccountState = .active) -> User {
        try! User(code: UserCode(code), firstName: "Rita", lastName: code, email: "\(code)@clinic.test",
                  healthCenters: healthCenters, isSuperAdministrator: superAdministrator, state: state)
    }

    static func snapshot(users: [User], groups: [Group], members: [GroupID: Set<UserCode>], roles: [Role] = [], holders: [RoleName: Set<UserCode>] = [:]) -> AccessSnapshot {
        AccessSnapshot(
            healthCenters: [hc1, hc2], careVenues: [or1, or2, lake], providers: providers, pools: pools,
            groups: groups, roles: roles, users: users, groupMembers: members, roleHolders: holders)
    }

    /// A deterministic group derived from `seed`: kind, health center, modules, privacy,
    /// targets and privileges all come from the seed's bits.
    static func group(_ index: Int, seed: UInt64, restrictive: Bool = false) -> Group {
        var rng = SplitMix(seed)
        let kind: GroupKind = rng.next() % 3 == 0 ? .pool : .provider
        let hc: HealthCenterID = rng.next() % 4 == 0 ? "HC2" : "HC1"
        let venue: CareVenueID = hc == "HC1" ? "HC1-OR1" : "HC2-MAIN"
        let candidates: [String] = kind == .provider
            ? providers.filter { $0.healthCenter == hc }.map(\.id.rawValue)
            : pools.filter { $0.healthCenter == hc }.map(\.id.rawValue)
        var modules: [Module: ModuleGrant] = [:]
        for module in [Module.providersOffice, .reports, .careVenue, .security] where rng.next() % 2 == 0 {
            let privacy = restrictive ? PrivacyLevel.forcedPatientAndProvider : PrivacyLevel(rawValue: Int(rng.next() % 4) + 1)!
            var targets: [String: TargetGrant] = [:]
            if module != .security {
                for target in candidates where rng.next() % 2 == 0 {
                    let privilege: Privilege = restrictive || rng.next() % 2 == 0 ? .readOnly : .fullAccess
                    let override: PrivacyLevel? = privacy.isForced && rng.next() % 3 == 0 ? PrivacyLevel(rawValue: Int(rng.next() % 2) + 3) : nil
                    targets[target] = TargetGrant(privilege, privacyOverride: restrictive ? nil : override)
                }
            }
            modules[module] = ModuleGrant(privacy: privacy, defaultPrivilege: restrictive || rng.next() % 2 == 0 ? .readOnly : .fullAccess, targets: targets)
        }
        return try! Group(id: GroupID("g\(index)"), name: "Group \(index)", kind: kind, healthCenter: hc, careVenues: [venue], modules: modules)
    }
}

/// A tiny deterministic generator, so that a property-test input (a list of seeds) shrinks well.
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
