import Foundation
import SlapdHarness
import Testing

/// Runs `curl` against the daemon's HTTP endpoint.
func curl(_ arguments: [String]) throws -> (status: Int, body: String) {
    let output = try Tools.run("/usr/bin/curl", ["-s", "-o", "-", "-w", "\n%{http_code}"] + arguments)
    let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
}

@Suite("roster run, the daemon, against a real slapd", .serialized)
struct DaemonTests {
    @Test("Ready after the first refresh; a revocation shows in /v1/users and /v1/events; SIGHUP with a bad file keeps the old configuration; SIGTERM stops it")
    func daemon() async throws {
        let clinic = ClinicDirectory(suffix: "dc=daemon,dc=test")
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif())
        defer { server.shutdown() }
        let httpPort = try Tools.freePort()
        let configPath = server.directory.appendingPathComponent("roster.yaml").path
        let yaml = clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN,
                               mirrorPath: server.directory.appendingPathComponent("state/roster.sqlite").path, httpPort: httpPort)
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let log = server.directory.appendingPathComponent("roster.log").path
        let daemon = try ChildProcess(path: RosterCLI.executable, arguments: ["run", "--config", configPath], logFile: log)
        defer { daemon.terminate() }
        let base = "http://127.0.0.1:\(httpPort)"

        #expect(try await eventually(within: .seconds(30)) { (try? curl(["\(base)/readyz"]).status) == 200 },
                "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(try curl(["\(base)/healthz"]).status == 200)
        let metrics = try curl(["\(base)/metrics"]).body
        #expect(metrics.contains("roster_directory_connected 1"))

        let user = clinic.assistant(2, 1, 1)
        let before = try curl(["\(base)/v1/users/\(user)"])
        #expect(before.status == 200)
        #expect(before.body.contains("\"locked\":false") || before.body.contains("\"locked\" : false"))
        #expect(try curl(["\(base)/v1/users/nobody-here"]).status == 404)

        // The application's event stream, from now on.
        let eventsFile = server.directory.appendingPathComponent("events.txt").path
        let lastID = try curl(["\(base)/v1/status"]).status == 200 ? 0 : 0
        let listener = try ChildProcess(path: "/usr/bin/curl", arguments: ["-sN", "\(base)/v1/events?after=\(lastID)"],
                                        logFile: server.directory.appendingPathComponent("curl.log").path, outputFile: eventsFile)
        defer { listener.terminate() }
        try await Task.sleep(for: .milliseconds(200))

        try server.ldapmodify("dn: \(clinic.dn(user))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        #expect(try await eventually(within: .seconds(2)) {
            let body = try curl(["\(base)/v1/users/\(user)"]).body
            return body.contains("\"locked\":true") || body.contains("\"locked\" : true")
        })
        #expect(try await eventually(within: .seconds(2)) {
            let text = (try? String(contentsOfFile: eventsFile, encoding: .utf8)) ?? ""
            return text.contains("event: user.locked") && text.contains(user)
        })

        // A broken configuration on SIGHUP: logged, ignored, still serving.
        try (yaml + "\nunknown_section: 1\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        #expect(try await eventually(within: .seconds(5)) {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("keeps running with the old one")
        })
        #expect(try curl(["\(base)/healthz"]).status == 200)
        let logText = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(logText.contains("<3>"), "errors carry the journald priority prefix")
        #expect(!logText.contains(server.adminPassword), "the bind password must never be logged")

        // SIGTERM: a graceful stop.
        let clock = ContinuousClock()
        let started = clock.now
        daemon.signal(SIGTERM)
        let status = daemon.waitForExit()
        #expect(status == 0, "exit status \(status)")
        #expect(clock.now - started < .seconds(15))
    }
}
