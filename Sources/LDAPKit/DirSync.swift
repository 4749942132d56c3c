import CLDAP

/// Flags of Active Directory's DirSync request control.
public struct DirSyncFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Check read access per object and attribute instead of requiring the "Replicating
    /// Directory Changes" right (LDAP_DIRSYNC_OBJECT_SECURITY).
    public static let objectSecurity = DirSyncFlags(rawValue: 0x1)
    /// Parents before children (LDAP_DIRSYNC_ANCESTORS_FIRST_ORDER).
    public static let ancestorsFirst = DirSyncFlags(rawValue: 0x800)
}

/// One answer to a DirSync search: the objects changed since the cookie (only their
/// changed attributes, plus `objectGUID`; deleted objects as tombstones with
/// `isDeleted: TRUE`), the cookie to send next, and whether more changes wait.
public struct DirSyncResult: Sendable {
    public var entries: [LDAPEntry]
    public var cookie: [UInt8]
    public var moreResults: Bool
}

extension LDAPConnection {
    /// The OID of the DirSync control.
    public static let dirSyncOID = "1.2.840.113556.1.4.841"

    /// Asks Active Directory (or Samba) for the objects under the naming context `base`
    /// that changed since `cookie` (all of them when nil), with DirSync
    /// (1.2.840.113556.1.4.841). Call again with the returned cookie while `moreResults`.
    public func dirSync(base: String, filter: String, attributes: [String], cookie: [UInt8]?,
                        flags: DirSyncFlags = [], maxBytes: Int = 1 << 20) async throws -> DirSyncResult {
        try await handle.perform { handle in
            try runDirSync(handle, base: base, filter: filter, attributes: attributes, cookie: cookie, flags: flags, maxBytes: maxBytes)
        }
    }
}

private func runDirSync(_ handle: LDAPHandle, base: String, filter: String, attributes: [String], cookie: [UInt8]?,
                        flags: DirSyncFlags, maxBytes: Int) throws -> DirSyncResult {
    let ld = handle.raw
    let target = "DirSync of \(base), filter \(filter)"
    var encoded: UnsafeMutablePointer<berval>?
    let cookieBytes = cookie ?? []
    let encodeRC = cookieBytes.withUnsafeBytes { buffer in
        cldap_encode_dirsync_request(flags.rawValue, Int32(maxBytes), buffer.baseAddress, ber_len_t(buffer.count), &encoded)
    }
    guard encodeRC == LDAP_SUCCESS, let encoded else {
        throw LDAPError(code: LDAPResultCode(rawValue: encodeRC), operation: .search, target: target,
                        hint: "The DirSync request control could not be encoded.")
    }
    defer { ber_bvfree(encoded) }
    let control = RequestControl(oid: LDAPConnection.dirSyncOID, critical: true, value: encoded.pointee.bytes)

    var messageID: Int32 = 0
    let searchRC: Int32 = try withCStringArray(attributes) { list in
        try withControls([control]) { controls in
            ldap_search_ext(ld, base, LDAPScope.subtree.raw, filter, list, 0, controls, nil, nil, 0, &messageID)
        }
    }
    guard searchRC == LDAP_SUCCESS else { throw handle.error(searchRC, .search, target: target) }

    var entries: [LDAPEntry] = []
    while true {
        let (type, message) = try nextSearchMessage(ld, messageID, handle: handle, target: target)
        switch type {
        case Int32(LDAP_RES_SEARCH_ENTRY):
            if let entry = parseEntry(ld, message!) { entries.append(entry) }
            ldap_msgfree(message)
        case Int32(LDAP_RES_SEARCH_RESULT):
            return try withSearchResult(ld, message, handle: handle, target: target) { controls in
                guard let found = ldap_control_find(LDAPConnection.dirSyncOID, controls, nil) else {
                    throw LDAPError(code: .decodingError, operation: .search, target: target,
                                    hint: "The server answered without a DirSync response control; it may not be Active Directory.")
                }
                var more: Int32 = 0
                var next: UnsafeMutablePointer<berval>?
                guard cldap_decode_dirsync_response(&found.pointee.ldctl_value, &more, &next) == LDAP_SUCCESS, let next else {
                    throw LDAPError(code: .decodingError, operation: .search, target: target,
                                    hint: "The server's DirSync response control could not be decoded.")
                }
                defer { ber_bvfree(next) }
                return DirSyncResult(entries: entries, cookie: next.pointee.bytes, moreResults: more != 0)
            }
        default:
            ldap_msgfree(message)
        }
    }
}
