import Foundation
import LDAPKit
import Mirror

/// A task executor with threads of its own, for work that must not occupy Swift's cooperative
/// pool: a full reconcile maps 100k entries and waits on SQLite for seconds, and with the pool's
/// two threads (one per core here) busy with it, the change stream's next revocation waited
/// 0.1-0.6 s for a thread. On threads of their own, the reconcile and the stream share the
/// cores through the kernel's scheduler, which gives a waking stream a core within milliseconds.
///
/// Run work on it with `withTaskExecutorPreference(_:operation:)`; child tasks created inside
/// inherit the preference.
public final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` is only touched under `condition`'s lock.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    /// Starts `threads` threads named `name-0`, `name-1`, … (the kernel keeps their first 15
    /// bytes), which live as long as the process, at `niceness`
    /// (see ``ThreadPriority``). Without one they keep the calling thread's: make an executor that
    /// must run at the process's priority on a thread that does.
    public init(name: String, threads: Int, niceness: Int32? = nil) {
        for index in 0..<max(1, threads) {
            let threadName = "\(name)-\(index)"
            NamedThread.start(threadName) { [self] in
                if let niceness { ThreadPriority.niceness = niceness }
                runJobs()
            }
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
