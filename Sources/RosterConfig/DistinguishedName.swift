/// An LDAP distinguished name (RFC 4514), parsed and normalized.
///
/// The normalized form has lower-cased attribute types, no spaces around `=`, `,` and `+`,
/// the attributes of a multi-valued RDN in a fixed order, and values escaped one canonical
/// way (`\,` and `\2C` both become `\,`). Two names are equal when their normalized forms
/// are equal ignoring letter case: the naming attributes of directories (`cn`, `ou`, `dc`,
/// `uid`, `o`, `l`) all compare case-insensitively.
public struct DistinguishedName: Sendable, Hashable, CustomStringConvertible {
    /// One `type=value` pair of a relative distinguished name.
    public struct Attribute: Sendable, Hashable {
        /// The attribute type, lower-cased: `cn`, `ou`, or a numeric OID.
        public var type: String
        /// The value with escapes resolved; for a `#`-hex value, the hex digits lower-cased.
        public var value: String
        /// Whether the value was given as `#` followed by the hex of its BER encoding.
        public var isHexEncoded: Bool

        public init(type: String, value: String, isHexEncoded: Bool = false) {
            self.type = type.lowercased()
            self.value = value
            self.isHexEncoded = isHexEncoded
        }

        var normalized: String {
            type + "=" + (isHexEncoded ? "#" + value : DistinguishedName.escape(value))
        }
    }

    /// The relative distinguished names, most specific first (`cn=a,ou=b` gives `cn=a`, `ou=b`).
    /// Each holds one attribute, or several for a multi-valued RDN (`cn=a+uid=b`).
    public let rdns: [[Attribute]]

    /// Parses `text` as an RFC 4514 string. Spaces around `=`, `,` and `+` are ignored;
    /// `\,` style and `\2C` style escapes are both understood.
    public init(parsing text: String) throws(DistinguishedNameError) {
        var parser = Parser(bytes: Array(text.utf8))
        rdns = try parser.parse()
    }

    public init(rdns: [[Attribute]]) {
        self.rdns = rdns.map { $0.sorted { ($0.type, $0.value) < ($1.type, $1.value) } }
    }

    /// The canonical string, e.g. `cn=Smith\, John,ou=people,dc=clinic,dc=example`.
    public var normalized: String {
        rdns.map(Self.normalized(rdn:)).joined(separator: ",")
    }

    public var description: String { normalized }

    /// The name one level up (`ou=b,dc=c` for `cn=a,ou=b,dc=c`); nil for the empty name.
    public var parent: DistinguishedName? {
        rdns.isEmpty ? nil : DistinguishedName(rdns: Array(rdns.dropFirst()))
    }

    /// Whether this name is `base` itself or lies below it.
    public func isWithin(_ base: DistinguishedName) -> Bool {
        guard rdns.count >= base.rdns.count else { return false }
        return zip(rdns.suffix(base.rdns.count), base.rdns).allSatisfy { Self.key(rdn: $0) == Self.key(rdn: $1) }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.rdns.count == rhs.rdns.count && lhs.isWithin(rhs)
    }

    public func hash(into hasher: inout Hasher) {
        for rdn in rdns { hasher.combine(Self.key(rdn: rdn)) }
    }

    private static func normalized(rdn: [Attribute]) -> String {
        rdn.sorted { ($0.type, $0.value.lowercased()) < ($1.type, $1.value.lowercased()) }
            .map(\.normalized).joined(separator: "+")
    }

    private static func key(rdn: [Attribute]) -> String { normalized(rdn: rdn).lowercased() }

    /// Escapes a value for a DN string (RFC 4514 section 2.4).
    static func escape(_ value: String) -> String {
        var out = ""
        let scalars = Array(value.unicodeScalars)
        for (index, scalar) in scalars.enumerated() {
            switch scalar {
            case ",", "+", "\"", "\\", "<", ">", ";":
                out += "\\" + String(scalar)
            case "\0":
                out += "\\00"
            case "#" where index == 0, " " where index == 0 || index == scalars.count - 1:
                out += "\\" + String(scalar)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpaces() {
            while current == UInt8(ascii: " ") { index += 1 }
        }

        func fail(_ message: String) -> DistinguishedNameError {
            DistinguishedNameError(message: message, offset: index)
        }

        mutating func parse() throws(DistinguishedNameError) -> [[Attribute]] {
            skipSpaces()
            if current == nil { return [] }
            var rdns: [[Attribute]] = []
            while true {
                var rdn: [Attribute] = []
                while true {
                    rdn.append(try attribute())
                    guard current == UInt8(ascii: "+") else { break }
                    index += 1
                }
                rdns.append(rdn)
                guard let byte = current else { return rdns }
                guard byte == UInt8(ascii: ",") else {
                    throw fail("expected ',' between RDNs, found '\(Character(Unicode.Scalar(byte)))'")
                }
                index += 1
            }
        }

        mutating func attribute() throws(DistinguishedNameError) -> Attribute {
            skipSpaces()
            let type = try attributeType()
            skipSpaces()
            guard current == UInt8(ascii: "=") else {
                throw fail("expected '=' after the attribute type '\(type)'")
            }
            index += 1
            skipSpaces()
            if current == UInt8(ascii: "#") {
                index += 1
                let start = index
                while let byte = current, byte.isHexDigit { index += 1 }
                let hex = String(decoding: bytes[start..<index], as: UTF8.self).lowercased()
                skipSpaces()
                guard !hex.isEmpty, hex.count.isMultiple(of: 2), current == nil || isSeparator(current!) else {
                    throw fail("the value of '\(type)' starts with '#' but is not hex; write '\\#' for a literal '#'")
                }
                return Attribute(type: type, value: hex, isHexEncoded: true)
            }
            return Attribute(type: type, value: try value(of: type))
        }

        mutating func attributeType() throws(DistinguishedNameError) -> String {
            let start = index
            guard let first = current, first.isLetter || first.isDigit else {
                throw fail("expected an attribute type such as 'cn', 'ou' or 'dc'")
            }
            if first.isLetter {
                while let byte = current, byte.isLetter || byte.isDigit || byte == UInt8(ascii: "-") { index += 1 }
            } else {
                while let byte = current, byte.isDigit || byte == UInt8(ascii: ".") { index += 1 }
                let oid = String(decoding: bytes[start..<index], as: UTF8.self)
                let arcs = oid.split(separator: ".", omittingEmptySubsequences: false)
                guard arcs.count >= 2, arcs.allSatisfy({ !$0.isEmpty && ($0 == "0" || !$0.hasPrefix("0")) }) else {
                    throw DistinguishedNameError(message: "'\(oid)' is not a numeric OID", offset: start)
                }
            }
            return String(decoding: bytes[start..<index], as: UTF8.self).lowercased()
        }

        func isSeparator(_ byte: UInt8) -> Bool { byte == UInt8(ascii: ",") || byte == UInt8(ascii: "+") }

        mutating func value(of type: String) throws(DistinguishedNameError) -> String {
            var value: [UInt8] = []
            var kept = 0  // length without trailing unescaped spaces
            while let byte = current, !isSeparator(byte) {
                switch byte {
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let next = current else { throw fail("the DN ends with a lone '\\'") }
                    if next.isHexDigit, index + 1 < bytes.count, bytes[index + 1].isHexDigit {
                        value.append(UInt8(String(decoding: bytes[index...index + 1], as: UTF8.self), radix: 16)!)
                        index += 2
                    } else if Array(",+\"\\<>;=# ".utf8).contains(next) {
                        value.append(next)
                        index += 1
                    } else {
                        throw fail("'\\\(Character(Unicode.Scalar(next)))' is not a valid escape; escape special characters as '\\,' or as two hex digits like '\\2C'")
                    }
                    kept = value.count
                case UInt8(ascii: "\""), UInt8(ascii: ";"), UInt8(ascii: "<"), UInt8(ascii: ">"), 0:
                    throw fail("the character '\(Character(Unicode.Scalar(byte)))' in the value of '\(type)' must be escaped with a backslash")
                default:
                    value.append(byte)
                    index += 1
                    if byte != UInt8(ascii: " ") { kept = value.count }
                }
            }
            value.removeLast(value.count - kept)
            guard !value.isEmpty else { throw fail("the attribute '\(type)' has an empty value") }
            guard let text = String(validating: value, as: UTF8.self) else {
                throw fail("the value of '\(type)' is not valid UTF-8 after resolving its hex escapes")
            }
            return text
        }
    }
}

/// Why a string is not a distinguished name.
public struct DistinguishedNameError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, as a sentence fragment.
    public var message: String
    /// The UTF-8 offset in the text where parsing stopped.
    public var offset: Int

    public var description: String { message }
}

extension UInt8 {
    fileprivate var isLetter: Bool { (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) }
    fileprivate var isDigit: Bool { (0x30...0x39).contains(self) }
    fileprivate var isHexDigit: Bool { isDigit || (0x41...0x46).contains(self) || (0x61...0x66).contains(self) }
}
