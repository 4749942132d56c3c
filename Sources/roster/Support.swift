import ArgumentParser
import Foundation
import Mirror
import RosterConfig

/// Loads the configuration or exits 2 after printing every problem. `mirrorOnly`: for a
/// command that never talks to the directory or serves HTTP, whose secret files are then not
/// required to be readable (the service user may run it without the root-only bind password).
func loadConfiguration(_ path: String, mirrorOnly: Bool = false) throws -> RosterConfiguration {
    do {
        return try ConfigurationLoader.load(path: path, checkingNamedFiles: !mirrorOnly)
    } catch {
        printError(error.description)
        printError("\(error.problems.count) problem\(error.problems.count == 1 ? "" : "s") in \(path); nothing was done.")
        throw ExitCode(2)
    }
}

/// Opens the mirror the configuration file at `path` names, for a command that only uses the
/// mirror (see `loadConfiguration(_:mirrorOnly:)`) and changes it: one that exists, which
/// such a command never creates.
func openMirror(configuredIn path: String) throws -> Mirror {
    let configuration = try loadConfiguration(path, mirrorOnly: true)
    guard FileManager.default.fileExists(atPath: configuration.mirror.path) else {
        printError(MirrorError.cannotOpen(path: configuration.mirror.path, reason: Mirror.noMirrorYet).description)
        throw ExitCode.failure
    }
    return try openMirror(configuration)
}

/// Opens the mirror the configuration file at `path` names, read-only, for a command that only
/// reads it: a member of the mirror's reader group may run it without root.
func openMirrorForReading(configuredIn path: String) throws -> Mirror {
    try openMirrorForReading(try loadConfiguration(path, mirrorOnly: true))
}

/// Opens the mirror the configuration names, read-only.
func openMirrorForReading(_ configuration: RosterConfiguration) throws -> Mirror {
    try mirrorOrExit(configuration.mirror.path, "read") { try Mirror(readingAt: configuration.mirror.path) }
}

/// Opens the mirror the configuration names.
func openMirror(_ configuration: RosterConfiguration) throws -> Mirror {
    try mirrorOrExit(configuration.mirror.path, "opened") {
        try Mirror(path: configuration.mirror.path, readerGroup: configuration.mirror.readerGroup)
    }
}

/// The mirror `open` opens, or exit 1 after saying why the one at `path` cannot be `what`.
private func mirrorOrExit(_ path: String, _ what: String, _ open: () throws -> Mirror) throws -> Mirror {
    do {
        return try open()
    } catch {
        printError((error as? MirrorError)?.description ?? "The mirror at \(path) cannot be \(what): \(error)")
        throw ExitCode.failure
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Prints a value as pretty, key-sorted JSON.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Aligned text columns for people.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    mutating func add(_ cells: String...) { rows.append(cells) }

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
