import AccessModel
import ArgumentParser
import Foundation
import Mirror
import RosterConfig
import Sync

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Reads the whole directory, maps it and reconciles the mirror in one transaction.",
        discussion: "Prints the plan as counts. Refuses (exit 3) plans the safety breaker rejects unless --force is given.")

    @OptionGroup var options: ConfigOption
    @Flag(help: "Compute and print the plan; change nothing.") var dryRun = false
    @Flag(help: "Apply even when the safety breaker would refuse.") var force = false
    @Flag(help: "Print the plan and every change as JSON.") var json = false
    @Flag(help: "Read every entry in full, instead of reading change markers and only the entries whose marker moved.") var full = false

    func run() async throws {
        let configuration = try loadConfiguration(options.config)
        let mirror = try openMirror(configuration)
        let interactive = isatty(STDERR_FILENO) != 0 && !json
        var progress: (@Sendable (Int) -> Void)?
        if interactive {
            progress = { (count: Int) -> Void in printError("  read \(count) user entries…") }
        }
        let report: ReconcileReport
        do {
            let reconciler = Reconciler(configuration: configuration, mirror: mirror)
            report = try await reconciler.run(ReconcileOptions(dryRun: dryRun, force: force, full: full, listChanges: json, progress: progress))
        } catch let error as ReconcileError {
            if json, case .breaker(let trip, let counts) = error {
                try printJSON(BreakerJSON(refused: true, reason: trip.description, plan: counts))
            } else {
                printError(error.description)
            }
            if case .breaker = error { throw ExitCode(3) }
            throw ExitCode.failure
        }
        // A large apply through the WAL (any but a first load alone on the file, which writes the
        // file itself) left a large WAL, whose checkpoint began at its commit. A command that exits
        // now would leave it (or its last sync, which the exit waits for) to the next process that
        // opens the mirror: each one would first read the whole WAL, the application's read-only
        // connections included. So the command ends once the WAL is in the file and emptied.
        defer { mirror.waitForCheckpoint() }
        if let notice = report.entriesNotStored { printError(notice) }
        if json {
            try printJSON(SyncJSON(report))
            return
        }
        let c = report.counts
        print(report.dryRun ? "Plan (dry run, nothing changed):" : "Reconciled \(configuration.directory.name):")
        var table = TextTable("", "")
        table.add("users read", "\(report.usersRead) entries, \(report.groupsRead) groups")
        table.add("directory read", "\(report.source)")
        table.add("users added", "\(c.usersAdded)")
        table.add("users updated", "\(c.usersUpdated)")
        table.add("users locked / unlocked", "\(c.usersLocked) / \(c.usersUnlocked)")
        table.add("users deactivated / reactivated", "\(c.usersDeactivated) / \(c.usersReactivated)")
        table.add("groups created / changed / removed", "\(c.groupsCreated) / \(c.groupsChanged) / \(c.groupsRemoved)")
        table.add("memberships added / removed", "\(c.membershipsAdded) / \(c.membershipsRemoved)")
        table.add("providers auto-added", "\(c.providersAutoAdded) (\(report.newProviders.count) new providers)")
        table.add("changes, events", "\(report.changeCount), \(report.eventCount)")
        let seconds = report.durations.values.reduce(Duration.zero, +)
        table.add("time", "\(seconds.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))) (\(report.phaseTimes))")
        print(table.render().split(separator: "\n").dropFirst().map { "  " + $0 }.joined(separator: "\n"))
        if !report.problems.isEmpty {
            print("Skipped \(report.problems.count) entr\(report.problems.count == 1 ? "y" : "ies"):")
            for problem in report.problems { print("  \(problem)") }
        }
    }
}

struct BreakerJSON: Encodable {
    var refused: Bool
    var reason: String
    var plan: PlanCounts
}

struct SyncJSON: Encodable {
    struct ChangeJSON: Encodable {
        var action: String
        var entityType: String
        var entity: String
        @NullWhenAbsent var before: String?
        @NullWhenAbsent var after: String?
    }
    var dryRun: Bool
    var plan: PlanCounts
    var usersRead: Int
    var groupsRead: Int
    var source: String
    var newProviders: [String]
    var problems: [MappingProblem]
    var events: Int
    var changes: [ChangeJSON]

    init(_ report: ReconcileReport) {
        dryRun = report.dryRun
        plan = report.counts
        usersRead = report.usersRead
        groupsRead = report.groupsRead
        source = report.source.description
        newProviders = report.newProviders.map(\.rawValue)
        problems = report.problems
        events = report.eventCount
        changes = report.changes.map { ChangeJSON(action: $0.action, entityType: $0.entityType, entity: $0.entityKey, before: $0.before, after: $0.after) }
    }
}

extension MappingProblem: Encodable {
    enum CodingKeys: String, CodingKey { case dn, message }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(dn, forKey: .dn)
        try container.encode(message, forKey: .message)
    }
}
