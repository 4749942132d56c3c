import LDAPKit
import RosterConfig

/// How a directory names an entry for good, whatever its DN: the attribute Roster stores as
/// a user's directory identity, which must be the one the directory's change stream keys
/// its entries by, so that a deletion the stream reports (by that key alone) finds its user.
///
/// - OpenLDAP (and generic directories): `entryUUID`, RFC 4533's sync UUID.
/// - 389 Directory Server: `nsUniqueId`. Its content-synchronization plugin sends the
///   `nsUniqueId` bytes as the sync UUID; its `entryUUID` (a plugin of 389-ds 2.x, absent
///   from older servers and from entries made before it ran) is another value altogether.
/// - Active Directory: `objectGUID`, which DirSync reports deleted objects by.
///
/// All three are 16 bytes, held as ``EntryUUID`` and stored in its text form.
public struct DirectoryIdentity: Sendable {
    public let flavor: RosterConfiguration.Flavor

    public init(flavor: RosterConfiguration.Flavor) { self.flavor = flavor }

    /// The attribute to ask for.
    public var attribute: String {
        switch flavor {
        case .openldap, .generic: "entryUUID"
        case .ds389: "nsUniqueId"
        case .activedirectory: "objectGUID"
        }
    }

    /// The entry's identity; nil when it does not carry one that parses.
    public func id(of entry: LDAPEntry) -> EntryUUID? {
        switch flavor {
        case .openldap, .generic: entry.string("entryUUID").flatMap { EntryUUID($0) }
        case .ds389: entry.string("nsUniqueId").flatMap { EntryUUID(nsUniqueID: $0) }
        case .activedirectory: entry["objectGUID"].first.flatMap { EntryUUID(bytes: $0.bytes) }
        }
    }

    /// The entry's identity in the text form Roster stores (``EntryUUID/description``).
    /// OpenLDAP's `entryUUID` is already in that form and is taken as it is (every entry of a
    /// first load passes here).
    public func text(of entry: LDAPEntry) -> String? {
        switch flavor {
        case .openldap, .generic: entry.string("entryUUID")
        case .ds389, .activedirectory: id(of: entry)?.description
        }
    }

    /// An LDAP filter that matches the entry with identity `id`.
    public func filter(_ id: EntryUUID) -> String {
        switch flavor {
        case .openldap, .generic: "(entryUUID=\(id))"
        case .ds389: "(nsUniqueId=\(id.nsUniqueID))"
        case .activedirectory: "(objectGUID=\(id.bytes.map { byte in "\\" + String(byte, radix: 16).leftPadded(to: 2) }.joined()))"
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
