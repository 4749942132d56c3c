import Foundation
import LDAPKit
@testable import Sync
import Testing

@Suite("Thread priorities of reconcile work (no I/O)")
struct ThreadPriorityTests {
    @Test("A thread executor's jobs run at its niceness, and work it sends off the pool runs at the same; off the pool from a normal thread stays normal")
    func lowPriorityIsKeptByTheWorkAReconcileStarts() async throws {
        let normal = try await offPool { ThreadPriority.niceness }.value
        // A higher nice value is always allowed; 19 is the lowest priority there is.
        let low = min(19, normal + 7)
        #expect(low != normal, "the test process already runs at nice 19")
        let executor = ThreadExecutor(name: "roster-test-low", threads: 1, niceness: low)
        let (onExecutor, offPoolFromIt) = try await withTaskExecutorPreference(executor) {
            let here = ThreadPriority.niceness
            let off = try await offPool { ThreadPriority.niceness }.value
            return (here, off)
        }
        #expect(onExecutor == low)
        #expect(offPoolFromIt == low, "a reconcile's snapshot load must not run ahead of the change stream")
        let threadStartedThere = await withTaskExecutorPreference(executor) {
            // A thread started by one at a nice value begins at that value (Linux threads inherit it).
            let box = Completion<Int32>()
            let thread = Thread { box.finish(ThreadPriority.niceness) }
            thread.start()
            return box.wait()
        }
        #expect(threadStartedThere == low)
        #expect(try await offPool { ThreadPriority.niceness }.value == normal)
    }
}
