import AccessModel
import Foundation
import Mirror
import Prometheus
import RosterService
import ServiceLifecycle
import SlapdHarness
import Synchronization
import Testing

@Suite struct ServiceStateTests {
    let start = Date(timeIntervalSince1970: 1_750_000_000)

    @Test func notReadyUntilTheFirstRefreshCompletes() {
        let state = ServiceState(stalenessLimit: .seconds(60), at: start)
        state.markDirectoryConnected(true, at: start)
        #expect(state.readiness(at: start) == .notReady(reason: "The first refresh from the directory has not completed yet."))
        state.markRefreshComplete(at: start.addingTimeInterval(2))
        #expect(state.readiness(at: start.addingTimeInterval(3)) == .ready)
        #expect(state.readiness == .ready)
        // Once: a later call does not move the completion time.
        state.markRefreshComplete(at: start.addingTimeInterval(100))
        #expect(state.snapshot.refreshCompleted == start.addingTimeInterval(2))
    }

    @Test func unreachableDirectoryTurnsNotReadyOnlyAfterTheStalenessLimit() {
        let state = ServiceState(stalenessLimit: .seconds(60), at: start)
        state.markDirectoryConnected(true, at: start)
        state.markRefreshComplete(at: start)
        let lost = start.addingTimeInterval(10)
        state.markDirectoryConnected(false, at: lost)
        #expect(state.readiness(at: lost.addingTimeInterval(59)) == .ready)
        let readiness = state.readiness(at: lost.addingTimeInterval(95))
        #expect(readiness == .notReady(reason:
            "The directory has been unreachable for 95 s (since 2025-06-15T15:06:50Z), longer than the staleness limit of 60 s: the mirror may be stale."))
        // A repeated "still disconnected" does not restart the clock.
        state.markDirectoryConnected(false, at: lost.addingTimeInterval(90))
        #expect(!state.readiness(at: lost.addingTimeInterval(95)).isReady)
        let snapshot = state.snapshot(at: lost.addingTimeInterval(95))
        #expect(!snapshot.ready && !snapshot.directoryConnected && snapshot.lastContact == lost)
        state.markDirectoryConnected(true, at: lost.addingTimeInterval(100))
        #expect(state.readiness(at: lost.addingTimeInterval(100)) == .ready)
        #expect(state.snapshot(at: lost.addingTimeInterval(101)).lastContact == lost.addingTimeInterval(101))
    }

    @Test func aBreakerTripHoldsReadinessUntilAReconcileSucceeds() {
        let registry = PrometheusCollectorRegistry()
        let state = ServiceState(stalenessLimit: .seconds(60), registry: registry, at: start)
        state.markDirectoryConnected(true, at: start)
        state.markRefreshComplete(at: start)
        state.recordBreakerTrip(reason: "the reconcile would deactivate 412 of 900 users (46%), above the 10% limit")
        state.recordReconcile(at: start.addingTimeInterval(5), succeeded: false, detail: "refused by the safety breaker")
        #expect(state.readiness(at: start.addingTimeInterval(6)) == .notReady(reason:
            "The safety breaker refused the last reconcile (the reconcile would deactivate 412 of 900 users (46%), above the 10% limit): "
            + "the mirror keeps its previous state until a reconcile succeeds."))
        var snapshot = state.snapshot(at: start.addingTimeInterval(6))
        #expect(snapshot.breakerTrips == 1)
        #expect(snapshot.lastReconcileResult == "failed: refused by the safety breaker")
        #expect(snapshot.lastBreakerReason?.hasPrefix("the reconcile would deactivate") == true)

        state.recordReconcile(at: start.addingTimeInterval(600), succeeded: true, detail: "3 changes")
        #expect(state.readiness(at: start.addingTimeInterval(601)) == .ready)
        snapshot = state.snapshot(at: start.addingTimeInterval(601))
        #expect(snapshot.lastReconcile == start.addingTimeInterval(600))
        #expect(snapshot.lastReconcileResult == "succeeded: 3 changes")
        #expect(snapshot.breakerTrips == 1)

        let text = registry.emitToString()
        #expect(text.contains("roster_breaker_trips_total 1"))
        #expect(text.contains("roster_last_reconcile_success 1"))
        #expect(text.contains("roster_last_reconcile_timestamp_seconds 1750000600"))
        #expect(text.contains(#"roster_reconciles_total{result="success"} 1"#))
        #expect(text.contains(#"roster_reconciles_total{result="failure"} 1"#))
    }

    @Test func theSnapshotRoundTripsThroughJSON() throws {
        let state = ServiceState(stalenessLimit: .seconds(30), at: start)
        state.markDirectoryConnected(true, at: start)
        state.markRefreshComplete(at: start)
        state.recordApplied(events: 5, revocationLatency: nil)
        let snapshot = state.snapshot(at: start.addingTimeInterval(1))
        let data = try StatusSnapshot.makeEncoder().encode(snapshot)
        #expect(try StatusSnapshot.makeDecoder().decode(StatusSnapshot.self, from: data) == snapshot)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        for key in ["ready", "directoryConnected", "lastContact", "breakerTrips"] { #expect(object?[key] != nil, "\(key)") }
        #expect(snapshot.eventsApplied == 5)
    }

    @Test func freshRegistriesNeedNoGlobalBootstrap() {
        let first = ServiceState(stalenessLimit: .seconds(1))
        let second = ServiceState(stalenessLimit: .seconds(1))
        first.recordApplied(events: 2, revocationLatency: .milliseconds(3))
        #expect(first.metrics.registry.emitToString().contains("roster_events_applied_total 2"))
        #expect(second.metrics.registry.emitToString().contains("roster_events_applied_total 0"))
    }
}

@Suite struct EventNotifierTests {
    @Test func everySubscriberIsWokenAndWakeUpsCoalesce() async {
        let notifier = EventNotifier()
        let first = notifier.changes()
        let second = notifier.changes()
        #expect(notifier.subscriberCount == 2)
        notifier.notify()
        notifier.notify()
        notifier.notify()
        notifier.finishAll()
        var firstCount = 0
        for await _ in first { firstCount += 1 }
        var secondCount = 0
        for await _ in second { secondCount += 1 }
        // Three notifications while nobody looked: one pending wake-up each.
        #expect(firstCount == 1)
        #expect(secondCount == 1)
        #expect(notifier.subscriberCount == 0)
    }

    @Test("Another process's commit wakes the event streams")
    func anotherProcesssCommitWakesTheStreams() async throws {
        let path = TemporaryFolders.make("roster-watch").appendingPathComponent("mirror.sqlite").path
        let mirror = try Mirror(path: path)
        let hc = HealthCenter(id: "HC1", name: "General Hospital")
        try mirror.apply(Changeset(healthCenters: [hc]), actor: .system)
        let notifier = EventNotifier()
        let changes = notifier.changes()
        let service = CommitWatchService(watcher: try CommitWatcher(path: path), notifier: notifier, interval: .milliseconds(20))
        let running = Task { try await service.run() }
        defer { running.cancel() }
        let woken = Task {
            var iterator = changes.makeAsyncIterator()
            return await iterator.next() != nil
        }
        try await Task.sleep(for: .milliseconds(100))
        // Another connection commits (as `roster user lock` in another process would).
        try Mirror(path: path).apply(Changeset(healthCenters: [HealthCenter(id: "HC2", name: "Lakeside")]), actor: .system)
        // Nothing else notifies here: without the watcher no wake-up ever comes, and after 30 s
        // the subscription ends, and the wait with it. (How soon it comes is the benchmark's
        // business: under a full parallel test run the pool can be busy for seconds.)
        let deadline = Task {
            try await Task.sleep(for: .seconds(30))
            notifier.finishAll()
        }
        defer { deadline.cancel() }
        #expect(await woken.value, "no wake-up")
    }

    @Test func aWaitingSubscriberWakesOnNotify() async throws {
        let notifier = EventNotifier()
        let received = Mutex(0)
        let changes = notifier.changes()
        let woken = Task {
            for await _ in changes {
                if received.withLock({ $0 += 1; return $0 }) == 2 { break }
            }
        }
        notifier.notify()
        while received.withLock({ $0 }) < 1 { try await Task.sleep(for: .milliseconds(1)) }
        // The subscriber has taken the first wake-up and waits: the second one wakes it again.
        notifier.notify()
        await woken.value
        #expect(received.withLock { $0 } == 2)
    }

    @Test func subscribersThatStopAreForgotten() async {
        let notifier = EventNotifier()
        do {
            let changes = notifier.changes()
            let task = Task { for await _ in changes {} }
            task.cancel()
            await task.value
        }
        #expect(notifier.subscriberCount == 0)
        notifier.notify()
    }

    @Test func aSubscriptionSeesOnlyLaterNotifications() async {
        let notifier = EventNotifier()
        notifier.notify()
        let changes = notifier.changes()
        notifier.finishAll()
        var count = 0
        for await _ in changes { count += 1 }
        #expect(count == 0)
    }
}
