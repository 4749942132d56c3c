import ArgumentParser

@main
struct Roster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roster",
        abstract: "Keeps a clinic application's users, groups and access in step with an LDAP directory.",
        discussion: "Exit codes: 0 success, 1 failure, 2 invalid configuration, 3 refused by the safety breaker.",
        subcommands: [CheckConfig.self, SyncCommand.self, RunCommand.self, UserCommand.self, UsersCommand.self, GroupsCommand.self, AuditCommand.self])
}

/// `--config PATH`, shared by every command.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The configuration file.")
    var config: String = "/etc/roster/roster.yaml"
}
