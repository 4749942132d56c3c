import AccessModel
import Foundation
import Mirror
import RosterConfig
import SlapdHarness
import Testing

/// Runs the built `roster` executable, as IT would.
struct RosterCLI {
    static var executable: String {
        // The test bundle sits beside the executables in the build folder.
        let bundle = Bundle.main.bundleURL.deletingLastPathComponent()
        for candidate in [bundle.appendingPathComponent("roster"), bundle.deletingLastPathComponent().appendingPathComponent("roster")] {
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("roster").path
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `roster` with `arguments`; with `executable`, that program instead, whose
    /// `arguments` start with its own name (as `runuser -u nobody -- roster …`).
    static func run(_ arguments: [String], executable other: String? = nil, environment: [String: String] = [:]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: other ?? executable)
        process.arguments = other == nil ? arguments : Array(arguments.dropFirst())
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// A clinic directory in a real slapd, and a roster.yaml for it beside the slapd's files.
struct CLIFixture {
    let clinic: ClinicDirectory
    let server: SlapdServer
    let mirrorPath: String
    let configPath: String
    let yaml: String

    static func start(suffix: String) async throws -> CLIFixture {
        let clinic = ClinicDirectory(suffix: suffix)
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif())
        let mirrorPath = server.directory.appendingPathComponent("state/roster.sqlite").path
        let configPath = server.directory.appendingPathComponent("roster.yaml").path
        let yaml = clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: mirrorPath)
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        return CLIFixture(clinic: clinic, server: server, mirrorPath: mirrorPath, configPath: configPath, yaml: yaml)
    }

    /// A roster.yaml (0644) for this directory in a folder anyone may enter, whose mirror is in
    /// that folder's `state` folder: 0750, owned by `owner` and `group`, as systemd makes a state
    /// directory. With `readerGroup`, the mirror names it.
    func configInStateFolder(named name: String, owner: uid_t = 0, group: gid_t, readerGroup: String? = nil) throws
        -> (configPath: String, mirrorPath: String, state: String) {
        let folder = TemporaryFolders.make(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let state = folder.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        guard chown(state, owner, group) == 0 else { throw CocoaError(.fileWriteNoPermission) }
        let mirrorPath = state + "/roster.sqlite"
        let configPath = folder.appendingPathComponent("roster.yaml").path
        let mirrorLine = "mirror: {path: '\(mirrorPath)'" + (readerGroup.map { ", reader_group: \($0)" } ?? "") + "}"
        let replaced = yaml.replacingOccurrences(of: "mirror: {path: '\(self.mirrorPath)'}", with: mirrorLine)
        guard replaced.contains(mirrorLine) else { throw CocoaError(.fileReadCorruptFile) }
        try replaced.write(toFile: configPath, atomically: true, encoding: .utf8)
        chmod(configPath, 0o644)
        return (configPath, mirrorPath, state)
    }
}

@Suite("The roster command line against a real slapd")
struct CommandLineTests {
    @Test("check-config, sync (dry run, real, JSON), user show/explain, users, groups and audit commands")
    func endToEnd() async throws {
        let fixture = try await CLIFixture.start(suffix: "dc=cli,dc=test")
        defer { fixture.server.shutdown() }
        let (clinic, configPath) = (fixture.clinic, fixture.configPath)

        let check = try RosterCLI.run(["check-config", "--config", configPath])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("valid"))

        let dry = try RosterCLI.run(["sync", "--config", configPath, "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("dry run"))
        #expect(dry.stdout.contains("users added") && dry.stdout.contains("\(clinic.userCount)"))
        let afterDryRun = try RosterCLI.run(["users", "search", "hc", "--config", configPath])
        #expect(afterDryRun.stdout.contains("0 users"), "a dry run must not change the mirror")

        let sync = try RosterCLI.run(["sync", "--config", configPath, "--json"])
        #expect(sync.status == 0, "\(sync.stderr)")
        let plan = try JSONSerialization.jsonObject(with: Data(sync.stdout.utf8)) as? [String: Any]
        #expect((plan?["plan"] as? [String: Any])?["usersAdded"] as? Int == clinic.userCount)
        #expect(((plan?["changes"] as? [Any])?.count ?? 0) > clinic.userCount)
        let created = (plan?["changes"] as? [[String: Any]] ?? []).first { $0["action"] as? String == "user.created" }
        #expect(created?["before"] is NSNull && created?["after"] is String, "a creation's change has before: null")

        let moa = clinic.assistant(1, 2, 1)
        let show = try RosterCLI.run(["user", "show", moa.uppercased(), "--json", "--config", configPath])
        #expect(show.status == 0, "\(show.stderr)")
        let document = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
        #expect(document?["userCode"] as? String == moa)
        for key in ["displayName", "email", "active", "locked", "stateReason", "superAdministrator", "healthCenters", "groups", "access"] {
            #expect(document?[key] != nil, "missing \(key)")
        }
        #expect(document?["stateReason"] is NSNull, "an active user has no state reason, and the key says so")
        let access = document?["access"] as? [[String: Any]] ?? []
        #expect(access.contains { $0["module"] as? String == "providers_office" && $0["privilege"] as? String == "full_access" })

        let text = try RosterCLI.run(["user", "show", moa, "--config", configPath])
        #expect(text.stdout.contains("providers_office") && text.stdout.contains("HC1 office2 MOAs"))

        let explain = try RosterCLI.run(["user", "explain", moa, "--config", configPath])
        #expect(explain.status == 0)
        #expect(explain.stdout.contains("cn=hc1-office2-moa"))
        #expect(explain.stdout.contains(" by groups."), "each group's contribution names the roster.yaml rule that makes it")
        #expect(explain.stdout.contains("read_only") || explain.stdout.contains("Read-Only") || explain.stdout.contains("read"))

        let search = try RosterCLI.run(["users", "search", "office2hc1", "--config", configPath])
        #expect(search.stdout.contains(moa))
        let emails = try RosterCLI.run(["users", "email-list", "--config", configPath])
        #expect(emails.stdout.contains("\(moa)@clinic.example"))

        let groups = try RosterCLI.run(["groups", "list", "--health-center", "HC2", "--kind", "pool", "--config", configPath])
        #expect(groups.stdout.contains("HC2 Reporting"))
        #expect(!groups.stdout.contains("HC1 Reporting"))
        let group = try RosterCLI.run(["groups", "show", "HC1 OR Booking", "--config", configPath])
        #expect(group.status == 0, "\(group.stderr)")
        #expect(group.stdout.contains("Care Venue") && group.stdout.contains(clinic.provider(1, 1, 1)))

        let tail = try RosterCLI.run(["audit", "tail", "-c", "5", "--config", configPath])
        #expect(tail.stdout.split(separator: "\n").count == 6)
        let verify = try RosterCLI.run(["audit", "verify", "--config", configPath])
        #expect(verify.status == 0 && verify.stdout.contains("unbroken"))

        // Every read command has a --json form for scripts, with every key present.
        func json(_ arguments: [String]) throws -> Any? {
            let result = try RosterCLI.run(arguments + ["--json", "--config", configPath])
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        }
        let explained = try #require(try json(["user", "explain", moa]) as? [String: Any])
        #expect(explained["userCode"] as? String == moa && explained["noAccessReason"] is NSNull)
        let explainedGrants = explained["grants"] as? [[String: Any]] ?? []
        #expect(explainedGrants.contains { grant in
            grant["module"] as? String == "providers_office" && grant.keys.contains("provider")
                && (grant["contributions"] as? [[String: Any]] ?? []).contains {
                    $0["directoryGroup"] as? String == "cn=hc1-office2-moa,ou=groups,\(clinic.suffix)" && $0["decides"] as? Bool == true
                        && ($0["rule"] as? String)?.hasPrefix("groups.") == true
                }
        })
        let addresses = try #require(try json(["users", "email-list"]) as? [String])
        #expect(addresses.contains("\(moa)@clinic.example"))
        let shown = try #require(try json(["groups", "show", "HC1 OR Booking"]) as? [String: Any])
        #expect(shown["kind"] as? String == "provider" && shown.keys.contains("directoryDN"))
        let targets = (shown["modules"] as? [[String: Any]] ?? []).flatMap { $0["targets"] as? [[String: Any]] ?? [] }
        #expect(targets.contains { $0["id"] as? String == clinic.provider(1, 1, 1) && $0["privacy"] is String && $0["privilege"] is String })
        #expect(!(shown["members"] as? [String] ?? []).isEmpty)
        let verified = try #require(try json(["audit", "verify"]) as? [String: Any])
        #expect(verified["intact"] as? Bool == true && (verified["rows"] as? Int ?? 0) > clinic.userCount && verified["brokenAt"] is NSNull)
    }

    /// The executable's memory comes from mimalloc, not glibc's malloc (README, "The memory
    /// allocator"): mimalloc, asked to be verbose, says so as the process starts.
    @Test("roster allocates with mimalloc")
    func allocatesWithMimalloc() throws {
        let result = try RosterCLI.run(["--help"], environment: ["MIMALLOC_VERBOSE": "1"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("mimalloc: process init"), "\(result.stderr.prefix(300))")
    }

    @Test("An invalid configuration prints every problem with file, line and key, and exits 2")
    func invalidConfiguration() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roster-cli-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("roster.yaml").path
        try """
        directory:
          urls: [ldap://127.0.0.1:1]
          base_dn: dc=x
          bind: {method: simple, dn: 'cn=a,dc=x', password: hunter2}
        users:
          filtr: (uid=*)
        health_centers: []

        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try RosterCLI.run(["check-config", "--config", path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("roster.yaml:6:3"), "\(result.stderr)")
        #expect(result.stderr.contains("filtr") && result.stderr.contains("filter"))
        #expect(result.stderr.contains("password_file"))
        #expect(!result.stderr.contains("hunter2"))
        let sync = try RosterCLI.run(["sync", "--config", path])
        #expect(sync.status == 2)
    }

    @Test("A sync the breaker refuses exits 3 and says how to proceed")
    func breakerExit() async throws {
        let fixture = try await CLIFixture.start(suffix: "dc=clibreaker,dc=test")
        defer { fixture.server.shutdown() }
        let (configPath, yaml) = (fixture.configPath, fixture.yaml)
        #expect(try RosterCLI.run(["sync", "--config", configPath]).status == 0)
        try yaml.replacingOccurrences(of: "base: 'ou=people,", with: "base: 'ou=policies,")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let refused = try RosterCLI.run(["sync", "--config", configPath])
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("--force"))
        #expect(refused.stderr.contains("no users"))
    }

    @Test("An admin's local lock and deactivation: audited under the admin's name, told to the application, kept through syncs whatever the directory says, lifted only locally")
    func localLockAndDeactivation() async throws {
        let fixture = try await CLIFixture.start(suffix: "dc=clilocal,dc=test")
        defer { fixture.server.shutdown() }
        let (clinic, server, configPath, mirrorPath) = (fixture.clinic, fixture.server, fixture.configPath, fixture.mirrorPath)
        #expect(try RosterCLI.run(["sync", "--config", configPath]).status == 0)
        let moa = clinic.assistant(1, 2, 1)
        func state() throws -> AccountState {
            guard let stored = try Mirror(path: mirrorPath).user(UserCode(moa)) else { throw HarnessError("no user \(moa) in the mirror") }
            return stored.state
        }
        func sync() throws { #expect(try RosterCLI.run(["sync", "--config", configPath]).status == 0) }
        func directoryLock(_ locked: Bool) throws {
            try server.ldapmodify("dn: \(clinic.dn(moa))\nchangetype: modify\n"
                + (locked ? "replace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n" : "delete: pwdAccountLockedTime\n"))
        }

        // Refused before anything changes: no reason, an empty or multi-line one, an unknown user.
        #expect(try RosterCLI.run(["user", "lock", moa, "--config", configPath]).status != 0)
        let empty = try RosterCLI.run(["user", "lock", moa, "--reason", "  ", "--config", configPath])
        #expect(empty.status == 2 && empty.stderr.contains("--reason is empty"), "\(empty.stderr)")
        #expect(try RosterCLI.run(["user", "lock", moa, "--reason", "one\ntwo", "--config", configPath]).status == 2)
        let unknown = try RosterCLI.run(["user", "lock", "nobody-here", "--reason", "test", "--config", configPath])
        #expect(unknown.status == 1 && unknown.stderr.contains("No user 'nobody-here'"), "\(unknown.stderr)")
        #expect(try state() == .active)

        let audit = try Mirror(path: mirrorPath).auditRowCount()
        let lock = try RosterCLI.run(["user", "lock", moa.uppercased(), "--reason", "laptop stolen", "--config", configPath],
                                     environment: ["SUDO_USER": "alice"])
        #expect(lock.status == 0, "\(lock.stderr)")
        #expect(lock.stdout.contains("locked locally by alice via sudo as"), "\(lock.stdout)")
        #expect(try state() == AccountState(lockedLocally: true, reason: "laptop stolen"))
        let mirror = try Mirror(path: mirrorPath)
        let row = try #require(try mirror.auditTail(limit: 1).first)
        #expect(row.actorKind == "local" && row.actor.hasPrefix("alice via sudo as") && row.entityKey == moa, "\(row)")
        #expect(try mirror.auditRowCount() == audit + 1)
        func events() throws -> [String] { try mirror.events().filter { $0.userCode == moa }.map(\.type) }
        #expect(try events().filter { $0 == "user.locked" }.count == 1, "\((try? events()) ?? [])")
        let again = try RosterCLI.run(["user", "lock", moa, "--reason", "laptop stolen", "--config", configPath])
        #expect(again.status == 0 && again.stdout.contains("already locked"), "\(again.stdout)")
        #expect(try mirror.auditRowCount() == audit + 1)

        // The directory locks and unlocks the account: the local lock holds throughout.
        try directoryLock(true)
        try sync()
        #expect(try state().lockedLocally && state().lockedByDirectory)
        try directoryLock(false)
        try sync()
        #expect(try state().lockedLocally && !state().lockedByDirectory && state().isLocked)

        #expect(try RosterCLI.run(["user", "unlock", moa, "--config", configPath]).status == 0)
        #expect(try state() == .active)
        #expect(try events().filter { $0 == "user.unlocked" }.count == 1, "\((try? events()) ?? [])")

        // A local deactivation, and a directory lock left standing when the local one goes.
        #expect(try RosterCLI.run(["user", "deactivate", moa, "--reason", "left the clinic", "--config", configPath]).status == 0)
        try sync()
        #expect(try !state().isActive && state().inactiveLocally)
        #expect(try events().contains("user.deactivated"))
        try directoryLock(true)
        try sync()
        #expect(try RosterCLI.run(["user", "reactivate", moa, "--config", configPath]).status == 0)
        #expect(try state().isActive && state().isLocked)
        #expect(try RosterCLI.run(["user", "lock", moa, "--reason", "review", "--config", configPath]).status == 0)
        let unlock = try RosterCLI.run(["user", "unlock", moa, "--config", configPath])
        #expect(unlock.stdout.contains("stays locked"), "\(unlock.stdout)")
        #expect(try state() == AccountState(lockedByDirectory: true, reason: "still locked by the directory"))
        #expect(try mirror.verifyAuditLog() == nil)

        // The user's own history: every row about them, nobody else's.
        let history = try RosterCLI.run(["audit", "tail", "--user", moa.uppercased(), "-c", "100", "--json", "--config", configPath])
        #expect(history.status == 0, "\(history.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [[String: Any]])
        let keys = rows.compactMap { $0["entityKey"] as? String }
        #expect(!keys.isEmpty && keys.allSatisfy { $0 == moa || $0.hasSuffix("/\(moa)") }, "\(keys)")
        let actions = rows.compactMap { $0["action"] as? String }
        #expect(actions.first == "user.created" && actions.contains("membership.added"), "\(actions)")
        #expect(rows.contains { $0["actorKind"] as? String == "local" && ($0["actor"] as? String)?.hasPrefix("alice") == true })
    }

    @Test("A member of the mirror's reader group reads it, through SQLite read-only and the read commands, after every Roster process has stopped; it cannot change it")
    func readerGroupReadsAStoppedMirror() async throws {
        let fixture = try await CLIFixture.start(suffix: "dc=reader,dc=test")
        defer { fixture.server.shutdown() }
        // nobody's own group, nogroup, is the reader group: the application's account, here.
        let readerGroup = try #require(getgrnam("nogroup")).pointee.gr_gid
        let (configPath, mirrorPath, _) = try fixture.configInStateFolder(named: "roster-reader", group: readerGroup, readerGroup: "nogroup")
        func asNobody(_ arguments: [String]) throws -> RosterCLI.Output {
            try RosterCLI.run(["/usr/sbin/runuser", "-u", "nobody", "--"] + arguments, executable: "/usr/sbin/runuser")
        }

        // Root's commands open the mirror and close it as its last connection: a sync, a read,
        // then an admin's lock and unlock (the last closes a connection that wrote).
        let moa = fixture.clinic.assistant(1, 2, 1)
        for arguments in [["sync"], ["user", "show", moa], ["user", "lock", moa, "--reason", "a test"], ["user", "unlock", moa]] {
            let run = try RosterCLI.run(arguments + ["--config", configPath])
            #expect(run.status == 0, "\(arguments): \(run.stderr)")
        }
        for file in [mirrorPath, mirrorPath + "-wal", mirrorPath + "-shm"] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            #expect(attributes != nil, "\(file) is kept when the last Roster connection closes")
            let (group, mode) = (attributes?[.groupOwnerAccountID] as? Int, attributes?[.posixPermissions] as? Int)
            #expect(group == Int(readerGroup) && mode == 0o640, "\(file): group \(group ?? -1), mode \(String(mode ?? 0, radix: 8))")
        }

        // The application's way: SQLite, read-only, as a member of the reader group.
        let sqlite = try asNobody(["/usr/bin/sqlite3", "file:\(mirrorPath)?mode=ro", "SELECT COUNT(*) FROM user_account"])
        #expect(sqlite.status == 0, "\(sqlite.stderr)")
        #expect(sqlite.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(fixture.clinic.userCount)", "\(sqlite.stdout)")
        let rowsBefore = try RosterCLI.run(["audit", "verify", "--json", "--config", configPath])

        // The read commands, without root.
        let show = try asNobody([RosterCLI.executable, "user", "show", moa, "--json", "--config", configPath])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("\"userCode\" : \"\(moa)\""), "\(show.stdout)")
        let verify = try asNobody([RosterCLI.executable, "audit", "verify", "--json", "--config", configPath])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stdout == rowsBefore.stdout, "the same rows, read by root and by the reader group")
        let groups = try asNobody([RosterCLI.executable, "groups", "list", "--config", configPath])
        #expect(groups.status == 0 && groups.stdout.contains("HC1 OR Booking"), "\(groups.stderr)")

        // Changing it is root's (or the service account's): a sentence, and nothing written.
        let lock = try asNobody([RosterCLI.executable, "user", "lock", moa, "--reason", "not mine to set", "--config", configPath])
        #expect(lock.status == 1)
        #expect(lock.stderr.contains("may not write"), "\(lock.stderr)")
        #expect(try RosterCLI.run(["audit", "verify", "--json", "--config", configPath]).stdout == rowsBefore.stdout)
    }

    @Test("Root's first sync into the service account's state folder leaves files that account owns and can write")
    func rootsFirstSyncInTheServiceFolder() async throws {
        let fixture = try await CLIFixture.start(suffix: "dc=owner,dc=test")
        defer { fixture.server.shutdown() }
        // nobody stands for the service account, which owns its state folder.
        let service = try #require(getpwnam("nobody")).pointee
        let (configPath, _, state) = try fixture.configInStateFolder(named: "roster-service-folder", owner: service.pw_uid, group: service.pw_gid)

        let sync = try RosterCLI.run(["sync", "--config", configPath])
        #expect(sync.status == 0, "\(sync.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: state).sorted()
        #expect(files.contains("roster.sqlite") && files.contains("roster-entries.sqlite"), "\(files)")
        for file in files {
            let attributes = try FileManager.default.attributesOfItem(atPath: state + "/" + file)
            #expect(attributes[.ownerAccountID] as? Int == Int(service.pw_uid), "\(file) belongs to the folder's owner, not root")
        }
        // The service account then writes it: an admin's lock, run as that account.
        let moa = fixture.clinic.assistant(1, 2, 1)
        let lock = try RosterCLI.run(["/usr/sbin/runuser", "-u", "nobody", "--", RosterCLI.executable, "user", "lock", moa, "--reason", "a test",
                                      "--config", configPath], executable: "/usr/sbin/runuser")
        #expect(lock.status == 0, "\(lock.stderr)")
    }

    @Test("audit export: every row as a JSON line with its hash, computable as docs/mirror.md says; continued after the last row held, refused when that row changed")
    func auditExport() async throws {
        let fixture = try await CLIFixture.start(suffix: "dc=export,dc=test")
        defer { fixture.server.shutdown() }
        let configPath = fixture.configPath
        #expect(try RosterCLI.run(["sync", "--config", configPath]).status == 0)
        func export(_ arguments: [String] = []) throws -> (RosterCLI.Output, [[String: Any]]) {
            let run = try RosterCLI.run(["audit", "export", "--config", configPath] + arguments)
            let rows = run.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return (run, rows)
        }

        let (all, rows) = try export()
        #expect(all.status == 0, "\(all.stderr)")
        let verify = try JSONSerialization.jsonObject(with: Data(try RosterCLI.run(["audit", "verify", "--json", "--config", configPath]).stdout.utf8))
        #expect(rows.count == (verify as? [String: Any])?["rows"] as? Int && rows.count > fixture.clinic.userCount)
        #expect(rows.first?["prevHash"] as? String == String(repeating: "0", count: 64))
        for (earlier, later) in zip(rows, rows.dropFirst()) where earlier["hash"] as? String != later["prevHash"] as? String {
            Issue.record("row \(later["id"] ?? "?") does not link to the row before it")
            break
        }
        // The hash, computed outside Roster (sha256sum) as docs/mirror.md describes it.
        for row in [rows[0], rows[rows.count / 2], rows[rows.count - 1]] {
            var input = Data(((row["prevHash"] as? String) ?? "").utf8)
            for key in ["at", "actorKind", "actor", "source", "action", "entityType", "entityKey", "before", "after"] {
                if let field = row[key] as? String {
                    input.append(Data("|\(field.utf8.count):".utf8) + Data(field.utf8))
                } else {
                    input.append(Data("|-".utf8))
                }
            }
            let sum = try Self.sha256sum(input)
            #expect(sum == row["hash"] as? String, "row \(row["id"] ?? "?")")
        }

        // A forwarder continues from the last row it holds: only the rows made since.
        let last = try #require(rows.last)
        let lastID = try #require(last["id"] as? Int), lastHash = try #require(last["hash"] as? String)
        #expect(try RosterCLI.run(["user", "lock", fixture.clinic.assistant(1, 2, 1), "--reason", "a test", "--config", configPath]).status == 0)
        let (next, newRows) = try export(["--after", "\(lastID)", "--after-hash", lastHash])
        #expect(next.status == 0, "\(next.stderr)")
        #expect(!newRows.isEmpty && newRows.first?["prevHash"] as? String == lastHash && newRows.first?["id"] as? Int == lastID + 1)
        #expect(newRows.contains { $0["action"] as? String == "user.state_changed" && $0["actorKind"] as? String == "local" })
        let (limited, oneRow) = try export(["--after", "\(lastID)", "--limit", "1"])
        #expect(limited.status == 0 && oneRow.count == 1)

        // A row that no longer hashes as the forwarder holds it: nothing exported, and why.
        let wrong = String(lastHash.reversed())
        let (refused, refusedRows) = try export(["--after", "\(lastID)", "--after-hash", wrong])
        #expect(refused.status == 1 && refusedRows.isEmpty)
        #expect(refused.stderr.contains("Audit row \(lastID)") && refused.stderr.contains("rewritten"), "\(refused.stderr)")
        let (beyond, none) = try export(["--after", "\(lastID + 1_000_000)"])
        #expect(beyond.status == 0 && none.isEmpty)
        let (missing, _) = try export(["--after", "\(lastID + 1_000_000)", "--after-hash", lastHash])
        #expect(missing.status == 1 && missing.stderr.contains("has no row"), "\(missing.stderr)")
        let (unanchored, _) = try export(["--after-hash", lastHash])
        #expect(unanchored.status != 0 && unanchored.stderr.contains("--after-hash needs --after"), "\(unanchored.stderr)")
    }

    /// SHA-256 of `data` in hex, by coreutils' sha256sum.
    static func sha256sum(_ data: Data) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(data)
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return String(text.prefix(64))
    }

    @Test("A read command, or an admin's lock, on a mirror that does not exist yet says so and creates nothing")
    func readingNoMirror() throws {
        let folder = TemporaryFolders.make("roster-no-mirror")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let mirrorPath = folder.appendingPathComponent("state/roster.sqlite").path
        let configPath = folder.appendingPathComponent("roster.yaml").path
        try ClinicDirectory(suffix: "dc=none,dc=test")
            .yaml(url: "ldap://127.0.0.1:1", passwordFile: "/nonexistent", bindDN: "cn=admin,dc=none,dc=test", mirrorPath: mirrorPath)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        for arguments in [["user", "show", "someone"], ["users", "search", "a"], ["groups", "list"], ["audit", "tail"], ["audit", "verify"],
                          ["user", "lock", "someone", "--reason", "r"], ["user", "reactivate", "someone"]] {
            let run = try RosterCLI.run(arguments + ["--config", configPath])
            #expect(run.status == 1, "\(arguments)")
            #expect(run.stderr.contains("no mirror there yet") && run.stderr.contains(mirrorPath), "\(arguments): \(run.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: (mirrorPath as NSString).deletingLastPathComponent))
    }

    @Test("A reader group the account Roster runs as cannot give the mirror to is a clear error, not a mirror the application cannot read")
    func readerGroupOutOfReach() throws {
        // Run as nobody, who belongs to no group but nogroup: the mirror cannot be given to root's group.
        let folder = TemporaryFolders.make("roster-reader-group")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        // nobody runs the sync that makes the mirror (as the service account would), so may read the bind password.
        let passwordFile = folder.appendingPathComponent("bind-password").path
        try "unused\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        chmod(passwordFile, 0o644)
        let mirrorPath = folder.appendingPathComponent("state/roster.sqlite").path
        let configPath = folder.appendingPathComponent("roster.yaml").path
        let yaml = ClinicDirectory(suffix: "dc=group,dc=test")
            .yaml(url: "ldap://127.0.0.1:1", passwordFile: passwordFile, bindDN: "cn=admin,dc=group,dc=test", mirrorPath: mirrorPath)
            .replacingOccurrences(of: "mirror: {path: '\(mirrorPath)'}", with: "mirror: {path: '\(mirrorPath)', reader_group: root}")
        #expect(yaml.contains("reader_group: root"))
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        chmod(configPath, 0o644)
        try FileManager.default.createDirectory(atPath: folder.appendingPathComponent("state").path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o777])
        let asNobody = try RosterCLI.run(["/usr/sbin/runuser", "-u", "nobody", "--", RosterCLI.executable, "sync", "--config", configPath],
                                         executable: "/usr/sbin/runuser")
        #expect(asNobody.status == 1, "\(asNobody.stdout) \(asNobody.stderr)")
        #expect(asNobody.stderr.contains("reader group 'root'") && asNobody.stderr.contains("mirror.reader_group"), "\(asNobody.stderr)")
    }
}
