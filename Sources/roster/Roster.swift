import ArgumentParser

@main
struct Roster: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "roster", abstract: "Keeps a clinic application in step with its LDAP directory.")
}
