import AccessModel
import Foundation
import LDAPKit

/// A user entry after mapping: the clinic user as the directory describes it (its state
/// from the directory only), and what the reconcile needs to know about the entry.
public struct MappedUser: Sendable, Equatable {
    public var user: User
    /// The normalized DN.
    public var dn: String
    /// entryUUID / objectGUID text.
    public var directoryID: String?
    public var isProvider: Bool
    /// The health center a provider belongs to.
    public var providerHealthCenter: HealthCenterID?
    public var directoryState: DirectoryAccountState
    /// What was odd about the entry but did not stop it from mapping (several values of a
    /// single-valued attribute, text that is not UTF-8 or too long): reported, not skipped.
    public var notes: [MappingProblem] = []

    /// Moves the user out (no field of it copied), leaving an empty placeholder in its place.
    mutating func takeUser() -> User {
        var taken = Self.placeholder
        swap(&taken, &user)
        return taken
    }

    /// A user whose every text is short enough to be stored inline (nothing to retain or free).
    private static let placeholder = try! User(code: "-")
}

/// A directory group: its DN, `cn` and member DNs (normalized).
public struct DirectoryGroup: Sendable, Equatable {
    public var dn: String
    public var cn: String?
    public var members: [String]

    public init(dn: String, cn: String?, members: [String]) {
        self.dn = dn
        self.cn = cn
        self.members = members
    }
}

/// An entry the mapping could not handle: skipped (its stored user, if any, is kept as it
/// was) and reported once.
public struct MappingProblem: Error, Sendable, Hashable, CustomStringConvertible {
    public var dn: String
    public var message: String

    public init(dn: String, message: String) {
        self.dn = dn
        self.message = message
    }

    public var description: String { "\(dn): \(message)" }
}

/// DNs compared the way directories compare them: attribute types and values
/// case-insensitively, spaces around separators ignored.
public enum DN {
    /// A normalized form for comparisons and map keys.
    public static func normalize(_ dn: String) -> String {
        var dn = dn
        return dn.withUTF8 { bytes in normalizeASCII(bytes) } ?? normalizeCharacters(dn)
    }

    /// ``normalize(_:)`` for a DN of ASCII bytes only (nearly all DNs), byte by byte; nil when
    /// some byte is not ASCII or is a carriage return (which forms one character with a line
    /// feed), for ``normalizeCharacters(_:)``. Gives exactly what that gives for such DNs.
    private static func normalizeASCII(_ dn: UnsafeBufferPointer<UInt8>) -> String? {
        for byte in dn where byte >= 0x80 || byte == 0x0D { return nil }
        return String(unsafeUninitializedCapacity: dn.count) { result in
            var count = 0
            var escaped = false
            var pendingSpace = false
            var afterSeparator = true
            for byte in dn {
                let lower = (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
                if escaped {
                    result[count] = lower; count += 1
                    escaped = false
                    afterSeparator = false
                    continue
                }
                switch byte {
                case 0x20:  // space
                    pendingSpace = !afterSeparator
                case 0x2C, 0x3D, 0x2B:  // , = +
                    pendingSpace = false
                    afterSeparator = true
                    result[count] = byte; count += 1
                default:
                    // A pending space is always followed by this byte, so the result never outgrows the input.
                    if pendingSpace { result[count] = 0x20; count += 1 }
                    pendingSpace = false
                    afterSeparator = false
                    if byte == 0x5C { escaped = true }  // backslash
                    result[count] = lower; count += 1
                }
            }
            return count
        }
    }

    /// ``normalize(_:)`` character by character: the reference, and the path for non-ASCII DNs.
    static func normalizeCharacters(_ dn: String) -> String {
        var result = ""
        result.reserveCapacity(dn.utf8.count)
        var escaped = false
        var pendingSpace = false
        var afterSeparator = true
        for character in dn {
            if escaped {
                result.append(contentsOf: character.lowercased())
                escaped = false
                afterSeparator = false
                continue
            }
            switch character {
            case " ":
                pendingSpace = !afterSeparator
            case ",", "=", "+":
                pendingSpace = false
                afterSeparator = true
                result.append(character)
            default:
                if pendingSpace { result.append(" ") }
                pendingSpace = false
                afterSeparator = false
                if character == "\\" {
                    result.append("\\")
                    escaped = true
                } else {
                    result.append(contentsOf: character.lowercased())
                }
            }
        }
        return result
    }

    /// Whether `dn` is `base` or lies below it (compared normalized).
    public static func isWithin(_ dn: String, base: String) -> Bool {
        let entry = normalize(dn)
        let root = normalize(base)
        if root.isEmpty || entry == root { return true }
        return entry.hasSuffix("," + root)
    }

    /// The value of the first RDN (`cn=Ortho MOAs,ou=groups` → `Ortho MOAs`), unescaped.
    public static func firstValue(_ dn: String) -> String? {
        var value = ""
        var escaped = false
        var started = false
        for character in dn {
            if escaped { value.append(character); escaped = false; continue }
            if !started {
                if character == "=" { started = true }
                continue
            }
            if character == "\\" { escaped = true; continue }
            if character == "," || character == "+" { break }
            value.append(character)
        }
        return started ? value.trimmingCharacters(in: .whitespaces) : nil
    }
}
