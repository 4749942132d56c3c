import CSQLiteOptions
import Foundation
import GRDB

/// Roster's own record of what the last applied reconcile read from each directory entry (see
/// ``DirectoryEntryRecord``, ``ReconcileBasis``), in a SQLite file of its own beside the mirror.
///
/// It is a cache the application never reads: losing it costs the next reconcile one read of every
/// entry, losing one of its commits a read of what changed since the commit before; nothing else.
/// Keeping it out of the mirror lets a reconcile write it on another thread while the mirror's
/// writer applies the plan, and keeps it out of the file the application's group may read (0600).
///
/// Its one invariant: a stored marker always comes with content that was applied. The entries of
/// a reconcile are committed only after the mirror committed that reconcile's apply (see
/// ``PendingEntries``), and its basis names the audit row that apply ended on, so a basis whose
/// mirror moved on (or was replaced) is never taken for "nothing changed".
final class EntryStore: Sendable {
    let path: String
    let pool: DatabasePool

    /// The store's file for the mirror at `mirrorPath`: `roster.sqlite` → `roster-entries.sqlite`.
    static func path(forMirror mirrorPath: String) -> String {
        let url = URL(fileURLWithPath: mirrorPath)
        let ext = url.pathExtension.isEmpty ? "sqlite" : url.pathExtension
        return url.deletingPathExtension().path + "-entries." + ext
    }

    init(mirrorPath: String) throws {
        path = EntryStore.path(forMirror: mirrorPath)
        if !FileManager.default.fileExists(atPath: path) { try Mirror.createFile(at: path, mode: 0o600) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        // Only reconciles use it, reading each table through once and writing in key order: small
        // page caches (4 MiB for the writer, 1 MiB for each of two readers) keep a long-running
        // daemon's memory down.
        configuration.maximumReaderCount = 2
        configuration.prepareDatabase { db in
            // A new store gets the mirror's page size (an existing file keeps its own).
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA page_size = \(Mirror.pageSize)") }
            try db.execute(sql: db.configuration.readonly ? "PRAGMA cache_size = -1024" : "PRAGMA cache_size = -4096")
            // Statement journals of the bulk inserts in memory (see `Mirror.init`).
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA temp_store = MEMORY") }
            // The WAL is copied into the file by the next write of entries, on its own thread
            // (``PendingEntries``), not by whichever process closes the store last (a `roster sync`
            // would spend its exit copying the entries it stored)...
            _ = roster_sqlite_keep_wal_on_close(db.sqliteConnection)
            // Nor by the commit that pushes the WAL past 1,000 pages, which would then wait for it.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        // The entries' pages are flushed to the disk on the entries' thread while the mirror
        // applies (``flushWAL()``), so that no unsynced entries are left for the kernel to write
        // back later, when they would hold up the mirror's own syncs (revocations). The commit
        // itself does not sync (`synchronous = NORMAL`, GRDB's setting for a pool's writer): it
        // comes after the mirror's commit, on the way to the reconcile's end, and a sync there
        // cost a first sync of 100k users 80-116 ms. A commit lost to a power cut leaves the
        // basis of an earlier reconcile, which is still true of the mirror it was applied to:
        // the next reconcile only reads more.
        pool = try DatabasePool(path: path, configuration: configuration)
        try EntryStore.migrator.migrate(pool)
        try Mirror.restrictPermissions(of: path, mode: 0o600, group: nil)
    }

    /// Writes the WAL's pages written so far to the disk (run on the entries' own thread, while
    /// the mirror applies), so that the kernel has none to write back later, behind the
    /// mirror's own syncs.
    func flushWAL() {
        WALFlusher.sync(path + "-wal")
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: directory entries and the basis they were read under") { db in
            try db.execute(sql: """
                CREATE TABLE directory_entry (
                    directory TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
                    entry_id TEXT NOT NULL,
                    marker TEXT NOT NULL,
                    dn TEXT NOT NULL,
                    next_change TEXT,
                    content BLOB NOT NULL,
                    PRIMARY KEY (directory, kind, entry_id)
                ) WITHOUT ROWID;
                CREATE INDEX directory_entry_next_change ON directory_entry(directory, next_change) WHERE next_change IS NOT NULL;
                CREATE TABLE reconcile_basis (
                    directory TEXT PRIMARY KEY,
                    fingerprint TEXT NOT NULL,
                    context_marker TEXT,
                    audit_mark INTEGER NOT NULL,
                    audit_head TEXT NOT NULL,
                    problems BLOB NOT NULL
                );
                """)
        }
        return migrator
    }
}

/// One reconcile's entries, written into the ``EntryStore`` on a thread of their own while the
/// mirror applies the plan, then committed or rolled back by ``finish(basis:)``.
final class PendingEntries: @unchecked Sendable {
    // @unchecked: `decision` and `outcome` are only touched under `condition`.
    private let condition = NSCondition()
    private var decision: Decision?
    private var outcome: Result<Bool, any Error>?

    private enum Decision {
        case commit(ReconcileBasis)
        case rollback
    }

    /// Starts writing `update` into `store` in a transaction that stays open until ``finish(basis:)``.
    init(_ update: consuming DirectoryEntryUpdate, into store: EntryStore) {
        let directory = update.directory
        let held = HeldUpdate(consume update)
        NamedThread.start("entries") { [self] in
            let result = Result<Bool, any Error> {
                try store.pool.writeWithoutTransaction { db in
                    // The previous write's WAL goes into the file first (the WAL then starts
                    // over), beside the mirror's apply rather than in anyone's exit.
                    try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)")
                    var committed = false
                    try db.inTransaction(.immediate) {
                        try EntryStore.write(held.take(), db)
                        store.flushWAL()
                        switch waitForDecision() {
                        case .rollback:
                            return .rollback
                        case .commit(let basis):
                            try EntryStore.store(basis, for: directory, db)
                            committed = true
                            return .commit
                        }
                    }
                    return committed
                }
            }
            condition.lock()
            outcome = result
            condition.broadcast()
            condition.unlock()
        }
    }

    private func waitForDecision() -> Decision {
        condition.lock()
        defer { condition.unlock() }
        while decision == nil { condition.wait() }
        return decision!
    }

    /// Commits the entries with `basis` (the mirror committed the apply), or rolls them back
    /// (nil: the apply failed), and waits for the store. Returns the error
    /// that kept the entries from being stored, if any; the store then still holds the previous
    /// reconcile's entries and basis, which stay correct (see ``EntryStore``).
    @discardableResult
    func finish(basis: ReconcileBasis?) -> (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        decision = basis.map { .commit($0) } ?? .rollback
        condition.broadcast()
        while outcome == nil { condition.wait() }
        if case .failure(let error) = outcome { return error }
        return nil
    }

    /// The update, handed to the writing thread once (so that it can let the records go as soon
    /// as they are written).
    private final class HeldUpdate: @unchecked Sendable {
        private var update: DirectoryEntryUpdate?
        init(_ update: consuming DirectoryEntryUpdate) { self.update = update }
        func take() -> DirectoryEntryUpdate {
            defer { update = nil }
            return update!
        }
    }
}
