import Dispatch
import Foundation
import GRDB
import GRDBSQLite

/// Copies the WAL back into the database file on a background thread, so that a commit does not
/// wait for it.
///
/// SQLite's automatic checkpoint runs inside the commit that pushes the WAL past 1,000 pages: a
/// first sync's commit then copied its whole WAL (about 170 MB) into the database file and synced
/// it before returning. The writer connection instead reports each commit's WAL size through
/// `sqlite3_wal_hook` (which replaces the automatic checkpoint), and past ``threshold`` pages a
/// PASSIVE checkpoint runs here on a connection of its own: it never blocks the writer or the
/// readers, and the next write transaction after a complete one starts the WAL over.
///
/// A WAL that a large transaction grew past ``sizeLimit`` is also cut back here, once every frame
/// is in the database file: SQLite would otherwise truncate it inside the next commit, the first
/// one after the WAL starts over, and on ext4 freeing 200 MB of WAL took that commit 56 ms (the
/// first revocation after a daemon's start, or after any large reconcile).
///
/// Durability does not depend on it: with `synchronous = FULL` every commit syncs the WAL before
/// returning, and a WAL that was not checkpointed is replayed by the next connection to open.
final class Checkpointer: @unchecked Sendable {
    // @unchecked: `connection`, `scheduled` and `truncationRetries` are only touched under `lock` or on `queue`.

    /// WAL pages after which a checkpoint is scheduled (SQLite's own default threshold).
    static let threshold: Int32 = 1000
    /// How often, and how far apart, a truncation that found the WAL in use is tried again.
    static let truncationRetries = 3
    static let truncationRetryDelay: DispatchTimeInterval = .seconds(1)

    let path: String
    /// Bytes of WAL above which it is truncated once checkpointed (the writer's `journal_size_limit` too).
    let sizeLimit: Int64
    private var truncationRetries = 0
    private let queue = DispatchQueue(label: "roster.mirror.checkpoint")
    private let lock = NSLock()
    private var scheduled = false
    /// Opened on the first checkpoint; used on `queue` only.
    private var connection: OpaquePointer?

    init(path: String, sizeLimit: Int64) {
        self.path = path
        self.sizeLimit = sizeLimit
    }

    deinit {
        if let connection { sqlite3_close_v2(connection) }
    }

    /// Makes `db` (the writer) report its commits here instead of checkpointing in the commit.
    /// The checkpointer must outlive the connection's last commit (the ``Mirror`` owns both).
    func install(on db: Database) {
        guard let handle = db.sqliteConnection else { return }
        sqlite3_wal_hook(handle, { context, _, _, pages in
            if pages >= Checkpointer.threshold, let context {
                Unmanaged<Checkpointer>.fromOpaque(context).takeUnretainedValue().schedule()
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Runs one PASSIVE checkpoint soon, unless one is already waiting.
    func schedule() {
        lock.lock()
        defer { lock.unlock() }
        if scheduled { return }
        scheduled = true
        queue.async { [self] in
            lock.lock()
            scheduled = false
            lock.unlock()
            checkpoint()
        }
    }

    /// Closes the checkpointer's connection, after any checkpoint under way; the next
    /// checkpoint opens it again. (A first load leaves WAL mode only with no other connection.)
    func closeConnection() {
        queue.sync {
            if let connection { sqlite3_close_v2(connection) }
            connection = nil
        }
    }

    /// Waits for a scheduled checkpoint to finish (tests, benchmarks).
    func wait() {
        queue.sync {}
    }

    private func checkpoint() {
        if connection == nil {
            var handle: OpaquePointer?
            guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
                sqlite3_close_v2(handle)
                return  // The next commit past the threshold tries again.
            }
            sqlite3_busy_timeout(handle, 5_000)
            guard let handle, (try? Mirror.keepWALFiles(of: handle, path: path)) != nil else {
                sqlite3_close_v2(handle)
                return
            }
            // A new connection knows the file is in WAL mode only once it has read it.
            guard sqlite3_exec(handle, "PRAGMA schema_version", nil, nil, nil) == SQLITE_OK else {
                sqlite3_close_v2(handle)
                return
            }
            connection = handle
        }
        // Errors (SQLITE_BUSY from a concurrent checkpoint) only leave the WAL longer for now.
        var frames: Int32 = 0
        var copied: Int32 = 0
        guard sqlite3_wal_checkpoint_v2(connection, nil, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied) == SQLITE_OK,
              frames == copied, walSize() > sizeLimit else { return }
        truncateWAL()
    }

    /// Empties the checkpointed WAL, without waiting: a TRUNCATE checkpoint needs the write lock
    /// and no reader still in the WAL. If either is busy it is tried again a little later, and
    /// if it never succeeds the writer's next commit truncates to ``sizeLimit`` as before.
    private func truncateWAL() {
        sqlite3_busy_timeout(connection, 0)
        defer { sqlite3_busy_timeout(connection, 5_000) }
        if sqlite3_wal_checkpoint_v2(connection, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil) == SQLITE_OK {
            truncationRetries = 0
        } else if truncationRetries < Checkpointer.truncationRetries {
            truncationRetries += 1
            queue.asyncAfter(deadline: .now() + Checkpointer.truncationRetryDelay) { [self] in checkpoint() }
        } else {
            truncationRetries = 0
        }
    }

    /// The WAL file's size in bytes (0 when there is none).
    private func walSize() -> Int64 {
        var info = stat()
        return stat(path + "-wal", &info) == 0 ? Int64(info.st_size) : 0
    }
}
