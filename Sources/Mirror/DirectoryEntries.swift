import AccessModel
import Foundation
import GRDB

/// What a reconcile read from one directory entry, stored with the entry's change marker
/// (OpenLDAP's `entryCSN`) read in the same search as that content.
public struct DirectoryEntryRecord: Sendable, Equatable {
    public enum Kind: String, Sendable { case user, group }
    public var kind: Kind
    /// entryUUID / objectGUID text.
    public var entryID: String
    public var marker: String
    /// The normalized DN.
    public var dn: String
    /// When the entry's account state changes by itself (expiry, lockout end).
    public var nextChange: Date?
    /// The reconcile's encoding of what it read; opaque to the mirror.
    public var content: Data

    public init(kind: Kind, entryID: String, marker: String, dn: String, nextChange: Date?, content: Data) {
        self.kind = kind
        self.entryID = entryID
        self.marker = marker
        self.dn = dn
        self.nextChange = nextChange
        self.content = content
    }
}

/// A stored entry's marker, without its content: what a change-detecting reconcile compares.
public struct DirectoryEntryMarker: Sendable, Equatable {
    public var marker: String
    public var dn: String
    public var nextChange: Date?
}

/// What the directory entries stored with a reconcile were read under.
public struct ReconcileBasis: Sendable, Equatable {
    /// The configuration, mapping version and directory settings the entries were mapped with.
    public var fingerprint: String
    /// The directory database's own change marker (OpenLDAP's `contextCSN`) read before that
    /// reconcile read any entry; nil when the directory does not show one.
    public var contextMarker: String?
    /// The newest audit row right after that reconcile's apply: a later row means the mirror
    /// changed since (change stream, timers, an admin).
    public var auditMark: Int64
    /// That audit row's hash ("" when there was none): the same id in another mirror (one
    /// restored or built again) is not the same mirror.
    public var auditHead: String
    /// The problems that reconcile reported, encoded by the reconcile.
    public var problems: Data

    public init(fingerprint: String, contextMarker: String?, auditMark: Int64, auditHead: String, problems: Data) {
        self.fingerprint = fingerprint
        self.contextMarker = contextMarker
        self.auditMark = auditMark
        self.auditHead = auditHead
        self.problems = problems
    }
}

/// The directory entries a reconcile stores with its apply (committed only if the apply is).
public struct DirectoryEntryUpdate: Sendable {
    public var directory: String
    /// Replace every stored entry of the directory (a full read); otherwise only `upserts`
    /// and `removals` change.
    public var replaceAll: Bool
    public var upserts: [DirectoryEntryRecord]
    public var removals: [(kind: DirectoryEntryRecord.Kind, entryID: String)]
    public var fingerprint: String
    public var contextMarker: String?
    public var problems: Data

    public init(directory: String, replaceAll: Bool, upserts: [DirectoryEntryRecord],
                removals: [(kind: DirectoryEntryRecord.Kind, entryID: String)], fingerprint: String, contextMarker: String?, problems: Data) {
        self.contextMarker = contextMarker
        self.directory = directory
        self.replaceAll = replaceAll
        self.upserts = upserts
        self.removals = removals
        self.fingerprint = fingerprint
        self.problems = problems
    }
}

extension Mirror {
    /// SHA-256 of `text` in hex, for fingerprints of what a reconcile depends on.
    public static func sha256Hex(_ text: String) -> String { SHA256.hex(text) }

    /// Applies `changeset` like ``apply(_:actor:at:dryRun:saving:)`` and stores the directory
    /// entries it was computed from, with the basis they were read under, in the entry store
    /// (see ``EntryStore``). The entries are written on another thread while the plan is applied,
    /// and committed only once the apply has; a dry run or a failed apply stores nothing.
    ///
    /// The apply's outcome does not depend on the entries: if they cannot be stored, the apply
    /// stands, ``ApplySummary/entriesNotStored`` says why, and the store keeps the previous
    /// reconcile's entries and basis (still true of the directory when they were read; the next
    /// reconcile reads again whatever changed since).
    @discardableResult
    public func apply(_ changeset: Changeset, actor: Actor, at date: Date = Date(), dryRun: Bool = false,
                      recording entries: consuming DirectoryEntryUpdate, keepingChangesAfter mark: Int64? = nil,
                      listingChanges: Bool = true) throws -> ApplySummary {
        do { try changeset.validateStandalone() } catch { throw MirrorError.invalid(error) }
        let basis = (fingerprint: entries.fingerprint, contextMarker: entries.contextMarker, problems: entries.problems)
        var pending: PendingEntries?
        var storeProblem: (any Error)?
        if !dryRun {
            do { pending = PendingEntries(consume entries, into: try self.entries()) } catch { storeProblem = error }
        }
        var head: (id: Int64, hash: String)?
        var summary: ApplySummary
        do {
            summary = try write(actor: actor, at: date, dryRun: dryRun, changeset: changeset, adjusting: Mirror.keepingChanges(after: mark),
                                finally: { db in head = try Mirror.auditHead(db) }, listingChanges: listingChanges) { applier in
                try applier.run()
            }
        } catch {
            pending?.finish(basis: nil)
            throw error
        }
        let stored = ReconcileBasis(fingerprint: basis.fingerprint, contextMarker: basis.contextMarker, auditMark: head?.id ?? 0,
                                    auditHead: head?.hash ?? "", problems: basis.problems)
        if let error = storeProblem ?? pending?.finish(basis: stored) {
            summary.entriesNotStored = "The apply stands, but the directory entries it was read from could not be stored in "
                + "\(EntryStore.path(forMirror: path)): the next reconcile reads again what they would have spared it (\(error))."
        }
        return summary
    }

    /// The newest audit row's id and hash ((0, "") when there is none).
    static func auditHead(_ db: Database) throws -> (id: Int64, hash: String) {
        guard let row = try Row.fetchOne(db, sql: "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1") else { return (0, "") }
        return (row[0], row[1])
    }

    /// Whether the mirror is still as the apply that stored `basis` left it: no audit row since,
    /// in the same audit chain.
    public func isUnchanged(since basis: ReconcileBasis) throws -> Bool {
        let head = try auditHead()
        return head.id == basis.auditMark && head.hash == basis.auditHead
    }

    /// The basis of the directory entries stored for `directory`; nil before the first
    /// reconcile that stored any.
    public func reconcileBasis(for directory: String) throws -> ReconcileBasis? {
        try entries().pool.read { db in
            try Row.fetchOne(db, sql: """
                SELECT fingerprint, context_marker, audit_mark, audit_head, problems FROM reconcile_basis WHERE directory = ?
                """, arguments: [directory])
                .map { ReconcileBasis(fingerprint: $0[0], contextMarker: $0[1], auditMark: $0[2], auditHead: $0[3], problems: $0[4]) }
        }
    }

    /// The stored markers of `directory`'s entries of one kind, by entry id (no content).
    public func directoryEntryMarkers(for directory: String, kind: DirectoryEntryRecord.Kind) throws -> [String: DirectoryEntryMarker] {
        try entries().pool.read { db in
            var result: [String: DirectoryEntryMarker] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT entry_id, marker, dn, next_change FROM directory_entry WHERE directory = ? AND kind = ?",
                                           arguments: [directory, kind.rawValue])
            let parser = ISO8601DateFormatter()
            parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            while let row = try rows.next() {
                let next: String? = row[3]
                result[row[0]] = DirectoryEntryMarker(marker: row[1], dn: row[2], nextChange: next.flatMap(parser.date(from:)))
            }
            return result
        }
    }

    /// The stored content of `directory`'s entries of one kind, by entry id.
    public func directoryEntryContents(for directory: String, kind: DirectoryEntryRecord.Kind) throws -> [String: Data] {
        var result: [String: Data] = [:]
        try forEachDirectoryEntryContent(for: directory, kind: kind) { id, content in
            result[id] = content
            return true
        }
        return result
    }

    /// Hands `body` each stored entry of one kind (its id and content), in entry id order, one
    /// at a time: nothing is kept but what `body` keeps. `body` returns false to stop.
    public func forEachDirectoryEntryContent(for directory: String, kind: DirectoryEntryRecord.Kind,
                                             _ body: (_ entryID: String, _ content: Data) throws -> Bool) throws {
        try entries().pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT entry_id, content FROM directory_entry WHERE directory = ? AND kind = ? ORDER BY entry_id",
                                           arguments: [directory, kind.rawValue])
            while let row = try rows.next() {
                guard try body(row[0], row[1]) else { return }
            }
        }
    }

    /// The stored content of some of `directory`'s entries of one kind, by entry id.
    public func directoryEntryContents(for directory: String, kind: DirectoryEntryRecord.Kind, ids: [String]) throws -> [String: Data] {
        try entries().pool.read { db in
            var result: [String: Data] = [:]
            let statement = try db.cachedStatement(sql: "SELECT content FROM directory_entry WHERE directory = ? AND kind = ? AND entry_id = ?")
            for id in ids {
                if let content = try Data.fetchOne(statement, arguments: [directory, kind.rawValue, id]) { result[id] = content }
            }
            return result
        }
    }

    /// How many user and group entries are stored for `directory`, and the users whose state
    /// changes by itself at a known moment (their next change, by entry id).
    public func directoryEntrySummary(for directory: String) throws -> (users: Int, groups: Int, timed: [String: Date]) {
        try entries().pool.read { db in
            let users = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM directory_entry WHERE directory = ? AND kind = 'user'", arguments: [directory]) ?? 0
            let groups = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM directory_entry WHERE directory = ? AND kind = 'group'", arguments: [directory]) ?? 0
            let parser = ISO8601DateFormatter()
            parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            var timed: [String: Date] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT entry_id, next_change FROM directory_entry WHERE directory = ? AND kind = 'user' AND next_change IS NOT NULL
                """, arguments: [directory]) {
                let text: String = row[1]
                if let date = parser.date(from: text) { timed[row[0]] = date }
            }
            return (users, groups, timed)
        }
    }

    /// One stored entry of a kind (the first by id), for a check that the directory still shows it.
    public func someDirectoryEntry(for directory: String, kind: DirectoryEntryRecord.Kind) throws -> (entryID: String, dn: String)? {
        try entries().pool.read { db in
            try Row.fetchOne(db, sql: "SELECT entry_id, dn FROM directory_entry WHERE directory = ? AND kind = ? ORDER BY entry_id LIMIT 1",
                             arguments: [directory, kind.rawValue]).map { ($0[0], $0[1]) }
        }
    }
}

extension EntryStore {
    /// Writes a reconcile's entries (see ``Mirror/apply(_:actor:at:dryRun:recording:keepingChangesAfter:listingChanges:)``).
    static func write(_ update: consuming DirectoryEntryUpdate, _ db: Database) throws {
        if update.replaceAll {
            try db.execute(sql: "DELETE FROM directory_entry WHERE directory = ?", arguments: [update.directory])
        }
        let remove = try db.cachedStatement(sql: "DELETE FROM directory_entry WHERE directory = ? AND kind = ? AND entry_id = ?")
        for removal in update.removals {
            try remove.execute(arguments: [update.directory, removal.kind.rawValue, removal.entryID])
        }
        // In key order, so that the table (keyed by kind and entry id) is appended to rather than
        // split at random places: a first sync's 100k entries fill their pages instead of half of them.
        // ('group' sorts before 'user', as SQLite compares the kind column.)
        // Sorted in place (the update is ours): `sorted` would copy every record. The order is
        // reversed, so that the records are taken from the end, a chunk at a time, and each
        // chunk freed once written: at 100k users they are tens of MB, and this runs beside the
        // mirror's apply, the reconcile's peak of memory.
        var upserts = update.upserts
        update.upserts = []
        upserts.sort { $0.kind == $1.kind ? $0.entryID > $1.entryID : $0.kind == .user }
        let insert = BatchedInsert(db, into: "directory_entry (directory, kind, entry_id, marker, dn, next_change, content)", columns: 7,
                                   rowsPerStatement: 32, suffix: """
                                       ON CONFLICT (directory, kind, entry_id) DO UPDATE SET marker = excluded.marker, dn = excluded.dn,
                                         next_change = excluded.next_change, content = excluded.content
                                       """)
        var chunk: [DirectoryEntryRecord] = []
        chunk.reserveCapacity(entriesPerChunk)
        while !upserts.isEmpty {
            chunk.removeAll(keepingCapacity: true)
            for _ in 0..<min(entriesPerChunk, upserts.count) { chunk.append(upserts.removeLast()) }
            try insert.insert(chunk) { b, entry in
                b.bind(update.directory); b.bind(entry.kind.rawValue); b.bind(entry.entryID); b.bind(entry.marker); b.bind(entry.dn)
                b.bind(entry.nextChange.map(Mirror.timestamp)); b.bind(entry.content)
            }
        }
    }

    /// Directory entries written per chunk (a multiple of the rows per INSERT).
    static let entriesPerChunk = 1024

    static func store(_ basis: ReconcileBasis, for directory: String, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO reconcile_basis (directory, fingerprint, context_marker, audit_mark, audit_head, problems) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (directory) DO UPDATE SET fingerprint = excluded.fingerprint, context_marker = excluded.context_marker,
              audit_mark = excluded.audit_mark, audit_head = excluded.audit_head, problems = excluded.problems
            """, arguments: [directory, basis.fingerprint, basis.contextMarker, basis.auditMark, basis.auditHead, basis.problems])
    }
}
