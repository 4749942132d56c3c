import AccessModel
import Foundation
import Mirror
import SlapdHarness
import Testing

@Suite("Faults: Roster killed mid-sync", .serialized)
struct FaultTests {
    @Test("roster sync killed with SIGKILL while applying a 100k-user first sync: the mirror holds the state before, the audit chain verifies, and the next sync completes and leaves its WAL emptied")
    func killedDuringFirstSync() async throws {
        let clinic = ClinicDirectory.sized(100_000, suffix: "dc=big,dc=test")
        let ldif = clinic.ldif()
        let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: ldif)
        defer { server.shutdown() }
        let mirrorPath = server.directory.appendingPathComponent("state/roster.sqlite").path
        let configPath = server.directory.appendingPathComponent("roster.yaml").path
        try clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: mirrorPath)
            .write(toFile: configPath, atomically: true, encoding: .utf8)

        // Kill the sync once its transaction has written a good part of the changes: a first load
        // writes the mirror file itself under a rollback journal (the WAL when it cannot leave WAL
        // mode), and either grows only while the apply runs.
        let log = server.directory.appendingPathComponent("sync.log").path
        let sync = try ChildProcess(path: RosterCLI.executable, arguments: ["sync", "--config", configPath], logFile: log)
        let killedMidApply = try await Tools.offPool { () -> Bool in
            let deadline = ContinuousClock.now + .seconds(600)
            while sync.isRunning, ContinuousClock.now < deadline {
                func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0 }
                let journaled = FileManager.default.fileExists(atPath: mirrorPath + "-journal")
                if size(mirrorPath + "-wal") > 16 << 20 || (journaled && size(mirrorPath) > 16 << 20) {
                    sync.signal(SIGKILL)
                    return true
                }
                usleep(5_000)
            }
            return false
        }
        _ = try await Tools.offPool { sync.waitForExit() }
        #expect(killedMidApply, "the sync ended before it could be killed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")

        let mirror = try Mirror(path: mirrorPath)
        #expect(!FileManager.default.fileExists(atPath: mirrorPath + "-journal"), "opening the mirror rolled the first load back")
        #expect(try mirror.integrityCheck() == "ok")
        #expect(try mirror.verifyAuditLog() == nil)
        let half = try mirror.snapshot()
        #expect(half.users.isEmpty && half.groups.isEmpty, "a first sync is one transaction: nothing, or everything")
        #expect(try mirror.auditRowCount() == 0)

        let again = try await Tools.offPool { try RosterCLI.run(["sync", "--config", configPath]) }
        #expect(again.status == 0, "\(again.stderr)")
        // It left no 100k-user WAL for the next process to read through before its first query.
        let walAfter = (try? FileManager.default.attributesOfItem(atPath: mirrorPath + "-wal")[.size] as? NSNumber)?.intValue
        #expect(walAfter == 0, "roster sync ends with its WAL copied into the mirror file and emptied (the file kept)")
        let whole = try mirror.snapshot()
        #expect(whole.users.count == clinic.userCount)
        #expect(whole.users.values.allSatisfy { $0.state.isActive })
        #expect(try mirror.verifyAuditLog() == nil)
    }
}
