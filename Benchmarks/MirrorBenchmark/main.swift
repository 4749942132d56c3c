// Figures for the mirror's bulk apply and reads. Run: swift run -c release MirrorBenchmark
// A benchmark, not a test: it prints figures and asserts nothing.
import AccessModel
import Foundation
import Mirror

#if canImport(Glibc)
import Glibc
#endif

// ROSTER_BENCH_USERS scales the run down (e.g. for callgrind); the figures below are for 100k.
let userCount = ProcessInfo.processInfo.environment["ROSTER_BENCH_USERS"].flatMap(Int.init) ?? 100_000
let groupCount = 5_000
let healthCenterCount = 10
let providersPerCenter = 200

/// This process's CPU time (user + system, all threads) so far, in seconds.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// CPU time of the phases timed with ``seconds(_:)``, by the order they ran in.
nonisolated(unsafe) var cpuTimes: [Double] = []

/// Wall time of `body`; its CPU time is appended to ``cpuTimes``.
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let cpu = cpuSeconds()
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    cpuTimes.append(cpuSeconds() - cpu)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func buildChangeset() throws -> Changeset {
    var healthCenters: [HealthCenter] = []
    var venues: [CareVenue] = []
    var providers: [Provider] = []
    for h in 0..<healthCenterCount {
        let hc = HealthCenterID("HC\(h)")
        healthCenters.append(HealthCenter(id: hc, name: "Health center \(h)"))
        venues.append(CareVenue(id: CareVenueID("HC\(h)-OR1"), healthCenter: hc, name: "OR 1"))
        venues.append(CareVenue(id: CareVenueID("HC\(h)-OR2"), healthCenter: hc, name: "OR 2"))
        for p in 0..<providersPerCenter {
            providers.append(Provider(id: ProviderID("HC\(h)-P\(p)"), healthCenter: hc, displayName: "Surgeon\(p), HC\(h)"))
        }
    }
    var groups: [Group] = []
    for g in 0..<groupCount {
        let h = g % healthCenterCount
        let p = g % providersPerCenter
        groups.append(try Group(
            id: GroupID("group-\(g)"), name: "Group \(g)", kind: .provider, healthCenter: HealthCenterID("HC\(h)"),
            careVenues: [CareVenueID("HC\(h)-OR1")], modules: [
                .providersOffice: .providers([
                    ProviderID("HC\(h)-P\(p)"): TargetGrant(.fullAccess),
                    ProviderID("HC\(h)-P\((p + 1) % providersPerCenter)"): TargetGrant(.readOnly),
                    ProviderID("HC\(h)-P\((p + 2) % providersPerCenter)"): TargetGrant(.fullAccess),
                ], privacy: .toggleDefaultOn),
                .reports: ModuleGrant(privacy: .forcedPatient, defaultPrivilege: .readOnly),
            ], directoryDN: "cn=group-\(g),ou=groups,dc=clinic"))
    }
    var users: [User] = []
    var members: [GroupID: Set<UserCode>] = [:]
    users.reserveCapacity(userCount)
    for u in 0..<userCount {
        let code = UserCode("User\(u)")
        let g1 = u % groupCount
        users.append(try User(
            code: code, directoryID: "uuid-\(u)", directoryDN: "uid=user\(u),ou=people,dc=clinic", firstName: "First\(u)",
            lastName: "Last\(u)", title: "MOA", email: "user\(u)@clinic.test", healthCenters: [HealthCenterID("HC\(g1 % healthCenterCount)")],
            autoLogoutMinutes: 15, flags: ["disable_twain": u % 2 == 0]))
        members[GroupID("group-\(g1)"), default: []].insert(code)
        if u % 2 == 0 {
            members[GroupID("group-\((u * 7 + 1) % groupCount)"), default: []].insert(code)
        }
    }
    return Changeset(
        scope: .complete, healthCenters: healthCenters, careVenues: venues, providers: providers,
        groups: groups, users: users, groupMembers: members)
}

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("roster-bench-\(UUID().uuidString)")
// ROSTER_BENCH_KEEP=1 keeps the database for a look (e.g. sqlite3's dbstat); its path is printed.
let keep = ProcessInfo.processInfo.environment["ROSTER_BENCH_KEEP"] != nil
defer { if !keep { try? FileManager.default.removeItem(at: directory) } }
if keep { print("database: \(directory.path)/mirror.sqlite") }
let mirror = try Mirror(path: directory.appendingPathComponent("mirror.sqlite").path)

var changeset: Changeset!
let buildTime = try seconds { changeset = try buildChangeset() }
let membershipCount = changeset.groupMembers.values.reduce(0) { $0 + $1.count }

var first: ApplySummary!
let applyTime = try seconds { first = try mirror.apply(changeset, actor: .directory("ldap://bench")) }
func fileSize(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
let databaseBytes = fileSize(mirror.path)
let walBytes = fileSize(mirror.path + "-wal")
// The WAL is copied into the database file on a background thread after the commit; let it
// finish so the re-apply is measured alone.
let checkpointTime = seconds { mirror.waitForCheckpoint() }
var second: ApplySummary!
let reapplyTime = try seconds { second = try mirror.apply(changeset, actor: .directory("ldap://bench")) }

var oneChange = changeset!
oneChange.users[42].title = "Charge nurse"
var third: ApplySummary!
let oneChangeTime = try seconds { third = try mirror.apply(oneChange, actor: .directory("ldap://bench")) }

let lockTime = try seconds { try mirror.setDirectoryState(of: "user7", locked: true, inactive: false, actor: .directory("uid=user7")) }

var generator = SystemRandomNumberGenerator()
let samples = 2_000
var readTimes: [Double] = []
var grantCount = 0
for _ in 0..<samples {
    let user = UserCode("user\(Int.random(in: 0..<userCount, using: &generator))")
    readTimes.append(try seconds { grantCount += try mirror.effectiveAccess(of: user).grants.count })
}
readTimes.sort()
var verifyTime = 0.0
var chainOK = false
verifyTime = try seconds { chainOK = try mirror.verifyAuditLog() == nil }

func ms(_ s: Double) -> String { String(format: "%9.3f ms", s * 1000) }
func cpu(_ phase: Int) -> String { String(format: "%8.0f ms", cpuTimes[phase] * 1000) }
print("Mirror benchmark: \(userCount) users, \(groupCount) groups, \(membershipCount) memberships (\(healthCenterCount * providersPerCenter) providers)")
print("| figure                                                  |         wall |  CPU (all threads) | target  |")
print("|---------------------------------------------------------|--------------|--------------------|---------|")
print("| build changeset in memory                               | \(ms(buildTime)) | \(cpu(0))        |         |")
print("| apply into empty mirror (\(first.changeCount) changes, \(first.eventCount) events) | \(ms(applyTime)) | \(cpu(1))        | < 3 s   |")
print("| then: background checkpoint still running (waited)      | \(ms(checkpointTime)) | \(cpu(2))        |         |")
print("| re-apply unchanged (\(second.changeCount) changes)                            | \(ms(reapplyTime)) | \(cpu(3))        | < 1 s   |")
print("| re-apply with one user changed (\(third.changeCount) change)                 | \(ms(oneChangeTime)) | \(cpu(4))        |         |")
print("| lock one user (fast path, own transaction)              | \(ms(lockTime)) |                    |         |")
print("| effective access of one user, median                   | \(ms(readTimes[samples / 2])) |                    | < 1 ms  |")
print("| effective access of one user, p99                      | \(ms(readTimes[samples * 99 / 100])) |                    |         |")
print("| verify audit chain (\(try mirror.auditRowCount()) rows, ok: \(chainOK))            | \(ms(verifyTime)) | \(cpu(cpuTimes.count - 1))        |         |")
print("(average \(grantCount / samples) grants per user read; right after the first apply the database was \(databaseBytes / 1_000_000) MB, its WAL \(walBytes / 1_000_000) MB; process CPU \(String(format: "%.2f", cpuSeconds())) s)")
