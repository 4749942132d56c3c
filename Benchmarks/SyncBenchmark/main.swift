// Measures Roster against the floor of reading the same directory, in one run:
//   - a paged `ldapsearch` dump of the users to /dev/null (the floor),
//   - `roster sync` into an empty mirror (best of three, as the floor), and again with nothing changed (ratios to the floor),
//     after 100 users changed, and with --full (a full read) with nothing changed,
//   - Roster's peak memory during the first sync,
//   - then the real daemon, `roster run`, with one application listening on `/v1/events`:
//     revocations at a fixed rate, each timed from the directory modify's acknowledgement
//     (noted by a writer thread as libldap returns it) to Roster's commit (the time the
//     daemon logs at debug level) and to the receipt of its `user.locked` event by the listener,
//   - then, the revocations done, effective-access lookups through `GET /v1/users/{code}`
//     of random users on one keep-alive connection.
// Build both executables first:
//   swift build -c release --product roster && swift build -c release --product SyncBenchmark
//   .build/release/SyncBenchmark [--users 100000] [--revocations 1000] [--rate 100] [--lookups 5000] [--json FILE]
import AccessModel
import BenchmarkSupport
import Foundation
import GRDB
import Mirror
import RosterService
import SlapdHarness
import Sync

let started = ContinuousClock.now
let options = BenchmarkOptions(
    summary: "Roster's sync, revocation and lookup figures against a throwaway slapd.",
    options: [
        .value("--users", "N", help: "users in the generated directory (default 100000)"),
        .value("--revocations", "N", help: "accounts locked while roster run follows the directory (default 1000)"),
        .value("--rate", "PER_SECOND", help: "revocations per second (default 100)"),
        .value("--lookups", "N", help: "GET /v1/users/{code} of random users, after the revocations (default 5000)"),
        .value("--reconcile-revocations", "N", help: "accounts locked at 50/s while a new provider makes roster run reconcile (default 500; 0: none)"),
        .value("--json", "FILE", help: "also write every figure as JSON to FILE"),
        .value("--lean-first-load", "PATH", help: "also time Benchmarks/LeanFirstLoad's C bound of a first load (built as its header says)"),
        .flag("--serve", help: "only load the directory and write roster.yaml, print their paths, and serve until interrupted (for profiling)"),
    ])
let userCount = options.int("--users", default: 100_000)
let revocationCount = options.int("--revocations", default: 1000)
let rate = options.double("--rate", default: 100)
let lookupCount = options.int("--lookups", default: 5000)
let reconcileRevocationCount = options.int("--reconcile-revocations", default: 500)
let roster = rosterExecutable()
let loadAtStart = loadAverage()

let clinic = ClinicDirectory.sized(userCount, suffix: "dc=bench,dc=example")
guard revocationCount + reconcileRevocationCount <= clinic.healthCenters * clinic.extraStaffPerCenter else {
    log("--revocations \(revocationCount) and --reconcile-revocations \(reconcileRevocationCount) are more than the "
        + "\(clinic.healthCenters * clinic.extraStaffPerCenter) staff accounts of a \(userCount)-user directory")
    exit(2)
}
// The accounts to lock: staff in no group, the same ones in every run of a given size; those
// locked during a reconcile come after them.
let staff = (0..<(revocationCount + reconcileRevocationCount)).map { clinic.staff(1 + $0 % clinic.healthCenters, 1 + $0 / clinic.healthCenters) }
let victims = Array(staff.prefix(revocationCount))
let reconcileVictims = Array(staff.dropFirst(revocationCount))
let cleanup = Cleanup()
cleanup.onSignals()
log("generating a clinic directory of \(clinic.userCount) users…")
let ldif = clinic.ldif()
let server = try await withHeartbeat("loading it into slapd with slapadd -q") {
    try await SlapdServer.start(suffix: clinic.suffix, ldif: ldif)
}
cleanup.add {
    if cleanup.failed {
        server.stop()
        log("kept for inspection: \(server.directory.path) (roster.log, roster-run.log, state/roster.sqlite)")
    } else {
        server.shutdown()
    }
}
do {
    let work = server.directory
    let mirrorPath = work.appendingPathComponent("state/roster.sqlite").path
    let configPath = work.appendingPathComponent("roster.yaml").path
    let httpPort = try Tools.freePort()
    try clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: mirrorPath, httpPort: httpPort)
        .replacingOccurrences(of: "max_deactivations: 50,", with: "max_deactivations: 1000000,")
        .write(toFile: configPath, atomically: true, encoding: .utf8)
    if options.flag("--serve") {
        log("serving \(server.url); configuration \(configPath); mirror \(mirrorPath). Interrupt to stop.")
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    // Floor: ldapsearch, paged, same entries and attributes, to /dev/null. Best of three.
    var floor = Double.infinity
    for run in 1...3 {
        let process = try ChildProcess(
            path: Tools.ldapsearch,
            arguments: ["-x", "-LLL", "-H", server.url, "-D", server.adminDN, "-y", server.adminPasswordFile, "-b", "ou=people,\(clinic.suffix)",
                        "-E", "pr=1000/noprompt", "(objectClass=inetOrgPerson)", "uid", "givenName", "sn", "displayName", "mail", "title",
                        "departmentNumber", "pwdAccountLockedTime", "shadowExpire", "entryUUID"],
            logFile: work.appendingPathComponent("ldapsearch.log").path, outputFile: "/dev/null")
        floor = min(floor, try await withHeartbeat("ldapsearch floor, run \(run) of 3") {
            try await timed { _ = try await Tools.offPool { process.waitForExit() } }
        })
    }
    // The groups roster sync also reads (with the attributes it asks for): "the same entries" in
    // full are the users and the groups. Reported beside the floor above, which stays the target's.
    var groupsDump = Double.infinity
    for run in 1...3 {
        let process = try ChildProcess(
            path: Tools.ldapsearch,
            arguments: ["-x", "-LLL", "-H", server.url, "-D", server.adminDN, "-y", server.adminPasswordFile, "-b", "ou=groups,\(clinic.suffix)",
                        "-E", "pr=1000/noprompt", "(objectClass=groupOfNames)", "cn", "member", "entryUUID", "entryCSN"],
            logFile: work.appendingPathComponent("ldapsearch.log").path, outputFile: "/dev/null")
        groupsDump = min(groupsDump, try await withHeartbeat("ldapsearch of the groups, run \(run) of 3") {
            try await timed { _ = try await Tools.offPool { process.waitForExit() } }
        })
    }

    // A lower bound, when asked for: the users' first load written lean in C (see its header),
    // timed from outside as roster is, best of three. Total, and when its last row was written.
    var lean: (seconds: Double, rows: Double)?
    if let leanPath = options.string("--lean-first-load") {
        let output = work.appendingPathComponent("lean-first-load")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let printed = work.appendingPathComponent("lean-first-load.out").path
        for run in 1...3 {
            let process = try ChildProcess(
                path: leanPath, arguments: [server.url, server.adminDN, server.adminPasswordFile, "ou=people,\(clinic.suffix)", output.path],
                logFile: work.appendingPathComponent("lean-first-load.log").path, outputFile: printed)
            var status: Int32 = 0
            let seconds = try await withHeartbeat("lean first load, run \(run) of 3") {
                try await timed { status = try await Tools.offPool { process.waitForExit() } }
            }
            guard status == 0 else { cleanup.fail("lean-first-load failed (status \(status)); see \(work.path)/lean-first-load.log") }
            let line = try String(contentsOfFile: printed, encoding: .utf8)
            guard let rows = line.split(separator: ",").first(where: { $0.contains("rows") })
                .flatMap({ Double($0.split(separator: " ").dropFirst().first ?? "") }) else {
                cleanup.fail("lean-first-load printed no time for its rows: \(line)")
            }
            if lean == nil || seconds < lean!.seconds { lean = (seconds, rows) }
        }
        try? FileManager.default.removeItem(at: output)
    }

    /// Runs `roster` to its end; its stdout goes to roster.out, its stderr to roster.log.
    func runRoster(_ arguments: [String], step: String) async throws -> (seconds: Double, peak: Int, status: Int32) {
        let process = try ChildProcess(path: roster, arguments: arguments, logFile: work.appendingPathComponent("roster.log").path,
                                       outputFile: work.appendingPathComponent("roster.out").path)
        let elapsed = try await withHeartbeat(step) { try await timed { _ = try await Tools.offPool { process.waitForExit() } } }
        return (elapsed, process.peakMemoryBytes ?? 0, process.waitForExit())
    }
    func phases() -> String {
        let output = (try? String(contentsOfFile: work.appendingPathComponent("roster.out").path, encoding: .utf8)) ?? ""
        return output.split(separator: "\n").first { $0.contains("time") }.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
    }
    // The first sync, best of three as the floor is, each into an empty mirror (the state folder
    // emptied before it); the peak is the largest of the three.
    var firstRuns: [Double] = []
    var first = (seconds: Double.infinity, peak: 0, status: Int32(0))
    var firstPhases = ""
    let stateFolder = URL(fileURLWithPath: mirrorPath).deletingLastPathComponent()
    for run in 1...3 {
        for file in (try? FileManager.default.contentsOfDirectory(atPath: stateFolder.path)) ?? [] {
            try FileManager.default.removeItem(at: stateFolder.appendingPathComponent(file))
        }
        let attempt = try await runRoster(["sync", "--config", configPath], step: "roster sync into an empty mirror, run \(run) of 3")
        guard attempt.status == 0 else { cleanup.fail("roster sync failed; see \(work.path)/roster.log") }
        firstRuns.append(attempt.seconds)
        if attempt.seconds < first.seconds {
            first = (attempt.seconds, max(first.peak, attempt.peak), attempt.status)
            firstPhases = phases()
        } else {
            first.peak = max(first.peak, attempt.peak)
        }
    }
    let second = try await runRoster(["sync", "--config", configPath], step: "roster sync again, nothing changed")
    let secondPhases = phases()
    // The change-detecting reconcile's other paths: after 100 users changed (identities and
    // markers listed, those 100 read in full), and a full read asked for with nothing changed.
    try server.ldapmodify((1...100).map { index in
        "dn: \(clinic.dn(clinic.staff(1 + index % clinic.healthCenters, 1 + index / clinic.healthCenters)))\nchangetype: modify\nreplace: title\ntitle: Changed \(index)\n"
    }.joined(separator: "\n"))
    let third = try await runRoster(["sync", "--config", configPath], step: "roster sync after 100 title changes")
    let thirdPhases = phases()
    let fourth = try await runRoster(["sync", "--full", "--config", configPath], step: "roster sync --full, nothing changed")
    let fourthPhases = phases()

    // The daemon, logging at debug level: one line per applied change with its commit time.
    let daemonLog = work.appendingPathComponent("roster-run.log").path
    log("starting roster run on 127.0.0.1:\(httpPort)…")
    // Into the mirror the syncs above made, but with no stream cookies: both streams refresh in
    // full, and a full reconcile completes them before the daemon reports ready.
    let daemonStarted = ContinuousClock.now
    let daemon = try RosterDaemon(executable: roster, configPath: configPath, port: httpPort, logFile: daemonLog, logLevel: "debug")
    cleanup.add { daemon.process.terminate() }
    try await daemon.waitUntilReady()
    let secondsToReady = (ContinuousClock.now - daemonStarted) / .seconds(1)
    let memoryWhenReady = daemon.residentMemoryBytes

    // The application's event stream, from the newest event on.
    let lastEventID = try Mirror(path: mirrorPath).read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM events") } ?? 0
    let listener = try EventStreamListener(port: httpPort, path: "/v1/events", headers: ["Last-Event-ID": "\(lastEventID)"])

    /// The users whose `user.locked` event the listener has, with the receipt time of the first.
    struct Payload: Decodable { var userCode: String? }
    func lockEvents() -> [String: Date] {
        var received: [String: Date] = [:]
        for event in listener.events where event.type == "user.locked" {
            guard let code = (try? JSONDecoder().decode(Payload.self, from: Data(event.data.utf8)))?.userCode?.lowercased() else { continue }
            if received[code] == nil { received[code] = event.received }
        }
        return received
    }

    // Revocations at a fixed rate, from a thread that notes each acknowledgement's
    // wall-clock time the moment libldap returns it.
    log("revocation latency: \(revocationCount) revocations at \(rate)/s while roster run follows the directory…")
    let writer = AcknowledgedWriter(url: server.url, bindDN: server.adminDN, passwordFile: server.adminPasswordFile)
    let acknowledgedTimes = try await writer.replace("pwdAccountLockedTime", with: DirectoryTime.permanentLockValue, on: victims.map(clinic.dn),
                                                     every: .seconds(1 / rate)) { [listener, revocationCount] done in
        log("revocations: \(done) of \(revocationCount) made, \(listener.count) events received")
    }
    let acknowledged = Dictionary(uniqueKeysWithValues: zip(victims.map { $0.lowercased() }, acknowledgedTimes))
    let drainDeadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < drainDeadline, lockEvents().count < victims.count, listener.failure == nil {
        try await Task.sleep(for: .milliseconds(20))
    }
    if let failure = listener.failure { log("the event stream ended early: \(failure)") }
    let received = lockEvents()
    log("revocations: \(received.count) of \(victims.count) user.locked events received")

    // Revocations while the daemon reconciles, the load under which they used to wait longest:
    // a new provider a second in makes the change stream ask for a full reconcile (their own
    // group, the auto-add groups), which at 100k users reads and maps for seconds beside the
    // stream. The window is from the provider's addition to the reconcile's log line.
    var reconcileAcknowledged: [String: Date] = [:]
    var reconcileWindow: (from: Date, to: Date)?
    var reconcileLine = ""
    if !reconcileVictims.isEmpty {
        log("revocations during a reconcile: \(reconcileVictims.count) at 50/s, a new provider added a second in…")
        let providerCode = "bench-new-provider-\(Int(Date().timeIntervalSince1970))"
        let addition = Task {
            try await Task.sleep(for: .seconds(1))
            let added = Date()
            try await Tools.offPool {
                try server.ldapmodify("dn: \(clinic.dn(providerCode))\nchangetype: add\nobjectClass: inetOrgPerson\nuid: \(providerCode)\n"
                    + "cn: New Provider\ngivenName: New\nsn: Provider\ndepartmentNumber: HC1\nemployeeType: provider\n")
            }
            // The reconcile's end, as its line reaches the log (looked for every 20 ms).
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let text = (try? String(contentsOfFile: daemonLog, encoding: .utf8)) ?? ""
                if let line = text.split(separator: "\n").last(where: { $0.contains("Full reconcile (") && $0.contains("a new provider") }) {
                    return (added, Date(), String(line))
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return (added, Date(), "")
        }
        let times = try await writer.replace("pwdAccountLockedTime", with: DirectoryTime.permanentLockValue, on: reconcileVictims.map(clinic.dn),
                                             every: .seconds(1.0 / 50)) { done in log("revocations during a reconcile: \(done) made") }
        reconcileAcknowledged = Dictionary(uniqueKeysWithValues: zip(reconcileVictims.map { $0.lowercased() }, times))
        let (added, ended, line) = try await addition.value
        if line.isEmpty { log("the reconcile a new provider asks for was not logged within 120 s") }
        reconcileWindow = (added, ended)
        reconcileLine = line
        // Every lock committed before the daemon stops.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, lockEvents().count < victims.count + reconcileVictims.count, listener.failure == nil {
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // Effective-access lookups, on the warm daemon, after the revocations (so they do not
    // disturb them): random users, one keep-alive connection, the first 200 as a warm-up.
    var everyone: [String] = []
    for c in 1...clinic.healthCenters {
        for o in 1...clinic.officesPerCenter {
            everyone += (1...clinic.providersPerOffice).map { clinic.provider(c, o, $0) }
            everyone += (1...clinic.assistantsPerOffice).map { clinic.assistant(c, o, $0) }
        }
        for team in ClinicDirectory.teams { everyone += (1...clinic.teamSize).map { clinic.teamMember(c, team, $0) } }
        everyone += (0..<clinic.extraStaffPerCenter).map { clinic.staff(c, $0 + 1) }
    }
    log("effective-access lookups: \(lookupCount) random users of \(everyone.count) through GET /v1/users/{code}…")
    let lookups = try await Tools.offPool { [everyone] () throws -> (milliseconds: [Double], failures: Int, bytes: Int) in
        let connection = try LoopbackHTTPConnection(port: httpPort)
        let clock = ContinuousClock()
        var milliseconds: [Double] = []
        milliseconds.reserveCapacity(lookupCount)
        var failures = 0, bytes = 0
        var lastReport = clock.now
        for index in 0..<(200 + lookupCount) {
            let code = everyone.randomElement()!
            let start = clock.now
            let response = try connection.get("/v1/users/\(code)")
            let elapsed = (clock.now - start).inMilliseconds
            guard index >= 200 else { continue }
            if response.status == 200 { milliseconds.append(elapsed) } else { failures += 1 }
            bytes += response.body.count
            if clock.now - lastReport >= .seconds(5) {
                lastReport = clock.now
                log("lookups: \(index - 199) of \(lookupCount)")
            }
        }
        return (milliseconds, failures, bytes)
    }
    let memoryAtEnd = daemon.residentMemoryBytes
    listener.stop()
    log("stopping roster run…")
    let daemonStatus = try await daemon.stop()

    // The commit times the daemon logged, one line per applied change:
    // `<7>roster.directory: Applied a users change. arrival_to_commit_ms=0.412 changes=1 committed_at=… revocation=true user=…`
    var committed: [String: (at: Date, inRoster: Double, sinceChange: Double?)] = [:]
    for line in try String(contentsOfFile: daemonLog, encoding: .utf8).split(separator: "\n") where line.contains("Applied a users change.") {
        var fields: [Substring: Substring] = [:]
        for pair in line.split(separator: " ") {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            fields[pair[..<equals]] = pair[pair.index(after: equals)...]
        }
        guard fields["revocation"] == "true", let user = fields["user"]?.lowercased(),
              let at = fields["committed_at"].flatMap({ PreciseTimestamp.date($0) }),
              let inRoster = fields["arrival_to_commit_ms"].flatMap({ Double($0) }) else { continue }
        if committed[user] == nil { committed[user] = (at, inRoster, fields["directory_to_commit_ms"].flatMap { Double($0) }) }
    }

    func milliseconds(_ from: Date, _ to: Date) -> Double { to.timeIntervalSince(from) * 1000 }
    let toCommit = Distribution(acknowledged.compactMap { user, ack in committed[user].map { milliseconds(ack, $0.at) } })
    let toEvent = Distribution(acknowledged.compactMap { user, ack in received[user].map { milliseconds(ack, $0) } })
    let eventAfterCommit = Distribution(committed.compactMap { user, commit in received[user].map { milliseconds(commit.at, $0) } })
    let inRoster = Distribution(acknowledged.keys.compactMap { committed[$0]?.inRoster })
    let sinceChange = Distribution(acknowledged.keys.compactMap { committed[$0]?.sinceChange })
    let lookupLatency = Distribution(lookups.milliseconds)
    let duringReconcile = Distribution(reconcileAcknowledged.compactMap { user, ack in committed[user].map { milliseconds(ack, $0.at) } })
    let insideWindow = Distribution(reconcileAcknowledged.compactMap { user, ack -> Double? in
        guard let window = reconcileWindow, ack >= window.from, ack <= window.to else { return nil }
        return committed[user].map { milliseconds(ack, $0.at) }
    })
    let duringReconcileInRoster = Distribution(reconcileAcknowledged.keys.compactMap { committed[$0]?.inRoster })
    let lockedInMirror = try victims.filter { try Mirror(path: mirrorPath).user(UserCode($0))?.state.isLocked == true }.count
    let wallTime = (ContinuousClock.now - started).inSeconds

    var table = ReportTable()
    table.add("users in the directory", "\(clinic.userCount)")
    table.add("ldapsearch paged dump (floor)", String(format: "%.2f s", floor))
    table.add("  and of the groups too", String(format: "%.2f s  (users %.2f + groups %.2f)", floor + groupsDump, floor, groupsDump))
    table.add("roster sync, empty mirror", String(format: "%.2f s  (%.2fx the floor; target <= 1.5x; %.2fx users and groups)", first.seconds,
                                                  first.seconds / floor, first.seconds / (floor + groupsDump)))
    table.add("  best of", firstRuns.map { String(format: "%.2f s", $0) }.joined(separator: ", "))
    if let lean {
        table.add("  lean C first load of the users (bound)", String(format: "%.2f s  (%.2fx the floor; rows written at %.2f s, %.2fx)",
                                                                lean.seconds, lean.seconds / floor, lean.rows, lean.rows / floor))
    }
    table.add("roster sync, nothing changed", String(format: "%.2f s  (%.2fx the floor; target <= 0.5x)", second.seconds, second.seconds / floor))
    table.add("  first sync phases", firstPhases)
    table.add("  second sync phases", secondPhases)
    table.add("roster sync, 100 users changed", String(format: "%.2f s  (%.2fx the floor)", third.seconds, third.seconds / floor))
    table.add("  phases", thirdPhases)
    table.add("roster sync --full, nothing changed", String(format: "%.2f s  (%.2fx the floor)", fourth.seconds, fourth.seconds / floor))
    table.add("  phases", fourthPhases)
    table.add("roster peak memory, first sync", String(format: "%.0f MB  (target < 300 MB)", Double(first.peak) / 1e6))
    table.add("  the other syncs", String(format: "nothing changed %.0f MB, 100 changed %.0f MB, --full %.0f MB",
                                        Double(second.peak) / 1e6, Double(third.peak) / 1e6, Double(fourth.peak) / 1e6))
    table.add("revocations (roster run)", "\(revocationCount) at \(Int(rate))/s: \(toCommit.count) commits logged, \(toEvent.count) events received, "
              + "\(lockedInMirror) locked in the mirror")
    table.add("modify ack -> commit", toCommit.summary() + "  (target p50 < 10, p99 < 50)")
    table.add("modify ack -> SSE event received", toEvent.summary())
    table.add("SSE event received - commit", eventAfterCommit.summary() + "  (target: within 5 ms)")
    table.add("  in roster: arrival -> commit", inRoster.summary())
    table.add("  by roster's metric: CSN -> commit", sinceChange.summary() + "  (roster_revocation_lag_seconds)")
    if let window = reconcileWindow {
        table.add("revocations during a reconcile", "\(reconcileVictims.count) at 50/s, a new provider added 1 s in: \(duringReconcile.count) commits logged")
        table.add("  modify ack -> commit, all", duringReconcile.summary() + "  (target p99 < 50)")
        table.add("  acknowledged while it ran", insideWindow.summary() + String(format: "  (%.1f s)", window.to.timeIntervalSince(window.from)))
        table.add("  in roster: arrival -> commit", duringReconcileInRoster.summary())
        if let phases = reconcileLine.range(of: "(markers") { table.add("  the reconcile", String(reconcileLine[phases.lowerBound...])) }
    }
    table.add("GET /v1/users/{code}, keep-alive", String(format: "p50 %.2f ms, p99 %.2f ms, max %.2f ms  (%d random users, %d failed, %.1f KB average)",
                                                        lookupLatency.p50, lookupLatency.p99, lookupLatency.max, lookupLatency.count, lookups.failures,
                                                        Double(lookups.bytes) / Double(max(1, lookupCount)) / 1000))
    table.add("roster run, start to ready (full refresh)", String(format: "%.2f s", secondsToReady))
    table.add("roster run memory", String(format: "%.0f MB ready, %.0f MB at the end, peak %.0f MB (exit status %d)", Double(memoryWhenReady) / 1e6,
                                          Double(memoryAtEnd) / 1e6, Double(daemon.peakMemoryBytes ?? 0) / 1e6, daemonStatus))
    table.add("benchmark wall time", String(format: "%.0f s (load average %.1f at the start, %.1f at the end)", wallTime, loadAtStart ?? .nan, loadAverage() ?? .nan))
    table.print(title: "Roster benchmark, \(Date().formatted(.iso8601)), \(machineDescription())")
    print("Times: this machine's wall clock (CLOCK_REALTIME), read to the microsecond by both processes: the acknowledgement as libldap returns the")
    print("modify's response, the commit as roster run's change stream returns from the transaction, the event as the listener reads its bytes.")

    if let json = options.string("--json") {
        try writeJSON([
            "date": Date().formatted(.iso8601), "machine": machineDescription(), "users": clinic.userCount,
            "wallTimeSeconds": wallTime, "loadAverageAtStart": loadAtStart ?? NSNull(),
            "floorSeconds": floor, "groupsDumpSeconds": groupsDump, "firstSyncSeconds": first.seconds, "firstSyncRatio": first.seconds / floor, "firstSyncRunsSeconds": firstRuns,
            "secondSyncSeconds": second.seconds, "secondSyncRatio": second.seconds / floor, "peakMemoryBytes": first.peak,
            "otherSyncsPeakMemoryBytes": ["nothingChanged": second.peak, "changed": third.peak, "fullUnchanged": fourth.peak],
            "leanFirstLoadSeconds": lean?.seconds ?? NSNull(), "leanFirstLoadRowsSeconds": lean?.rows ?? NSNull(),
            "changedSyncSeconds": third.seconds, "fullUnchangedSyncSeconds": fourth.seconds,
            "revocations": ["made": revocationCount, "ratePerSecond": rate, "commitsLogged": toCommit.count, "eventsReceived": toEvent.count,
                            "lockedInMirror": lockedInMirror],
            "revocationLatencyMs": toCommit.json, "revocationToEventMs": toEvent.json, "eventAfterCommitMs": eventAfterCommit.json,
            "arrivalToCommitInRosterMs": inRoster.json, "changeToCommitByRosterMs": sinceChange.json,
            "revocationsDuringReconcile": ["made": reconcileVictims.count, "ratePerSecond": 50, "commitsLogged": duringReconcile.count,
                                           "windowSeconds": reconcileWindow.map { $0.to.timeIntervalSince($0.from) } ?? NSNull(),
                                           "latencyMs": duringReconcile.json, "acknowledgedWhileItRanMs": insideWindow.json,
                                           "arrivalToCommitInRosterMs": duringReconcileInRoster.json],
            "lookupLatencyMs": lookupLatency.json, "lookupFailures": lookups.failures,
            "daemonSecondsToReady": secondsToReady,
            "daemonMemoryBytes": ["ready": memoryWhenReady, "end": memoryAtEnd, "peak": daemon.peakMemoryBytes ?? 0],
        ], to: json)
    }
} catch {
    cleanup.fail("the benchmark failed: \(error)")
}
cleanup.run()
