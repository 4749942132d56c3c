import AccessModel
import Foundation
import Mirror
import RosterService
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
    @Test("Ready after the first refresh; a revocation, and an admin's local lock from the command line, show in /v1/users and /v1/events; SIGHUP with a bad file keeps the old configuration; SIGTERM stops it")
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
        let daemon = try ChildProcess(path: RosterCLI.executable, arguments: ["run", "--config", configPath, "--log-level", "debug"], logFile: log)
        defer { daemon.terminate() }
        let base = "http://127.0.0.1:\(httpPort)"

        #expect(try await eventually(within: .seconds(30)) { (try? curl(["\(base)/readyz"]).status) == 200 },
                "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(try curl(["\(base)/healthz"]).status == 200)
        // Once ready, the journal anchors the audit chain: the row it names has the hash it names.
        func anchorLine() -> Substring? {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").first { $0.contains("Audit log head: row ") }
        }
        #expect(try await eventually(within: .seconds(5)) { anchorLine() != nil })
        let anchor = try #require(anchorLine(), "no audit anchor in the log")
        #expect(anchor.hasPrefix("<5>"), "logged at notice level: \(anchor)")
        let anchorWords = anchor.split(separator: " ")
        let anchoredRow = try #require(anchorWords.firstIndex(of: "row").flatMap { Int(anchorWords[$0 + 1].dropLast()) })
        let anchoredHash = try #require(anchorWords.last).dropLast()
        let exported = try RosterCLI.run(["audit", "export", "--after", "\(anchoredRow - 1)", "--limit", "1", "--config", configPath])
        #expect(exported.stdout.contains("\"hash\":\"\(anchoredHash)\"") && exported.stdout.contains("\"id\":\(anchoredRow),"), "\(anchor) / \(exported.stdout)")
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
        // At debug level the daemon logs when it committed the change, to the microsecond.
        func commitLine() -> Substring? {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
                .first { $0.hasPrefix("<7>roster.directory: Applied a users change.") && $0.contains("user=\(user)") }
        }
        #expect(try await eventually(within: .seconds(2)) { commitLine() != nil })
        let committed = commitLine()
        #expect(committed?.contains("revocation=true") == true, "\(committed ?? "no debug line for \(user)")")
        let stamp = committed?.split(separator: " ").first { $0.hasPrefix("committed_at=") }?.dropFirst("committed_at=".count)
        let when = try #require(stamp.flatMap { PreciseTimestamp.date($0) }, "\(committed ?? "")")
        #expect(abs(when.timeIntervalSinceNow) < 60)
        #expect(stamp?.count == "2026-11-24T21:55:17.123456Z".count)
        // The revocation's whole delay, from slapd's own change time (its CSN) to the commit.
        let sinceChange = committed?.split(separator: " ").first { $0.hasPrefix("directory_to_commit_ms=") }
            .flatMap { Double($0.dropFirst("directory_to_commit_ms=".count)) }
        #expect(sinceChange.map { $0 >= 0 && $0 < 2000 } == true, "\(committed ?? "")")
        let lagLines = try curl(["\(base)/metrics"]).body.split(separator: "\n")
        #expect(lagLines.contains("roster_revocation_lag_seconds_count 1"), "\(lagLines.filter { $0.contains("lag") })")
        let streamLag = lagLines.first { $0.hasPrefix("roster_stream_lag_seconds ") }.flatMap { Double($0.split(separator: " ")[1]) }
        #expect(streamLag.map { $0 > 0 && $0 < 2 } == true, "\(lagLines.filter { $0.contains("lag") })")

        // An admin's local lock from the command line, beside the running daemon: the
        // application hears of it through the daemon's event stream.
        let suspect = clinic.assistant(2, 1, 2)
        let lock = try RosterCLI.run(["user", "lock", suspect, "--reason", "incident 42", "--config", configPath])
        #expect(lock.status == 0, "\(lock.stderr)")
        #expect(try await eventually(within: .seconds(6)) {
            let text = (try? String(contentsOfFile: eventsFile, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "\n\n").contains { $0.contains("event: user.locked") && $0.contains("\"\(suspect)\"") }
        }, "\((try? String(contentsOfFile: eventsFile, encoding: .utf8)) ?? "")")
        let suspectDocument = try curl(["\(base)/v1/users/\(suspect)"]).body
        #expect(suspectDocument.contains("incident 42"), "\(suspectDocument)")

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
        let status = try await Tools.offPool { daemon.waitForExit() }
        #expect(status == 0, "exit status \(status)")
        #expect(clock.now - started < .seconds(15))
    }

    @Test("The directory answers with nothing (bind account without read rights, wrong base DN): the breaker holds, nobody is deactivated, /readyz, /metrics and the log say why; it recovers")
    func directoryAnswersNothing() async throws {
        let clinic = ClinicDirectory(suffix: "dc=faults,dc=test")
        let readerDN = "cn=roster-reader,\(clinic.suffix)"
        let readerSecret = "reader-\(UInt64.random(in: 1...UInt64.max))"
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif()
            + "dn: \(readerDN)\nobjectClass: person\ncn: roster-reader\nsn: reader\nuserPassword: \(readerSecret)\n\n")
        defer { server.shutdown() }
        let passwordFile = server.directory.appendingPathComponent("reader.secret").path
        try "\(readerSecret)\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let httpPort = try Tools.freePort()
        let configPath = server.directory.appendingPathComponent("roster.yaml").path
        let mirrorPath = server.directory.appendingPathComponent("state/roster.sqlite").path
        let yaml = clinic.yaml(url: server.url, passwordFile: passwordFile, bindDN: readerDN, mirrorPath: mirrorPath, httpPort: httpPort)
            .replacingOccurrences(of: "reconcile_interval_minutes: 15", with: "reconcile_interval_minutes: 0.02")
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let log = server.directory.appendingPathComponent("roster.log").path
        let daemon = try ChildProcess(path: RosterCLI.executable, arguments: ["run", "--config", configPath], logFile: log)
        defer { daemon.terminate() }
        let base = "http://127.0.0.1:\(httpPort)"
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(try await eventually(within: .seconds(30)) { (try? curl(["\(base)/readyz"]).status) == 200 }, "\(logText())")
        let mirror = try Mirror(path: mirrorPath)
        func activeUsers() throws -> Int { try mirror.snapshot().users.values.filter { $0.state.isActive }.count }
        #expect(try activeUsers() == clinic.userCount)

        // 1. The bind account loses its read rights on the people subtree.
        try await server.restart(accessRules: "access to dn.children=\"ou=people,\(clinic.suffix)\" by dn.exact=\"\(readerDN)\" none by * read")
        #expect(try await eventually(within: .seconds(20)) {
            let ready = try curl(["\(base)/readyz"])
            return ready.status == 503 && ready.body.contains("no users at all")
        }, "\((try? curl(["\(base)/readyz"]).body) ?? "")")
        #expect(try curl(["\(base)/metrics"]).body.split(separator: "\n").contains { $0.hasPrefix("roster_breaker_trips_total") && !$0.hasSuffix(" 0") })
        #expect(logText().contains("Safety breaker"))
        #expect(try activeUsers() == clinic.userCount, "nobody is deactivated")

        // Rights back: the next reconcile succeeds and the daemon is ready again.
        try await server.restart(accessRules: "")
        #expect(try await eventually(within: .seconds(30)) { (try? curl(["\(base)/readyz"]).status) == 200 }, "\((try? curl(["\(base)/readyz"]).body) ?? "")")

        // 2. A configuration reloaded with a base DN that does not exist.
        try yaml.replacingOccurrences(of: "base: 'ou=people,", with: "base: 'ou=nobody,")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        #expect(try await eventually(within: .seconds(20)) {
            let ready = try curl(["\(base)/readyz"])
            return ready.status == 503 && ready.body.contains("ou=nobody")
        }, "\((try? curl(["\(base)/readyz"]).body) ?? "")")
        #expect(try activeUsers() == clinic.userCount, "nobody is deactivated")
        #expect(try curl(["\(base)/v1/users/\(clinic.assistant(1, 1, 1))"]).status == 200, "the last good state is still served")
        #expect(!logText().contains(readerSecret), "the bind password must never be logged")

        // Fixed: ready again.
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        #expect(try await eventually(within: .seconds(30)) { (try? curl(["\(base)/readyz"]).status) == 200 }, "\((try? curl(["\(base)/readyz"]).body) ?? "")")
        #expect(try activeUsers() == clinic.userCount)
        #expect(try mirror.verifyAuditLog() == nil)
    }

    @Test("At trace level, no secret (bind password, HTTP token) reaches the log or the mirror; the mirror is not world-readable")
    func secretsStaySecret() async throws {
        let clinic = ClinicDirectory(suffix: "dc=secrets,dc=test")
        let readerDN = "cn=roster-reader,\(clinic.suffix)"
        let password = "pw-\(UInt64.random(in: 1...UInt64.max))"
        let token = "tk-\(UInt64.random(in: 1...UInt64.max))"
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif()
            + "dn: \(readerDN)\nobjectClass: person\ncn: roster-reader\nsn: reader\nuserPassword: \(password)\n\n")
        defer { server.shutdown() }
        let folder = server.directory
        let passwordFile = folder.appendingPathComponent("reader.secret").path
        let tokenFile = folder.appendingPathComponent("http.token").path
        try "\(password)\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        try "\(token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let httpPort = try Tools.freePort()
        let configPath = folder.appendingPathComponent("roster.yaml").path
        let stateFolder = folder.appendingPathComponent("state").path
        let mirrorPath = stateFolder + "/roster.sqlite"
        let yaml = clinic.yaml(url: server.url, passwordFile: passwordFile, bindDN: readerDN, mirrorPath: mirrorPath, httpPort: httpPort)
            .replacingOccurrences(of: "http: {address: 127.0.0.1, port: \(httpPort)}",
                                  with: "http: {address: 127.0.0.1, port: \(httpPort), token_file: '\(tokenFile)'}")
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let log = folder.appendingPathComponent("roster.log").path
        let daemon = try ChildProcess(path: RosterCLI.executable, arguments: ["run", "--config", configPath, "--log-level", "trace"], logFile: log)
        defer { daemon.terminate() }
        let base = "http://127.0.0.1:\(httpPort)"
        let bearer = ["-H", "Authorization: Bearer \(token)"]
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        #expect(try await eventually(within: .seconds(30)) { (try? curl(bearer + ["\(base)/readyz"]).status) == 200 }, "\(logText())")
        #expect(try curl(["-H", "Authorization: Bearer \(token)x", "\(base)/v1/status"]).status == 401)
        #expect(try curl(["\(base)/v1/users/\(clinic.assistant(1, 1, 1))"]).status == 401)
        let user = clinic.assistant(1, 1, 2)
        try server.ldapmodify("dn: \(clinic.dn(user))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        #expect(try await eventually(within: .seconds(3)) { try curl(bearer + ["\(base)/v1/users/\(user)"]).body.contains("\"locked\":true") })
        daemon.signal(SIGHUP)
        #expect(try await eventually(within: .seconds(10)) { logText().contains("Configuration reloaded") })
        daemon.signal(SIGTERM)
        #expect(try await Tools.offPool { daemon.waitForExit() } == 0)

        let text = logText()
        #expect(text.contains("<7>"), "trace and debug messages were written")
        for (name, secret) in [("bind password", password), ("HTTP token", token)] {
            #expect(!text.contains(secret), "the \(name) appears in the log")
            for file in try FileManager.default.contentsOfDirectory(atPath: stateFolder) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: stateFolder + "/" + file))
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "the \(name) appears in the mirror file \(file)")
            }
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: mirrorPath)
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
        #expect(mode & 0o007 == 0, "the mirror is world-accessible: \(String(mode, radix: 8))")
        let folderMode = ((try FileManager.default.attributesOfItem(atPath: stateFolder))[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
        #expect(folderMode & 0o007 == 0, "the mirror's folder is world-accessible: \(String(folderMode, radix: 8))")
    }

    @Test("The mirror's disk full: Roster says why, keeps serving the last good state, and catches up when space returns; a read-only mirror is a clear error; the file stays sound")
    func mirrorCannotBeWritten() async throws {
        let clinic = ClinicDirectory(suffix: "dc=disk,dc=test")
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif())
        defer { server.shutdown() }
        // A real small file system for the mirror (mounting needs root, as CI runs).
        let disk = server.directory.appendingPathComponent("small-disk").path
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        do {
            try Tools.run("/bin/mount", ["-t", "tmpfs", "-o", "size=6m", "roster-test", disk])
        } catch {
            Issue.record("This test mounts a 6 MB tmpfs for the mirror and needs root: \(error)")
            return
        }
        defer { _ = try? Tools.run("/bin/umount", ["-l", disk]) }
        let httpPort = try Tools.freePort()
        let configPath = server.directory.appendingPathComponent("roster.yaml").path
        let mirrorPath = disk + "/state/roster.sqlite"
        try clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: mirrorPath, httpPort: httpPort)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let log = server.directory.appendingPathComponent("roster.log").path
        let daemon = try ChildProcess(path: RosterCLI.executable, arguments: ["run", "--config", configPath], logFile: log)
        defer { daemon.terminate() }
        let base = "http://127.0.0.1:\(httpPort)"
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func readyz() -> String { (try? curl(["\(base)/readyz"]).body) ?? "" }
        func isLocked(_ user: String) throws -> Bool {
            let body = try curl(["\(base)/v1/users/\(user)"]).body
            return body.contains("\"locked\":true") || body.contains("\"locked\" : true")
        }
        func lock(_ user: String) throws {
            try server.ldapmodify("dn: \(clinic.dn(user))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        }
        #expect(try await eventually(within: .seconds(30)) { (try? curl(["\(base)/readyz"]).status) == 200 }, "\(logText())")

        // 1. The disk fills up.
        let filler = disk + "/filler"
        #expect(FileManager.default.createFile(atPath: filler, contents: nil), "the filler file could not be created")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
        let chunk = Data(count: 64 * 1024)
        while (try? handle.write(contentsOf: chunk)) != nil {}
        try? handle.close()
        let first = clinic.assistant(1, 1, 1)
        try lock(first)
        #expect(try await eventually(within: .seconds(10)) { readyz().contains("full") }, "\(readyz())\n\(logText())")
        #expect(try curl(["\(base)/v1/users/\(first)"]).status == 200, "the last good state is still served")
        #expect(try !isLocked(first))
        try FileManager.default.removeItem(atPath: filler)
        #expect(try await eventually(within: .seconds(30)) { try isLocked(first) }, "\(logText())")
        #expect(try await eventually(within: .seconds(10)) { (try? curl(["\(base)/readyz"]).status) == 200 }, "\(readyz())")

        daemon.signal(SIGTERM)
        #expect(try await Tools.offPool { daemon.waitForExit() } == 0)

        // 2. The file system is read-only (remounted while Roster is stopped; a running
        //    process's open files keep a tmpfs from being remounted).
        try Tools.run("/bin/mount", ["-o", "remount,ro", disk])
        let sync = try RosterCLI.run(["sync", "--config", configPath])
        #expect(sync.status == 1, "\(sync.stderr)")
        #expect(sync.stderr.contains(mirrorPath) && sync.stderr.lowercased().contains("read"), "\(sync.stderr)")
        try Tools.run("/bin/mount", ["-o", "remount,rw", disk])
        let again = try RosterCLI.run(["sync", "--config", configPath])
        #expect(again.status == 0, "\(again.stderr)")
        let mirror = try Mirror(path: mirrorPath)
        #expect(try mirror.verifyAuditLog() == nil)
        #expect(try mirror.integrityCheck() == "ok")
    }

    @Test("With http.tls the endpoint serves HTTPS only, verified against the CA; a half TLS configuration is refused")
    func https() async throws {
        let clinic = ClinicDirectory(suffix: "dc=https,dc=test")
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif())
        defer { server.shutdown() }
        let folder = server.directory.appendingPathComponent("https")
        let certificates = try await Tools.offPool { try TestCertificates.make(in: folder) }
        let httpPort = try Tools.freePort()
        let configPath = server.directory.appendingPathComponent("roster.yaml").path
        let yaml = clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN,
                               mirrorPath: server.directory.appendingPathComponent("state/roster.sqlite").path, httpPort: httpPort)
        let plainLine = "http: {address: 127.0.0.1, port: \(httpPort)}"
        let half = yaml.replacingOccurrences(of: plainLine, with: "http: {address: 127.0.0.1, port: \(httpPort), tls: {certificate_file: '\(certificates.serverCertificate)'}}")
        try half.write(toFile: configPath, atomically: true, encoding: .utf8)
        let check = try RosterCLI.run(["check-config", "--config", configPath])
        #expect(check.status == 2 && check.stderr.contains("http.tls.key_file"), "\(check.stderr)")

        try yaml.replacingOccurrences(of: plainLine, with: "http: {address: 127.0.0.1, port: \(httpPort), tls: {certificate_file: '\(certificates.serverCertificate)', key_file: '\(certificates.serverKey)'}}")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let log = server.directory.appendingPathComponent("roster.log").path
        let daemon = try ChildProcess(path: RosterCLI.executable, arguments: ["run", "--config", configPath], logFile: log)
        defer { daemon.terminate() }
        let https = "https://127.0.0.1:\(httpPort)"
        #expect(try await eventually(within: .seconds(30)) { (try? curl(["--cacert", certificates.caCertificate, "\(https)/readyz"]).status) == 200 },
                "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(((try? curl(["--cacert", certificates.otherCACertificate, "\(https)/healthz"]))?.status ?? 0) == 0,
                "a client trusting another CA refuses the server")
        #expect(((try? curl(["http://127.0.0.1:\(httpPort)/healthz"]))?.status ?? 0) != 200, "plain HTTP is not served")
        #expect(try curl(["--cacert", certificates.caCertificate, "\(https)/v1/users/\(clinic.assistant(1, 1, 1))"]).status == 200)
    }
}
