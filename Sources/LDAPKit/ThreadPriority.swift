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
}
