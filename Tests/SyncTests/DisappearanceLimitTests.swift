import Sync
import Testing

@Suite("The change stream's safety breaker (no I/O)")
struct DisappearanceLimitTests {
    @Test("Deactivations pass up to the count limit, then every later one is held until a reconcile")
    func countLimit() {
        var limit = DisappearanceLimit(maxDeactivations: 3, maxPercent: 100)
        #expect(admit(&limit, 1, activeUsers: 1000))
        #expect(admit(&limit, 2, activeUsers: 1000))
        #expect(!admit(&limit, 1, activeUsers: 1000))
        #expect(limit.trip?.reason.contains("4 users gone") == true)
        #expect(limit.trip?.reason.contains("safety.max_deactivations") == true)
        // Holding: even one more is refused, and the count stays at what was applied.
        #expect(!admit(&limit, 1, activeUsers: 1000))
        #expect(limit.applied == 3)
        limit.reset()
        #expect(limit.trip == nil)
        #expect(admit(&limit, 3, activeUsers: 1000))
    }

    @Test("The share of active users limits too: 5 % of 100 is 5")
    func percentLimit() {
        var limit = DisappearanceLimit(maxDeactivations: 50, maxPercent: 5)
        #expect(admit(&limit, 5, activeUsers: 100))
        #expect(!admit(&limit, 1, activeUsers: 100))
        #expect(limit.trip?.reason.contains("safety.max_deactivation_percent") == true)
    }

    @Test("A batch that alone passes the limit is refused whole", arguments: [0, 10])
    func batch(alreadyApplied: Int) {
        var limit = DisappearanceLimit(maxDeactivations: 20, maxPercent: 100)
        if alreadyApplied > 0 { #expect(admit(&limit, alreadyApplied, activeUsers: 1000)) }
        #expect(!admit(&limit, 21 - alreadyApplied, activeUsers: 1000))
        #expect(limit.applied == alreadyApplied)
    }

    private func admit(_ limit: inout DisappearanceLimit, _ count: Int, activeUsers: Int) -> Bool {
        limit.admit(count, activeUsers: activeUsers)
    }
}
