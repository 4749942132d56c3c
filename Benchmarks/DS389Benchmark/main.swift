// Measures Roster against a real 389 Directory Server (Debian 389-ds-base), in one run:
//   - loading the clinic directory over LDAP (`ldapadd`),
//   - a paged `ldapsearch` of the users to /dev/null (the floor), and a full `Reconciler`
//     run into an empty mirror and again with nothing changed (ratios to the floor),
//   - revocation latency: `nsAccountLock: true` (the LDAP modify acknowledged) -> Roster's
//     commit, with the RFC 4533 change stream (content synchronization), at a fixed rate.
// Needs root (389-ds's instance is set up for its dirsrv user). Usage:
//   swift run -c release DS389Benchmark [--users 10000] [--revocations 200] [--rate 20]
import AccessModel
import BenchmarkSupport
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import SlapdHarness
import Sync

let arguments = BenchmarkOptions(
    summary: "Roster against a throwaway 389 Directory Server: full sync and revocation figures (needs root).",
    options: [
        .value("--users", "N", help: "users in the generated clinic directory (default 10000)"),
        .value("--revocations", "N", help: "accounts locked while the change stream runs (default 200)"),
        .value("--rate", "PER_SECOND", help: "revocations per second (default 20)"),
    ])
let options = (users: arguments.int("--users", default: 10_000), revocations: arguments.int("--revocations", default: 200),
               rate: arguments.double("--rate", default: 20))
let clinic = ClinicDirectory.sized(options.users, suffix: "dc=ds,dc=example")
guard options.revocations <= clinic.healthCenters * clinic.extraStaffPerCenter else {
    log("--revocations \(options.revocations) is more than the \(clinic.healthCenters * clinic.extraStaffPerCenter) staff accounts of a \(options.users)-user directory")
    exit(2)
}
let clock = ContinuousClock()
var started = clock.now
let server = try await DS389Server.start(suffix: clinic.suffix)
defer { server.shutdown() }
log("389-ds instance created and started in \(String(format: "%.1f", (clock.now - started).inSeconds)) s; loading \(clinic.userCount) users…")
started = clock.now
try await server.ldapadd(clinic.ldif())
let loadSeconds = (clock.now - started).inSeconds

let mirrorPath = server.directory.appendingPathComponent("state/roster.sqlite").path
let configPath = server.directory.appendingPathComponent("roster.yaml").path
try clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: mirrorPath)
    .replacingOccurrences(of: "flavor: openldap", with: "flavor: 389ds")
    .replacingOccurrences(of: "max_deactivations: 50,", with: "max_deactivations: 1000000,")
    .write(toFile: configPath, atomically: true, encoding: .utf8)
let configuration = try ConfigurationLoader.load(path: configPath)

// Floor: ldapsearch, paged, the attributes Roster reads, to /dev/null. Best of three.
let attributes = DirectoryMapper(configuration: configuration, now: Date()).userAttributes
var floor = Double.infinity
for run in 1...3 {
    log("ldapsearch floor, run \(run) of 3…")
    started = clock.now
    let process = try ChildProcess(path: Tools.ldapsearch,
                                   arguments: ["-x", "-LLL", "-H", server.url, "-D", server.adminDN, "-y", server.adminPasswordFile,
                                               "-b", configuration.users.base, "-E", "pr=1000/noprompt", configuration.users.filter] + attributes,
                                   logFile: server.directory.appendingPathComponent("ldapsearch.log").path, outputFile: "/dev/null")
    _ = try await Tools.offPool { process.waitForExit() }
    floor = min(floor, (clock.now - started).inSeconds)
}

let mirror = try Mirror(path: mirrorPath)
let (first, firstSeconds, second, secondSeconds) = try await timedFullSyncs(configuration: configuration, mirror: mirror)

// Revocation latency through the change stream.
let watch = RevocationWatch(configuration: configuration, mirror: mirror)
try await watch.waitUntilReady()
let writer = try await LDAPConnection.connect(server.adminConfiguration())
let victims = (0..<options.revocations).map { clinic.staff(1 + $0 % clinic.healthCenters, 1 + $0 / clinic.healthCenters) }
var acknowledged: [String: ContinuousClock.Instant] = [:]
log("\(options.revocations) revocations at \(options.rate)/s…")
let interval = Duration.seconds(1 / options.rate)
var next = clock.now
for user in victims {
    try await clock.sleep(until: next)
    next += interval
    try await writer.modify(clinic.dn(user), [.replace("nsAccountLock", ["true"])])
    acknowledged[user] = .now
}
let deadline = clock.now + .seconds(30)
while watch.count < victims.count && clock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
await watch.stop()
await writer.close()
let latencies = victims.compactMap { user in watch.commit(of: user).map { max(0, ($0 - acknowledged[user]!).inMilliseconds) } }
let latency = Distribution(latencies)

let rows: [(String, String)] = [
    ("users", "\(clinic.userCount)"),
    ("loading them with ldapadd", String(format: "%.1f s, %.0f entries/s", loadSeconds, Double(clinic.userCount) / loadSeconds)),
    ("ldapsearch paged dump to /dev/null (floor)", String(format: "%.2f s", floor)),
    ("full sync into an empty mirror", String(format: "%.2f s (%.2fx the floor; %d users read)", firstSeconds, firstSeconds / floor, first.usersRead)),
    ("full sync, nothing changed", String(format: "%.2f s (%.2fx the floor; %d changes; 389-ds is always read in full)", secondSeconds, secondSeconds / floor, second.changeCount)),
    ("revocations", "\(latencies.count) of \(victims.count) committed, at \(options.rate)/s"),
    ("nsAccountLock modify ack -> commit", String(format: "p50 %.2f, p95 %.2f, p99 %.2f, max %.2f ms  (target p99 < 50)", latency.p50, latency.p95, latency.p99, latency.max)),
]
var table = ReportTable()
for (label, value) in rows { table.add(label, value) }
table.print(title: "Roster against 389 Directory Server, \(Date().formatted(.iso8601)), \(machineDescription())")
if latencies.count < victims.count { exit(1) }
