import CLDAP

/// An LDAP result code: the server's answer to an operation, or one of libldap's
/// client-side codes (negative numbers, such as "Can't contact LDAP server").
public struct LDAPResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let success = Self(rawValue: LDAP_SUCCESS)
    public static let operationsError = Self(rawValue: LDAP_OPERATIONS_ERROR)
    public static let protocolError = Self(rawValue: LDAP_PROTOCOL_ERROR)
    public static let timeLimitExceeded = Self(rawValue: LDAP_TIMELIMIT_EXCEEDED)
    public static let sizeLimitExceeded = Self(rawValue: LDAP_SIZELIMIT_EXCEEDED)
    public static let strongAuthRequired = Self(rawValue: LDAP_STRONG_AUTH_REQUIRED)
    public static let adminLimitExceeded = Self(rawValue: LDAP_ADMINLIMIT_EXCEEDED)
    public static let unavailableCriticalExtension = Self(rawValue: LDAP_UNAVAILABLE_CRITICAL_EXTENSION)
    public static let noSuchAttribute = Self(rawValue: LDAP_NO_SUCH_ATTRIBUTE)
    public static let noSuchObject = Self(rawValue: LDAP_NO_SUCH_OBJECT)
    public static let undefinedType = Self(rawValue: LDAP_UNDEFINED_TYPE)
    public static let invalidDNSyntax = Self(rawValue: LDAP_INVALID_DN_SYNTAX)
    public static let inappropriateAuthentication = Self(rawValue: LDAP_INAPPROPRIATE_AUTH)
    public static let invalidCredentials = Self(rawValue: LDAP_INVALID_CREDENTIALS)
    public static let insufficientAccess = Self(rawValue: LDAP_INSUFFICIENT_ACCESS)
    public static let busy = Self(rawValue: LDAP_BUSY)
    public static let unavailable = Self(rawValue: LDAP_UNAVAILABLE)
    public static let unwillingToPerform = Self(rawValue: LDAP_UNWILLING_TO_PERFORM)
    public static let alreadyExists = Self(rawValue: LDAP_ALREADY_EXISTS)
    public static let other = Self(rawValue: LDAP_OTHER)
    /// RFC 4533: the server cannot resume from the cookie; the client must reload.
    public static let syncRefreshRequired = Self(rawValue: LDAP_SYNC_REFRESH_REQUIRED)

    // libldap's client-side codes.
    public static let serverDown = Self(rawValue: LDAP_SERVER_DOWN)
    public static let localError = Self(rawValue: LDAP_LOCAL_ERROR)
    public static let encodingError = Self(rawValue: LDAP_ENCODING_ERROR)
    public static let decodingError = Self(rawValue: LDAP_DECODING_ERROR)
    public static let timeout = Self(rawValue: LDAP_TIMEOUT)
    public static let filterError = Self(rawValue: LDAP_FILTER_ERROR)
    public static let parameterError = Self(rawValue: LDAP_PARAM_ERROR)
    public static let noMemory = Self(rawValue: LDAP_NO_MEMORY)
    public static let connectError = Self(rawValue: LDAP_CONNECT_ERROR)

    /// libldap's name for the code, e.g. "Invalid credentials".
    public var name: String { String(cString: ldap_err2string(rawValue)) }

    public var description: String { "\(name) (\(rawValue))" }

    /// Codes that mean the connection is gone or never came up: worth a reconnect, and never
    /// evidence about any entry.
    public var isConnectionFailure: Bool {
        [.serverDown, .connectError, .timeout, .unavailable, .busy].contains(self)
    }
}

/// What Roster was doing when an LDAP error happened.
public struct LDAPOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let configure = Self(rawValue: "configure")
    public static let connect = Self(rawValue: "connect")
    public static let startTLS = Self(rawValue: "StartTLS")
    public static let bind = Self(rawValue: "bind")
    public static let search = Self(rawValue: "search")
    public static let read = Self(rawValue: "read")
    public static let modify = Self(rawValue: "modify")
    public static let add = Self(rawValue: "add")
    public static let delete = Self(rawValue: "delete")
    public static let sync = Self(rawValue: "sync")
    public static let whoAmI = Self(rawValue: "who-am-I")

    public var description: String { rawValue }
}

/// Every failure LDAPKit reports: the operation, the result code, where, and the server's
/// diagnostic message when it sent one. Its description reads as a sentence.
public struct LDAPError: Error, Sendable, CustomStringConvertible {
    /// The LDAP result code (server-side or libldap's client-side code).
    public let code: LDAPResultCode
    /// The operation that failed.
    public let operation: LDAPOperation
    /// The server's diagnostic message, if it sent one.
    public let diagnosticMessage: String?
    /// The directory URL, DN or file the failure concerns, when known.
    public let target: String?
    /// Advice for the person reading the error, when there is something useful to say.
    public let hint: String?

    public init(
        code: LDAPResultCode, operation: LDAPOperation, diagnosticMessage: String? = nil,
        target: String? = nil, hint: String? = nil
    ) {
        self.code = code
        self.operation = operation
        let trimmed = diagnosticMessage?.trimmingWhitespace()
        self.diagnosticMessage = (trimmed?.isEmpty ?? true) ? nil : trimmed
        self.target = target
        self.hint = hint
    }

    public var description: String {
        var text = "LDAP \(operation)"
        if let target { text += " (\(target))" }
        text += " failed: \(code)"
        if let diagnosticMessage { text += "; the server said: \(diagnosticMessage)" }
        text += "."
        if let hint { text += " \(hint)" }
        return text
    }

    /// A configuration problem found before any network traffic.
    static func configuration(_ message: String, target: String? = nil) -> LDAPError {
        LDAPError(code: .parameterError, operation: .configure, target: target, hint: message)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
