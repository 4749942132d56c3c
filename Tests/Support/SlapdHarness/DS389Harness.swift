import Foundation
import LDAPKit
import Synchronization

/// A real 389 Directory Server (Debian `389-ds-base`) for tests, on 127.0.0.1 and a free port.
///
/// Without systemd, `dscreate` installs instances only under a relocatable root, made with
/// `dscreate ds-root` (as the `dirsrv` user: it refuses root). Each instance has a root of
/// its own in its folder and is made by `dscreate from-file` (about 5 s), with the retro
/// changelog (keyed by `nsUniqueId`) and the content-synchronization plugin switched on in
/// its `dse.ldif` before the first start, so that it serves RFC 4533 as a FreeIPA server
/// does. `ns-slapd -d 0` stays in the foreground and is stopped by its PID. Needs root.
public final class DS389Server: @unchecked Sendable {
    public static let adminDN = "cn=Directory Manager"
    public static let adminPassword = "roster-test-secret"

    public let suffix: String
    public let port: Int
    /// The instance's configuration folder (`ns-slapd -D`).
    public let instanceFolder: URL
    public var url: String { "ldap://127.0.0.1:\(port)" }
    public var adminDN: String { Self.adminDN }
    /// A file holding the Directory Manager's password, for simple binds.
    public let adminPasswordFile: String
    /// A folder for the test's own files (a Roster configuration, a mirror), removed with the
    /// instance, which lives in its `root` folder.
    public let directory: URL
    private let root: URL

    private let name: String
    private let lock = NSLock()
    private var process: ChildProcess?

    private init(suffix: String, port: Int, name: String, directory: URL) {
        self.suffix = suffix
        self.port = port
        self.name = name
        self.directory = directory
        self.root = directory.appendingPathComponent("root")
        self.instanceFolder = root.appendingPathComponent("etc/dirsrv/slapd-\(name)")
        self.adminPasswordFile = directory.appendingPathComponent("admin.password").path
    }

    deinit { process?.signal(SIGKILL) }

    /// Whether 389-ds is installed (`scripts/setup` installs it).
    public static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: DS389Tools.nsSlapd) && FileManager.default.isExecutableFile(atPath: DS389Tools.dscreate)
    }

    /// Creates and starts an instance holding the suffix entry and `ldif` (added over LDAP);
    /// without `contentSync`, the retro changelog and content synchronization stay off (as
    /// a plain 389-ds installs). `schemas` names optional schema files 389-ds ships in
    /// `/usr/share/dirsrv/data` to install (e.g. `60kerberos.ldif`, FreeIPA's principals).
    public static func start(suffix: String, ldif: String = "", contentSync: Bool = true, schemas: [String] = []) async throws -> DS389Server {
        guard isInstalled else {
            throw HarnessError("389 Directory Server is not installed. Install it with: sudo apt-get install -y 389-ds-base (or run `bash .ci/run`).")
        }
        guard getuid() == 0 else { throw HarnessError("The 389-ds tests need root (dscreate sets the instance up for the dirsrv user).") }
        let name = "r" + UUID().uuidString.prefix(8).lowercased()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roster-389ds-\(name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = DS389Server(suffix: suffix, port: try Tools.freePort(), name: name, directory: directory)
        try adminPassword.write(toFile: server.adminPasswordFile, atomically: true, encoding: .utf8)
        let securePort = try Tools.freePort()
        try await offThePool {
            try DS389Tools.makeRoot(server.root, bin: directory.appendingPathComponent("bin"))
            try DS389Tools.createInstance(name, root: server.root, port: server.port, securePort: securePort, suffix: suffix,
                                          inf: directory.appendingPathComponent("instance.inf"))
        }
        try server.configureForTests(contentSync: contentSync)
        for schema in schemas {
            try FileManager.default.copyItem(atPath: "/usr/share/dirsrv/data/\(schema)",
                                             toPath: server.instanceFolder.appendingPathComponent("schema/\(schema)").path)
        }
        try await server.launch()
        if !ldif.isEmpty { try await server.ldapadd(ldif) }
        return server
    }

    /// Edits `dse.ldif` while the server is stopped: loopback only, small caches, and with
    /// `contentSync` the retro changelog keyed by `nsUniqueId` and content synchronization on.
    private func configureForTests(contentSync: Bool) throws {
        let file = instanceFolder.appendingPathComponent("dse.ldif")
        var entries = try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n\n")
        func set(_ dn: String, _ values: [(attribute: String, value: String)]) throws {
            guard let index = entries.firstIndex(where: { $0.hasPrefix("dn: \(dn)\n") }) else {
                throw HarnessError("389-ds's dse.ldif has no entry \(dn)")
            }
            var lines = entries[index].components(separatedBy: "\n")
            for (attribute, value) in values {
                lines.removeAll { $0.lowercased().hasPrefix(attribute.lowercased() + ":") }
                lines.append("\(attribute): \(value)")
            }
            entries[index] = lines.joined(separator: "\n")
        }
        try set("cn=config", [("nsslapd-listenhost", "127.0.0.1")])
        try set("cn=config,cn=ldbm database,cn=plugins,cn=config", [("nsslapd-cache-autosize", "0")])
        try set("cn=userroot,cn=ldbm database,cn=plugins,cn=config", [("nsslapd-cachememsize", "33554432")])
        if contentSync {
            try set("cn=Retro Changelog Plugin,cn=plugins,cn=config", [("nsslapd-pluginEnabled", "on"),
                                                                        ("nsslapd-attribute", "nsuniqueid:targetUniqueId")])
            try set("cn=Content Synchronization,cn=plugins,cn=config", [("nsslapd-pluginEnabled", "on")])
        }
        try entries.joined(separator: "\n\n").write(to: file, atomically: false, encoding: .utf8)
    }

    private var logFile: String { directory.appendingPathComponent("ns-slapd.out").path }
    private var errorLog: String { root.appendingPathComponent("var/log/dirsrv/slapd-\(name)/errors").path }

    private func launch() async throws {
        let process = try ChildProcess(path: DS389Tools.nsSlapd,
                                       arguments: ["-D", instanceFolder.path, "-i", root.appendingPathComponent("run/dirsrv/\(name).pid").path, "-d", "0"],
                                       logFile: logFile)
        lock.withLock { self.process = process }
        if await Tools.waitForPort(port, process: process, timeout: .seconds(30)) { return }
        process.signal(SIGKILL)
        lock.withLock { self.process = nil }
        throw HarnessError("389-ds did not start listening on 127.0.0.1:\(port); its error log is \(errorLog):\n\(recentLog())")
    }

    /// The last lines of the server's error log.
    public func recentLog() -> String {
        let text = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(20).joined(separator: "\n")
    }

    /// Stops the server with SIGTERM (a clean shutdown, a few seconds) and waits for it.
    public func stop() {
        guard let process = lock.withLock({ self.process }) else { return }
        process.terminate(grace: .seconds(30))
        lock.withLock { self.process = nil }
    }

    /// Starts the server again on the same port and data.
    public func restart() async throws {
        try await Tools.offPool { self.stop() }
        try await launch()
    }

    /// Kills the server (nothing of it is kept) and removes the instance and the test's folder.
    public func shutdown() {
        if let process = lock.withLock({ self.process }) {
            process.signal(SIGKILL)
            process.waitForExit()
            lock.withLock { self.process = nil }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `ldapmodify` as the Directory Manager with the given LDIF (changetype records);
    /// with `continuing`, past records the server refuses (`-c`).
    public func ldapmodify(_ ldif: String, continuing: Bool = false) async throws {
        try await tool(Tools.ldapmodify, (continuing ? ["-c"] : []) + ["-x", "-H", url, "-D", adminDN, "-y", adminPasswordFile], input: ldif)
    }

    /// Adds the entries of `ldif` (content records) as the Directory Manager.
    public func ldapadd(_ ldif: String) async throws {
        try await tool(Tools.ldapmodify, ["-a", "-x", "-H", url, "-D", adminDN, "-y", adminPasswordFile], input: ldif)
    }

    /// Runs a tool to completion on a thread of its own (389-ds's Python tools take about
    /// half a second to start: never on Swift's cooperative pool, which other tests share).
    @discardableResult
    public func tool(_ path: String, _ arguments: [String], input: String? = nil) async throws -> String {
        try await offThePool { try Tools.run(path, arguments, input: input) }
    }

    /// Configuration for a plaintext simple bind as the Directory Manager.
    public func adminConfiguration() -> LDAPConfiguration {
        LDAPConfiguration(urls: [url], security: .plaintext, credentials: .simple(bindDN: adminDN, passwordFile: adminPasswordFile),
                          connectTimeout: .seconds(3), operationTimeout: .seconds(10))
    }
}

/// 389-ds's tools, and how they make a relocatable root and an instance in it.
enum DS389Tools {
    static let nsSlapd = "/usr/sbin/ns-slapd"
    static let dscreate = "/usr/sbin/dscreate"

    /// `dscreate ds-root` as the dirsrv user (it refuses root), and the run, log and state
    /// folders an instance expects under `root`.
    static func makeRoot(_ root: URL, bin: URL) throws {
        let manager = FileManager.default
        for folder in [root, bin] {
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            try Tools.run("/bin/chown", ["dirsrv", folder.path])
        }
        try Tools.run("/usr/sbin/runuser", ["-u", "dirsrv", "--", "/usr/bin/env", "PATH=\(bin.path):/usr/sbin:/usr/bin:/sbin:/bin",
                                            dscreate, "ds-root", root.path, bin.path])
        for folder in ["run/lock", "var/log/dirsrv", "var/lib/dirsrv"] {
            try manager.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        for folder in ["run", "run/lock", "var", "var/log", "var/log/dirsrv", "var/lib", "var/lib/dirsrv"] {
            try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root.appendingPathComponent(folder).path)
        }
    }

    /// `dscreate from-file` of instance `name` under `root` (not started).
    static func createInstance(_ name: String, root: URL, port: Int, securePort: Int, suffix: String, inf: URL) throws {
        try """
        [general]
        systemd = False
        selinux = False
        start = False
        strict_host_checking = False
        full_machine_name = localhost

        [slapd]
        instance_name = \(name)
        root_password = \(DS389Server.adminPassword)
        port = \(port)
        secure_port = \(securePort)
        self_sign_cert = False

        [backend-userroot]
        suffix = \(suffix)
        create_suffix_entry = True

        """.write(to: inf, atomically: true, encoding: .utf8)
        try Tools.run("/usr/bin/env", ["PREFIX=\(root.path)", "INSTALL_PREFIX=\(root.path)", "PATH=\(root.path):/usr/sbin:/usr/bin:/sbin:/bin",
                                       dscreate, "from-file", inf.path])
    }
}
