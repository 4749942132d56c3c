import Foundation
import LDAPKit
import Mirror
import Synchronization
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

    @Test("The probe of what the process may do with priorities lowers and restores a thread of its own, not the caller's; as root it may do both")
    func probeLeavesTheCallerAlone() async throws {
        let (before, control, after) = try await offPool {
            let before = ThreadPriority.niceness
            let control = ThreadPriority.probe()
            return (before, control, ThreadPriority.niceness)
        }.value
        #expect(before == after)
        #expect(control == (geteuid() == 0 ? .lowerAndRestore : control), "root (CAP_SYS_NICE) may raise a priority again")
        #expect(control != .fixed, "no system-call filter here refuses setpriority")
    }

    @Test("A thread executor's threads carry its name for the kernel (ps, top, perf), not their creator's")
    func threadExecutorNamesItsThreads() async throws {
        let executor = ThreadExecutor(name: "named-test", threads: 1)
        let name = await withTaskExecutorPreference(executor) {
            (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(name == "named-test-0")
    }

    @Test("Every thread started by name carries it from its first step, however soon it runs; a long name keeps its first 15 bytes")
    func namedThreadsAreNamedFromTheirFirstStep() {
        // Foundation's Thread.name, set by a new thread before start() returned in its creator,
        // never reached the kernel: one of two reconcile threads stayed unnamed under systemd.
        let count = 64
        let names = Mutex<[String: String]>([:])
        let done = DispatchSemaphore(value: 0)
        for index in 0..<count {
            NamedThread.start("named-\(index)") {
                let seen = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
                names.withLock { $0["named-\(index)"] = seen.trimmingCharacters(in: .whitespacesAndNewlines) }
                done.signal()
            }
        }
        for _ in 0..<count { done.wait() }
        let wrong = names.withLock { $0.filter { $0.key != $0.value } }
        #expect(wrong.isEmpty, "threads whose kernel name differs: \(wrong)")

        let long = Completion<String>()
        NamedThread.start("reconcile-lookahead-9") {
            long.finish(((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(long.wait() == "reconcile-looka")
    }
}
