import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The Linux nice value of the calling thread (each thread has its own, which `PRIO_PROCESS` with
/// id 0 reads and sets; a thread it starts begins with it). A thread with a higher value yields
/// the cores to those with a lower one when both are ready to run: the daemon's reconciles read
/// and map at a higher value than the change stream, so that a revocation arriving meanwhile
/// gets a core at once.
public enum ThreadPriority {
    /// The calling thread's nice value (0 if it cannot be read). Setting it only ever lowers the
    /// priority unless the process may raise it (root, or systemd's `LimitNICE=`); a refused
    /// change leaves it as it was.
    public static var niceness: Int32 {
        get {
            errno = 0
            let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            return errno == 0 ? value : 0
        }
        set {
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, newValue)
        }
    }

    /// The process's main thread's nice value (the process's own, unless something changed it):
    /// what the threads that do not set theirs run at.
    public static var processNiceness: Int32 {
        errno = 0
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
        return errno == 0 ? value : 0
    }

    /// What this process may do with a thread's priority.
    public enum Control: Sendable, Equatable {
        /// Lower it and bring it back to the process's own (root, `CAP_SYS_NICE`, or an
        /// `RLIMIT_NICE` that allows it: systemd's `LimitNICE=+0`).
        case lowerAndRestore
        /// Lower it only. A thread that lowered its priority then stays there, and so do the
        /// threads started from it, Dispatch's workers included: libdispatch starts a worker on the
        /// thread that queues work when its pool needs one, and the worker's attempt to take its
        /// queue's priority (nice 0 for the default one) fails, so it serves everyone at the
        /// lower priority until it exits.
        case lowerOnly
        /// Not even lower it (a system-call filter without `setpriority`).
        case fixed
    }

    /// Finds out, on a thread started for the purpose and then ended, whether a thread of this
    /// process can lower its priority and return to the process's own.
    public static func probe() -> Control {
        let result = Mutex<Control>(.fixed)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            let process = processNiceness
            guard process < 19 else { return }
            niceness = process + 1
            guard niceness == process + 1 else { return }
            niceness = process
            result.withLock { $0 = niceness == process ? .lowerAndRestore : .lowerOnly }
        }
        thread.start()
        done.wait()
        return result.withLock { $0 }
    }
}
