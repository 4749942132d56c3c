// Measures Roster against the floor of reading the same directory, in one run:
//   - a paged `ldapsearch` dump of the users to /dev/null (the floor),
//   - `roster sync` into an empty mirror, and again with nothing changed (ratios to the floor),
//   - Roster's peak memory during the first sync,
//   - revocation latency: directory modify acknowledged -> Roster's commit, over N
//     revocations at a fixed rate while the change stream runs.
// Usage: swift run -c release SyncBenchmark [--users 100000] [--revocations 1000] [--rate 100] [--json FILE]
import AccessModel
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import SlapdHarness
import Sync
import Synchronization

struct Options {
    var users = 100_000
    var revocations = 1000
    var rate = 100.0
    var json: String?

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--users": users = Int(iterator.next() ?? "") ?? users
            case "--revocations": revocations = Int(iterator.next() ?? "") ?? revocations
            case "--rate": rate = Double(iterator.next() ?? "") ?? rate
            case "--json": json = iterator.next()
            default: fatalError("unknown argument \(argument); use --users N --revocations N --rate PER_SECOND --json FILE")
            }
        }
    }
}

func log(_ text: String) { FileHandle.standardError.write(Data(("… " + text + "\n").utf8)) }

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func timed(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return seconds(clock.now - start)
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

let options = Options(CommandLine.arguments)
let clinic = ClinicDirectory.sized(options.users, suffix: "dc=bench,dc=example")
log("generating a clinic directory of \(clinic.userCount) users…")
let ldif = clinic.ldif()
log("loading it into slapd with slapadd -q…")
let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: ldif)
defer { server.shutdown() }
let work = server.directory
let mirrorPath = work.appendingPathComponent("state/roster.sqlite").path
let configPath = work.appendingPathComponent("roster.yaml").path
try clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: mirrorPath)
    .replacingOccurrences(of: "max_deactivations: 50,", with: "max_deactivations: 1000000,")
    .write(toFile: configPath, atomically: true, encoding: .utf8)
let roster = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("roster").path
guard FileManager.default.isExecutableFile(atPath: roster) else {
    fatalError("build the roster executable first: swift build -c release --product roster")
}

// Floor: ldapsearch, paged, same entries and attributes, to /dev/null. Best of three.
var floor = Double.infinity
for run in 1...3 {
    log("ldapsearch floor, run \(run)…")
    let process = try ChildProcess(
        path: Tools.ldapsearch,
        arguments: ["-x", "-LLL", "-H", server.url, "-D", server.adminDN, "-y", server.adminPasswordFile, "-b", "ou=people,\(clinic.suffix)",
                    "-E", "pr=1000/noprompt", "(objectClass=inetOrgPerson)", "uid", "givenName", "sn", "displayName", "mail", "title",
                    "departmentNumber", "pwdAccountLockedTime", "shadowExpire", "entryUUID"],
        logFile: work.appendingPathComponent("ldapsearch.log").path, outputFile: "/dev/null")
    floor = min(floor, timed { _ = process.waitForExit() })
}

// What a change-detecting reconcile reads instead: identities and markers only (best of two
// each), groups whole and as markers, and RFC 4533 refreshOnly without and with a cookie.
func dump(_ base: String, _ filter: String, _ attributes: [String], extra: [String] = ["-E", "pr=1000/noprompt"],
          output: String = "/dev/null") throws -> Double {
    var best = Double.infinity
    for _ in 1...2 {
        let process = try ChildProcess(
            path: Tools.ldapsearch,
            arguments: ["-x", "-LLL", "-H", server.url, "-D", server.adminDN, "-y", server.adminPasswordFile, "-b", base] + extra + [filter] + attributes,
            logFile: work.appendingPathComponent("ldapsearch.log").path, outputFile: output)
        best = min(best, timed { _ = process.waitForExit() })
    }
    return best
}
let people = "ou=people,\(clinic.suffix)"
let groupsBase = "ou=groups,\(clinic.suffix)"
log("listing figures…")
var listings: [(String, Double)] = []
listings.append(("users, identity and entryCSN", try dump(people, "(objectClass=inetOrgPerson)", ["entryUUID", "entryCSN"])))
listings.append(("users, 1.1 (DNs only)", try dump(people, "(objectClass=inetOrgPerson)", ["1.1"])))
listings.append(("groups, cn and member", try dump(groupsBase, "(objectClass=groupOfNames)", ["cn", "member"])))
listings.append(("groups, identity and entryCSN", try dump(groupsBase, "(objectClass=groupOfNames)", ["entryUUID", "entryCSN"])))
listings.append(("users, refreshOnly without cookie", try dump(people, "(objectClass=inetOrgPerson)", ["entryUUID", "entryCSN"],
                                                             extra: ["-E", "sync=ro"])))
listings.append(("contextCSN of the suffix entry", try dump(clinic.suffix, "(objectClass=*)", ["contextCSN"], extra: ["-s", "base"])))

func runRoster(_ arguments: [String]) throws -> (seconds: Double, peak: Int, status: Int32) {
    var status: Int32 = 0
    var peak = 0
    let elapsed = try timed {
        let process = try ChildProcess(path: roster, arguments: arguments, logFile: work.appendingPathComponent("roster.log").path,
                                       outputFile: work.appendingPathComponent("roster.out").path)
        status = process.waitForExit()
        peak = process.peakMemoryBytes ?? 0
    }
    return (elapsed, peak, status)
}

log("roster sync into an empty mirror…")
let first = try runRoster(["sync", "--config", configPath])
guard first.status == 0 else { fatalError("roster sync failed; see \(work.path)/roster.log") }
func phases() -> String {
    let output = (try? String(contentsOfFile: work.appendingPathComponent("roster.out").path, encoding: .utf8)) ?? ""
    return output.split(separator: "\n").first { $0.contains("time") }.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
}
let firstPhases = phases()
log("roster sync again, nothing changed…")
let second = try runRoster(["sync", "--config", configPath])
let secondPhases = phases()

// The change-detecting reconcile's other paths: after 100 users changed (markers listed, those
// 100 read in full), and a full read asked for with nothing changed.
log("100 title changes, then roster sync…")
let changer = try await LDAPConnection.connect(server.adminConfiguration())
for index in 1...100 {
    try await changer.modify(clinic.dn(clinic.staff(1 + index % clinic.healthCenters, 1 + index / clinic.healthCenters)),
                             [.replace("title", ["Changed \(index)"])])
}
await changer.close()
let third = try runRoster(["sync", "--config", configPath])
let thirdPhases = phases()
log("roster sync --full, nothing changed…")
let fourth = try runRoster(["sync", "--full", "--config", configPath])
let fourthPhases = phases()

// Revocation latency: the change stream runs in this process; each revocation is timed
// from the modify's acknowledgement to the commit of its transaction.
log("revocation latency: \(options.revocations) revocations at \(Int(options.rate))/s…")
let configuration = try ConfigurationLoader.load(path: configPath)
let mirror = try Mirror(path: mirrorPath)
final class Commits: Sendable {
    let times = Mutex<[String: ContinuousClock.Instant]>([:])
    let ready = Mutex(false)
}
let commits = Commits()
let stream = ChangeStream(configuration: configuration, mirror: mirror)
let streamTask = Task {
    try await stream.run(status: { status in
        switch status {
        case .refreshComplete: commits.ready.withLock { $0 = true }
        case .applied(_, let change, _):
            if let user = change.user { commits.times.withLock { $0[user.key] = .now } }
        default: break
        }
    }, reconcile: { _ in
        (try? await Reconciler(configuration: configuration, mirror: mirror).run(ReconcileOptions(force: true))) != nil
    })
}
while !commits.ready.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
let writer = try await LDAPConnection.connect(server.adminConfiguration())
let victims = (1...options.revocations).map { clinic.staff(1 + $0 % clinic.healthCenters, 1 + $0 / clinic.healthCenters) }
var acknowledged: [String: ContinuousClock.Instant] = [:]
let interval = Duration.milliseconds(Int64(1000 / options.rate))
var next = ContinuousClock.now
for uid in victims {
    try await Task.sleep(until: next)
    next += interval
    try await writer.modify(clinic.dn(uid), [.replace("pwdAccountLockedTime", [DirectoryTime.permanentLockValue])])
    acknowledged[uid.lowercased()] = .now
}
let deadline = ContinuousClock.now + .seconds(10)
while ContinuousClock.now < deadline, commits.times.withLock({ $0.count }) < victims.count { try await Task.sleep(for: .milliseconds(20)) }
let committed = commits.times.withLock { $0 }
let latencies = acknowledged.compactMap { uid, ack in committed[uid].map { max(0, seconds($0 - ack)) * 1000 } }.sorted()
streamTask.cancel()
_ = await streamTask.result
await writer.close()

let lockedInMirror = try victims.filter { try mirror.user(UserCode($0))?.state.isLocked == true }.count
let machine = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
    .split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown"

let results: [(String, String)] = [
    ("users in the directory", "\(clinic.userCount)"),
    ("ldapsearch paged dump (floor)", String(format: "%.2f s", floor)),
    ("roster sync, empty mirror", String(format: "%.2f s  (%.2fx the floor; target <= 1.5x)", first.seconds, first.seconds / floor)),
    ("roster sync, nothing changed", String(format: "%.2f s  (%.2fx the floor; target <= 0.5x)", second.seconds, second.seconds / floor)),
    ("  first sync phases", firstPhases),
    ("  second sync phases", secondPhases),
    ("roster sync, 100 users changed", String(format: "%.2f s  (%.2fx the floor)", third.seconds, third.seconds / floor)),
    ("  phases", thirdPhases),
    ("roster sync --full, nothing changed", String(format: "%.2f s  (%.2fx the floor)", fourth.seconds, fourth.seconds / floor)),
    ("  phases", fourthPhases),
] + listings.map { ("  ldapsearch " + $0.0, String(format: "%.2f s  (%.2fx the floor)", $0.1, $0.1 / floor)) } + [
    ("roster peak memory, first sync", String(format: "%.0f MB  (target < 300 MB)", Double(first.peak) / 1e6)),
    ("revocations committed", "\(latencies.count) of \(victims.count) (locked in mirror: \(lockedInMirror))"),
    ("revocation latency p50", String(format: "%.2f ms  (target < 10 ms)", percentile(latencies, 0.5))),
    ("revocation latency p95", String(format: "%.2f ms", percentile(latencies, 0.95))),
    ("revocation latency p99", String(format: "%.2f ms  (target < 50 ms)", percentile(latencies, 0.99))),
    ("revocation latency max", String(format: "%.2f ms", latencies.last ?? .nan)),
]
let width = results.map(\.0.count).max() ?? 0
print("Roster benchmark, \(Date().formatted(.iso8601)), \(machine), \(ProcessInfo.processInfo.activeProcessorCount) cores")
for (name, value) in results { print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
if let json = options.json {
    let object: [String: Any] = [
        "date": Date().formatted(.iso8601), "machine": machine, "users": clinic.userCount,
        "floorSeconds": floor, "firstSyncSeconds": first.seconds, "firstSyncRatio": first.seconds / floor,
        "secondSyncSeconds": second.seconds, "secondSyncRatio": second.seconds / floor, "peakMemoryBytes": first.peak,
        "changedSyncSeconds": third.seconds, "fullUnchangedSyncSeconds": fourth.seconds,
        "revocations": latencies.count, "revocationLatencyMs": ["p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
                                                               "p99": percentile(latencies, 0.99), "max": latencies.last ?? 0],
    ]
    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: json))
}
