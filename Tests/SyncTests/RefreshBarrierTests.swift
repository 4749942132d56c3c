@testable import Sync
import Testing

@Suite("When the change stream's full refreshes get their reconcile (no I/O)")
struct RefreshBarrierTests {
    let start = ContinuousClock.now
    func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }

    @Test("Both streams reloading: one reconcile once both refreshes ended, with each stream's newest cookie")
    func oneReconcileForBoth() {
        var barrier = RefreshBarrier(reloading: [.users, .groups], patience: .seconds(10))
        barrier.started(.groups, full: true)
        barrier.started(.users, full: true)
        barrier.refreshEnded(.groups, cookie: [1], at: at(0.3))
        #expect(barrier.due(at: at(0.3)).isEmpty, "the users' refresh is still running")
        // A group change after the groups' refresh: the coming reconcile reads it; its cookie is kept.
        barrier.received(.groups, cookie: [2])
        barrier.received(.groups, cookie: nil)
        #expect(barrier.due(at: at(1)).isEmpty)
        barrier.refreshEnded(.users, cookie: [7], at: at(1.5))
        #expect(barrier.due(at: at(1.5)) == [.groups: [2], .users: [7]])
        barrier.completed([.groups, .users])
        #expect(barrier.reloading.isEmpty)
        #expect(barrier.due(at: at(2)).isEmpty)
    }

    @Test("One stream reloading, the other resuming from its cookie: its reconcile is not held back")
    func oneStreamReloading() {
        var barrier = RefreshBarrier(reloading: [.users], patience: .seconds(10))
        barrier.started(.groups, full: false)
        barrier.started(.users, full: true)
        #expect(barrier.reloading == [.users])
        barrier.refreshEnded(.users, cookie: nil, at: at(1))
        let due = barrier.due(at: at(1))
        #expect(due.keys.sorted { $0.rawValue < $1.rawValue } == [.users])
        #expect(due[.users] == .some(nil), "no cookie came with the end: none is stored")
    }

    @Test("A stream still refreshing after the patience no longer holds back the one that ended")
    func patience() {
        var barrier = RefreshBarrier(reloading: [.users, .groups], patience: .seconds(10))
        barrier.refreshEnded(.groups, cookie: [1], at: at(1))
        #expect(barrier.due(at: at(10.9)).isEmpty)
        #expect(barrier.due(at: at(11)) == [.groups: [1]])
        barrier.completed([.groups])
        #expect(barrier.reloading == [.users])
        #expect(barrier.due(at: at(30)).isEmpty, "nothing ended since")
        barrier.refreshEnded(.users, cookie: [9], at: at(31))
        #expect(barrier.due(at: at(31)) == [.users: [9]])
    }

    @Test("A refresh that restarts (a reconnection, or the directory asking for a full refresh) must end again")
    func restartedRefresh() {
        var barrier = RefreshBarrier(reloading: [.users, .groups], patience: .seconds(10))
        barrier.refreshEnded(.groups, cookie: [1], at: at(0.2))
        barrier.started(.groups, full: true)
        barrier.refreshEnded(.users, cookie: [5], at: at(1))
        #expect(barrier.due(at: at(1)).isEmpty, "the groups' refresh started over")
        #expect(barrier.due(at: at(10.5)).isEmpty, "the patience counts from the users' end, not the groups' forgotten one")
        barrier.refreshEnded(.groups, cookie: [3], at: at(2))
        #expect(barrier.due(at: at(2)) == [.users: [5], .groups: [3]])
        barrier.completed([.users, .groups])

        // Later, following changes: the directory asks the users' stream for a full refresh.
        barrier.refreshRequired(.users)
        #expect(barrier.reloading == [.users])
        barrier.received(.users, cookie: [6])
        #expect(barrier.due(at: at(50)).isEmpty, "changes before the refresh ends are not a reason to reconcile")
        barrier.refreshEnded(.users, cookie: [8], at: at(51))
        #expect(barrier.due(at: at(51)) == [.users: [8]])
    }

    @Test("The end of a refresh of a stream that is not reloading is none of the barrier's business")
    func notReloading() {
        var barrier = RefreshBarrier(reloading: [], patience: .seconds(10))
        barrier.refreshEnded(.users, cookie: [1], at: at(0))
        barrier.received(.users, cookie: [2])
        #expect(barrier.due(at: at(100)).isEmpty)
    }
}
