import GRDB
import GRDBSQLite

/// A value bound straight through SQLite's C API.
protocol RowValue {
    func bind(to statement: OpaquePointer, at index: Int32)
}

/// SQLite copies the bytes before the bind call returns.
private let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

extension String: RowValue {
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32) {
        var string = self
        string.withUTF8 { bytes in
            if let base = bytes.baseAddress, bytes.count > 0 {
                _ = sqlite3_bind_text(statement, index, base, Int32(bytes.count), transient)
            } else {
                _ = sqlite3_bind_text(statement, index, "", 0, nil)  // '' (a nil pointer would bind NULL)
            }
        }
    }
}

extension Int: RowValue {
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32) { _ = sqlite3_bind_int64(statement, index, Int64(self)) }
}

extension Bool: RowValue {
    /// 1 or 0, as GRDB stores booleans.
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32) { _ = sqlite3_bind_int64(statement, index, self ? 1 : 0) }
}

extension Optional: RowValue where Wrapped: RowValue {
    @inline(__always)
    func bind(to statement: OpaquePointer, at index: Int32) {
        if let value = self { value.bind(to: statement, at: index) } else { _ = sqlite3_bind_null(statement, index) }
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
        var index: Int32 = 0
        for value in repeat each values {
            index += 1
            value.bind(to: handle, at: index)
        }
        assert(Int(index) == parameterCount, "\(statement.sql): \(index) values for \(parameterCount) parameters")
        try statement.execute()
    }

    /// Binds values in order.
    struct Binder {
        fileprivate let handle: OpaquePointer
        fileprivate(set) var count: Int32 = 0

        mutating func bind<V: RowValue>(_ value: V) {
            count += 1
            value.bind(to: handle, at: count)
        }
    }

    /// Runs the statement once with the values `body` binds, in order (for multi-row inserts).
    func execute(binding body: (inout Binder) -> Void) throws {
        _ = sqlite3_reset(handle)
        var binder = Binder(handle: handle)
        body(&binder)
        assert(Int(binder.count) == parameterCount, "\(statement.sql): \(binder.count) values for \(parameterCount) parameters")
        try statement.execute()
    }
}
