// Measures Roster against a real Samba AD DC, in one run:
//   - how fast test users can be created (offline `ldbadd` into the stopped DC, and
//     online `ldapadd` without passwords, for comparison),
//   - a paged `ldapsearch` of the users to /dev/null (the floor), and a full `Reconciler`
//     run into an empty mirror and again with nothing changed (ratios to the floor),
//   - revocation latency: disable (LDAP modify of userAccountControl acknowledged) ->
//     Roster's commit, over N revocations at random moments, with the DirSync change stream.
// Needs root (Samba provisioning). Usage:
//   swift run -c release ADBenchmark [--users 10000] [--revocations 100] [--interval 0.5] [--no-notifications]
import AccessModel
import BenchmarkSupport
import Foundation
import LDAPKit
import Mirror
import RosterConfig
import SlapdHarness
import Sync

let arguments = BenchmarkOptions(
    summary: "Roster against a throwaway Samba AD DC: user creation, full sync and DirSync revocation figures (needs root).",
    options: [
        .value("--users", "N", help: "AD users to create (default 10000)"),
        .value("--revocations", "N", help: "accounts disabled while the DirSync stream runs (default 100)"),
        .value("--interval", "SECONDS", help: "DirSync poll interval (default 0.5)"),
        .flag("--no-notifications", help: "poll DirSync only, without change notifications"),
    ])
let options = (users: arguments.int("--users", default: 10_000), revocations: arguments.int("--revocations", default: 100),
               interval: arguments.double("--interval", default: 0.5), notifications: !arguments.flag("--no-notifications"))
let base = SambaServer.baseDN
let people = "OU=People,OU=Clinic,\(base)"
let groupsBase = "OU=Groups,OU=Clinic,\(base)"
let teams = max(1, options.users / 1000)
func name(_ index: Int) -> String { String(format: "user%05d", index) }

log("generating \(options.users) AD users in \(teams) groups…")
var ldif = "dn: OU=Clinic,\(base)\nobjectClass: organizationalUnit\n\ndn: \(people)\nobjectClass: organizationalUnit\n\n"
ldif += "dn: \(groupsBase)\nobjectClass: organizationalUnit\n\n"
for index in 1...options.users {
    ldif += "dn: CN=\(name(index)),\(people)\nobjectClass: user\nsAMAccountName: \(name(index))\ngivenName: Given\(index)\n"
    ldif += "sn: Surname\(index)\nmail: \(name(index))@clinic.example\nuserAccountControl: 544\n\n"
}
for team in 0..<teams {
    ldif += "dn: CN=team\(team),\(groupsBase)\nobjectClass: group\nsAMAccountName: team\(team)\n"
    for index in stride(from: team + 1, through: options.users, by: teams) { ldif += "member: CN=\(name(index)),\(people)\n" }
    ldif += "\n"
}

let clock = ContinuousClock()
var started = clock.now
let server = try await SambaServer.start()
log("Samba DC (golden provision + copy + start) in \(String(format: "%.1f", (clock.now - started).inSeconds)) s")
server.stop()
started = clock.now
try await server.loadOffline(ldif)
let offlineSeconds = (clock.now - started).inSeconds
log("ldbadd offline: \(options.users) users in \(String(format: "%.1f", offlineSeconds)) s")
try await server.restart()
defer { server.shutdown() }

// Online creation for comparison: 200 users without passwords through ldapadd.
let online = 200
var onlineLDIF = "dn: OU=Online,\(base)\nobjectClass: organizationalUnit\n\n"
for index in 1...online {
    onlineLDIF += "dn: CN=online\(index),OU=Online,\(base)\nobjectClass: user\nsAMAccountName: online\(index)\nuserAccountControl: 544\n\n"
}
started = clock.now
try Tools.run("/usr/bin/ldapadd", ["-x", "-H", server.url, "-D", server.adminDN, "-y", server.adminPasswordFile], input: onlineLDIF)
let onlineRate = Double(online) / (clock.now - started).inSeconds

let mirrorPath = server.directory.appendingPathComponent("state/roster.sqlite").path
let yaml = """
    directory:
      name: main
      urls: [\(server.url)]
      flavor: activedirectory
      tls: {mode: plaintext}
      allow_plaintext: true
      bind: {method: simple, dn: '\(server.adminDN)', password_file: '\(server.adminPasswordFile)'}
      base_dn: '\(base)'
    users:
      base: '\(people)'
      filter: (&(objectClass=user)(objectCategory=person))
      attributes: {user_code: sAMAccountName}
      default_health_centers: [HC1]
    health_centers:
      - {id: HC1, name: Health Center 1, care_venues: [{id: HC1-OR1, name: Operating Room 1}]}
    groups:
      base: '\(groupsBase)'
      filter: (objectClass=group)
      pattern_rules:
        - match: cn
          pattern: 'team(?<n>[0-9]+)'
          template:
            name: 'Team {n}'
            kind: provider
            health_center: HC1
            care_venues: [HC1-OR1]
            modules: {care_venue: {privacy: toggle_default_off, privilege: full_access}}
            providers: all_in_health_center
    safety: {max_deactivations: 1000000}
    schedule: {dirsync_interval_seconds: \(options.interval), change_notifications: \(options.notifications)}
    mirror: {path: '\(mirrorPath)'}

    """
let configPath = server.directory.appendingPathComponent("roster.yaml").path
try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
let configuration = try ConfigurationLoader.load(path: configPath)

// Floor: ldapsearch, paged, the attributes Roster reads, to /dev/null. Best of three.
let attributes = DirectoryMapper(configuration: configuration, now: Date()).userAttributes
var floor = Double.infinity
for run in 1...3 {
    log("ldapsearch floor, run \(run)…")
    let output = server.directory.appendingPathComponent("dump.ldif").path
    started = clock.now
    let process = try ChildProcess(path: Tools.ldapsearch,
                                   arguments: ["-x", "-LLL", "-H", server.url, "-D", server.adminDN, "-y", server.adminPasswordFile,
                                               "-b", people, "-E", "pr=1000/noprompt", "(&(objectClass=user)(objectCategory=person))"] + attributes,
                                   logFile: server.directory.appendingPathComponent("ldapsearch.log").path, outputFile: output)
    process.waitForExit()
    floor = min(floor, (clock.now - started).inSeconds)
    try? FileManager.default.removeItem(atPath: output)
}

let mirror = try Mirror(path: mirrorPath)
let (first, firstSeconds, second, secondSeconds) = try await timedFullSyncs(configuration: configuration, mirror: mirror)

// Revocation latency with the DirSync change stream.
let watch = RevocationWatch(configuration: configuration, mirror: mirror)
try await watch.waitUntilReady()
let writer = try await LDAPConnection.connect(server.adminConfiguration())
var latencies: [Double] = []
log("\(options.revocations) revocations at random moments…")
for index in 1...options.revocations {
    let user = name(index * max(1, options.users / options.revocations))
    try await Task.sleep(for: .milliseconds(Int64.random(in: 50...Int64(options.interval * 1000 + 300))))
    try await writer.modify("CN=\(user),\(people)", [.replace("userAccountControl", ["546"])])
    let acknowledged = ContinuousClock.now
    let deadline = acknowledged + .seconds(30)
    var committed: ContinuousClock.Instant?
    while committed == nil && ContinuousClock.now < deadline {
        committed = watch.commit(of: user)
        if committed == nil { try await Task.sleep(for: .milliseconds(1)) }
    }
    guard let committed else { fatalError("the revocation of \(user) did not arrive within 30 s") }
    latencies.append(max(0, (committed - acknowledged).inMilliseconds))
}
await watch.stop()
await writer.close()
let latency = Distribution(latencies)

let rows: [(String, String)] = [
    ("users", "\(options.users) in \(teams) groups"),
    ("creating users: ldbadd offline (no passwords)", String(format: "%.1f s, %.0f users/s", offlineSeconds, Double(options.users) / offlineSeconds)),
    ("creating users: ldapadd online (no passwords)", String(format: "%.0f users/s", onlineRate)),
    ("ldapsearch paged dump to /dev/null (floor)", String(format: "%.2f s", floor)),
    ("full sync into an empty mirror", String(format: "%.2f s (%.1fx the floor; %d users read)", firstSeconds, firstSeconds / floor, first.usersRead)),
    ("full sync, nothing changed", String(format: "%.2f s (%.1fx the floor; %d changes)", secondSeconds, secondSeconds / floor, second.changeCount)),
    ("revocation latency p50 (disable -> commit)", String(format: "%.0f ms", latency.p50)),
    ("revocation latency p99", String(format: "%.0f ms  (target < 1500 ms)", latency.p99)),
    ("revocation latency max", String(format: "%.0f ms  (DirSync every %.2f s, ", latency.max, options.interval)
        + "notifications \(options.notifications ? "on" : "off"))"),
]
var table = ReportTable()
for (label, value) in rows { table.add(label, value) }
table.print(title: "Roster against Samba AD DC, \(Date().formatted(.iso8601)), \(machineDescription())")
