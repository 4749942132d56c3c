import CLDAP
import Synchronization

/// Active Directory's change notifications (control 1.2.840.113556.1.4.528): a search
/// that never ends, on its own connection, over which the DC sends each object as it
/// changes. Real AD sends them promptly; Samba gathers them on a timer of about 5 s.
/// Roster uses them only as a wake-up for DirSync, which says what changed and never
/// misses a change while the notification connection is down.
public enum ChangeNotifications {
    public static let oid = "1.2.840.113556.1.4.528"

    /// Opens a connection and streams the DN of each changed object under `base` (the
    /// root of a naming context; the filter must be `(objectClass=*)`). The stream ends
    /// with an error when the connection drops; cancel the consuming task to stop it.
    public static func stream(_ configuration: LDAPConfiguration, base: String) async throws -> AsyncThrowingStream<String, any Error> {
        let handle = try await LDAPHandle.open(configuration, label: "notifications")
        let (stream, continuation) = AsyncThrowingStream<String, any Error>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let stopped = Stop()
        continuation.onTermination = { _ in stopped.flag.withLock { $0 = true } }
        handle.start { handle in
            do {
                try run(handle, base: base, stopped: stopped) { continuation.yield($0) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
            handle.closeNow()
        }
        return stream
    }

    private final class Stop: Sendable {
        let flag = Mutex(false)
        var isSet: Bool { flag.withLock { $0 } }
    }

    private static func run(_ handle: LDAPHandle, base: String, stopped: Stop, _ yield: (String) -> Void) throws {
        let ld = handle.raw
        let target = "change notifications under \(base)"
        var messageID: Int32 = 0
        let rc: Int32 = try withCStringArray(["objectGUID"]) { attributes in
            try withControls([RequestControl(oid: oid)]) { controls in
                ldap_search_ext(ld, base, LDAPScope.subtree.raw, "(objectClass=*)", attributes, 0, controls, nil, nil, 0, &messageID)
            }
        }
        guard rc == LDAP_SUCCESS else { throw handle.error(rc, .search, target: target) }
        while !stopped.isSet {
            var message: OpaquePointer?
            // Wake twice a second to notice that the consumer has gone.
            var timeout = makeTimeval(.milliseconds(500))
            let type = ldap_result(ld, messageID, LDAP_MSG_ONE, &timeout, &message)
            switch type {
            case 0:
                continue
            case -1:
                throw handle.lastError(.search, target: target)
            case Int32(LDAP_RES_SEARCH_ENTRY):
                if let entry = parseEntry(ld, message!) { yield(entry.dn) }
                ldap_msgfree(message)
            case Int32(LDAP_RES_SEARCH_RESULT):
                var code: Int32 = 0
                var diagnostic: UnsafeMutablePointer<CChar>?
                _ = ldap_parse_result(ld, message, &code, nil, &diagnostic, nil, nil, 1)
                let resultCode = LDAPResultCode(rawValue: code)
                throw LDAPError(code: resultCode, operation: .search, diagnosticMessage: takeLDAPString(diagnostic), target: target,
                                hint: "The server ended the change-notification search.")
            default:
                ldap_msgfree(message)
            }
        }
        ldap_abandon_ext(ld, messageID, nil, nil)
    }
}
