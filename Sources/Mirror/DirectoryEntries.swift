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
    /// The problems that reconcile reported, encoded by the reconcile.
    public var problems: Data

    public init(fingerprint: String, contextMarker: String?, auditMark: Int64, problems: Data) {
        self.fingerprint = fingerprint
        self.contextMarker = contextMarker
        self.auditMark = auditMark
        self.problems = problems
    }
}

/// The directory entries a reconcile stores with its apply, in the same transaction.
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

    /// Applies `changeset` like ``apply(_:actor:at:dryRun:saving:)`` and, in the same
    /// transaction, stores the directory entries it was computed from and the basis they were
    /// read under. A dry run stores nothing.
    ///
    /// The entries are written first and then let go, so that they are not held in memory
    /// beside the apply's own peak; the basis is written last, with the audit mark after the apply.
    @discardableResult
    public func apply(_ changeset: Changeset, actor: Actor, at date: Date = Date(), dryRun: Bool = false,
                      recording entries: consuming DirectoryEntryUpdate, keepingChangesAfter mark: Int64? = nil,
                      listingChanges: Bool = true) throws -> ApplySummary {
        do { try changeset.validateStandalone() } catch { throw MirrorError.invalid(error) }
        let directory = entries.directory
        let held = HeldEntries(consume entries)
        return try write(actor: actor, at: date, dryRun: dryRun, changeset: changeset, adjusting: Mirror.keepingChanges(after: mark),
                         first: { db in try Mirror.storeEntries(held.take(), db) },
                         finally: { db in try Mirror.storeBasis(directory, fingerprint: held.fingerprint,
                                                                contextMarker: held.contextMarker, problems: held.problems, db) },
                         listingChanges: listingChanges) { applier in
            try applier.run()
        }
    }

    /// The update's entries, handed over once (a write transaction runs on one thread at a time).
    private final class HeldEntries: @unchecked Sendable {
        private var update: DirectoryEntryUpdate?
        let fingerprint: String
        let contextMarker: String?
        let problems: Data

        init(_ update: DirectoryEntryUpdate) {
            self.update = update
            fingerprint = update.fingerprint
            contextMarker = update.contextMarker
            problems = update.problems
        }

        func take() -> DirectoryEntryUpdate? {
            defer { update = nil }
            return update
        }
    }

    static func storeEntries(_ update: DirectoryEntryUpdate?, _ db: Database) throws {
        guard let update else { return }
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
        let upserts = update.upserts.sorted { $0.kind == $1.kind ? $0.entryID < $1.entryID : $0.kind == .group }
        let insert = BatchedInsert(db, into: "directory_entry (directory, kind, entry_id, marker, dn, next_change, content)", columns: 7,
                                   rowsPerStatement: 32, suffix: """
                                       ON CONFLICT (directory, kind, entry_id) DO UPDATE SET marker = excluded.marker, dn = excluded.dn,
                                         next_change = excluded.next_change, content = excluded.content
                                       """)
        try insert.insert(upserts) { b, entry in
            b.bind(update.directory); b.bind(entry.kind.rawValue); b.bind(entry.entryID); b.bind(entry.marker); b.bind(entry.dn)
            b.bind(entry.nextChange.map(Mirror.timestamp)); b.bind(entry.content)
        }
    }

    static func storeBasis(_ directory: String, fingerprint: String, contextMarker: String?, problems: Data, _ db: Database) throws {
        let mark = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM audit_log") ?? 0
        try db.execute(sql: """
            INSERT INTO reconcile_basis (directory, fingerprint, context_marker, audit_mark, problems) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (directory) DO UPDATE SET fingerprint = excluded.fingerprint, context_marker = excluded.context_marker,
              audit_mark = excluded.audit_mark, problems = excluded.problems
            """, arguments: [directory, fingerprint, contextMarker, mark, problems])
    }

    /// The basis of the directory entries stored for `directory`; nil before the first
    /// reconcile that stored any.
    public func reconcileBasis(for directory: String) throws -> ReconcileBasis? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT fingerprint, context_marker, audit_mark, problems FROM reconcile_basis WHERE directory = ?",
                             arguments: [directory])
                .map { ReconcileBasis(fingerprint: $0[0], contextMarker: $0[1], auditMark: $0[2], problems: $0[3]) }
        }
    }

    /// The newest audit row's id (0 when there is none).
    public func lastAuditID() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM audit_log") ?? 0 }
    }

    /// The stored markers of `directory`'s entries of one kind, by entry id (no content).
    public func directoryEntryMarkers(for directory: String, kind: DirectoryEntryRecord.Kind) throws -> [String: DirectoryEntryMarker] {
        try pool.read { db in
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
        try pool.read { db in
            var result: [String: Data] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT entry_id, content FROM directory_entry WHERE directory = ? AND kind = ?",
                                           arguments: [directory, kind.rawValue])
            while let row = try rows.next() { result[row[0]] = row[1] }
            return result
        }
    }

    /// The stored content of some of `directory`'s entries of one kind, by entry id.
    public func directoryEntryContents(for directory: String, kind: DirectoryEntryRecord.Kind, ids: [String]) throws -> [String: Data] {
        try pool.read { db in
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
        try pool.read { db in
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
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT entry_id, dn FROM directory_entry WHERE directory = ? AND kind = ? ORDER BY entry_id LIMIT 1",
                             arguments: [directory, kind.rawValue]).map { ($0[0], $0[1]) }
        }
    }
}
