import AccessModel
import ArgumentParser
import Foundation
import Mirror
import Sync

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "One user: details, where their access comes from, and an admin's local lock or deactivation.",
                                                    subcommands: [Show.self, Explain.self, Lock.self, Unlock.self, Deactivate.self, Reactivate.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A user's state, groups and effective access.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user code (case-insensitive).") var code: String
        @Flag(help: "Print JSON (the document /v1/users/{code} serves).") var json = false

        func run() throws {
            let mirror = try openMirrorForReading(configuredIn: options.config)
            guard let document = try mirror.userDocument(UserCode(code)) else {
                printError("No user '\(code)' is in the mirror; check the code, or run `roster sync` first.")
                throw ExitCode.failure
            }
            if json { return try printJSON(document) }
            var state = document.active ? (document.locked ? "locked" : "active") : "inactive"
            if let reason = document.stateReason { state += " (\(reason)\(document.stateSource.map { ", \($0)" } ?? ""))" }
            print("\(document.userCode)  \(document.displayName)  <\(document.email ?? "no email")>")
            print("  state: \(state)")
            if document.superAdministrator { print("  super administrator") }
            if document.breakGlass { print("  break-glass account") }
            print("  health centers: \(document.healthCenters.joined(separator: ", "))")
            print("  auto-logout: \(document.autoLogoutMinutes) min")
            print("  groups: \(document.groups.isEmpty ? "none" : document.groups.map { "\($0.name) [\($0.healthCenter)]" }.joined(separator: "; "))")
            if !document.roles.isEmpty { print("  roles: \(document.roles.joined(separator: ", "))") }
            if let reason = document.noAccessReason {
                print("  access: none (\(NoAccessReason(rawValue: reason)?.description ?? reason))")
                return
            }
            var table = TextTable("module", "health center", "provider", "privilege", "privacy")
            for entry in document.access {
                table.add(entry.module, entry.healthCenter, entry.provider ?? "-", entry.privilege, entry.privacy)
            }
            print("  access (\(document.access.count) grants):")
            print(table.render().split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        }
    }

    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Which directory group and rule gave each grant, and which restriction won.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The user code (case-insensitive).") var code: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let configuration = try loadConfiguration(options.config, mirrorOnly: true)
            let mirror = try openMirrorForReading(configuration)
            let explanation: AccessExplanation
            do {
                explanation = try AccessExplanation(user: UserCode(code), in: try mirror.snapshot(), origins: MappingOrigins(configuration))
            } catch let error as ExplanationError {
                printError(error.description)
                throw ExitCode.failure
            }
            if json { return try printJSON(ExplanationJSON(explanation)) }
            print("\(explanation.user.code.rawValue) (\(explanation.user.displayName)): \(explanation.user.state)")
            if let source = explanation.superAdministratorSource {
                print("  super administrator: every module, every provider, Full Access (from \(source))")
                return
            }
            if case .noAccess(let reason) = explanation.result {
                print("  no access: \(reason)")
                return
            }
            for line in explanation.lines {
                print("  \(line.grant.key): \(line.grant.level)")
                for contribution in line.contributions {
                    let source = (contribution.directoryGroup.map { " from \($0)" } ?? "") + (contribution.rule.map { " by \($0)" } ?? "")
                    let mark = contribution.decides && line.contributions.count > 1 ? "  <- most restrictive" : ""
                    print("      \(contribution.kind) '\(contribution.name)'\(source) via \(contribution.via): \(contribution.level)\(mark)")
                }
            }
        }
    }
}

struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users", abstract: "Find users; list email addresses.",
                                                    subcommands: [Search.self, EmailList.self])

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Users whose code or name contains TEXT (case-insensitive).")
        @OptionGroup var options: ConfigOption
        @Argument var text: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let users = try openMirrorForReading(configuredIn: options.config).searchUsers(text)
            if json { return try printJSON(users) }
            var table = TextTable("code", "name", "email", "state")
            for user in users {
                table.add(user.userCode, user.displayName, user.email ?? "", user.active ? (user.locked ? "locked" : "active") : "inactive")
            }
            print(table.render())
            print("\(users.count) user\(users.count == 1 ? "" : "s")")
        }
    }

    struct EmailList: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "email-list", abstract: "Every user's email address, for a BCC field.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Only active users.") var activeOnly = false
        @Flag(help: "Print JSON (an array of addresses).") var json = false

        func run() throws {
            let addresses = try openMirrorForReading(configuredIn: options.config).emailList(activeOnly: activeOnly)
            if json { return try printJSON(addresses) }
            print(addresses.joined(separator: "; "))
        }
    }
}

struct GroupsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "groups", abstract: "Clinic groups.", subcommands: [List.self, Show.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Groups with their counts and listed access level.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Only this health center.") var healthCenter: String?
        @Option(help: "provider or pool.") var kind: GroupKind?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let snapshot = try openMirrorForReading(configuredIn: options.config).snapshot()
            let groups = snapshot.groups.values
                .filter { group in healthCenter.map { group.healthCenter.rawValue.lowercased() == $0.lowercased() } ?? true }
                .filter { group in kind.map { group.kind == $0 } ?? true }
                .sorted { ($0.healthCenter, $0.name) < ($1.healthCenter, $1.name) }
            let rows = groups.map { GroupRow($0, members: snapshot.groupMembers[$0.id]?.count ?? 0) }
            if json { return try printJSON(rows) }
            var table = TextTable("health center", "group", "kind", "modules", "providers", "pools", "users", "access", "auto-add")
            for row in rows {
                table.add(row.healthCenter, row.name, row.kind, "\(row.modules)", "\(row.providers)", "\(row.pools)", "\(row.users)",
                          row.access, row.autoAddNewProviders ? "yes" : "no")
            }
            print(table.render())
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A group's care venues, modules, providers with privilege and privacy, and members.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The group name (or id HC/name).") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let snapshot = try openMirrorForReading(configuredIn: options.config).snapshot()
            let matches = snapshot.groups.values.filter {
                $0.name.lowercased() == name.lowercased() || $0.id.rawValue.lowercased() == name.lowercased()
            }
            guard let group = matches.first, matches.count == 1 else {
                printError(matches.isEmpty ? "No group named '\(name)' is in the mirror." : "Several groups are named '\(name)'; give the id (HEALTH-CENTER/name): \(matches.map(\.id.rawValue).sorted().joined(separator: ", ")).")
                throw ExitCode.failure
            }
            if json { return try printJSON(GroupJSON(group, members: snapshot.groupMembers[group.id] ?? [])) }
            print("\(group.name)  [\(group.kind) group at \(group.healthCenter)]  id \(group.id)")
            if let dn = group.directoryDN { print("  from directory group \(dn)") }
            print("  care venues: \(group.careVenues.map(\.rawValue).sorted().joined(separator: ", "))")
            print("  scheduling ability: \(group.schedulingAbility ? "on" : "off"); auto-add new providers: \(group.autoAddNewProviders ? "yes" : "no")")
            print("  listed access: \(group.listedLevel)")
            for module in group.modules.keys.sorted() {
                let grant = group.modules[module]!
                print("  \(module.displayName): privacy \(grant.privacy.name), default \(grant.defaultPrivilege.name)")
                for target in grant.targets.keys.sorted() {
                    let entry = grant.targets[target]!
                    let label = group.kind == .pool ? "pool" : "provider"
                    print("    \(label) \(target): \(entry.privilege.name)\(entry.privacyOverride.map { ", privacy \($0.name)" } ?? "")"
                          + (entry.addedAutomatically ? ", added automatically" : ""))
                }
            }
            let members = (snapshot.groupMembers[group.id] ?? []).sorted()
            print("  members (\(members.count)): \(members.map(\.rawValue).joined(separator: ", "))")
        }
    }

    struct GroupRow: Encodable {
        var id, name, healthCenter, kind, access: String
        var modules, providers, pools, users: Int
        var autoAddNewProviders: Bool

        init(_ group: Group, members: Int) {
            id = group.id.rawValue
            name = group.name
            healthCenter = group.healthCenter.rawValue
            kind = group.kind.rawValue
            access = group.listedLevel.description
            let targets = Set(group.modules.values.flatMap(\.targets.keys))
            modules = group.modules.count
            providers = group.kind == .provider ? targets.count : 0
            pools = group.kind == .pool ? targets.count : 0
            users = members
            autoAddNewProviders = group.autoAddNewProviders
        }
    }
}

extension GroupKind: ExpressibleByArgument {}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "The append-only, hash-chained audit log.",
                                                    subcommands: [Tail.self, Verify.self, Export.self])

    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The newest audit rows, or the newest of one user's.")
        @OptionGroup var options: ConfigOption
        @Option(name: .shortAndLong, help: "How many rows.") var count = 20
        @Option(help: "Only this user's rows: record, state, provider, memberships and roles (code, case-insensitive).") var user: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let rows = try openMirrorForReading(configuredIn: options.config).auditTail(limit: count, user: user.map { UserCode($0) })
            if json { return try printJSON(rows) }
            var table = TextTable("id", "at", "actor", "action", "entity", "source")
            for row in rows { table.add("\(row.id)", row.at, "\(row.actorKind) \(row.actor)", row.action, row.entityKey, row.source ?? "") }
            print(table.render())
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The audit rows after a given one, oldest first, as JSON lines with their hashes: for a copy kept off this machine.",
            discussion: """
                A forwarder that keeps the log elsewhere (a SIEM) passes the last row it holds, --after ID --after-hash HASH; \
                Roster then exports only if that row still has that hash, so a log rewritten here since is noticed there. \
                Each row's prevHash is the hash of the row before it; docs/mirror.md says how a hash is computed.
                """)
        @OptionGroup var options: ConfigOption
        @Option(help: "Only the rows after this id (default: from the first row).") var after: Int64 = 0
        @Option(help: "The hash the row --after names must have (the last hash you hold).") var afterHash: String?
        @Option(help: "At most this many rows.") var limit: Int?

        func validate() throws {
            if after < 0 { throw ValidationError("--after must be 0 or a row id.") }
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1.") }
            if let afterHash, afterHash.count != 64 || !afterHash.allSatisfy(\.isHexDigit) {
                throw ValidationError("--after-hash must be a row's hash: 64 hexadecimal digits.")
            }
            if afterHash != nil, after == 0 { throw ValidationError("--after-hash needs --after, the id of the row it belongs to.") }
        }

        func run() throws {
            let mirror = try openMirrorForReading(configuredIn: options.config)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var buffer = Data()
            let output = FileHandle.standardOutput
            do {
                try mirror.auditRows(after: after, expectedHash: afterHash, limit: limit) { row in
                    buffer.append(try encoder.encode(row))
                    buffer.append(0x0A)
                    if buffer.count >= 1 << 16 {
                        output.write(buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
            } catch let error as AuditContinuityError {
                printError(error.description)
                throw ExitCode.failure
            }
            output.write(buffer)
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Checks the hash chain of the whole audit log (exit 1 at the first broken row).")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Print JSON (exit 1 still when the chain is broken).") var json = false

        func run() throws {
            let mirror = try openMirrorForReading(configuredIn: options.config)
            let broken = try mirror.verifyAuditLog()
            if json {
                try printJSON(AuditVerificationJSON(intact: broken == nil, rows: try mirror.auditRowCount(),
                                                    brokenAt: broken?.rowID, problem: broken?.problem))
                if broken != nil { throw ExitCode.failure }
                return
            }
            if let broken {
                printError(broken.description)
                throw ExitCode.failure
            }
            print("The audit log's \(try mirror.auditRowCount()) rows form an unbroken hash chain.")
        }
    }
}
