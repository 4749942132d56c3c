import Foundation
import Synchronization
import LDAPKit

/// A real OpenLDAP slapd for tests: mdb database with the syncprov, ppolicy and memberof
/// overlays, started on a free 127.0.0.1 port in its own temporary directory, loaded with
/// `slapadd -q`, and stopped by its PID. Optionally serves StartTLS and ldaps:// with a
/// certificate from a CA the harness makes for the run.
public final class SlapdServer: @unchecked Sendable {
    /// The suffix of the database.
    public let suffix: String
    /// The rootdn and its password (also in `adminPasswordFile`).
    public let adminDN: String
    public let adminPassword = "roster-test-secret"
    /// The temporary directory holding configuration, database, certificates and logs.
    public let directory: URL
    /// The port of `ldap://` (and, with TLS, the port of `ldaps://`).
    public private(set) var port: Int
    public private(set) var tlsPort: Int?
    /// Files the harness made for TLS, when started with `tls: true`.
    public private(set) var certificates: TestCertificates?

    private let lock = NSLock()
    private var process: ChildProcess?

    /// `ldap://127.0.0.1:PORT`.
    public var url: String { "ldap://127.0.0.1:\(port)" }
    /// `ldaps://127.0.0.1:PORT`, when started with TLS.
    public var ldapsURL: String? { tlsPort.map { "ldaps://127.0.0.1:\($0)" } }
    /// A file holding the admin password, for simple binds.
    public var adminPasswordFile: String { directory.appendingPathComponent("admin.password").path }
    /// The PID of the running slapd.
    public var pid: Int32? { lock.withLock { process?.pid } }

    /// Configuration for a plaintext connection as the admin (tests only; Roster refuses
    /// plaintext unless configured explicitly, which is what this does).
    public func adminConfiguration(operationTimeout: Duration = .seconds(10)) -> LDAPConfiguration {
        LDAPConfiguration(urls: [url], security: .plaintext,
                          credentials: .simple(bindDN: adminDN, passwordFile: adminPasswordFile),
                          connectTimeout: .seconds(3), operationTimeout: operationTimeout)
    }

    /// Starts a server loaded with `ldif` (which must contain the suffix entry unless
    /// `includeSuffixEntry` is true, the default, in which case the harness adds it).
    public static func start(
        suffix: String = "dc=example,dc=org",
        ldif: String = "",
        includeSuffixEntry: Bool = true,
        tls: Bool = false,
        extraConfiguration: String = "",
        syncProvider: Bool = true,
        sessionLog: Bool = true,
        defaultPasswordPolicy: String? = nil
    ) async throws -> SlapdServer {
        try Tools.requireInstalled()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("roster-slapd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("db"), withIntermediateDirectories: true)
        let server = SlapdServer(suffix: suffix, directory: directory)
        try server.adminPassword.write(toFile: server.adminPasswordFile, atomically: true, encoding: .utf8)
        if tls {
            let folder = directory.appendingPathComponent("tls")
            server.certificates = try await Tools.offPool { try TestCertificates.make(in: folder) }
        }
        server.extraConfiguration = extraConfiguration
        server.syncProvider = syncProvider
        server.sessionLog = sessionLog
        server.defaultPasswordPolicy = defaultPasswordPolicy
        try server.writeConfiguration()
        var data = ""
        if includeSuffixEntry {
            let first = suffix.split(separator: ",")[0].split(separator: "=")
            data += "dn: \(suffix)\nobjectClass: dcObject\nobjectClass: organization\ndc: \(first[1])\no: \(first[1])\n\n"
        }
        data += ldif
        let entries = data
        try await Tools.offPool { try server.load(ldif: entries) }
        try await server.launch()
        return server
    }

    private init(suffix: String, directory: URL) {
        self.suffix = suffix
        self.adminDN = "cn=admin,\(suffix)"
        self.directory = directory
        self.port = 0
    }

    deinit {
        process?.signal(SIGKILL)
    }

    private var configurationFile: String { directory.appendingPathComponent("slapd.conf").path }

    private var extraConfiguration = ""
    /// ppolicy's default policy (`ppolicy_default`): the one for users without a pwdPolicySubentry.
    private var defaultPasswordPolicy: String?
    private var syncProvider = true
    /// Whether syncprov keeps a session log; without one, a resumed refresh ends with a
    /// present phase (as after a restart, the log being in memory only).
    private var sessionLog = true
    /// ACL lines placed before the harness's own (`access to * by * read`), so they win.
    private var accessRules = ""

    private func writeConfiguration() throws {
        let extra = extraConfiguration
        var tlsLines = ""
        if let certificates {
            tlsLines = """
            TLSCACertificateFile \(certificates.caCertificate)
            TLSCertificateFile \(certificates.serverCertificate)
            TLSCertificateKeyFile \(certificates.serverKey)
            TLSVerifyClient try
            """
        }
        let text = """
        include /etc/ldap/schema/core.schema
        include /etc/ldap/schema/cosine.schema
        include /etc/ldap/schema/nis.schema
        include /etc/ldap/schema/inetorgperson.schema
        modulepath /usr/lib/ldap
        moduleload back_mdb
        moduleload syncprov
        moduleload ppolicy
        moduleload memberof
        pidfile \(directory.path)/slapd.pid
        argsfile \(directory.path)/slapd.args
        sizelimit unlimited
        \(tlsLines)

        database mdb
        suffix "\(suffix)"
        rootdn "\(adminDN)"
        rootpw \(adminPassword)
        directory \(directory.path)/db
        maxsize 4294967296
        index objectClass eq
        index entryUUID,entryCSN eq
        index uid,cn,memberOf,member eq
        limits dn.exact="\(adminDN)" size=unlimited time=unlimited
        \(accessRules)
        access to attrs=userPassword by self write by anonymous auth by * none
        access to * by * read
        \(extra)
        \(syncProvider ? "overlay syncprov\nsyncprov-checkpoint 100 10" + (sessionLog ? "\nsyncprov-sessionlog 100000" : "") : "")
        overlay ppolicy
        \(defaultPasswordPolicy.map { "ppolicy_default \"\($0)\"" } ?? "")
        overlay memberof
        memberof-group-oc groupOfNames
        memberof-member-ad member
        memberof-memberof-ad memberOf
        """
        try text.write(toFile: configurationFile, atomically: true, encoding: .utf8)
    }

    /// Loads entries offline with `slapadd -q` (the server must be stopped).
    public func load(ldif: String) throws {
        let file = directory.appendingPathComponent("load-\(UUID().uuidString.prefix(6)).ldif").path
        try ldif.write(toFile: file, atomically: true, encoding: .utf8)
        try Tools.run(Tools.slapadd, ["-q", "-w", "-f", configurationFile, "-l", file])
        try? FileManager.default.removeItem(atPath: file)
    }

    private func launch() async throws {
        var lastError: (any Error)?
        for _ in 0..<5 {
            if port == 0 || lastError != nil { port = try Tools.freePort() }
            if certificates != nil, tlsPort == nil || lastError != nil { tlsPort = try Tools.freePort() }
            var urls = "ldap://127.0.0.1:\(port)/"
            if let tlsPort { urls += " ldaps://127.0.0.1:\(tlsPort)/" }
            let process = try ChildProcess(path: Tools.slapd, arguments: ["-f", configurationFile, "-h", urls, "-d", "0"],
                                           logFile: logFile)
            lock.withLock { self.process = process }
            if await Tools.waitForPort(port, process: process, timeout: .seconds(10)) {
                return
            }
            process.terminate()
            lastError = HarnessError("slapd did not start listening on 127.0.0.1:\(port); its log is \(logFile):\n\(recentLog())")
        }
        throw lastError!
    }

    private var logFile: String { directory.appendingPathComponent("slapd.log").path }

    /// The last lines slapd wrote.
    public func recentLog() -> String {
        let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(20).joined(separator: "\n")
    }

    /// Stops slapd with SIGTERM (a clean shutdown) and waits for it to exit.
    public func stop() {
        guard let process = lock.withLock({ self.process }) else { return }
        process.terminate()
        lock.withLock { self.process = nil }
    }

    /// Kills slapd with SIGKILL, as a crash would.
    public func crash() {
        guard let process = lock.withLock({ self.process }) else { return }
        process.signal(SIGKILL)
        process.waitForExit()
        lock.withLock { self.process = nil }
    }

    /// Starts slapd again on the same port(s) and data.
    public func restart() async throws {
        try await Tools.offPool { self.stop() }
        try await launch()
    }

    /// Restarts slapd with `rules` as its first access-control lines (e.g. to take a bind
    /// account's read rights away); an empty string restores the defaults.
    public func restart(accessRules rules: String) async throws {
        try await Tools.offPool { self.stop() }
        accessRules = rules
        try writeConfiguration()
        try await launch()
    }

    /// Stops slapd and removes its directory.
    public func shutdown() {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `ldapmodify` as the admin with the given LDIF (changetype records).
    public func ldapmodify(_ ldif: String) throws {
        try Tools.run(Tools.ldapmodify, ["-x", "-H", url, "-D", adminDN, "-y", adminPasswordFile], input: ldif)
    }

    /// A simple bind as `dn` with a wrong password (which ppolicy counts towards a lockout),
    /// on a thread of its own: a loaded machine must not stall Swift's cooperative pool on it.
    public func failBind(_ dn: String) async {
        let url = self.url
        _ = try? await offThePool { try Tools.run("/usr/bin/ldapwhoami", ["-x", "-H", url, "-D", dn, "-w", "not-the-password"]) }
    }
}

/// An error of the harness itself, naming what to do.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost; plus a second,
/// unrelated CA for tests that must be refused.
public struct TestCertificates: Sendable {
    public let caCertificate: String
    public let serverCertificate: String
    public let serverKey: String
    /// A CA that did not sign the server certificate.
    public let otherCACertificate: String
    /// A client certificate and key signed by the CA (subject `cn=roster-client,ou=tls`).
    public let clientCertificate: String
    public let clientKey: String

    /// A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, in `directory`.
    public static func make(in directory: URL) throws -> TestCertificates {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let extensions = path("server.ext")
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        let openssl = Tools.openssl
        for ca in ["ca", "other-ca"] {
            try Tools.run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                    "-subj", "/CN=Roster Test \(ca)", "-keyout", path("\(ca).key"), "-out", path("\(ca).pem")])
        }
        try Tools.run(openssl, ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                                "-keyout", path("server.key"), "-out", path("server.csr")])
        try Tools.run(openssl, ["x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                                "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", path("server.pem")])
        try Tools.run(openssl, ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/OU=tls/CN=roster-client",
                                "-keyout", path("client.key"), "-out", path("client.csr")])
        try Tools.run(openssl, ["x509", "-req", "-in", path("client.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                                "-CAcreateserial", "-days", "2", "-out", path("client.pem")])
        return TestCertificates(caCertificate: path("ca.pem"), serverCertificate: path("server.pem"), serverKey: path("server.key"),
                                otherCACertificate: path("other-ca.pem"), clientCertificate: path("client.pem"), clientKey: path("client.key"))
    }
}

/// The system tools the harness runs.
public enum Tools {
    /// Runs blocking work (a child process to wait for) on a thread of its own, so that
    /// tests running in parallel never starve Swift's cooperative pool (two threads on a
    /// 2-core machine) and time out each other's async waits.
    public static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    public static let slapd = "/usr/sbin/slapd"
    public static let slapadd = "/usr/sbin/slapadd"
    public static let ldapmodify = "/usr/bin/ldapmodify"
    public static let ldapsearch = "/usr/bin/ldapsearch"
    public static let openssl = "/usr/bin/openssl"

    /// Fails with the set-up command when slapd or its tools are missing (never skips).
    public static func requireInstalled() throws {
        let missing = [slapd, slapadd, ldapmodify, ldapsearch, openssl].filter { !FileManager.default.isExecutableFile(atPath: $0) }
        let modules = ["/usr/lib/ldap/back_mdb.so", "/usr/lib/ldap/syncprov.so", "/usr/lib/ldap/ppolicy.so", "/usr/lib/ldap/memberof.so"]
            .filter { !FileManager.default.fileExists(atPath: $0) }
        guard missing.isEmpty && modules.isEmpty else {
            throw HarnessError("""
                The integration tests need a real OpenLDAP server, but \((missing + modules).joined(separator: ", ")) \
                is missing. Install it with: sudo apt-get install -y slapd ldap-utils openssl \
                (or run `bash .ci/run`, which installs everything the tests need).
                """)
        }
    }

    /// Runs a tool to completion; throws with its output when it fails.
    @discardableResult
    public static func run(_ tool: String, _ arguments: [String], input: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        // The input is written on a thread of its own while the output is read here: a tool
        // that answers as it reads (ldapmodify prints a line per entry) would otherwise fill
        // the output pipe and stop reading its input, and both sides would wait for ever.
        let writer = stdin.fileHandleForWriting
        let written = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            if let input { writer.write(Data(input.utf8)) }
            try? writer.close()
            written.signal()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        written.wait()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw HarnessError("`\(tool) \(arguments.joined(separator: " "))` exited with \(process.terminationStatus):\n\(text)")
        }
        return text
    }

    /// A TCP port on 127.0.0.1 that is free now and that no other caller in this process
    /// has been given. Ports come from below the kernel's ephemeral range (where the ports
    /// of outgoing connections and of `bind(0)` are drawn), so a port a test hands to slapd
    /// stays its own: after a crash, the restart gets the same port back instead of finding
    /// another test's server listening there.
    public static func freePort() throws -> Int {
        for _ in 0..<2000 {
            let candidate = nextPort.withLock { next -> Int in
                defer { next = next + 1 < portRange.upperBound ? next + 1 : portRange.lowerBound }
                return next
            }
            if canBind(candidate) { return candidate }
        }
        throw HarnessError("no free TCP port on 127.0.0.1 between \(portRange.lowerBound) and \(portRange.upperBound)")
    }

    private static let portRange = 20_000..<32_000
    /// Starts at a random place so that two test processes rarely walk the same ports.
    private static let nextPort = Mutex(Int.random(in: portRange))

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:port.
    static func waitForPort(_ port: Int, process: ChildProcess, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else { return false }
            if canConnect(port) {
                // A slapd that could not bind exits at once; make sure the listener is ours.
                try? await Task.sleep(for: .milliseconds(50))
                return process.isRunning
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
