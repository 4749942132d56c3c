import Foundation
import Mirror
@testable import Sync
import Testing

@Suite("The change stream's reload signal (no I/O but a temporary mirror)")
struct ReloadSignalTests {
    @Test("A reload after a reconcile the stream asked for answers the signal that reconcile raised; a later reconcile's signal still stands")
    func reloadAfterTheStreamsOwnReconcileLowersTheSignal() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("roster-reload-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let mirror = try Mirror(path: folder.appendingPathComponent("mirror.sqlite").path)
        let applier = ChangeApplier(configuration: DirectoryMapperTests.configuration, mirror: mirror)
        let signal = ReloadSignal()
        signal.raise()  // what the daemon's reconcile does when it ends
        try signal.reload(applier)
        #expect(signal.take() == nil, "the next change must not load the whole mirror a second time")
        signal.raise()  // a scheduled reconcile, later: the stream reloads before its next change
        #expect(signal.take()?.mirrorChanged == true)
    }

    @Test("A reconcile that changed nothing asks only for the breaker's restart; one that changed the mirror since the last answer asks for a reload")
    func aReconcileThatChangedNothingAsksForNoReload() throws {
        let signal = ReloadSignal()
        signal.raise(mirrorChanged: false)
        #expect(signal.take()?.mirrorChanged == false)
        #expect(signal.take() == nil)
        signal.raise(mirrorChanged: false)
        signal.raise(mirrorChanged: true)
        signal.raise(mirrorChanged: false)
        #expect(signal.take()?.mirrorChanged == true, "a change not yet answered is not forgotten by a later reconcile that changed nothing")
        #expect(signal.take() == nil)
    }

    @Test("Reconciles that changed the mirror ask for the users changed since the earliest one began; one without a mark asks for every identity")
    func marksCombine() {
        let signal = ReloadSignal()
        signal.raise(mirrorChanged: true, since: 40)
        signal.raise(mirrorChanged: false, since: 10)
        signal.raise(mirrorChanged: true, since: 25)
        #expect(signal.take() == ReloadSignal.Request(mirrorChanged: true, since: 25))
        signal.raise(mirrorChanged: false, since: 5)
        signal.raise(mirrorChanged: true, since: 30)
        #expect(signal.take() == ReloadSignal.Request(mirrorChanged: true, since: 30), "a reconcile that changed nothing does not widen the reload")
        signal.raise(mirrorChanged: true, since: 30)
        signal.raise(mirrorChanged: true)
        #expect(signal.take() == ReloadSignal.Request(mirrorChanged: true, since: nil))
    }
}
