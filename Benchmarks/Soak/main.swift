// A soak run (not in CI): `roster run` follows a directory that changes at a steady rate
// while slapd is restarted on a schedule; at the end the daemon's mirror must equal a fresh
// full sync of the directory. Prints the changes applied, wrong revocations (users the
// daemon shows locked or inactive whom the fresh sync shows usable: must be 0), missed
// revocations, the restarts survived, and the daemon's memory growth.
// Usage: swift build -c release --product roster && swift run -c release Soak
//          [--minutes 30] [--rate 50] [--restart-every 300] [--users 10000] [--reconcile-every 2]
// The scheduled full reconcile runs every `--reconcile-every` minutes (2 by default, not the
// daemon's 15) so that it overlaps the stream's changes many times in a run.
import AccessModel
import BenchmarkSupport
import Foundation
import LDAPKit
import Mirror
import SlapdHarness

let arguments = BenchmarkOptions(
    summary: "A soak run of roster run under steady directory changes and slapd restarts, compared at the end with a fresh full sync.",
    options: [
        .value("--minutes", "M", help: "how long the directory changes (default 30)"),
        .value("--rate", "PER_SECOND", help: "directory changes per second (default 50)"),
        .value("--restart-every", "SECONDS", help: "slapd restarts this often (default 300)"),
        .value("--users", "N", help: "users in the generated directory (default 10000)"),
        .value("--reconcile-every", "MINUTES", help: "the daemon's scheduled full reconcile runs this often (default 2, so it overlaps the changes many times)"),
    ])
let options = (minutes: arguments.double("--minutes", default: 30), rate: arguments.double("--rate", default: 50),
               restartEvery: arguments.double("--restart-every", default: 300), users: arguments.int("--users", default: 10_000),
               reconcileMinutes: arguments.double("--reconcile-every", default: 2))
let roster = rosterExecutable()
let clinic = ClinicDirectory.sized(options.users, suffix: "dc=soak,dc=example")
log("loading a clinic of \(clinic.userCount) users into slapd…")
let server = try await SlapdServer.start(suffix: clinic.suffix, ldif: clinic.ldif())
let work = server.directory
let httpPort = try Tools.freePort()
let mirrorPath = work.appendingPathComponent("state/roster.sqlite").path
let configPath = work.appendingPathComponent("roster.yaml").path
let soakYAML = clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: mirrorPath, httpPort: httpPort)
precondition(soakYAML.contains("reconcile_interval_minutes: 15"), "the generated configuration no longer sets reconcile_interval_minutes: 15")
try soakYAML.replacingOccurrences(of: "reconcile_interval_minutes: 15", with: "reconcile_interval_minutes: \(options.reconcileMinutes)")
    .write(toFile: configPath, atomically: true, encoding: .utf8)

let daemon = try RosterDaemon(executable: roster, configPath: configPath, port: httpPort, logFile: work.appendingPathComponent("roster.log").path)
try await daemon.waitUntilReady()
let memoryAtStart = daemon.residentMemoryBytes
log("roster run is ready (\(memoryAtStart / 1_000_000) MB resident); changing \(options.rate) entries per second for \(options.minutes) minutes, restarting slapd every \(Int(options.restartEvery)) s, full reconcile every \(options.reconcileMinutes) min")

// The changes: locks, unlocks and titles of random users, and team members leaving and
// rejoining their team's group (hc1-reporting's members also hold a role); what each user
// ends as is whatever the directory says last, which the fresh sync at the end reads.
let people = (1...clinic.healthCenters).flatMap { c in
    (1...clinic.officesPerCenter).flatMap { o in (1...clinic.assistantsPerOffice).map { clinic.assistant(c, o, $0) } }
        + ClinicDirectory.teams.flatMap { team in (1...clinic.teamSize).map { clinic.teamMember(c, team, $0) } }
}
let teamMemberships = (1...clinic.healthCenters).flatMap { c in
    ClinicDirectory.teams.flatMap { team in (1...clinic.teamSize).map { (user: clinic.teamMember(c, team, $0), group: clinic.groupDN("hc\(c)-\(team)")) } }
}
var leftTheirTeam = Set<String>()
var membershipChanges = 0
var generator = SystemRandomNumberGenerator()
var changesSent = 0, failedWrites = 0, restarts = 0
let clock = ContinuousClock()
let end = clock.now + .seconds(options.minutes * 60)
var nextRestart = clock.now + .seconds(options.restartEvery)
var writer = try await LDAPConnection.connect(server.adminConfiguration())
let interval = Duration.seconds(1 / options.rate)
var tick = clock.now
while clock.now < end {
    if clock.now >= nextRestart {
        log("restarting slapd (\(restarts + 1))…")
        try await server.restart()
        restarts += 1
        nextRestart = clock.now + .seconds(options.restartEvery)
        writer = try await LDAPConnection.connect(server.adminConfiguration())
        guard daemon.process.isRunning else { fatalError("roster run died after a slapd restart; see \(work.path)/roster.log") }
    }
    var dn = clinic.dn(people.randomElement(using: &generator)!)
    let modification: [LDAPModification]
    switch Int.random(in: 0..<5, using: &generator) {
    case 0: modification = [.replace("pwdAccountLockedTime", ["000001010000Z"])]
    case 1: modification = [.delete("pwdAccountLockedTime", [])]
    case 2:
        let membership = teamMemberships.randomElement(using: &generator)!
        dn = membership.group
        let leaving = !leftTheirTeam.contains(membership.user)
        modification = leaving ? [.delete("member", [clinic.dn(membership.user)])] : [.add("member", [clinic.dn(membership.user)])]
        if leaving { leftTheirTeam.insert(membership.user) } else { leftTheirTeam.remove(membership.user) }
        membershipChanges += 1
    default: modification = [.replace("title", ["Title \(Int.random(in: 1...1000, using: &generator))"])]
    }
    do {
        try await writer.modify(dn, modification)
        changesSent += 1
    } catch let error as LDAPError where error.code == .noSuchAttribute {
        changesSent += 0  // unlocking a user who was not locked: nothing changed
    } catch {
        failedWrites += 1
        writer = (try? await LDAPConnection.connect(server.adminConfiguration())) ?? writer
    }
    tick = tick + interval
    let now = clock.now
    if tick > now { try await Task.sleep(until: tick, clock: clock) } else { tick = now }
}
log("changes done; letting the daemon catch up…")
try await Task.sleep(for: .seconds(5))
let memoryAtEnd = daemon.residentMemoryBytes
let status = (try? daemon.get("/v1/status").text) ?? ""
// How much of the daemon's memory is SQLite's page caches (bounded by their settings).
let pageCacheBytes = ((try? daemon.get("/metrics").text) ?? "").split(separator: "\n")
    .first { $0.hasPrefix("roster_mirror_page_cache_bytes ") }
    .flatMap { Double($0.split(separator: " ").last ?? "") } ?? .nan
try await daemon.stop()

// A fresh full sync of the same directory, into a new mirror.
let freshPath = work.appendingPathComponent("fresh/roster.sqlite").path
let freshConfig = work.appendingPathComponent("fresh.yaml").path
try clinic.yaml(url: server.url, passwordFile: server.adminPasswordFile, bindDN: server.adminDN, mirrorPath: freshPath, httpPort: httpPort)
    .write(toFile: freshConfig, atomically: true, encoding: .utf8)
_ = try Tools.run(roster, ["sync", "--config", freshConfig])
let followed = try Mirror(path: mirrorPath).snapshot()
let fresh = try Mirror(path: freshPath).snapshot()
func usable(_ user: User?) -> Bool { user.map { $0.state.isActive && !$0.state.isLocked } ?? false }
var wrong = 0, missed = 0, differing = 0
for (code, expected) in fresh.users {
    let actual = followed.users[code]
    if usable(expected) && !usable(actual) { wrong += 1 }
    if !usable(expected) && usable(actual) { missed += 1 }
    if actual?.title != expected.title || actual?.state.isLocked != expected.state.isLocked { differing += 1 }
}
// Memberships and role holders, by directory group (the clinic groups' ids are the same in both).
let differingGroups = Set(fresh.groupMembers.keys).union(followed.groupMembers.keys)
    .filter { (fresh.groupMembers[$0] ?? []) != (followed.groupMembers[$0] ?? []) }.count
let differingRoles = Set(fresh.roleHolders.keys).union(followed.roleHolders.keys)
    .filter { (fresh.roleHolders[$0] ?? []) != (followed.roleHolders[$0] ?? []) }.count
let auditIntact = try Mirror(path: mirrorPath).verifyAuditLog() == nil
let applied = status.range(of: #""eventsApplied"\s*:\s*(\d+)"#, options: .regularExpression)
    .map { String(status[$0]).filter(\.isNumber) } ?? "?"

print("""
Soak run, \(options.minutes) min at \(options.rate) changes/s, slapd restarted every \(Int(options.restartEvery)) s, reconcile every \(options.reconcileMinutes) min, \(clinic.userCount) users
  directory changes made           \(changesSent) (\(failedWrites) writes failed during restarts; \(membershipChanges) of them team memberships)
  changes applied by roster run    \(applied)
  slapd restarts survived          \(restarts)
  wrong revocations                \(wrong)   (must be 0)
  missed revocations               \(missed)
  users differing from a fresh sync \(differing)
  groups, roles differing from it  \(differingGroups), \(differingRoles)   (members, holders)
  audit chain                      \(auditIntact ? "intact" : "BROKEN")
  daemon memory                    \(memoryAtStart / 1_000_000) MB -> \(memoryAtEnd / 1_000_000) MB (\(String(format: "%+.1f", Double(memoryAtEnd - memoryAtStart) / 1e6)) MB); SQLite page caches at the end \(String(format: "%.1f", pageCacheBytes / 1e6)) MB
""")
let passed = wrong == 0 && missed == 0 && differing == 0 && differingGroups == 0 && differingRoles == 0 && auditIntact
if passed {
    server.shutdown()
} else {
    // Keep the evidence: both mirrors, the daemon's log and slapd's data.
    server.stop()
    print("  kept for inspection: \(work.path) (roster.log, state/roster.sqlite, fresh/roster.sqlite)")
}
exit(passed ? 0 : 1)
