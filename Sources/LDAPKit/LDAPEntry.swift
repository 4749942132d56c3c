/// One attribute value as the server sent it: bytes, with string access for the common case.
///
/// A value that is valid UTF-8 (almost every value) is held as a `String`, which keeps short
/// values inline without a heap allocation of their own; other values keep their bytes.
public struct LDAPValue: Hashable, Sendable, CustomStringConvertible {
    private enum Storage: Sendable {
        case text(String)
        case binary([UInt8])
    }
    private let storage: Storage

    public init(_ bytes: [UInt8]) {
        if let text = String(validating: bytes, as: UTF8.self) {
            storage = .text(text)
        } else {
            storage = .binary(bytes)
        }
    }

    public init(_ string: String) { storage = .text(string) }

    /// A value copied from a buffer (a libldap berval).
    init(copying buffer: UnsafeBufferPointer<UInt8>) {
        // Most values are ASCII, which is valid UTF-8: found with one pass over the bytes, they
        // skip the standard library's generic validation (which looks up type metadata per call).
        var bits: UInt8 = 0
        for byte in buffer { bits |= byte }
        if bits < 0x80 {
            storage = .text(String(decoding: buffer, as: UTF8.self))
        } else if let text = String(validating: buffer, as: UTF8.self) {
            storage = .text(text)
        } else {
            storage = .binary(Array(buffer))
        }
    }

    /// The value's bytes.
    public var bytes: [UInt8] {
        switch storage {
        case .text(let text): Array(text.utf8)
        case .binary(let bytes): bytes
        }
    }

    /// The value as UTF-8 text, or nil when it is not valid UTF-8.
    public var string: String? {
        if case .text(let text) = storage { return text }
        return nil
    }

    public var description: String {
        switch storage {
        case .text(let text): text
        case .binary(let bytes): "<\(bytes.count) bytes>"
        }
    }

    /// Values are equal when their bytes are (not when their text is canonically equivalent).
    public static func == (lhs: LDAPValue, rhs: LDAPValue) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.text(let a), .text(let b)): a.utf8.elementsEqual(b.utf8)
        case (.binary(let a), .binary(let b)): a == b
        default: false  // valid and invalid UTF-8 never have the same bytes
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch storage {
        case .text(let text): for byte in text.utf8 { hasher.combine(byte) }
        case .binary(let bytes): for byte in bytes { hasher.combine(byte) }
        }
    }
}

/// A directory entry: its DN and attributes. Attribute names compare case-insensitively and
/// keep any options (`member;range=0-1499`) as part of the name.
///
/// Entries hold a dozen attributes or so: a lookup compares names in place (ASCII letters
/// case-insensitively, anything else exactly after lower-casing) instead of keeping an index.
public struct LDAPEntry: Sendable, Equatable {
    public var dn: String
    /// Attributes in the order the server sent them.
    public private(set) var attributes: [(name: String, values: [LDAPValue])]
    /// Whether every attribute name is ASCII, as RFC 4512 has them (then a lookup by an ASCII
    /// name compares lengths first and bytes after, with no lower-casing).
    private var namesAreASCII = true

    /// An entry with no attributes yet, with room for `capacity` of them.
    init(dn: String, capacity: Int) {
        self.dn = dn
        attributes = []
        attributes.reserveCapacity(capacity)
    }

    public init(dn: String, attributes: [(name: String, values: [LDAPValue])] = []) {
        self.dn = dn
        self.attributes = []
        self.attributes.reserveCapacity(attributes.count)
        for (name, values) in attributes { append(name, values) }
    }

    /// The position of an attribute, compared case-insensitively.
    private func position(of name: String) -> Int? {
        if namesAreASCII && Self.isASCII(name) {
            let length = name.utf8.count
            for index in attributes.indices where attributes[index].name.utf8.count == length
                && Self.asciiNamesMatch(attributes[index].name, name) { return index }
            return nil
        }
        for index in attributes.indices where Self.namesMatch(attributes[index].name, name) { return index }
        return nil
    }

    private static func isASCII(_ name: String) -> Bool { name.utf8.allSatisfy { $0 < 0x80 } }

    /// Whether two ASCII names of the same length are the same ignoring letter case.
    private static func asciiNamesMatch(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8) { p, q in p == q || (p | 0x20 == q | 0x20 && (0x61...0x7A).contains(p | 0x20)) }
    }

    /// Whether two attribute names are the same ignoring letter case: ASCII names byte by byte
    /// (``asciiNamesMatch(_:_:)``), others after lower-casing.
    static func namesMatch(_ a: String, _ b: String) -> Bool {
        if isASCII(a) && isASCII(b) { return a.utf8.count == b.utf8.count && asciiNamesMatch(a, b) }
        return a.lowercased() == b.lowercased()
    }

    /// All values of an attribute (empty when absent).
    public subscript(_ name: String) -> [LDAPValue] {
        position(of: name).map { attributes[$0].values } ?? []
    }

    /// The first value of an attribute as text, if present and valid UTF-8.
    public func string(_ name: String) -> String? {
        guard let index = position(of: name) else { return nil }
        return attributes[index].values.first?.string
    }

    /// All values of an attribute as text, skipping values that are not valid UTF-8.
    public func strings(_ name: String) -> [String] { self[name].compactMap(\.string) }

    /// Whether the entry carries the attribute.
    public func has(_ name: String) -> Bool { position(of: name) != nil }

    /// Adds values to an attribute (creating it when absent).
    public mutating func append(_ name: String, _ values: [LDAPValue]) {
        if let index = position(of: name) {
            attributes[index].values.append(contentsOf: values)
        } else {
            if namesAreASCII && !Self.isASCII(name) { namesAreASCII = false }
            attributes.append((name, values))
        }
    }

    /// Adds an attribute the caller knows the entry does not have yet (no lookup).
    mutating func appendAbsent(_ name: String, _ values: [LDAPValue]) {
        if namesAreASCII && !Self.isASCII(name) { namesAreASCII = false }
        attributes.append((name, values))
    }

    /// Replaces an attribute's values, or removes the attribute when `values` is nil.
    public mutating func set(_ name: String, _ values: [LDAPValue]?) {
        if let index = position(of: name) {
            if let values {
                attributes[index].values = values
            } else {
                attributes.remove(at: index)
            }
        } else if let values {
            append(name, values)
        }
    }

    public static func == (lhs: LDAPEntry, rhs: LDAPEntry) -> Bool {
        lhs.dn == rhs.dn && lhs.attributes.count == rhs.attributes.count
            && zip(lhs.attributes, rhs.attributes).allSatisfy { namesMatch($0.name, $1.name) && $0.values == $1.values }
    }
}

/// Search scope.
public enum LDAPScope: Sendable {
    case base, oneLevel, subtree

    var raw: Int32 {
        switch self {
        case .base: 0  // LDAP_SCOPE_BASE
        case .oneLevel: 1  // LDAP_SCOPE_ONELEVEL
        case .subtree: 2  // LDAP_SCOPE_SUBTREE
        }
    }
}
