import CLDAP

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A NULL-terminated `char **` built from Swift strings, freed when the closure returns.
func withCStringArray<R>(_ strings: [String]?, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) throws -> R) rethrows -> R {
    guard let strings else { return try body(nil) }
    let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
    for (position, string) in strings.enumerated() { array[position] = strdup(string) }
    array[strings.count] = nil
    defer {
        for position in 0..<strings.count { free(array[position]) }
        array.deallocate()
    }
    return try body(array)
}

extension berval {
    /// The bytes a berval points at, copied.
    var bytes: [UInt8] {
        guard let base = bv_val, bv_len > 0 else { return [] }
        return base.withMemoryRebound(to: UInt8.self, capacity: Int(bv_len)) {
            Array(UnsafeBufferPointer(start: $0, count: Int(bv_len)))
        }
    }

    /// Runs `body` on the bytes a berval points at, without copying them.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        guard let base = bv_val, bv_len > 0 else { return body(UnsafeBufferPointer(start: nil, count: 0)) }
        return base.withMemoryRebound(to: UInt8.self, capacity: Int(bv_len)) {
            body(UnsafeBufferPointer(start: $0, count: Int(bv_len)))
        }
    }

    /// The berval as text (lossy for invalid UTF-8, which DNs and attribute names never are).
    var string: String {
        guard let base = bv_val, bv_len > 0 else { return "" }
        return base.withMemoryRebound(to: UInt8.self, capacity: Int(bv_len)) {
            String(decoding: UnsafeBufferPointer(start: $0, count: Int(bv_len)), as: UTF8.self)
        }
    }
}

/// A Swift `Duration` as a C `timeval`.
func makeTimeval(_ duration: Duration) -> timeval {
    let (seconds, attoseconds) = duration.components
    return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
}

extension Duration {
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// Reads and frees a C string libldap allocated.
func takeLDAPString(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    defer { ldap_memfree(pointer) }
    return String(cString: pointer)
}

/// Waits at most the operation timeout for the next message of a search and returns its type
/// and the message (the caller frees it). A timeout abandons the search and throws; so does a
/// failure of the connection.
func nextSearchMessage(_ ld: OpaquePointer, _ messageID: Int32, handle: LDAPHandle, target: String) throws -> (type: Int32, message: OpaquePointer?) {
    var message: OpaquePointer?
    var timeout = makeTimeval(handle.configuration.operationTimeout)
    switch ldap_result(ld, messageID, LDAP_MSG_ONE, &timeout, &message) {
    case 0:
        ldap_abandon_ext(ld, messageID, nil, nil)
        throw LDAPError(code: .timeout, operation: .search, target: target,
                        hint: "The server sent nothing for \(handle.configuration.operationTimeout); check its load, or raise the operation timeout.")
    case -1:
        throw handle.lastError(.search, target: target)
    case let type:
        return (type, message)
    }
}

/// Reads a search's final result message (and frees it): throws the server's error, or
/// hands the response controls to `body` (freed after it returns).
func withSearchResult<T>(_ ld: OpaquePointer, _ message: OpaquePointer?, handle: LDAPHandle, target: String,
                         _ body: (UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?) throws -> T) throws -> T {
    var code: Int32 = 0
    var diagnostic: UnsafeMutablePointer<CChar>?
    var controls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?
    let parseRC = ldap_parse_result(ld, message, &code, nil, &diagnostic, nil, &controls, 1)
    defer { if let controls { ldap_controls_free(controls) } }
    let diagnosticText = takeLDAPString(diagnostic)
    guard parseRC == LDAP_SUCCESS else { throw handle.error(parseRC, .search, target: target) }
    guard code == LDAP_SUCCESS else {
        let resultCode = LDAPResultCode(rawValue: code)
        throw LDAPError(code: resultCode, operation: .search, diagnosticMessage: diagnosticText, target: target,
                        hint: LDAPHandle.defaultHint(resultCode, .search))
    }
    return try body(controls)
}

/// The attribute names of the entry parsed last. The entries of one search repeat the same
/// names in the same order: a name with the same bytes as the one at its position is reused,
/// not made again, and the next entry reserves room for as many attributes.
struct AttributeNames {
    fileprivate var names: [String] = []
    /// How many leading `names` are known to differ from each other (ignoring case): an
    /// entry whose names repeat them in order adds those attributes without looking for them.
    fileprivate var distinct = 0
}

/// Parses one search entry message into an `LDAPEntry`, copying the values out of the
/// message's BER buffer.
func parseEntry(_ ld: OpaquePointer, _ message: OpaquePointer) -> LDAPEntry? {
    var names = AttributeNames()
    return parseEntry(ld, message, names: &names)
}

/// ``parseEntry(_:_:)``, reusing the names of the entry parsed before with the same `names`.
func parseEntry(_ ld: OpaquePointer, _ message: OpaquePointer, names: inout AttributeNames) -> LDAPEntry? {
    var ber: OpaquePointer?
    var dn = berval()
    guard ldap_get_dn_ber(ld, message, &ber, &dn) == LDAP_SUCCESS else { return nil }
    defer { if let ber { ber_free(ber, 0) } }
    var entry = LDAPEntry(dn: dn.string, capacity: names.names.count)
    var position = 0
    var repeatsPrefix = true
    while true {
        var name = berval()
        var values: UnsafeMutablePointer<berval>?
        let rc = ldap_get_attribute_ber(ld, message, ber, &name, &values)
        guard rc == LDAP_SUCCESS, name.bv_val != nil else { break }
        var list: [LDAPValue] = []
        if let values {
            var count = 0
            while values[count].bv_val != nil { count += 1 }
            list.reserveCapacity(count)
            for position in 0..<count { list.append(values[position].withBytes { LDAPValue(copying: $0) }) }
            ber_memfree(values)
        }
        if position < names.names.count, name.withBytes({ names.names[position].utf8.elementsEqual($0) }) {
            // Names that repeat the previous entry's distinct prefix cannot be in the entry yet.
            if repeatsPrefix && position < names.distinct {
                entry.appendAbsent(names.names[position], list)
            } else {
                entry.append(names.names[position], list)
            }
        } else {
            let attributeName = name.string
            if position < names.names.count { names.names[position] = attributeName } else { names.names.append(attributeName) }
            names.distinct = min(names.distinct, position)
            repeatsPrefix = false
            entry.append(attributeName, list)
        }
        position += 1
    }
    // `append` merged no repeated name: the names read are the entry's, each once.
    names.distinct = entry.attributes.count == position ? position : 0
    return entry
}
