import Foundation

/// The safety breaker of the change stream. The stream deactivates a user at once when
/// their entry disappears (deleted, or moved out of the users' base or filter), so a
/// revocation takes milliseconds; but an emptied subtree or a broken filter also arrives
/// as a run of deletes. Between two full reconciles the stream applies at most the safety
/// limits' worth of such deactivations (`safety.max_deactivations` and
/// `safety.max_deactivation_percent` of active users); past them it holds every further
/// one, says why, and leaves the users active for the next reconcile, whose own breaker
/// decides (and `roster sync --force` applies). Pure: no clock, no I/O.
public struct DisappearanceLimit: Sendable, Equatable {
    public let maxDeactivations: Int
    public let maxPercent: Double
    /// Deactivations applied since the last full reconcile.
    public private(set) var applied = 0
    /// Set once the limit is reached; cleared by the next full reconcile.
    public private(set) var trip: BreakerTrip?

    public init(maxDeactivations: Int, maxPercent: Double) {
        self.maxDeactivations = maxDeactivations
        self.maxPercent = maxPercent
    }

    /// Whether `count` more deactivations may be applied, out of `activeUsers` active users
    /// at the last reconcile; records them when they may. Once it refuses, it refuses every
    /// later request until `reset()`.
    public mutating func admit(_ count: Int, activeUsers: Int) -> Bool {
        guard trip == nil else { return false }
        var counts = PlanCounts()
        counts.usersDeactivated = applied + count
        if let refused = BreakerTrip.check(counts: counts, activeUsersBefore: activeUsers, usersInDirectory: activeUsers,
                                           maxDeactivations: maxDeactivations, maxPercent: maxPercent) {
            trip = BreakerTrip(reason: "The change stream reports \(applied + count) users gone from the directory since the last full reconcile, past the safety limits (\(refused.reason)) The stream holds these deactivations; the next reconcile's breaker decides.")
            return false
        }
        applied += count
        return true
    }

    /// A full reconcile ran: the count starts again.
    public mutating func reset() {
        applied = 0
        trip = nil
    }
}
