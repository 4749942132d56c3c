/// The RFC 4530 `entryUUID` of a directory entry: the key of the sync stream, stable across
/// renames. Also holds other 16-byte identities (Active Directory's `objectGUID`).
public struct EntryUUID: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The 16 bytes in network order.
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses the text form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any case).
    public init?(_ text: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        var high: UInt8?
        for (position, character) in text.utf8.enumerated() {
            if character == UInt8(ascii: "-") {
                guard [8, 13, 18, 23].contains(position) else { return nil }
                continue
            }
            guard let nibble = Self.nibble(character) else { return nil }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil, text.utf8.count == 36 else { return nil }
        self.init(bytes: bytes)
    }

    /// Lower-case text form, as OpenLDAP prints `entryUUID`.
    public var description: String {
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if [4, 6, 8, 10].contains(index) { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The 32 hex digits of the bytes in order, as Active Directory's `<GUID=...>` DN form
    /// takes an `objectGUID`.
    public var hex: String { String(description.filter { $0 != "-" }) }

    /// The DN that names an Active Directory object by its `objectGUID`: `<GUID=hex>`.
    public var guidDN: String { "<GUID=\(hex)>" }

    /// Parses 389 Directory Server's `nsUniqueId` form, `xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx`
    /// (any case): the same 16 bytes its content-synchronization plugin sends as an entry's
    /// sync UUID.
    public init?(nsUniqueID text: String) {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.count == 4, groups.allSatisfy({ $0.utf8.count == 8 }) else { return nil }
        let digits = groups.joined()
        self.init("\(digits.prefix(8))-\(digits.dropFirst(8).prefix(4))-\(digits.dropFirst(12).prefix(4))-\(digits.dropFirst(16).prefix(4))-\(digits.dropFirst(20))")
    }

    /// 389 Directory Server's `nsUniqueId` form of these bytes (lower case; the server
    /// matches it in any case).
    public var nsUniqueID: String {
        let digits = Array(hex)
        return stride(from: 0, to: 32, by: 8).map { String(digits[$0..<$0 + 8]) }.joined(separator: "-")
    }

    public static func < (lhs: EntryUUID, rhs: EntryUUID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
