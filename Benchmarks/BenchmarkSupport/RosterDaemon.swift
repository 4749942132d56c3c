import Foundation
import SlapdHarness

/// The `roster` executable built next to the running benchmark (`.build/release/roster`);
/// ends the program with the build command when it is missing.
public func rosterExecutable(nextTo program: String = CommandLine.arguments[0]) -> String {
    let path = URL(fileURLWithPath: program).deletingLastPathComponent().appendingPathComponent("roster").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        log("no roster executable at \(path): build it first with swift build -c release --product roster")
        exit(1)
    }
    return path
}

/// Resident memory of a process, in bytes, from /proc; 0 when it cannot be read.
public func residentBytes(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
    return kilobytes * 1024
}

/// `roster run --config PATH` as a child process whose HTTP endpoint listens on
/// 127.0.0.1:`port` (the configuration must say so), its stdout and stderr in `logFile`.
public final class RosterDaemon: Sendable {
    public let process: ChildProcess
    public let port: Int
    public let logFile: String

    public init(executable: String = rosterExecutable(), configPath: String, port: Int, logFile: String, logLevel: String? = nil) throws {
        self.port = port
        self.logFile = logFile
        process = try ChildProcess(path: executable, arguments: ["run", "--config", configPath] + (logLevel.map { ["--log-level", $0] } ?? []),
                                   logFile: logFile)
    }

    /// Waits until `/readyz` answers 200, logging progress; throws when the daemon exits or
    /// `timeout` passes first.
    public func waitUntilReady(timeout: Duration = .seconds(900)) async throws {
        let deadline = ContinuousClock.now + timeout
        try await withHeartbeat("waiting for roster run's /readyz") {
            while (try? get("/readyz").status) != 200 {
                guard process.isRunning else { throw BenchmarkError("roster run stopped before it was ready; see \(logFile)") }
                guard ContinuousClock.now < deadline else { throw BenchmarkError("roster run was not ready within \(timeout); see \(logFile)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// `GET path` on a new connection.
    public func get(_ path: String) throws -> LoopbackHTTPConnection.Response {
        try LoopbackHTTPConnection(port: port, timeout: 10).get(path)
    }

    public var residentMemoryBytes: Int { residentBytes(process.pid) }

    /// SIGTERM, then waits for the exit (SIGKILL after `grace`); returns the wait status.
    /// ``peakMemoryBytes`` is known afterwards.
    @discardableResult
    public func stop(grace: Duration = .seconds(30)) async throws -> Int32 {
        try await Tools.offPool { [process] in
            process.terminate(grace: grace)
            return process.waitForExit()
        }
    }

    /// The daemon's peak resident memory, once it has exited.
    public var peakMemoryBytes: Int? { process.peakMemoryBytes }
}
