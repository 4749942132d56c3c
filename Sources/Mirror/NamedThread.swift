import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Threads of Roster's own, under names the kernel shows (`ps -L`, `top -H`, `perf`), so that an
/// operator can tell the reconcile's threads from the change stream's.
public enum NamedThread {
    /// Starts a thread that names itself `name` (the kernel keeps 15 bytes) and runs `body`.
    public static func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        Thread {
            nameCallingThread(name)
            body()
        }.start()
    }

    /// Gives the calling thread `name`, cut to the 15 bytes the kernel keeps. Foundation's
    /// `Thread.name` cannot be relied on for this: it reaches the kernel only once `start()` has
    /// recorded the thread's handle, so a new thread that names itself first stays unnamed
    /// (seen under systemd: one of two reconcile threads kept no name).
    public static func nameCallingThread(_ name: String) {
        let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var bytes = Array(name.utf8)
        while bytes.count > 15 { bytes.removeLast() }
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
