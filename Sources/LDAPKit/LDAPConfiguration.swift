/// How to reach and authenticate to a directory.
public struct LDAPConfiguration: Sendable, Equatable {
    /// One or more `ldap://`, `ldaps://` or `ldapi://` URLs, tried in order.
    public var urls: [String]
    /// Transport security; TLS unless plaintext is chosen explicitly.
    public var security: TransportSecurity
    /// Who to bind as.
    public var credentials: Credentials
    /// Time allowed to open the TCP connection (and TLS handshake).
    public var connectTimeout: Duration
    /// Time allowed for one request (bind, one search page, one modify) to be answered.
    public var operationTimeout: Duration
    /// TCP keepalive idle time, so a silently dead server is noticed on long-lived streams.
    public var keepaliveIdle: Duration

    public init(
        urls: [String],
        security: TransportSecurity = .tls(TLSOptions()),
        credentials: Credentials = .anonymous,
        connectTimeout: Duration = .seconds(5),
        operationTimeout: Duration = .seconds(30),
        keepaliveIdle: Duration = .seconds(30)
    ) {
        self.urls = urls
        self.security = security
        self.credentials = credentials
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.keepaliveIdle = keepaliveIdle
    }

    /// Transport security for the connection.
    public enum TransportSecurity: Sendable, Equatable {
        /// TLS: from the first byte for `ldaps://`, through StartTLS for `ldap://`.
        case tls(TLSOptions)
        /// No encryption. Allowed only when chosen explicitly (and always for `ldapi://`).
        case plaintext
    }

    /// TLS settings. The server's certificate is verified by default.
    public struct TLSOptions: Sendable, Equatable {
        /// PEM file of the CA certificates that may sign the server's certificate; the
        /// system's trust store when nil.
        public var caFile: String?
        /// Client certificate and key (PEM), for SASL EXTERNAL or servers that ask for one.
        public var certificateFile: String?
        public var keyFile: String?
        /// Verify the server certificate and its name. Turning this off is for tests only.
        public var verifyServer: Bool

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
                    verifyServer: Bool = true) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.verifyServer = verifyServer
        }
    }

    /// Who to bind as. Passwords are read from a file at bind time, never held in
    /// configuration values or printed.
    public enum Credentials: Sendable, Equatable, CustomStringConvertible {
        case anonymous
        /// A simple bind; the password is the file's content without its trailing newline.
        case simple(bindDN: String, passwordFile: String)
        /// SASL EXTERNAL: the identity established by the TLS client certificate or the
        /// `ldapi://` socket's peer credentials.
        case saslExternal

        public var description: String {
            switch self {
            case .anonymous: "anonymous"
            case .simple(let dn, let file): "simple bind as \(dn) (password from \(file))"
            case .saslExternal: "SASL EXTERNAL"
            }
        }
    }

    /// The URL list in the form libldap takes (space separated).
    var uriList: String { urls.joined(separator: " ") }

    /// Checks the combination of URLs and security before anything is sent.
    func validate() throws(LDAPError) {
        guard !urls.isEmpty else {
            throw .configuration("No directory URL is configured; give at least one ldap://, ldaps:// or ldapi:// URL.")
        }
        for url in urls {
            let lower = url.lowercased()
            let scheme = lower.prefix(while: { $0 != ":" })
            guard ["ldap", "ldaps", "ldapi"].contains(scheme), lower.contains("://") else {
                throw .configuration("'\(url)' is not an LDAP URL; use ldap://host:port, ldaps://host:port or ldapi://.", target: url)
            }
            if scheme == "ldaps", security == .plaintext {
                throw .configuration("'\(url)' is an ldaps:// URL but plaintext was chosen; choose TLS or use ldap://.", target: url)
            }
        }
        if case .tls(let options) = security {
            for (name, path) in [("CA file", options.caFile), ("certificate file", options.certificateFile), ("key file", options.keyFile)] {
                if let path, !FileAccess.isReadable(path) {
                    throw .configuration("The TLS \(name) '\(path)' does not exist or cannot be read.", target: path)
                }
            }
            if (options.certificateFile == nil) != (options.keyFile == nil) {
                throw .configuration("A TLS client certificate needs both a certificate file and a key file.")
            }
        }
        if case .saslExternal = credentials, case .tls(let options) = security, options.certificateFile == nil,
           !urls.allSatisfy({ $0.lowercased().hasPrefix("ldapi:") }) {
            throw .configuration("SASL EXTERNAL over TCP needs a TLS client certificate (certificateFile and keyFile).")
        }
    }
}
