import AccessModel
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The local SQLite mirror of the access model that the clinic application reads.
///
/// One writer, many readers (`DatabasePool`, WAL): every write is one transaction, so readers
/// never see half a changeset. Files are created 0640 in a 0750 directory, never world-readable.
public final class Mirror: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool
    /// Copies the WAL into the database file off the writer's path; see ``Checkpointer``.
    let checkpointer: Checkpointer
    /// What reconciles read from the directory, in a file of its own beside this one; opened
    /// on first use (only reconciles use it).
    private let entryStore = Mutex<EntryStore?>(nil)

    /// Opens (creating and migrating if needed) the mirror at `path`.
    ///
    /// - Parameter readerGroup: a system group to own the files, so that the clinic application
    ///   can read them without being able to write them. Ignored if nil.
    public convenience init(path: String, readerGroup: String? = nil) throws {
        try self.init(path: path, readerGroup: readerGroup, worksAhead: true)
    }

    /// Whether a bulk apply builds rows on another thread ahead of the writes (see ``Lookahead``);
    /// off only in tests that compare the two ways.
    let worksAhead: Bool

    /// The WAL size past which a checkpointed WAL is emptied by the ``Checkpointer`` (or, should
    /// that fail, cut back to this size by SQLite in the next commit after the WAL starts over).
    static let walSizeLimit: Int64 = 64 << 20

    init(path: String, readerGroup: String?, worksAhead: Bool, walSizeLimit: Int64 = Mirror.walSizeLimit) throws {
        self.path = path
        self.worksAhead = worksAhead
        let directory = (path as NSString).deletingLastPathComponent
        let files = FileManager.default
        do {
            if !directory.isEmpty, !files.fileExists(atPath: directory) {
                try files.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            }
            if !files.fileExists(atPath: path) { try Mirror.createFile(at: path, mode: 0o640) }
        } catch let error as MirrorError {
            throw error
        } catch {
            throw MirrorError.cannotOpen(path: path, reason: "\(error)")
        }

        // SQLite would only say "unable to open database file": say why.
        for (target, what) in [(path, "file"), (directory.isEmpty ? "." : directory, "folder")] where access(target, W_OK) != 0 {
            let reason = errno == EROFS ? "the \(what) is on a read-only file system"
                : "this user (uid \(getuid())) may not write the \(what) \(target): \(String(cString: strerror(errno)))"
            throw MirrorError.cannotOpen(path: path, reason: reason)
        }

        let checkpointer = Checkpointer(path: path, sizeLimit: walSizeLimit)
        self.checkpointer = checkpointer
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.foreignKeysEnabled = true
        configuration.prepareDatabase { db in
            // A new mirror gets 8 KiB pages (SQLite's default is 4 KiB); an existing file keeps its own.
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA page_size = \(Mirror.pageSize)") }
            // The writer keeps 16 MiB of page cache (32 MiB while it writes a large changeset, see
            // `write`), readers (lookups, snapshots read once) 8 MiB each, so a long-running
            // daemon's page caches stay within 16 + 8 x readers MiB between reconciles.
            try db.execute(sql: db.configuration.readonly ? "PRAGMA cache_size = -\(Mirror.readerCacheKiB)" : "PRAGMA cache_size = -\(Mirror.writerCacheKiB)")
            // Checkpoints run beside the writer, not inside its commits (readers never commit).
            if !db.configuration.readonly {
                try Mirror.keepWALFiles(of: db)
                checkpointer.install(on: db)
                // A large transaction's WAL is emptied by the checkpointer once copied; should that
                // fail, the first commit after it starts over cuts it back to this size.
                try db.execute(sql: "PRAGMA journal_size_limit = \(walSizeLimit)")
                // A statement that writes many rows (the bulk inserts) keeps a statement journal,
                // to undo its own rows if one of them fails a constraint: in memory, not in a
                // temporary file. (A 100k first sync wrote 165 MB into that file, 4 KiB at a time.)
                try db.execute(sql: "PRAGMA temp_store = MEMORY")
            }
        }
        pool = try Mirror.openSyncedPool(path: path, configuration: configuration)
        try Schema.migrator.migrate(pool)
        try Mirror.restrictPermissions(of: path, mode: 0o640, group: readerGroup)
    }

    /// Opens the existing mirror at `path` for reading only: nothing is created, migrated or
    /// given other permissions, so a member of the mirror's reader group can read it without
    /// root, and reading never changes it. Fails with a sentence when there is no mirror there
    /// yet, when this user may not read it, or when it was made by another version of Roster.
    public init(readingAt path: String) throws {
        self.path = path
        self.worksAhead = false
        guard FileManager.default.fileExists(atPath: path) else {
            throw MirrorError.cannotOpen(path: path, reason: Mirror.noMirrorYet)
        }
        for file in [path, path + "-shm", path + "-wal"] where FileManager.default.fileExists(atPath: file) && access(file, R_OK) != 0 {
            throw MirrorError.cannotOpen(path: path, reason: """
                this user (uid \(getuid())) may not read \(file) (\(String(cString: strerror(errno)))): the mirror's reader group \
                (under the systemd unit, group roster) and root may
                """)
        }
        checkpointer = Checkpointer(path: path, sizeLimit: Mirror.walSizeLimit)
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -\(Mirror.readerCacheKiB)") }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            let current = try pool.read { db in
                try Schema.migrator.hasCompletedMigrations(db) && !Schema.migrator.hasBeenSuperseded(db)
            }
            if !current {
                throw MirrorError.cannotOpen(path: path, reason: """
                    it was made by another version of Roster: this one's daemon or `roster sync` upgrades an older mirror
                    """)
            }
        } catch let error as MirrorError {
            throw error
        } catch {
            // With no WAL files beside it and a folder it may not write, SQLite cannot read a WAL
            // database read-only; Roster keeps those files, so only another program removed them.
            let missing = [path + "-shm", path + "-wal"].filter { !FileManager.default.fileExists(atPath: $0) }
            let hint = missing.isEmpty ? "" : """
                ; \(missing.joined(separator: " and ")) \(missing.count == 1 ? "is" : "are") missing and this user may not \
                create \(missing.count == 1 ? "it" : "them"): any roster command run as root, or the daemon, puts them back
                """
            throw MirrorError.cannotOpen(path: path, reason: "\(error)\(hint)")
        }
    }

    /// Why a command that needs an existing mirror found none.
    public static let noMirrorYet = "there is no mirror there yet: `roster sync` or `roster run` makes it"

    /// Keeps the -wal and -shm files when the connection closes (SQLite removes them when the
    /// last connection to the database closes, unless told to keep them). Without them, a
    /// reader that may not write the mirror's folder, as the application may not, cannot open
    /// the mirror read-only until a Roster process opens it again: they stay, whoever stops.
    static func keepWALFiles(of db: Database) throws {
        guard let handle = db.sqliteConnection else { return }
        try keepWALFiles(of: handle, path: String(cString: sqlite3_db_filename(handle, "main")))
    }

    static func keepWALFiles(of handle: OpaquePointer, path: String) throws {
        var keep: Int32 = 1
        let code = sqlite3_file_control(handle, "main", SQLITE_FCNTL_PERSIST_WAL, &keep)
        guard code == SQLITE_OK else {
            throw MirrorError.cannotOpen(path: path, reason: "SQLite would not keep its WAL files (code \(code))")
        }
    }

    /// Opens a WAL pool whose writer syncs every commit: one that returned survives a power loss
    /// (NORMAL only survives the process crashing; FULL costs about 4 ms per commit on this VM's
    /// disk). GRDB turns WAL on after `prepareDatabase` and sets the writer to `synchronous =
    /// NORMAL` as it does, so FULL is set once the pool is open.
    static func openSyncedPool(path: String, configuration: Configuration) throws -> DatabasePool {
        let pool = try DatabasePool(path: path, configuration: configuration)
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        return pool
    }

    /// The store of directory entries (see ``EntryStore``), opened the first time it is needed.
    func entries() throws -> EntryStore {
        try entryStore.withLock { store in
            if let store { return store }
            let opened = try EntryStore(mirrorPath: path)
            store = opened
            return opened
        }
    }

    /// Creates an empty file with `mode`. Run as root in a folder someone else owns (the service
    /// account's state folder, when an admin runs `sudo roster sync` before the daemon ever did),
    /// the file goes to the folder's owner and group, as SQLite gives its -wal and -shm files to
    /// the database file's owner: otherwise the daemon, running as that owner, could not write it.
    static func createFile(at path: String, mode: mode_t) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: NSNumber(value: mode)]) else {
            throw MirrorError.cannotOpen(path: path, reason: "the file cannot be created")
        }
        let folder = (path as NSString).deletingLastPathComponent
        var owner = stat()
        guard geteuid() == 0, stat(folder.isEmpty ? "." : folder, &owner) == 0, owner.st_uid != 0 else { return }
        if chown(path, owner.st_uid, owner.st_gid) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: path)
            throw MirrorError.cannotOpen(path: path, reason: "it cannot be given to the owner of its folder, uid \(owner.st_uid) (\(reason))")
        }
    }

    /// Gives the database file (the -wal and -shm too) `mode`, and the reader group if one is given.
    static func restrictPermissions(of path: String, mode: mode_t, group: String?) throws {
        var gid: gid_t? = nil
        if let group {
            guard let entry = getgrnam(group) else {
                throw MirrorError.cannotOpen(path: path, reason: "the reader group '\(group)' does not exist")
            }
            gid = entry.pointee.gr_gid
        }
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            chmod(file, mode)
            guard let gid, let group else { continue }
            var status = stat()
            if stat(file, &status) == 0, status.st_gid == gid { continue }
            if chown(file, uid_t.max, gid) != 0 {
                // Silently left as it was, the mirror would stay unreadable to the application.
                let reason = String(cString: strerror(errno))
                throw MirrorError.cannotOpen(path: file, reason: """
                    its group cannot be set to the reader group '\(group)' (\(reason)): the account Roster runs as must \
                    belong to that group. Under the systemd unit, leave mirror.reader_group unset and add the application's \
                    account to the roster group instead (systemd gives the state directory to roster at every start)
                    """)
            }
        }
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    // MARK: writing

    /// Brings the mirror to `changeset`'s desired state in one transaction, writing only what
    /// differs, with an audit row per change and events for the application.
    ///
    /// A changeset that breaks a rule (a group moving health center or changing kind, a group
    /// without care venue, a deleted user, a dangling reference) is rejected whole with
    /// ``MirrorError/invalid(_:)`` and nothing is written. With `dryRun` the changes are
    /// computed and returned but rolled back.
    @discardableResult
    /// With `saving`, the sync state (the stream's cookie) is stored in the same transaction,
    /// so a restart resumes exactly after the last change applied.
    ///
    /// With `keepingChangesAfter` (an ``auditMark()`` taken before the changeset's data was
    /// read), users, memberships and role assignments that anyone changed after that mark are
    /// left as they are now, whatever the changeset says of them: a full reconcile then never
    /// writes back the stale value of something the change stream applied while it was reading.
    ///
    /// `addingMemberships` are single memberships added after the changeset, in the same
    /// transaction, leaving the rest of each group's members as they are (the real-time stream:
    /// a user it sees for the first time, whom groups already list).
    public func apply(_ changeset: Changeset, actor: Actor, at date: Date = Date(), dryRun: Bool = false, saving syncState: SyncState? = nil,
                      keepingChangesAfter mark: Int64? = nil, listingChanges: Bool = true,
                      addingMemberships memberships: [(user: UserCode, group: GroupID)] = []) throws -> ApplySummary {
        do { try changeset.validateStandalone() } catch { throw MirrorError.invalid(error) }
        return try write(actor: actor, at: date, dryRun: dryRun, changeset: changeset, saving: syncState,
                         adjusting: Mirror.keepingChanges(after: mark), listingChanges: listingChanges) { applier in
            try applier.run(addingMemberships: memberships)
        }
    }

    /// Applies the directory's view of one user's account (real-time stream): only the
    /// directory-caused lock and inactivity change; a lock set locally stays (rule 8).
    @discardableResult
    public func setDirectoryState(of user: UserCode, locked: Bool, inactive: Bool, reason: String? = nil, actor: Actor, at date: Date = Date(),
                                  saving syncState: SyncState? = nil) throws -> ApplySummary {
        try changeState(of: user, actor: actor, at: date, saving: syncState) { $0.updatedByDirectory(locked: locked, inactive: inactive, reason: reason) }
    }

    /// Locks or unlocks a user locally (an admin in Roster); the directory never clears this lock.
    @discardableResult
    public func setLocalLock(of user: UserCode, locked: Bool, reason: String? = nil, actor: Actor, at date: Date = Date()) throws -> ApplySummary {
        try changeState(of: user, actor: actor, at: date) { state in
            var next = state
            next.lockedLocally = locked
            next.reason = reason ?? (next.isLocked || !next.isActive ? state.reason : nil)
            return next
        }
    }

    /// Deactivates or reactivates a user locally. Users are never deleted.
    @discardableResult
    public func setLocalDeactivation(of user: UserCode, inactive: Bool, reason: String? = nil, actor: Actor, at date: Date = Date()) throws -> ApplySummary {
        try changeState(of: user, actor: actor, at: date) { state in
            var next = state
            next.inactiveLocally = inactive
            next.reason = reason ?? (next.isLocked || !next.isActive ? state.reason : nil)
            return next
        }
    }

    /// Adds one user to one group in its own small transaction (real-time stream).
    @discardableResult
    public func addMembership(_ user: UserCode, to group: GroupID, actor: Actor, at date: Date = Date()) throws -> ApplySummary {
        try write(actor: actor, at: date, dryRun: false) { applier in
            try applier.addMember(user, to: group, checked: true)
            try applier.w.flushAccessChanged()
        }
    }

    /// Removes one user from one group in its own small transaction (real-time stream).
    @discardableResult
    public func removeMembership(_ user: UserCode, from group: GroupID, actor: Actor, at date: Date = Date()) throws -> ApplySummary {
        try write(actor: actor, at: date, dryRun: false) { applier in
            try applier.removeMember(user, from: group)
            try applier.w.flushAccessChanged()
        }
    }

    /// Makes `members` the whole member set of a stored group in one transaction (the
    /// real-time stream's view of a directory group), saving the stream's state with it.
    @discardableResult
    public func setMembers(of group: GroupID, to members: Set<UserCode>, actor: Actor, at date: Date = Date(),
                           saving syncState: SyncState? = nil) throws -> ApplySummary {
        try write(actor: actor, at: date, dryRun: false, saving: syncState) { applier in
            let stored = try String.fetchAll(applier.db, sql: "SELECT user_code_key FROM group_membership WHERE group_id = ?",
                                             arguments: [group.rawValue])
            guard try Bool.fetchOne(applier.db, sql: "SELECT 1 FROM access_group WHERE id = ?", arguments: [group.rawValue]) != nil else {
                throw MirrorError.unknownGroup(group)
            }
            let wanted = Dictionary(members.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            for key in stored where wanted[key] == nil {
                let code = try String.fetchOne(applier.db, sql: "SELECT user_code FROM user_account WHERE user_code_key = ?", arguments: [key])
                try applier.removeMember(UserCode(code ?? key), from: group)
            }
            let present = Set(stored)
            for (key, code) in wanted where !present.contains(key) {
                guard try Bool.fetchOne(applier.db, sql: "SELECT 1 FROM user_account WHERE user_code_key = ?", arguments: [key]) != nil else { continue }
                try applier.addMember(code, to: group, checked: true)
            }
            try applier.w.flushAccessChanged()
        }
    }

    /// Bytes of memory SQLite's page caches hold in this process now (every connection of every
    /// mirror), for the daemon's metrics: most of a long-running daemon's growth is these caches
    /// filling up to their limits, not a leak.
    public static var pageCacheBytes: Int {
        var current: Int64 = 0
        var highest: Int64 = 0
        guard sqlite3_status64(SQLITE_STATUS_PAGECACHE_OVERFLOW, &current, &highest, 0) == SQLITE_OK else { return 0 }
        return Int(current)
    }

    /// Waits until the background checkpoint a large commit started, if any, has copied the WAL
    /// into the database file (benchmarks, tools that copy the file). Never needed for durability.
    public func waitForCheckpoint() {
        checkpointer.wait()
    }

    /// Stores where the sync with a directory stands.
    public func saveSyncState(_ state: SyncState) throws {
        try pool.write { db in try Mirror.store(state, db) }
    }

    static func store(_ state: SyncState, _ db: Database) throws {
            try db.execute(sql: """
                INSERT INTO sync_state (directory, cookie, last_full_reconcile, last_change_applied) VALUES (?, ?, ?, ?)
                ON CONFLICT (directory) DO UPDATE SET cookie = excluded.cookie, last_full_reconcile = excluded.last_full_reconcile,
                  last_change_applied = excluded.last_change_applied
                """, arguments: [state.directory, state.cookie.map { Data($0) }, state.lastFullReconcile, state.lastChangeApplied])
    }

    private func changeState(of user: UserCode, actor: Actor, at date: Date, saving syncState: SyncState? = nil,
                             _ transform: @escaping (AccountState) -> AccountState) throws -> ApplySummary {
        try write(actor: actor, at: date, dryRun: false, saving: syncState) { applier in
            guard let row = try Row.fetchOne(applier.db, sql: """
                SELECT locked_by_directory, locked_locally, inactive_by_directory, inactive_locally, state_reason, directory_dn
                FROM user_account WHERE user_code_key = ?
                """, arguments: [user.key]) else { throw MirrorError.unknownUser(user) }
            let old = AccountState(lockedByDirectory: row[0], lockedLocally: row[1], inactiveByDirectory: row[2], inactiveLocally: row[3], reason: row[4])
            try applier.changeState(of: user, from: old, to: transform(old), source: row[5])
            try applier.w.flushAccessChanged()
        }
    }

    /// The page size of a new mirror. A 100k-user first sync with 8 KiB pages: 2.64-2.73 s
    /// (apply 1.33-1.40 s, half the `pwrite` calls) against 2.70-2.80 s (1.40-1.47 s) with 4 KiB.
    static let pageSize = 8192
    /// The page cache of the writer connection and of each reader, in KiB.
    static let writerCacheKiB = 16_384
    static let readerCacheKiB = 8_192

    func write(actor: Actor, at date: Date, dryRun: Bool, changeset: Changeset = Changeset(), saving syncState: SyncState? = nil,
               adjusting adjust: ((Database, inout Changeset) throws -> Void)? = nil,
               finally: ((Database) throws -> Void)? = nil, listingChanges: Bool = true,
               _ body: @escaping (Applier) throws -> Void) throws -> ApplySummary {
        let at = Mirror.timestamp(date)
        let large = changeset.users.count + changeset.groups.count > Applier.bulkThreshold
        // A large changeset's journal is synced as it grows, so that its commit has little left to sync.
        var flusher: WALFlusher?
        defer { flusher?.stop() }
        return try pool.writeWithoutTransaction { db in
            // A large changeset gets twice the writer's page cache for its transaction. A page the
            // cache spilled into the WAL and the transaction changed again is rewritten in place,
            // and the commit then rereads every frame after the first such page to redo their
            // checksums: at 100k users, 16 MiB left 35,000 frames (about 140 MB) to reread and the
            // commit took 0.26 s; 32 MiB: 0.09-0.12 s, for 8-14 MB more at the reconcile's peak
            // (64 MiB: no faster, 40-50 MB more).
            if large {
                try db.execute(sql: "PRAGMA cache_size = -\(Mirror.writerCacheKiB * 2)")
            }
            defer { if large { try? db.execute(sql: "PRAGMA cache_size = -\(Mirror.writerCacheKiB)") } }
            // A large first load into an empty mirror runs without SQLite's per-row foreign key
            // checks (a seek into the parent's index for every row: 0.15 s of a 100k-user first
            // sync) and is checked whole before its commit instead (`foreign_key_check`, 0.07 s).
            // The applier checks every reference itself first; nothing stored means nothing to
            // delete, so no cascade is missed. The pragma cannot change inside a transaction, so
            // emptiness is checked before it and again inside it (another process may have
            // written in between: then the load runs again with the checks on).
            var checksEachRow = try !(large && Mirror.holdsNoEntity(db))
            // A first load into an empty mirror writes its pages once, into the file, under a
            // rollback journal (which holds only the few pages the file had), instead of into the
            // WAL and then again into the file by a checkpoint: at 100k users, 138 MB written and
            // synced twice, the checkpoint's half 0.4-0.5 s after the commit. Only a connection
            // alone on the file may leave WAL mode: with a reader open (another process) the
            // load goes through the WAL as any other write. This process's idle readers close first
            // (reads open new ones; readers in use close once done), and so does the
            // checkpointer's connection; a daemon's readers stay open through its other writes.
            if !checksEachRow && !dryRun {
                pool.invalidateReadOnlyConnections()
                checkpointer.closeConnection()
            }
            let rollbackJournal = !checksEachRow && !dryRun && Mirror.leaveWALMode(db)
            if large && !dryRun { flusher = WALFlusher(path: rollbackJournal ? path : path + "-wal") }
            defer { if rollbackJournal { Mirror.returnToWALMode(db) } }
            while true {
                let eachRowChecked = checksEachRow
                if !eachRowChecked { try db.execute(sql: "PRAGMA foreign_keys = OFF") }
                defer { if !eachRowChecked { try? db.execute(sql: "PRAGMA foreign_keys = ON") } }
                var summary = ApplySummary(changes: [], eventCount: 0, dryRun: dryRun)
                do {
                    try db.inTransaction(.immediate) {
                        if !eachRowChecked, try !Mirror.holdsNoEntity(db) { throw FirstLoadRaced() }
                        var changeset = changeset
                        try adjust?(db, &changeset)
                        let writer = try ChangeWriter(db: db, actor: actor, at: at, listsChanges: listingChanges)
                        try body(Applier(writer: writer, changeset: changeset, worksAhead: worksAhead))
                        try writer.finish()
                        if let syncState { try Mirror.store(syncState, db) }
                        try finally?(db)
                        if let flusher {
                            // Every page is written: the pages still in the cache go into the WAL now
                            // and are synced beside the checks before the commit, which then has
                            // only its own frame left to sync.
                            _ = sqlite3_db_cacheflush(db.sqliteConnection)
                            flusher.syncNow()
                        }
                        if !eachRowChecked { try Mirror.checkReferences(db) }
                        summary = ApplySummary(changes: writer.changes, eventCount: writer.eventCount, dryRun: dryRun, counts: writer.counts)
                        summary.hashesComputedAhead = writer.hashesComputedAhead
                        return dryRun ? .rollback : .commit
                    }
                    return summary
                } catch is FirstLoadRaced {
                    checksEachRow = true
                }
            }
        }
    }

    /// Another writer stored something between the emptiness check and the transaction.
    private struct FirstLoadRaced: Error {}

    /// Switches the writer's file from WAL to a rollback journal, if no other connection has the
    /// file open (then it returns false at once and nothing changes).
    static func leaveWALMode(_ db: Database) -> Bool {
        guard let handle = db.sqliteConnection else { return false }
        sqlite3_busy_timeout(handle, 0)
        defer { sqlite3_busy_timeout(handle, 5_000) }  // the pool's busy timeout (`Mirror.init`)
        return (try? String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE")) == "delete"
    }

    /// Switches the file back to WAL after a first load. A reader that opened the file meanwhile
    /// holds a lock only while it reads, so the switch waits for it (the 5-second busy timeout,
    /// tried again for a minute). Should it still fail, the file stays in rollback-journal mode,
    /// which is correct but slower, until the next ``Mirror`` opens it (GRDB sets WAL mode then).
    static func returnToWALMode(_ db: Database) {
        for _ in 0..<12 {
            guard (try? String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")) == "wal" else { continue }
            // The WAL files are made by the first read in WAL mode, not by the switch: made now,
            // they are there (and stay, see `keepWALFiles`) for read-only readers that cannot make them.
            _ = try? Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master")
            return
        }
    }

    /// Whether the mirror holds no health center, care venue, provider, pool, role, group or
    /// user: nothing a write could delete, nor cascade a deletion from.
    static func holdsNoEntity(_ db: Database) throws -> Bool {
        let tables = ["health_center", "care_venue", "provider", "pool", "role", "access_group", "user_account"]
        let sql = "SELECT " + tables.map { "EXISTS (SELECT 1 FROM \($0))" }.joined(separator: " OR ")
        return try Bool.fetchOne(db, sql: sql) == false
    }

    /// Throws ``MirrorError/brokenReferences(count:first:)`` if any row refers to a row that
    /// does not exist.
    static func checkReferences(_ db: Database) throws {
        let rows = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
        guard let first = rows.first else { return }
        let table: String = first["table"]
        let parent: String = first["parent"]
        let rowID: Int64? = first["rowid"]
        throw MirrorError.brokenReferences(count: rows.count, first: "a row of \(table)\(rowID.map { " (rowid \($0))" } ?? "") refers to a \(parent) that does not exist")
    }
}
