import Foundation
import LDAPKit
import Synchronization

/// Runs blocking work (a tool that takes seconds) on a thread of its own, so that it never
/// holds one of the few threads of Swift's cooperative pool (nor of Dispatch's global
/// queues, which share its worker limit on Linux) that other tests run on.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// A real Samba Active Directory domain controller for tests and benchmarks.
///
/// One golden copy is provisioned per process (`samba-tool domain provision`, 7-8 s, plus
/// the offline loads asked for); each instance is a `cp -a` of it with its own loopback
/// address (Samba's LDAP port is fixed at 389), started in the foreground with
/// `samba -F -M single` and stopped by its PID. Provisioning needs root.
public final class SambaServer: @unchecked Sendable {
    public static let realm = "ROSTER.TEST"
    public static let domain = "ROSTER"
    /// The domain's naming context.
    public static let baseDN = "DC=roster,DC=test"
    public static let adminDN = "CN=Administrator,CN=Users,DC=roster,DC=test"
    public static let adminPassword = "Roster-Test-Secret1"
    /// Account lockout in every instance: 3 failed binds lock an account for this long.
    /// Long enough that a lockout is still on when a loaded machine (CI runs the suites in
    /// parallel, a 100k-user sync among them) shows it to Roster a few seconds late.
    public static let lockoutSeconds = 8

    public var baseDN: String { Self.baseDN }
    public var adminDN: String { Self.adminDN }
    public var adminPassword: String { Self.adminPassword }
    /// The loopback address this instance listens on, e.g. 127.0.0.7.
    public let address: String
    /// The instance's directory (configuration, databases, logs).
    public let directory: URL
    /// `ldap://ADDRESS` (port 389).
    public var url: String { "ldap://\(address)" }
    /// A file holding the Administrator's password, for simple binds.
    public var adminPasswordFile: String { directory.appendingPathComponent("admin.password").path }
    public var pid: Int32? { lock.withLock { process?.pid } }

    private let lock = NSLock()
    private var process: ChildProcess?

    private init(address: String, directory: URL) {
        self.address = address
        self.directory = directory
    }

    deinit { process?.signal(SIGKILL) }

    /// Configuration for a plaintext simple bind as Administrator.
    public func adminConfiguration(operationTimeout: Duration = .seconds(10)) -> LDAPConfiguration {
        LDAPConfiguration(urls: [url], security: .plaintext, credentials: .simple(bindDN: adminDN, passwordFile: adminPasswordFile),
                          connectTimeout: .seconds(3), operationTimeout: operationTimeout)
    }

    /// Starts an instance copied from the golden copy, with `ldif` loaded offline first
    /// (`ldbadd`, through Samba's own modules, so entries get SIDs, GUIDs and defaults).
    public static func start(ldif: String = "") async throws -> SambaServer {
        let golden = try await Golden.shared.path()
        let address = try Loopback.next()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roster-samba-\(UUID().uuidString.prefix(8))")
        try await offThePool { try SambaTools.run("/bin/cp", ["-a", golden.path, directory.path]) }
        let server = SambaServer(address: address, directory: directory)
        try adminPassword.write(toFile: server.adminPasswordFile, atomically: true, encoding: .utf8)
        try SambaTools.writeConfiguration(in: directory, from: golden, address: address)
        if !ldif.isEmpty { try await server.loadOffline(ldif) }
        try await server.launch()
        return server
    }

    /// Adds entries with `ldbadd` while the server is stopped.
    public func loadOffline(_ ldif: String) async throws {
        let database = directory.appendingPathComponent("private/sam.ldb").path
        try await offThePool { try SambaTools.ldbadd(ldif, database: database) }
    }

    /// Modifies entries with `ldbmodify` while the server is stopped.
    public func modifyOffline(_ ldif: String) async throws {
        let database = directory.appendingPathComponent("private/sam.ldb").path
        try await offThePool { try SambaTools.ldbmodify(ldif, database: database) }
    }

    private var configurationFile: String { directory.appendingPathComponent("etc/smb.conf").path }
    private var logFile: String { directory.appendingPathComponent("samba.out").path }

    private func launch() async throws {
        let process = try ChildProcess(path: SambaTools.samba, arguments: ["-F", "-M", "single", "-s", configurationFile, "--debug-stdout"],
                                       logFile: logFile)
        lock.withLock { self.process = process }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { break }
            if Loopback.canConnect(address, port: 389),
               let connection = try? await LDAPConnection.connect(adminConfiguration(operationTimeout: .seconds(3))) {
                // LDAP answers a bind as Administrator: ready.
                await connection.close()
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.terminate()
        lock.withLock { self.process = nil }
        throw HarnessError("Samba did not answer LDAP on \(url) within 30 s; its output is in \(logFile):\n\(recentLog())")
    }

    /// The last lines Samba wrote.
    public func recentLog() -> String {
        let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(20).joined(separator: "\n")
    }

    /// Stops Samba with SIGTERM and waits for it.
    public func stop() {
        guard let process = lock.withLock({ self.process }) else { return }
        process.terminate()
        lock.withLock { self.process = nil }
    }

    /// Starts Samba again on the same address and data.
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// Stops Samba and removes its directory.
    public func shutdown() {
        stop()
        Loopback.release(address)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `samba-tool ARGS` against this instance over LDAP as Administrator.
    @discardableResult
    public func sambaTool(_ arguments: [String]) async throws -> String {
        let all = arguments + ["-H", url, "--simple-bind-dn=\(adminDN)", "--password=\(adminPassword)"]
        return try await offThePool { try SambaTools.run(SambaTools.sambaTool, all) }
    }

    /// Runs `ldapmodify` as Administrator with the given LDIF (changetype records).
    public func ldapmodify(_ ldif: String) async throws {
        let arguments = ["-x", "-H", url, "-D", adminDN, "-y", adminPasswordFile]
        try await offThePool { try SambaTools.run(Tools.ldapmodify, arguments, input: ldif) }
    }

    /// Tries a simple bind with a wrong password (to count towards a lockout).
    public func failBind(_ dn: String) async {
        let arguments = ["-x", "-H", url, "-D", dn, "-w", "not-the-password"]
        _ = try? await offThePool { try SambaTools.run("/usr/bin/ldapwhoami", arguments) }
    }
}

/// The golden copy, provisioned once per process.
actor Golden {
    static let shared = Golden()
    static let removeAtExit = Mutex<String?>(nil)
    /// The one provisioning of this process (callers arriving meanwhile wait for it).
    private var provisioning: Task<URL, any Error>?

    func path() async throws -> URL {
        if provisioning == nil {
            provisioning = Task {
                let url = try await offThePool { try SambaTools.provision() }
                // The golden copy lives as long as the process.
                Golden.removeAtExit.withLock { $0 = url.path }
                atexit {
                    if let path = Golden.removeAtExit.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
                }
                return url
            }
        }
        return try await provisioning!.value
    }
}

/// Loopback addresses for instances: 127.0.0.2 and up, each handed out once at a time, and
/// only when nothing listens on its port 389.
enum Loopback {
    private static let used = Mutex<Set<Int>>([])
    /// Starts at a random place so that two test processes rarely pick the same address.
    private static let start = Int.random(in: 2...250)

    static func next() throws -> String {
        for offset in 0..<250 {
            let host = 2 + (start - 2 + offset) % 250
            let address = "127.0.0.\(host)"
            let taken = used.withLock { !$0.insert(host).inserted }
            if taken { continue }
            if !canConnect(address, port: 389) { return address }
            _ = used.withLock { $0.remove(host) }
        }
        throw HarnessError("no loopback address 127.0.0.2-251 has port 389 free for a Samba test instance")
    }

    static func release(_ address: String) {
        if let host = address.split(separator: ".").last.flatMap({ Int($0) }) { _ = used.withLock { $0.remove(host) } }
    }

    static func canConnect(_ address: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_addr.s_addr = inet_addr(address)
        socketAddress.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// Samba's tools, and the steps of provisioning and configuring an instance.
public enum SambaTools {
    public static let samba = "/usr/sbin/samba"
    public static let sambaTool = "/usr/bin/samba-tool"
    public static let ldbadd = "/usr/bin/ldbadd"
    static let provisionData = "/usr/share/samba/setup/provision.ldif"

    /// Fails with the set-up command when Samba is missing (never skips).
    public static func requireInstalled() throws {
        let missing = [samba, sambaTool, ldbadd, provisionData, Tools.ldapmodify].filter { !FileManager.default.fileExists(atPath: $0) }
        guard missing.isEmpty else {
            throw HarnessError("""
                The Active Directory tests need a real Samba AD DC, but \(missing.joined(separator: ", ")) is missing. \
                Install it with: sudo apt-get install -y samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind \
                ldb-tools krb5-user (or run `scripts/setup`, which installs everything the tests need).
                """)
        }
        guard geteuid() == 0 else {
            throw HarnessError("Provisioning a Samba AD DC (samba-tool domain provision) needs root; run the tests as root, as .ci/run does.")
        }
    }

    /// Provisions the golden copy: a domain with loopback-only settings, relaxed password
    /// rules and a short lockout, not started.
    static func provision() throws -> URL {
        try requireInstalled()
        let directory = TemporaryFolders.make("roster-samba-golden")
        try run(sambaTool, ["domain", "provision", "--realm=\(SambaServer.realm)", "--domain=\(SambaServer.domain)",
                            "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307", "--targetdir=\(directory.path)",
                            "--adminpass=\(SambaServer.adminPassword)"])
        let database = directory.appendingPathComponent("private/sam.ldb").path
        try run(sambaTool, ["domain", "passwordsettings", "set", "--min-pwd-age=0", "--complexity=off", "--history-length=0",
                            "--account-lockout-threshold=3", "-H", "tdb://\(database)"])
        // samba-tool takes minutes; the attributes take 100 ns units (negative: an interval).
        let lockout = -Int64(SambaServer.lockoutSeconds) * 10_000_000
        try run("/usr/bin/ldbmodify", ["-H", database], input: """
            dn: \(SambaServer.baseDN)
            changetype: modify
            replace: lockoutDuration
            lockoutDuration: \(lockout)
            -
            replace: lockOutObservationWindow
            lockOutObservationWindow: \(lockout)

            """)
        return directory
    }

    /// Adds LDIF offline through Samba's modules.
    static func ldbadd(_ ldif: String, database: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("roster-ldbadd-\(UUID().uuidString.prefix(8)).ldif").path
        try ldif.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try run(ldbadd, ["--nosync", "-H", database, file])
    }

    /// Modifies entries offline (the server must be stopped) with `ldbmodify`.
    public static func ldbmodify(_ ldif: String, database: String) throws {
        try run("/usr/bin/ldbmodify", ["-H", database], input: ldif)
    }

    /// Writes the instance's smb.conf: the golden copy's paths replaced by the instance's,
    /// only LDAP, CLDAP and the KDC, on one loopback address, sockets and logs inside the
    /// instance directory, simple binds without TLS allowed.
    static func writeConfiguration(in directory: URL, from golden: URL, address: String) throws {
        let file = directory.appendingPathComponent("etc/smb.conf").path
        let original = try String(contentsOfFile: file, encoding: .utf8)
        var kept: [String] = []
        for line in original.replacingOccurrences(of: golden.path, with: directory.path).split(separator: "\n", omittingEmptySubsequences: false) {
            let key = line.trimmingCharacters(in: .whitespaces).lowercased()
            if key.hasPrefix("log file") || key.hasPrefix("server services") { continue }
            kept.append(String(line))
        }
        let run = directory.appendingPathComponent("run").path
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let settings = """
            \tlog file = \(directory.path)/log.samba
            \tserver services = ldap, cldap, kdc
            \tldap server require strong auth = no
            \ttls enabled = no
            \tinterfaces = \(address)/8
            \tbind interfaces only = yes
            \tpid directory = \(run)
            \tncalrpc dir = \(run)/ncalrpc
            \twinbindd socket directory = \(run)/winbindd
            \tntp signd socket directory = \(run)/ntp_signd
            """
        var text = kept.joined(separator: "\n")
        guard let global = text.range(of: "[global]\n") else {
            throw HarnessError("\(file) has no [global] section; the provisioning did not finish")
        }
        text.insert(contentsOf: settings + "\n", at: global.upperBound)
        try text.write(toFile: file, atomically: true, encoding: .utf8)
    }

    /// Runs a tool to completion; throws with its output when it fails.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], input: String? = nil) throws -> String {
        try Tools.run(tool, arguments, input: input)
    }
}
