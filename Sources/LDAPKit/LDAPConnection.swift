import CLDAP

#if canImport(Glibc)
import Glibc
#endif

/// An open, bound connection to a directory. Operations are async; libldap's blocking
/// calls run on the connection's own thread, one at a time.
public final class LDAPConnection: Sendable {
    let handle: LDAPHandle

    /// The configuration the connection was opened with.
    public var configuration: LDAPConfiguration { handle.configuration }

    init(handle: LDAPHandle) { self.handle = handle }

    /// Connects, sets up TLS and binds as configured.
    public static func connect(_ configuration: LDAPConfiguration) async throws -> LDAPConnection {
        LDAPConnection(handle: try await LDAPHandle.open(configuration, label: "connection", readAhead: true))
    }

    /// Whether the socket is read in blocks through liblber's read-ahead layer (it is, for every
    /// connection opened with ``connect(_:)``): one read(2) per block instead of two per message.
    public var readsAhead: Bool {
        get async { (try? await handle.perform { cldap_reads_ahead($0.raw) == 1 }) ?? false }
    }

    /// Closes the connection. Later operations fail.
    public func close() async {
        _ = try? await handle.perform { $0.closeNow() }
    }

    /// Searches and streams the entries as they arrive, page by page with the paged-results
    /// control (RFC 2696) when `pageSize` is set. Only a few hundred entries are held at a
    /// time: the read from the server waits while the consumer is behind.
    ///
    /// Attributes retrieved in ranges (Active Directory's `member;range=0-1499`) are
    /// completed with further reads and returned under their plain name.
    public func search(
        base: String,
        scope: LDAPScope = .subtree,
        filter: String = "(objectClass=*)",
        attributes: [String]? = nil,
        pageSize: Int? = 1000,
        controls: [RequestControl] = []
    ) -> LDAPSearchResults {
        LDAPSearchResults(handle: handle, request: SearchRequest(
            base: base, scope: scope, filter: filter, attributes: attributes, pageSize: pageSize, controls: controls))
    }

    /// Reads one entry by DN; nil when it does not exist.
    public func read(_ dn: String, attributes: [String]? = nil) async throws -> LDAPEntry? {
        do {
            var found: LDAPEntry?
            for try await entry in search(base: dn, scope: .base, attributes: attributes, pageSize: nil) {
                found = entry
            }
            return found
        } catch let error as LDAPError where error.code == .noSuchObject {
            return nil
        }
    }

    /// All values of one attribute of an entry, following ranged retrieval to the end.
    public func readAllValues(of attribute: String, dn: String) async throws -> [LDAPValue] {
        try await read(dn, attributes: [attribute])?[attribute] ?? []
    }

    /// The authorization identity the server sees for this connection (RFC 4532), e.g.
    /// `dn:cn=admin,dc=example,dc=org`; empty for anonymous.
    public func whoAmI() async throws -> String {
        try await handle.perform { handle in
            var identity: UnsafeMutablePointer<berval>?
            let rc = ldap_whoami_s(handle.raw, &identity, nil, nil)
            guard rc == LDAP_SUCCESS else { throw handle.error(rc, .whoAmI) }
            defer { if let identity { ber_bvfree(identity) } }
            return identity?.pointee.string ?? ""
        }
    }

    /// Applies modifications to one entry.
    public func modify(_ dn: String, _ modifications: [LDAPModification]) async throws {
        try await handle.perform { handle in
            let rc = withLDAPMods(modifications.map { ($0.operation.raw, $0.attribute, $0.values) }) { mods in
                ldap_modify_ext_s(handle.raw, dn, mods, nil, nil)
            }
            guard rc == LDAP_SUCCESS else { throw handle.error(rc, .modify, target: dn) }
        }
    }

    /// Adds an entry.
    public func add(_ dn: String, _ attributes: [(String, [LDAPValue])]) async throws {
        try await handle.perform { handle in
            let rc = withLDAPMods(attributes.map { (LDAP_MOD_ADD, $0.0, $0.1) }) { mods in
                ldap_add_ext_s(handle.raw, dn, mods, nil, nil)
            }
            guard rc == LDAP_SUCCESS else { throw handle.error(rc, .add, target: dn) }
        }
    }

    /// Deletes an entry.
    public func delete(_ dn: String) async throws {
        try await handle.perform { handle in
            let rc = ldap_delete_ext_s(handle.raw, dn, nil, nil)
            guard rc == LDAP_SUCCESS else { throw handle.error(rc, .delete, target: dn) }
        }
    }
}

/// One change to an attribute in a modify request.
public struct LDAPModification: Sendable {
    public enum Operation: Sendable {
        case add, delete, replace
        var raw: Int32 {
            switch self {
            case .add: LDAP_MOD_ADD
            case .delete: LDAP_MOD_DELETE
            case .replace: LDAP_MOD_REPLACE
            }
        }
    }

    public var operation: Operation
    public var attribute: String
    public var values: [LDAPValue]

    public init(_ operation: Operation, _ attribute: String, _ values: [LDAPValue]) {
        self.operation = operation
        self.attribute = attribute
        self.values = values
    }

    public static func replace(_ attribute: String, _ values: [String]) -> Self { .init(.replace, attribute, values.map(LDAPValue.init)) }
    public static func add(_ attribute: String, _ values: [String]) -> Self { .init(.add, attribute, values.map(LDAPValue.init)) }
    public static func delete(_ attribute: String, _ values: [String] = []) -> Self { .init(.delete, attribute, values.map(LDAPValue.init)) }
}

/// Builds a NULL-terminated `LDAPMod **` with binary values for the closure's duration.
private func withLDAPMods<R>(_ mods: [(Int32, String, [LDAPValue])], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<LDAPMod>?>) -> R) -> R {
    var allocations: [UnsafeMutableRawPointer] = []
    defer { allocations.forEach { $0.deallocate() } }
    let list = UnsafeMutablePointer<UnsafeMutablePointer<LDAPMod>?>.allocate(capacity: mods.count + 1)
    allocations.append(UnsafeMutableRawPointer(list))
    for (position, (operation, attribute, values)) in mods.enumerated() {
        let mod = UnsafeMutablePointer<LDAPMod>.allocate(capacity: 1)
        allocations.append(UnsafeMutableRawPointer(mod))
        let name = UnsafeMutablePointer<CChar>.allocate(capacity: attribute.utf8.count + 1)
        allocations.append(UnsafeMutableRawPointer(name))
        _ = attribute.withCString { strcpy(name, $0) }
        let bervals = UnsafeMutablePointer<UnsafeMutablePointer<berval>?>.allocate(capacity: values.count + 1)
        allocations.append(UnsafeMutableRawPointer(bervals))
        for (index, value) in values.enumerated() {
            let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, value.bytes.count))
            allocations.append(UnsafeMutableRawPointer(bytes))
            bytes.initialize(from: value.bytes, count: value.bytes.count)
            let bv = UnsafeMutablePointer<berval>.allocate(capacity: 1)
            allocations.append(UnsafeMutableRawPointer(bv))
            bv.pointee = cldap_berval(bytes, ber_len_t(value.bytes.count))
            bervals[index] = bv
        }
        bervals[values.count] = nil
        mod.pointee = LDAPMod()
        mod.pointee.mod_op = operation | LDAP_MOD_BVALUES
        mod.pointee.mod_type = name
        mod.pointee.mod_vals.modv_bvals = bervals
        list[position] = mod
    }
    list[mods.count] = nil
    return body(list)
}
