/// A name-like identifier: a string with its own type, so that a care venue's id is never
/// passed where a health center's is expected. Compares and sorts by its text.
public protocol StringIdentifier: RawRepresentable<String>, Sendable, Hashable, Comparable, CustomStringConvertible,
    ExpressibleByStringLiteral where StringLiteralType == String {
    init(rawValue: String)
}

extension StringIdentifier {
    public init(_ rawValue: String) { self.init(rawValue: rawValue) }
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Identifies a health center (a site), e.g. `HC1`.
public struct HealthCenterID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// Identifies a care venue (an operating room, a clinic).
public struct CareVenueID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// Identifies a provider (a clinician whose wait list users get access to).
public struct ProviderID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// Identifies a pool of providers.
public struct PoolID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// Identifies a group for its whole life (e.g. the directory entry's entryUUID), independent of its name.
public struct GroupID: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// Names a role, e.g. `Clinical Manager`.
public struct RoleName: StringIdentifier {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// A user's login. Two codes are the same user when they differ only in letter case.
///
/// ``rawValue`` keeps the spelling as given; ``key`` is the lowercased form that equality,
/// hashing and ordering use.
public struct UserCode: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The code as given, e.g. `JDoe`.
    public let rawValue: String
    /// The case-folded code, e.g. `jdoe`: the user's identity.
    public let key: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
        self.key = rawValue.lowercased()
    }

    public init(stringLiteral value: String) { self.init(value) }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.key < rhs.key }
    public var description: String { rawValue }
}
