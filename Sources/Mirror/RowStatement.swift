import Foundation
import GRDB
import GRDBSQLite

/// A value bound straight through SQLite's C API.
protocol RowValue {
    /// Binds the value; text is copied into `arena`, which keeps it until the statement has run.
    func bind(to statement: OpaquePointer, at index: Int32, arena: BindArena)
}

extension String: RowValue {
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32, arena: BindArena) {
        var string = self
        string.withUTF8 { bytes in
            if bytes.count > 0 {
                // SQLITE_STATIC (a nil destructor): SQLite reads the arena's copy in place.
                _ = sqlite3_bind_text(statement, index, arena.copy(bytes), Int32(bytes.count), nil)
            } else {
                _ = sqlite3_bind_text(statement, index, "", 0, nil)  // '' (a nil pointer would bind NULL)
            }
        }
    }
}

extension Data: RowValue {
    /// A BLOB (an empty one when the data is empty).
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32, arena: BindArena) {
        withUnsafeBytes { bytes in
            if let base = bytes.baseAddress, bytes.count > 0 {
                _ = sqlite3_bind_blob(statement, index, arena.copy(UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)),
                                      Int32(bytes.count), nil)
            } else {
                _ = sqlite3_bind_zeroblob(statement, index, 0)
            }
        }
    }
}

extension Int: RowValue {
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32, arena: BindArena) { _ = sqlite3_bind_int64(statement, index, Int64(self)) }
}

extension Bool: RowValue {
    /// 1 or 0, as GRDB stores booleans.
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32, arena: BindArena) { _ = sqlite3_bind_int64(statement, index, self ? 1 : 0) }
}

extension Optional: RowValue where Wrapped: RowValue {
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32, arena: BindArena) {
        if let value = self { value.bind(to: statement, at: index, arena: arena) } else { _ = sqlite3_bind_null(statement, index) }
    }
}

/// The text bound to one statement execution, copied end to end into memory the statement owns.
///
/// Bound with SQLITE_TRANSIENT, SQLite allocates, copies and frees every text value itself: a
/// malloc and a free per value, about a tenth of a bulk apply. Here each value is copied once into
/// chunks that live as long as the statement and are reused by its next execution (SQLite reads
/// bound text only while the statement runs, and every parameter is bound again before each run).
final class BindArena {
    private static let chunkSize = 64 * 1024
    private var chunks: [UnsafeMutableRawPointer] = []
    /// Values too large for a chunk, each in its own allocation, freed at the next ``reset()``.
    private var large: [UnsafeMutableRawPointer] = []
    private var chunk = -1
    private var used = BindArena.chunkSize

    /// A copy of `bytes` that stays valid until ``reset()``.
    @inline(__always)
    func copy(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeRawPointer {
        let count = bytes.count
        if count > BindArena.chunkSize / 4 {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 1)
            memory.copyMemory(from: bytes.baseAddress!, byteCount: count)
            large.append(memory)
            return UnsafeRawPointer(memory)
        }
        if used + count > BindArena.chunkSize {
            chunk += 1
            if chunk == chunks.count { chunks.append(UnsafeMutableRawPointer.allocate(byteCount: BindArena.chunkSize, alignment: 16)) }
            used = 0
        }
        let target = chunks[chunk] + used
        target.copyMemory(from: bytes.baseAddress!, byteCount: count)
        used += count
        return UnsafeRawPointer(target)
    }

    /// Makes the space reusable: call only once nothing bound from it will be read again.
    func reset() {
        for memory in large { memory.deallocate() }
        large.removeAll(keepingCapacity: true)
        chunk = -1
        used = BindArena.chunkSize
    }

    deinit {
        for memory in chunks { memory.deallocate() }
        for memory in large { memory.deallocate() }
    }
}

/// An INSERT, UPDATE or DELETE a bulk apply runs once per row, with its values bound through
/// SQLite's C API.
///
/// GRDB's `StatementArguments` box every value before binding; at a quarter of a million rows
/// that cost about as much as SQLite's own work. The statement is prepared for its writer alone
/// (never taken from GRDB's statement cache, so nothing else rebinds it), and GRDB's `execute()`
/// still runs it, which keeps GRDB's bookkeeping and its errors.
final class RowStatement {
    private let statement: Statement
    private let handle: OpaquePointer
    private let parameterCount: Int
    private let arena = BindArena()

    init(_ db: Database, sql: String) throws {
        statement = try db.makeStatement(sql: sql)
        handle = statement.sqliteStatement
        parameterCount = Int(sqlite3_bind_parameter_count(handle))
        // Tells GRDB the arguments are bound, so that `execute()` runs with the bindings made below.
        statement.setUncheckedArguments(StatementArguments(Array(repeating: DatabaseValue.null, count: parameterCount)))
    }

    /// Runs the statement once with `values` for its parameters, in order.
    func execute<each V: RowValue>(_ values: repeat each V) throws {
        _ = sqlite3_reset(handle)
        arena.reset()
        var index: Int32 = 0
        for value in repeat each values {
            index += 1
            value.bind(to: handle, at: index, arena: arena)
        }
        assert(Int(index) == parameterCount, "\(statement.sql): \(index) values for \(parameterCount) parameters")
        try statement.execute()
    }

    /// Binds values in order.
    struct Binder {
        fileprivate let handle: OpaquePointer
        fileprivate let arena: BindArena
        fileprivate(set) var count: Int32 = 0

        mutating func bind<V: RowValue>(_ value: V) {
            count += 1
            value.bind(to: handle, at: count, arena: arena)
        }
    }

    /// Runs the statement once with the values `body` binds, in order (for multi-row inserts).
    func execute(binding body: (inout Binder) -> Void) throws {
        _ = sqlite3_reset(handle)
        arena.reset()
        var binder = Binder(handle: handle, arena: arena)
        body(&binder)
        assert(Int(binder.count) == parameterCount, "\(statement.sql): \(binder.count) values for \(parameterCount) parameters")
        try statement.execute()
    }
}

/// An INSERT of many rows, run as multi-row statements (`VALUES (…), (…), …`) of up to
/// `rowsPerStatement` rows, each prepared once per row count it is used with.
///
/// Every bulk write of the mirror goes through one of these: a statement per row had cost
/// several times the insert itself (setup per execution, and `sqlite_sequence` read and written
/// per statement for AUTOINCREMENT tables).
///
/// The statements are `INSERT OR FAIL`: a row that breaks a NOT NULL, CHECK or UNIQUE constraint
/// stops the statement with an error but leaves the rows it inserted before, so that SQLite needs
/// no statement journal to undo them (with the default, ABORT, every multi-row statement copied the
/// pages it changed into one). Callers run inside a transaction that an error rolls back whole;
/// foreign keys still abort the statement, as they do for any insert.
final class BatchedInsert {
    private let db: Database
    private let prefix: String
    private let suffix: String
    private let row: String
    let rowsPerStatement: Int
    private var statements: [Int: RowStatement] = [:]

    /// `into` is the table and its column list, e.g. `audit_log (at, actor)`; `suffix` follows the
    /// values (an `ON CONFLICT` clause, say). Nothing is prepared until rows are inserted.
    init(_ db: Database, into table: String, columns: Int, rowsPerStatement: Int, suffix: String = "") {
        self.db = db
        prefix = "INSERT OR FAIL INTO \(table) VALUES "
        self.suffix = suffix.isEmpty ? "" : " " + suffix
        row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        self.rowsPerStatement = rowsPerStatement
    }

    /// Inserts `rows` in order; `bind` binds one row's values, one per column.
    func insert<Rows: Collection>(_ rows: Rows, bind: (inout RowStatement.Binder, Rows.Element) -> Void) throws {
        var start = rows.startIndex
        while start != rows.endIndex {
            let end = rows.index(start, offsetBy: rowsPerStatement, limitedBy: rows.endIndex) ?? rows.endIndex
            try statement(rows: rows.distance(from: start, to: end)).execute { b in
                for row in rows[start..<end] { bind(&b, row) }
            }
            start = end
        }
    }

    private func statement(rows: Int) throws -> RowStatement {
        if let statement = statements[rows] { return statement }
        let statement = try RowStatement(db, sql: prefix + Array(repeating: row, count: rows).joined(separator: ", ") + suffix)
        statements[rows] = statement
        return statement
    }
}
