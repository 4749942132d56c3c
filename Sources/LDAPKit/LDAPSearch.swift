import CLDAP

struct SearchRequest: Sendable {
    var base: String
    var scope: LDAPScope
    var filter: String
    var attributes: [String]?
    var pageSize: Int?
    var controls: [RequestControl] = []
}

/// A request control sent with a search, e.g. Active Directory's Show Deleted
/// (1.2.840.113556.1.4.417).
public struct RequestControl: Sendable, Equatable {
    public var oid: String
    public var critical: Bool
    /// The BER-encoded value, or nil for a control without one.
    public var value: [UInt8]?

    public init(oid: String, critical: Bool = true, value: [UInt8]? = nil) {
        self.oid = oid
        self.critical = critical
        self.value = value
    }

    /// Active Directory's Show Deleted control: tombstones (`isDeleted: TRUE`) are returned too.
    public static let showDeleted = RequestControl(oid: "1.2.840.113556.1.4.417")
}

/// Creates libldap controls for the closure's duration (a NULL-terminated list, or nil
/// when there are none).
func withControls<R>(_ requests: [RequestControl], extra: UnsafeMutablePointer<LDAPControl>? = nil,
                     _ body: (UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?) throws -> R) throws -> R {
    var created: [UnsafeMutablePointer<LDAPControl>?] = []
    defer { for control in created { if let control { ldap_control_free(control) } } }
    for request in requests {
        var control: UnsafeMutablePointer<LDAPControl>?
        let rc: Int32 = withOptionalBerval(request.value) { value in
            ldap_control_create(request.oid, request.critical ? 1 : 0, value, 1, &control)
        }
        guard rc == LDAP_SUCCESS else {
            throw LDAPError(code: LDAPResultCode(rawValue: rc), operation: .search, target: request.oid,
                            hint: "The request control \(request.oid) could not be encoded.")
        }
        created.append(control)
    }
    var list = created
    if let extra { list.append(extra) }
    if list.isEmpty { return try body(nil) }
    list.append(nil)
    return try list.withUnsafeMutableBufferPointer { try body($0.baseAddress) }
}

/// The entries of one search, streamed as the server sends them. Iterate it once.
public struct LDAPSearchResults: AsyncSequence, Sendable {
    public typealias Element = LDAPEntry
    let handle: LDAPHandle
    let request: SearchRequest

    /// Entries are handed over in batches of this size.
    static let batchSize = 256
    /// Batches that may wait unread before the network read pauses.
    static let batchesAhead = 8

    public func makeAsyncIterator() -> Iterator {
        let channel = HandoffChannel<[LDAPEntry]>(capacity: Self.batchesAhead)
        let request = request
        handle.start { handle in
            do {
                try runPagedSearch(handle, request, channel: channel)
                channel.finish()
            } catch {
                channel.finish(throwing: error)
            }
        }
        return Iterator(channel: channel)
    }

    /// Collects all entries (for small results).
    public func collect() async throws -> [LDAPEntry] {
        var entries: [LDAPEntry] = []
        for try await entry in self { entries.append(entry) }
        return entries
    }

    public struct Iterator: AsyncIteratorProtocol {
        private let reader: BatchReader
        private var batch: [LDAPEntry] = []
        private var position = 0

        init(channel: HandoffChannel<[LDAPEntry]>) { reader = BatchReader(channel: channel) }

        public mutating func next() async throws -> LDAPEntry? {
            while position == batch.count {
                guard let next = try await reader.channel.next() else { return nil }
                batch = next
                position = 0
            }
            defer { position += 1 }
            return batch[position]
        }
    }

    /// Cancels the producer when the consumer drops the iterator early.
    final class BatchReader: Sendable {
        let channel: HandoffChannel<[LDAPEntry]>
        init(channel: HandoffChannel<[LDAPEntry]>) { self.channel = channel }
        deinit { channel.cancel() }
    }
}

/// Runs a (paged) search to the end on the handle's thread, sending batches of entries.
///
/// A page's entries are taken off the connection unparsed; the next page is requested as soon
/// as the page's final result arrives, and only then are the entries parsed and handed over,
/// so the server prepares the next page while this one is parsed. A search without paging
/// parses each entry as it arrives (there is no next page to overlap, and holding the whole
/// result unparsed would cost its size in memory).
private func runPagedSearch(_ handle: LDAPHandle, _ request: SearchRequest, channel: HandoffChannel<[LDAPEntry]>) throws {
    let ld = handle.raw
    let target = "base \(request.base), filter \(request.filter)"
    var batch: [LDAPEntry] = []
    batch.reserveCapacity(LDAPSearchResults.batchSize)
    var names = AttributeNames()
    // This page's entry messages, parsed from `nextToParse` on; the rest are freed on the way out.
    var unparsed: [OpaquePointer] = []
    var nextToParse = 0
    // The search whose results are still arriving, abandoned if this function leaves early.
    var outstanding: Int32? = nil
    defer {
        for message in unparsed[nextToParse...] { ldap_msgfree(message) }
        if let outstanding { ldap_abandon_ext(ld, outstanding, nil, nil) }
    }

    /// Parses one entry message (and frees it); false when the consumer has gone.
    func deliver(_ message: OpaquePointer) throws -> Bool {
        defer { ldap_msgfree(message) }
        if var entry = parseEntry(ld, message, names: &names) {
            try completeRangedAttributes(&entry, handle: handle)
            batch.append(entry)
        }
        guard batch.count >= LDAPSearchResults.batchSize else { return true }
        guard channel.send(batch) else { return false }
        batch.removeAll(keepingCapacity: true)
        return true
    }

    outstanding = try startSearchPage(handle, request, cookie: nil, target: target)
    while let messageID = outstanding {
        var cookie: [UInt8]? = nil
        resultLoop: while true {
            let (type, message) = try nextSearchMessage(ld, messageID, handle: handle, target: target)
            switch type {
            case Int32(LDAP_RES_SEARCH_ENTRY):
                if request.pageSize == nil {
                    guard try deliver(message!) else { return }
                } else {
                    unparsed.append(message!)
                }
            case Int32(LDAP_RES_SEARCH_RESULT):
                outstanding = nil
                try withSearchResult(ld, message, handle: handle, target: target) { controls in
                    guard request.pageSize != nil, let found = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, controls, nil) else { return }
                    var count: ber_int_t = 0
                    var next = berval()
                    if ldap_parse_pageresponse_control(ld, found, &count, &next) == LDAP_SUCCESS {
                        let bytes = next.bytes
                        if let value = next.bv_val { ber_memfree(value) }
                        cookie = bytes.isEmpty ? nil : bytes
                    }
                }
                break resultLoop
            default:
                ldap_msgfree(message)  // references and anything unexpected
            }
        }
        if let cookie { outstanding = try startSearchPage(handle, request, cookie: cookie, target: target) }
        while nextToParse < unparsed.count {
            let message = unparsed[nextToParse]
            nextToParse += 1
            guard try deliver(message) else { return }
        }
        unparsed.removeAll(keepingCapacity: true)
        nextToParse = 0
        if !batch.isEmpty {
            guard channel.send(batch) else { return }
            batch.removeAll(keepingCapacity: true)
        }
    }
}

/// Sends one page's search request (with the paged-results control when the request pages)
/// and returns its message id.
private func startSearchPage(_ handle: LDAPHandle, _ request: SearchRequest, cookie: [UInt8]?, target: String) throws -> Int32 {
    let ld = handle.raw
    var pageControl: UnsafeMutablePointer<LDAPControl>?
    if let pageSize = request.pageSize {
        let rc: Int32 = withOptionalBerval(cookie) { cookiePointer in
            ldap_create_page_control(ld, ber_int_t(pageSize), cookiePointer, 1, &pageControl)
        }
        guard rc == LDAP_SUCCESS else { throw handle.error(rc, .search, target: target) }
    }
    defer { if let pageControl { ldap_control_free(pageControl) } }

    var messageID: Int32 = 0
    let searchRC: Int32 = try withCStringArray(request.attributes) { attributes in
        try withControls(request.controls, extra: pageControl) { controlList in
            ldap_search_ext(ld, request.base, request.scope.raw, request.filter, attributes, 0,
                            controlList, nil, nil, 0, &messageID)
        }
    }
    guard searchRC == LDAP_SUCCESS else { throw handle.error(searchRC, .search, target: target) }
    return messageID
}

func withOptionalBerval<R>(_ bytes: [UInt8]?, _ body: (UnsafeMutablePointer<berval>?) -> R) -> R {
    guard var bytes else { return body(nil) }
    return bytes.withUnsafeMutableBytes { buffer in
        var value = cldap_berval(buffer.baseAddress, ber_len_t(buffer.count))
        return body(&value)
    }
}

/// Replaces attributes returned in ranges (`member;range=0-1499`) by all their values
/// under the plain name, reading the remaining ranges with base searches on the same
/// handle (Active Directory's ranged retrieval).
private func completeRangedAttributes(_ entry: inout LDAPEntry, handle: LDAPHandle) throws {
    // Only a name with an option (`;`) can be ranged: most entries have none, so skip the parse.
    guard entry.attributes.contains(where: { $0.name.utf8.contains(0x3B) }) else { return }
    let ranged = entry.attributes.compactMap { attribute in
        AttributeRange(attributeName: attribute.name).map { (attribute.name, $0) }
    }
    guard !ranged.isEmpty else { return }
    for (fullName, range) in ranged {
        var values = entry[fullName]
        var current = range
        while let nextRequest = current.nextRequest {
            let part = try readRangedPart(handle, dn: entry.dn, request: nextRequest, base: range.attribute)
            guard let part else { break }
            values.append(contentsOf: part.values)
            current = part.range
        }
        entry.set(fullName, nil)
        entry.append(range.attribute, values)
    }
}

private func readRangedPart(_ handle: LDAPHandle, dn: String, request: String, base: String) throws -> (values: [LDAPValue], range: AttributeRange)? {
    let ld = handle.raw
    var messageID: Int32 = 0
    let rc: Int32 = withCStringArray([request]) { attributes in
        ldap_search_ext(ld, dn, LDAPScope.base.raw, "(objectClass=*)", attributes, 0, nil, nil, nil, 0, &messageID)
    }
    guard rc == LDAP_SUCCESS else { throw handle.error(rc, .read, target: dn) }
    var found: (values: [LDAPValue], range: AttributeRange)?
    while true {
        var message: OpaquePointer?
        var timeout = makeTimeval(handle.configuration.operationTimeout)
        let type = ldap_result(ld, messageID, LDAP_MSG_ONE, &timeout, &message)
        switch type {
        case 0:
            ldap_abandon_ext(ld, messageID, nil, nil)
            throw LDAPError(code: .timeout, operation: .read, target: "\(request) of \(dn)")
        case -1:
            throw handle.lastError(.read, target: dn)
        case Int32(LDAP_RES_SEARCH_ENTRY):
            if let entry = parseEntry(ld, message!) {
                for attribute in entry.attributes {
                    if let range = AttributeRange(attributeName: attribute.name), range.attribute.lowercased() == base.lowercased() {
                        found = (attribute.values, range)
                    }
                }
            }
            ldap_msgfree(message)
        case Int32(LDAP_RES_SEARCH_RESULT):
            var code: Int32 = 0
            _ = ldap_parse_result(ld, message, &code, nil, nil, nil, nil, 1)
            guard code == LDAP_SUCCESS else { throw handle.error(code, .read, target: "\(request) of \(dn)") }
            return found
        default:
            ldap_msgfree(message)
        }
    }
}
