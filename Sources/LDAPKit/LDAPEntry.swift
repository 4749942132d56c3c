/// One attribute value as the server sent it: bytes, with string access for the common case.
public struct LDAPValue: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }

    /// The value as UTF-8 text, or nil when it is not valid UTF-8.
    public var string: String? { String(validating: bytes, as: UTF8.self) }

    public var description: String { string ?? "<\(bytes.count) bytes>" }
}

/// A directory entry: its DN and attributes. Attribute names compare case-insensitively and
/// keep any options (`member;range=0-1499`) as part of the name.
public struct LDAPEntry: Sendable, Equatable {
    public var dn: String
    /// Attributes in the order the server sent them.
    public private(set) var attributes: [(name: String, values: [LDAPValue])]
    private var index: [String: Int]

    public init(dn: String, attributes: [(name: String, values: [LDAPValue])] = []) {
        self.dn = dn
        self.attributes = []
        self.index = [:]
        for (name, values) in attributes { append(name, values) }
    }

    /// All values of an attribute (empty when absent).
    public subscript(_ name: String) -> [LDAPValue] {
        index[name.lowercased()].map { attributes[$0].values } ?? []
    }

    /// The first value of an attribute as text, if present and valid UTF-8.
    public func string(_ name: String) -> String? { self[name].first?.string }

    /// All values of an attribute as text, skipping values that are not valid UTF-8.
    public func strings(_ name: String) -> [String] { self[name].compactMap(\.string) }

    /// Whether the entry carries the attribute.
    public func has(_ name: String) -> Bool { index[name.lowercased()] != nil }

    /// Adds values to an attribute (creating it when absent).
    public mutating func append(_ name: String, _ values: [LDAPValue]) {
        let key = name.lowercased()
        if let position = index[key] {
            attributes[position].values.append(contentsOf: values)
        } else {
            index[key] = attributes.count
            attributes.append((name, values))
        }
    }

    /// Replaces an attribute's values, or removes the attribute when `values` is nil.
    public mutating func set(_ name: String, _ values: [LDAPValue]?) {
        let key = name.lowercased()
        if let position = index[key] {
            if let values {
                attributes[position].values = values
            } else {
                attributes.remove(at: position)
                index = Dictionary(uniqueKeysWithValues: attributes.enumerated().map { ($1.name.lowercased(), $0) })
            }
        } else if let values {
            append(name, values)
        }
    }

    public static func == (lhs: LDAPEntry, rhs: LDAPEntry) -> Bool {
        lhs.dn == rhs.dn && lhs.attributes.count == rhs.attributes.count
            && zip(lhs.attributes, rhs.attributes).allSatisfy { $0.name.lowercased() == $1.name.lowercased() && $0.values == $1.values }
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
