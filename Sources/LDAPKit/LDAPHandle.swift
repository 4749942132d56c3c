import CLDAP
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// One libldap connection handle and the thread it is used on.
///
/// `@unchecked Sendable` is safe because the raw `LDAP *` is only touched inside
/// `perform`, which runs closures one at a time on this handle's serial queue. The queue's
/// threads come from Dispatch, not from Swift's cooperative pool, so libldap's blocking
/// calls never starve async tasks.
final class LDAPHandle: @unchecked Sendable {
    let raw: OpaquePointer
    let configuration: LDAPConfiguration
    private let queue: DispatchQueue
    private var closed = false

    private init(raw: OpaquePointer, configuration: LDAPConfiguration, queue: DispatchQueue) {
        self.raw = raw
        self.configuration = configuration
        self.queue = queue
    }

    deinit {
        if !closed { ldap_unbind_ext(raw, nil, nil) }
    }

    /// Runs a blocking libldap call on this handle's queue.
    func perform<T: Sendable>(_ body: @escaping @Sendable (LDAPHandle) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self) })
            }
        }
    }

    /// Starts long-running work (a paged search, a sync loop) on this handle's queue.
    func start(_ body: @escaping @Sendable (LDAPHandle) -> Void) {
        queue.async { body(self) }
    }

    /// Unbinds and closes the socket. Must run on the handle's queue.
    func closeNow() {
        guard !closed else { return }
        closed = true
        ldap_unbind_ext(raw, nil, nil)
    }

    /// The error libldap recorded for the last operation on this handle.
    func lastError(_ operation: LDAPOperation, target: String? = nil, hint: String? = nil) -> LDAPError {
        var code: Int32 = 0
        _ = cldap_get_int_option(raw, LDAP_OPT_RESULT_CODE, &code)
        return error(code, operation, target: target, hint: hint)
    }

    /// An error for a result code, with the handle's diagnostic message.
    func error(_ code: Int32, _ operation: LDAPOperation, target: String? = nil, hint: String? = nil) -> LDAPError {
        let diagnostic = takeLDAPString(cldap_diagnostic_message(raw))
        let resultCode = LDAPResultCode(rawValue: code)
        return LDAPError(code: resultCode, operation: operation, diagnosticMessage: diagnostic,
                         target: target, hint: hint ?? Self.defaultHint(resultCode, operation))
    }

    static func defaultHint(_ code: LDAPResultCode, _ operation: LDAPOperation) -> String? {
        switch code {
        case .serverDown, .connectError:
            "Check that the directory server is running and that the URL's host and port are right."
        case .timeout:
            "The server did not answer in time; check the network and the configured timeouts."
        case .invalidCredentials:
            "Check the bind DN and the content of the password file."
        case .insufficientAccess:
            "The bind account lacks the rights for this; grant it read access to the configured base."
        case .noSuchObject where operation == .search || operation == .sync:
            "Check the configured base DN."
        case .sizeLimitExceeded, .adminLimitExceeded:
            "The server stopped the search at a limit set for the bind account: let it read every entry in scope (389-ds: nsSizeLimit and nsLookThroughLimit -1 on the account; OpenLDAP: a `limits` line for its DN)."
        case .strongAuthRequired where operation == .bind, .inappropriateAuthentication where operation == .bind,
             .unwillingToPerform where operation == .bind:
            "The server refuses this kind of bind; use TLS, or a bind method it allows."
        default:
            nil
        }
    }

    /// libldap writes to sockets without MSG_NOSIGNAL: a write to a connection the server
    /// (or `SocketInterrupter`) closed would raise SIGPIPE and kill the process. Writes
    /// must fail with EPIPE instead, so SIGPIPE is ignored process-wide, once.
    private static let ignoreBrokenPipes: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Opens a connection: handle, options, TLS, bind. Runs on a new handle's queue.
    ///
    /// `readAhead`: read the socket in blocks (``cldap_read_ahead``), for connections that run
    /// searches and DirSync through `ldap_result`. Not for RFC 4533 sync sessions: libldap 2.5's
    /// `ldap_sync_poll` fails on such a connection ("Bad parameter", entries lost), measured.
    static func open(_ configuration: LDAPConfiguration, label: String, readAhead: Bool = false) async throws -> LDAPHandle {
        _ = ignoreBrokenPipes
        try configuration.validate()
        // A connection opened from a thread of lowered priority (a daemon's reconcile) parses its
        // results at a lowered priority too: Dispatch runs background work at nice 10 on Linux.
        // Otherwise libldap's share of a 100k-entry read ran beside the change stream at its priority.
        let lowered = ThreadPriority.niceness > ThreadPriority.processNiceness
        let queue = DispatchQueue(label: "roster.ldap.\(label)", qos: lowered ? .background : .unspecified)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try openBlocking(configuration, queue: queue, readAhead: readAhead) })
            }
        }
    }

    private static func openBlocking(_ configuration: LDAPConfiguration, queue: DispatchQueue, readAhead: Bool) throws -> LDAPHandle {
        var ld: OpaquePointer?
        let rc = ldap_initialize(&ld, configuration.uriList)
        guard rc == LDAP_SUCCESS, let ld else {
            throw LDAPError(code: LDAPResultCode(rawValue: rc), operation: .configure, target: configuration.uriList,
                            hint: "libldap does not accept this URL list.")
        }
        let handle = LDAPHandle(raw: ld, configuration: configuration, queue: queue)
        let target = configuration.uriList
        func check(_ rc: Int32, _ what: String) throws {
            guard rc == LDAP_OPT_SUCCESS else {
                throw LDAPError(code: .localError, operation: .configure, target: target,
                                hint: "libldap refused the \(what) option.")
            }
        }
        try check(cldap_set_int_option(ld, LDAP_OPT_PROTOCOL_VERSION, LDAP_VERSION3), "protocol version")
        try check(ldap_set_option(ld, LDAP_OPT_REFERRALS, cldap_opt_off()), "referrals")
        try check(ldap_set_option(ld, LDAP_OPT_RESTART, cldap_opt_on()), "restart")
        try check(cldap_set_timeout_option(ld, LDAP_OPT_NETWORK_TIMEOUT, configuration.connectTimeout.milliseconds), "network timeout")
        try check(cldap_set_timeout_option(ld, LDAP_OPT_TIMEOUT, configuration.operationTimeout.milliseconds), "timeout")
        let idle = max(1, configuration.keepaliveIdle.milliseconds / 1000)
        _ = cldap_set_int_option(ld, LDAP_OPT_X_KEEPALIVE_IDLE, Int32(idle))
        _ = cldap_set_int_option(ld, LDAP_OPT_X_KEEPALIVE_PROBES, 3)
        _ = cldap_set_int_option(ld, LDAP_OPT_X_KEEPALIVE_INTERVAL, Int32(max(1, idle / 3)))

        if case .tls(let options) = configuration.security {
            let requirement = options.verifyServer ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER
            try check(cldap_set_int_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, requirement), "TLS certificate requirement")
            if let caFile = options.caFile {
                try check(cldap_set_string_option(ld, LDAP_OPT_X_TLS_CACERTFILE, caFile), "TLS CA file")
            }
            if let certificateFile = options.certificateFile, let keyFile = options.keyFile {
                try check(cldap_set_string_option(ld, LDAP_OPT_X_TLS_CERTFILE, certificateFile), "TLS certificate file")
                try check(cldap_set_string_option(ld, LDAP_OPT_X_TLS_KEYFILE, keyFile), "TLS key file")
            }
            let contextRC = cldap_set_int_option(ld, LDAP_OPT_X_TLS_NEWCTX, 0)
            guard contextRC == LDAP_OPT_SUCCESS else {
                throw handle.error(contextRC, .configure, target: target,
                                   hint: "The TLS settings could not be loaded; check that the CA, certificate and key files hold PEM data.")
            }
        }

        let connectRC = ldap_connect(ld)
        guard connectRC == LDAP_SUCCESS else {
            throw handle.error(connectRC, .connect, target: target)
        }
        if case .tls = configuration.security, ldap_tls_inplace(ld) == 0 {
            let tlsRC = ldap_start_tls_s(ld, nil, nil)
            guard tlsRC == LDAP_SUCCESS else {
                throw handle.error(tlsRC, .startTLS, target: target,
                                   hint: "TLS could not be set up; check that the server offers StartTLS and that its certificate is signed by the configured CA and names the host in the URL.")
            }
        }
        // Read the socket in blocks (a 100k-entry search made 200k reads and 100k polls without).
        // Only speed depends on it, so a failure is no error.
        if readAhead { _ = cldap_read_ahead(ld) }
        try handle.bind()
        return handle
    }

    private func bind() throws {
        let target = configuration.uriList
        switch configuration.credentials {
        case .anonymous:
            return
        case .simple(let bindDN, let passwordFile):
            var password = try FileAccess.readSecret(passwordFile)
            defer { for index in password.indices { password[index] = 0 } }
            let rc = password.withUnsafeMutableBytes { buffer -> Int32 in
                var credential = cldap_berval(buffer.baseAddress, ber_len_t(buffer.count))
                return ldap_sasl_bind_s(raw, bindDN, nil, &credential, nil, nil, nil)
            }
            guard rc == LDAP_SUCCESS else {
                throw error(rc, .bind, target: "\(bindDN) at \(target)")
            }
        case .saslExternal:
            // libsasl2 drives the exchange; EXTERNAL asks no questions, so the interaction
            // callback has nothing to answer. No authorization identity is sent: the server
            // takes the one TLS (or the ldapi:// socket) proved.
            let rc = ldap_sasl_interactive_bind_s(raw, nil, "EXTERNAL", nil, nil, UInt32(LDAP_SASL_QUIET),
                                                  { _, _, _, _ in LDAP_SUCCESS }, nil)
            guard rc == LDAP_SUCCESS else {
                throw error(rc, .bind, target: "SASL EXTERNAL at \(target)")
            }
        }
    }
}
