import Foundation
import Testing

/// The shipped unit file must stay hardened: `systemd-analyze security` rates it 2.0 or below.
@Suite struct SystemdUnitTests {
    static let unit = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("systemd/roster.service")

    static func findAnalyzer() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map(String.init) + ["/usr/bin", "/bin"])
            .map { $0 + "/systemd-analyze" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test func theUnitRatesTwoOrBelowInSystemdAnalyzeSecurity() throws {
        let analyzer = try #require(Self.findAnalyzer(), "systemd-analyze is missing: install it with `apt-get install systemd` (scripts/setup does)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: analyzer)
        process.arguments = ["security", "--offline=true", "--no-pager", Self.unit.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        // "→ Overall exposure level for roster.service: 1.1 OK 🙂"
        let line = try #require(text.split(separator: "\n").first { $0.contains("Overall exposure level") }, "no score in: \(text)")
        let figure = line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }
        let score = try #require(figure, "cannot read the score in: \(line)")
        #expect(score <= 2.0, "roster.service exposure \(score) > 2.0:\n\(text)")
        // The figure written at the top of the unit is the current one.
        let unitText = try String(contentsOf: Self.unit, encoding: .utf8)
        #expect(unitText.contains(String(format: "%.1f OK", score)), "update the figure in the unit's header comment to \(score)")
    }

    @Test func theUnitHasTheRequiredSettings() throws {
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        for setting in [
            "Type=notify", "ExecStart=/usr/local/bin/roster run --config /etc/roster/roster.yaml", "WatchdogSec=30",
            "StateDirectory=roster", "StateDirectoryMode=0750", "ConfigurationDirectory=roster",
            "LoadCredential=bind-password:/etc/roster/bind-password", "Restart=on-failure", "User=roster",
        ] {
            #expect(text.split(separator: "\n").contains { $0 == setting }, "missing \(setting)")
        }
    }
}
