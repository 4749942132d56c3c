import AccessModel
import GRDB

/// The audit log's hash chain: each row's hash covers the previous row's hash and all its fields.
enum AuditChain {
    static let genesis = String(repeating: "0", count: 64)

    /// The hash of one row: SHA-256 over the previous hash and each field, length-prefixed so that
    /// no two different rows hash the same input: `previous`, then per field `|<utf8 length>:<field>`,
    /// or `|-` for NULL.
    static func hash(
        previous: String, at: String, actorKind: String, actor: String, source: String?, action: String,
        entityType: String, entityKey: String, before: String?, after: String?
    ) -> String {
        var input: [UInt8] = []
        return hash(into: &input, previous: previous, at: at, actorKind: actorKind, actor: actor, source: source,
                    action: action, entityType: entityType, entityKey: entityKey, before: before, after: after)
    }

    /// ``hash(previous:at:actorKind:actor:source:action:entityType:entityKey:before:after:)`` reusing
    /// `input`'s storage for the bytes hashed, so that a bulk apply allocates nothing per row for it.
    static func hash(
        into input: inout [UInt8], previous: String, at: String, actorKind: String, actor: String, source: String?,
        action: String, entityType: String, entityKey: String, before: String?, after: String?
    ) -> String {
        input.removeAll(keepingCapacity: true)
        var previous = previous
        previous.withUTF8 { input.append(contentsOf: $0) }
        append(at, to: &input)
        append(actorKind, to: &input)
        append(actor, to: &input)
        append(source, to: &input)
        append(action, to: &input)
        append(entityType, to: &input)
        append(entityKey, to: &input)
        append(before, to: &input)
        append(after, to: &input)
        return input.withUnsafeBytes { SHA256.hex($0) }
    }

    @inline(__always)
    private static func append(_ field: String?, to input: inout [UInt8]) {
        input.append(0x7C)  // |
        guard var field else {
            input.append(0x2D)  // -
            return
        }
        field.withUTF8 { utf8 in appendLengthPrefixed(utf8, to: &input) }
    }

    @inline(__always)
    private static func appendLengthPrefixed(_ utf8: UnsafeBufferPointer<UInt8>, to input: inout [UInt8]) {
        var length = utf8.count
        // The length in decimal, most significant digit first.
        var divisor = 1
        while divisor <= length / 10 { divisor *= 10 }
        while divisor > 0 {
            input.append(0x30 + UInt8(length / divisor))
            length %= divisor
            divisor /= 10
        }
        input.append(0x3A)  // :
        input.append(contentsOf: utf8)
    }

    /// The first row whose hash or link to its predecessor does not match, or nil if the chain holds.
    static func verify(_ db: Database) throws -> AuditChainBreak? {
        var previous = genesis
        var input: [UInt8] = []
        let rows = try Row.fetchCursor(db, sql: "SELECT \(AuditRow.columns) FROM audit_log ORDER BY id")
        while let next = try rows.next() {
            let row = AuditRow(row: next)
            if row.prevHash != previous {
                return AuditChainBreak(rowID: row.id, problem: "it links to \(row.prevHash.prefix(12))…, but the row before it hashes to \(previous.prefix(12))… (a row was removed, inserted or altered)")
            }
            let expected = hash(
                into: &input, previous: row.prevHash, at: row.at, actorKind: row.actorKind, actor: row.actor, source: row.source,
                action: row.action, entityType: row.entityType, entityKey: row.entityKey, before: row.before, after: row.after)
            if row.hash != expected {
                return AuditChainBreak(rowID: row.id, problem: "its content hashes to \(expected.prefix(12))…, not the stored \(row.hash.prefix(12))… (the row was altered)")
            }
            previous = row.hash
        }
        return nil
    }
}

/// Writes audit rows and events inside one transaction, and collects the changes made.
///
/// Rows are buffered and inserted up to ``batchSize`` per statement (``BatchedInsert``); ids and
/// order are the same as row by row. ``finish()`` writes what is left; call it before the
/// transaction ends.
final class ChangeWriter {
    let db: Database
    let actor: Actor
    let at: String
    private(set) var changes: [Change] = []
    /// Whether ``changes`` lists every change; when false only ``counts`` counts them (a first
    /// sync's list holds every new user's record: tens of MB at 100k users).
    let listsChanges: Bool
    /// Changes made, by action.
    private(set) var counts: [String: Int] = [:]
    private(set) var eventCount = 0
    private var previousHash: String
    /// The bytes of the row being hashed; kept to reuse its storage.
    private var hashInput: [UInt8] = []
    /// Users whose effective access may have changed, by key, with the spelling to report.
    var accessChanged: [String: String] = [:]
    /// Whether a user (by key) is a break-glass account, where the caller knows without a lookup
    /// (an apply knows its changeset's users, as they will be); nil: looked up in the mirror.
    var knownBreakGlass: (String) -> Bool? = { _ in nil }

    static let batchSize = 128

    private struct AuditRow {
        var source: String?
        var action: String
        var entityType: String
        var entityKey: String
        var before: String?
        var after: String?
        var prevHash: String
        var hash: String
    }

    private struct EventRow {
        var type: String
        var user: String?
        var group: String?
        var detail: String?
    }

    private var pendingAudit: [AuditRow] = []
    private var pendingEvents: [EventRow] = []
    private let auditInsert: BatchedInsert
    private let eventInsert: BatchedInsert

    init(db: Database, actor: Actor, at: String, listsChanges: Bool = true) throws {
        self.db = db
        self.listsChanges = listsChanges
        self.actor = actor
        self.at = at
        auditInsert = BatchedInsert(db, into: "audit_log (at, actor_kind, actor, source, action, entity_type, entity_key, before, after, prev_hash, hash)",
                                    columns: 11, rowsPerStatement: ChangeWriter.batchSize)
        eventInsert = BatchedInsert(db, into: "events (type, at, user_code, group_id, detail)", columns: 5, rowsPerStatement: ChangeWriter.batchSize)
        let head = try Mirror.auditHead(db)
        previousHash = head.id == 0 ? AuditChain.genesis : head.hash
        pendingAudit.reserveCapacity(ChangeWriter.batchSize)
        pendingEvents.reserveCapacity(ChangeWriter.batchSize)
    }

    /// The hash of the newest row, which the next row links to.
    var chainHead: String { previousHash }
    /// How many precomputed hashes ``audit(_:_:_:before:after:source:precomputed:)`` used.
    private(set) var hashesComputedAhead = 0

    /// A row's hash computed ahead of time (on another thread) from `previous`.
    struct PrecomputedHash {
        var previous: String
        var hash: String
    }

    /// Appends one audit row (chained to the previous one) and records the change. `precomputed`
    /// is used when it was computed from the current chain head (the caller vouches that it
    /// covers these same fields); otherwise the hash is computed here.
    func audit(_ action: String, _ entityType: String, _ entityKey: String, before: String?, after: String?, source: String?,
               precomputed: PrecomputedHash? = nil) throws {
        let hash: String
        if let precomputed, precomputed.previous == previousHash {
            hash = precomputed.hash
            hashesComputedAhead += 1
            assert(hash == AuditChain.hash(previous: previousHash, at: at, actorKind: actor.kind.rawValue, actor: actor.name, source: source,
                                           action: action, entityType: entityType, entityKey: entityKey, before: before, after: after))
        } else {
            hash = AuditChain.hash(
                into: &hashInput, previous: previousHash, at: at, actorKind: actor.kind.rawValue, actor: actor.name, source: source,
                action: action, entityType: entityType, entityKey: entityKey, before: before, after: after)
        }
        pendingAudit.append(AuditRow(
            source: source, action: action, entityType: entityType, entityKey: entityKey, before: before, after: after,
            prevHash: previousHash, hash: hash))
        if pendingAudit.count == ChangeWriter.batchSize { try writeAudit() }
        previousHash = hash
        counts[action, default: 0] += 1
        if listsChanges { changes.append(Change(action: action, entityType: entityType, entityKey: entityKey, before: before, after: after)) }
        // Every change to a break-glass account also gets a `break_glass.changed` event, so that
        // a change to an emergency account is never quiet. (Its record's creation and updates
        // have theirs, written with the record.)
        if action != "user.created", action != "user.updated", let code = Self.userCode(entityType: entityType, entityKey: entityKey),
           try isBreakGlass(UserCode(code).key) {
            try event("break_glass.changed", user: code, detail: action)
        }
    }

    /// Whether the user with this key is a break-glass account: as ``knownBreakGlass`` says, else
    /// by one indexed lookup as the row is written (a user made break-glass earlier in the same
    /// transaction counts). An empty mirror's first load of 150k memberships spent 0.8-1.0 s on
    /// that lookup for every row, before the changeset's users were asked first.
    private func isBreakGlass(_ key: String) throws -> Bool {
        if let known = knownBreakGlass(key) { return known }
        return try Bool.fetchOne(db.cachedStatement(sql: "SELECT break_glass FROM user_account WHERE user_code_key = ?"),
                                 arguments: [key]) == true
    }

    /// The user an audit row is about: the key of a user row, the user part ("group/user",
    /// "role/user") of a membership or role assignment; nil for other entities.
    static func userCode(entityType: String, entityKey: String) -> String? {
        switch entityType {
        case "user": entityKey
        case "membership", "role_assignment": entityKey.lastIndex(of: "/").map { String(entityKey[entityKey.index(after: $0)...]) }
        default: nil
        }
    }

    /// Appends one event for the clinic application.
    func event(_ type: String, user: String?, group: String? = nil, detail: String? = nil) throws {
        pendingEvents.append(EventRow(type: type, user: user, group: group, detail: detail))
        if pendingEvents.count == ChangeWriter.batchSize { try writeEvents() }
        eventCount += 1
    }

    /// Writes the buffered audit rows and events.
    func finish() throws {
        try writeAudit()
        try writeEvents()
    }

    private func writeAudit() throws {
        try auditInsert.insert(pendingAudit) { b, row in
            b.bind(at); b.bind(actor.kind.rawValue); b.bind(actor.name); b.bind(row.source); b.bind(row.action)
            b.bind(row.entityType); b.bind(row.entityKey); b.bind(row.before); b.bind(row.after); b.bind(row.prevHash); b.bind(row.hash)
        }
        pendingAudit.removeAll(keepingCapacity: true)
    }

    private func writeEvents() throws {
        try eventInsert.insert(pendingEvents) { b, row in
            b.bind(row.type); b.bind(at); b.bind(row.user); b.bind(row.group); b.bind(row.detail)
        }
        pendingEvents.removeAll(keepingCapacity: true)
    }

    func markAccessChanged(key: String, code: String) {
        accessChanged[key] = code
    }

    /// Emits one `access.changed` event per user marked, in a stable order.
    func flushAccessChanged() throws {
        for (_, code) in accessChanged.sorted(by: { $0.key < $1.key }) {
            try event("access.changed", user: code)
        }
        accessChanged = [:]
    }
}
