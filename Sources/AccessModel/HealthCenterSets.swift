/// Hands out one shared copy of each distinct set of health centers.
///
/// Nearly every user belongs to one of a few sets (one health center, sometimes two), yet each
/// user's own `Set` is a heap allocation of about 100 bytes: 10 MB for each form of 100k users a
/// reconcile holds at once (the stored model, the mapped entries). Users given the shared copy
/// hold a reference to it instead. Values, not identity: a user changed later gets its own copy.
public struct HealthCenterSets {
    private var known: [Set<HealthCenterID>: Set<HealthCenterID>] = [:]

    public init() {}

    /// The shared copy equal to `set`.
    public mutating func shared(_ set: Set<HealthCenterID>) -> Set<HealthCenterID> {
        if let existing = known[set] { return existing }
        known[set] = set
        return set
    }
}
