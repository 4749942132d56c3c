import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Syncs a WAL file to the disk every ``interval`` while a large transaction writes it, on a
/// thread of its own, so that the commit's own sync has only the last pages left to flush. (A
/// first load under a rollback journal writes the database file instead: that file is synced.)
///
/// A commit with `synchronous = FULL` syncs the WAL before returning. At the end of a 100k-user
/// first sync that is one `fdatasync` of about 150 MB, 0.23 s during which neither core has
/// anything to do (this VM's disk flushes the host's copy of everything written: starting the
/// writeback earlier with `sync_file_range` did not shorten it). Synced as it grows, the WAL is
/// flushed while the writer goes on writing. Syncing pages early changes nothing a reader or a
/// crash can see: until the commit frame is written the transaction is not in the WAL.
final class WALFlusher: @unchecked Sendable {
    // @unchecked: `stopped`, `requested` and `running` are only touched under `condition`.
    private let condition = NSCondition()
    private var stopped = false
    private var requested = false
    private var running = true

    /// Time between two syncs.
    static let interval: TimeInterval = 0.15

    /// Starts syncing the file at `path` (a `-wal` file, or the database file) until ``stop()``.
    init(path: String) {
        NamedThread.start("wal-flush") { [self] in
            condition.lock()
            while !stopped {
                let due = Date().addingTimeInterval(Self.interval)
                while !stopped && !requested && condition.wait(until: due) {}
                if stopped { break }
                requested = false
                condition.unlock()
                // A failure only leaves more to the commit's own sync, which reports errors.
                Self.sync(path)
                condition.lock()
            }
            running = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Syncs the file at `path` to the disk (`fdatasync` through a descriptor of its own); a file
    /// that cannot be opened is left alone.
    static func sync(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fdatasync(descriptor)
        close(descriptor)
    }

    /// Starts a sync now, without waiting for it: the writer calls it when it has written every
    /// page but the commit's, and goes on with what it does before committing.
    func syncNow() {
        condition.lock()
        requested = true
        condition.broadcast()
        condition.unlock()
    }

    /// Stops syncing and waits for a sync in progress to end.
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopped = true
        condition.broadcast()
        while running { condition.wait() }
    }
}
