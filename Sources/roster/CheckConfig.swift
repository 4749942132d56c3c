import ArgumentParser
import RosterConfig

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validates the configuration and prints every problem with file, line and key (exit 2), or a summary.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let configuration = try loadConfiguration(options.config)
        print(summary(of: configuration, file: options.config))
    }
}
