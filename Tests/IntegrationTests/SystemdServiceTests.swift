import Foundation
import SlapdHarness
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `systemd/roster.service` as shipped, started by a real systemd: PID 1 of namespaces of its
/// own (`Tests/Support/systemd-sandbox.sh`), so that the unit's whole sandbox applies (its user,
/// `PrivateUsers=`, the system-call filter, `ProtectSystem=strict`, the credential) and nothing
/// of the host is touched. A drop-in changes only what a test must: the binary's and the
/// configuration's paths, the credential's source, the log's destination, and the watchdog's
/// period (3 s, so that a missed ping shows within the test).
@Suite("systemd/roster.service under a real systemd", .serialized)
struct SystemdServiceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let sandboxScript = root.appendingPathComponent("Tests/Support/systemd-sandbox.sh").path

    @Test("Started by systemd it is ready through sd_notify, serves and revokes, keeps its mirror 0640 in a 0750 state directory, lowers its reconciles' priority where it may, pings the watchdog, reloads on `systemctl reload` and stops cleanly")
    func shippedUnit() async throws {
        try #require(geteuid() == 0, "run the tests as root, as CI does: this test boots systemd in namespaces of its own")
        try Self.ensureServiceAccount()
        let clinic = ClinicDirectory(suffix: "dc=unit,dc=test")
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif())
        defer { server.shutdown() }
        let httpPort = try Tools.freePort()

        // What the sandbox's /run starts with: the unit, the test's drop-in, and the files the
        // service reads (its binary too: a build folder under /tmp or /root would be hidden
        // from it by PrivateTmp= and ProtectHome=).
        let sandbox = server.directory.appendingPathComponent("systemd")
        let units = sandbox.appendingPathComponent("run/systemd/system")
        let files = sandbox.appendingPathComponent("run/roster-test")
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: units.appendingPathComponent("roster.service.d"), withIntermediateDirectories: true)
        try fileManager.createDirectory(at: files, withIntermediateDirectories: true)
        try fileManager.copyItem(at: Self.root.appendingPathComponent("systemd/roster.service"), to: units.appendingPathComponent("roster.service"))
        try """
        [Unit]
        # The sandbox boots nothing else: no sysinit.target to wait for.
        DefaultDependencies=no
        [Service]
        ExecStart=
        ExecStart=/run/roster-test/roster run --config /run/roster-test/roster.yaml
        LoadCredential=
        LoadCredential=bind-password:/run/roster-test/bind-password
        StandardOutput=append:/run/roster-test/roster.log
        StandardError=inherit
        WatchdogSec=3

        """.write(to: units.appendingPathComponent("roster.service.d/test.conf"), atomically: true, encoding: .utf8)
        try fileManager.copyItem(atPath: RosterCLI.executable, toPath: files.appendingPathComponent("roster").path)
        try fileManager.copyItem(atPath: server.adminPasswordFile, toPath: files.appendingPathComponent("bind-password").path)
        try fileManager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: files.appendingPathComponent("bind-password").path)
        try clinic.yaml(url: server.url, passwordFile: "/run/credentials/roster.service/bind-password", bindDN: server.adminDN,
                        mirrorPath: "/var/lib/roster/roster.sqlite", httpPort: httpPort)
            .write(to: files.appendingPathComponent("roster.yaml"), atomically: true, encoding: .utf8)
        try fileManager.setAttributes([.posixPermissions: 0o644], ofItemAtPath: files.appendingPathComponent("roster.yaml").path)

        defer { _ = try? Tools.run(Self.sandboxScript, ["stop", sandbox.path]) }
        try Tools.run(Self.sandboxScript, ["start", sandbox.path])
        @discardableResult
        func inside(_ arguments: [String]) throws -> String { try Tools.run(Self.sandboxScript, ["exec", sandbox.path] + arguments) }
        func property(_ name: String) throws -> String {
            try inside(["systemctl", "show", "--value", "-p", name, "roster.service"]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func log() -> String { (try? inside(["cat", "/run/roster-test/roster.log"])) ?? "(no log)" }

        // Type=notify: `systemctl start` returns once Roster sent READY=1, after its first refresh.
        do { try inside(["systemctl", "start", "roster.service"]) } catch {
            Issue.record("systemctl start failed: \(error)\n\(log())")
            throw error
        }
        let base = "http://127.0.0.1:\(httpPort)"
        #expect(try curl(["\(base)/readyz"]).status == 200, "\(log())")
        let mainPID = try property("MainPID")
        #expect(mainPID != "0")

        // A revocation in the directory reaches the mirror the service keeps.
        let user = clinic.assistant(2, 1, 1)
        try server.ldapmodify("dn: \(clinic.dn(user))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        #expect(try await eventually(within: .seconds(3)) {
            let body = try curl(["\(base)/v1/users/\(user)"]).body
            return body.contains("\"locked\":true") || body.contains("\"locked\" : true")
        }, "\(log())")

        // The state directory and the mirror: the service's account, readable by its group only.
        let modes = try inside(["stat", "-c", "%n %a %U:%G", "/var/lib/roster", "/var/lib/roster/roster.sqlite"])
        #expect(modes.contains("/var/lib/roster 750 roster:roster"), "\(modes)")
        #expect(modes.contains("/var/lib/roster/roster.sqlite 640 roster:roster"), "\(modes)")

        // The reconciles' threads run below the stream where a thread may also return to the
        // process's priority: the unit's LimitNICE=+0, which systemd sets where it holds
        // CAP_SYS_RESOURCE (not in every container; then they run at the stream's, and say why).
        var threads: [(niceness: Int, name: String)] = []
        for line in try inside(["ps", "-L", "-o", "ni=,comm=", "-p", mainPID]).split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 2, let niceness = Int(fields[0]) { threads.append((niceness, String(fields[1]))) }
        }
        let reconcileThreads = threads.filter { $0.name.hasPrefix("reconcile-") }
        let applyThreads = threads.filter { $0.name.hasPrefix("apply-") }
        #expect(reconcileThreads.count == 2 && applyThreads.count == 1, "threads \(threads)")
        #expect(applyThreads.allSatisfy { $0.niceness == 0 }, "threads \(threads)")
        // "Max nice priority  <soft>  <hard>": the soft limit.
        let limitLine = try inside(["grep", "Max nice priority", "/proc/\(mainPID)/limits"])
        let limitFields = limitLine.split(separator: " ", omittingEmptySubsequences: true)
        let niceLimit = limitFields.count > 3 ? Int(limitFields[3]) ?? 0 : 0
        if niceLimit >= 20 {
            #expect(reconcileThreads.allSatisfy { $0.niceness == 10 }, "threads \(threads)")
            #expect(!log().contains("Reconciles run at the change stream's priority"), "\(log())")
        } else {
            #expect(reconcileThreads.allSatisfy { $0.niceness == 0 }, "RLIMIT_NICE \(niceLimit): threads \(threads)")
            #expect(log().contains("Allow it with LimitNICE=+0"), "\(log())")
        }
        #expect(!log().contains("SystemCallFilter=setpriority"), "lowering must not be refused: \(log())")

        // The watchdog: systemd would kill and restart a service that missed its pings for 3 s.
        try await Task.sleep(for: .seconds(7))
        #expect(try property("NRestarts") == "0", "\(log())")
        #expect(try property("ActiveState") == "active")
        #expect(try property("MainPID") == mainPID)

        // `systemctl reload`: the configuration is read again.
        try inside(["systemctl", "reload", "roster.service"])
        #expect(try await eventually(within: .seconds(5)) { log().contains("Configuration reloaded from /run/roster-test/roster.yaml") }, "\(log())")
        #expect(try curl(["\(base)/readyz"]).status == 200)

        // `systemctl stop`: SIGTERM, a clean exit within TimeoutStopSec.
        try inside(["systemctl", "stop", "roster.service"])
        #expect(try property("Result") == "success", "\(log())")
        #expect(try property("ExecMainStatus") == "0", "\(log())")
        let finalLog = log()
        #expect(finalLog.contains("Roster stopped."), "\(finalLog)")
        #expect(!finalLog.contains(server.adminPassword), "the bind password must never be logged")
    }

    /// The account the unit runs as, created as its install notes say when it is missing.
    static func ensureServiceAccount() throws {
        if getpwnam("roster") != nil { return }
        try Tools.run("/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "roster"])
    }
}
