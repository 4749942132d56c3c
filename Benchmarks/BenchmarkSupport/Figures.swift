import Foundation

/// A progress line on stderr (the table goes to stdout).
public func log(_ text: String) { FileHandle.standardError.write(Data(("… " + text + "\n").utf8)) }

extension Duration {
    /// The duration in seconds, as a floating-point number.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// The duration in milliseconds, as a floating-point number.
    public var inMilliseconds: Double { inSeconds * 1000 }
}

/// How long `body` takes, in seconds, on the monotonic clock.
public func timed(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return (clock.now - start).inSeconds
}

/// The async form of ``timed(_:)``, run in the caller's isolation.
public func timed(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try await body()
    return (clock.now - start).inSeconds
}

/// Samples (latencies, say) and their nearest-rank percentiles.
public struct Distribution: Sendable {
    public let sorted: [Double]

    public init(_ samples: some Sequence<Double>) { sorted = samples.sorted() }

    public var count: Int { sorted.count }

    /// The sample at fraction `p` (0...1) of the sorted samples, nearest rank; NaN when empty.
    public func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    public var p50: Double { percentile(0.5) }
    public var p95: Double { percentile(0.95) }
    public var p99: Double { percentile(0.99) }
    public var max: Double { sorted.last ?? .nan }
    public var min: Double { sorted.first ?? .nan }
    public var mean: Double { sorted.isEmpty ? .nan : sorted.reduce(0, +) / Double(sorted.count) }

    /// `p50 1.23, p95 …, p99 …, max … <unit>`, with `digits` decimals.
    public func summary(_ unit: String = "ms", digits: Int = 2) -> String {
        let format = "%.\(digits)f"
        return "p50 \(String(format: format, p50)), p95 \(String(format: format, p95)), "
            + "p99 \(String(format: format, p99)), max \(String(format: format, max)) \(unit)"
    }

    /// The figures for a JSON report; NaN (no samples) becomes null.
    public var json: [String: Any] {
        func value(_ x: Double) -> Any { x.isNaN ? NSNull() : x }
        return ["count": count, "p50": value(p50), "p95": value(p95), "p99": value(p99), "max": value(max), "min": value(min), "mean": value(mean)]
    }
}

/// The CPU model from /proc/cpuinfo, or "unknown".
public func machineDescription() -> String {
    let model = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown"
    return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
}

/// The 1-minute load average, or nil where /proc/loadavg is missing.
public func loadAverage() -> Double? {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) }
}

/// A two-column table of labelled figures, printed to stdout.
public struct ReportTable {
    public private(set) var rows: [(label: String, value: String)] = []

    public init() {}

    public mutating func add(_ label: String, _ value: String) { rows.append((label, value)) }

    public func print(title: String) {
        let width = rows.map(\.label.count).max() ?? 0
        Swift.print(title)
        for (label, value) in rows { Swift.print(label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
    }
}

/// Writes `object` as pretty, key-sorted JSON to `path`.
public func writeJSON(_ object: [String: Any], to path: String) throws {
    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
}

/// Logs "still running" with the elapsed time every `interval` while a long step runs, so a
/// quiet minute is not mistaken for a hang.
public final class Heartbeat: Sendable {
    private let task: Task<Void, Never>

    public init(_ step: String, every interval: Duration = .seconds(5)) {
        let start = ContinuousClock.now
        task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                log("\(step): \(Int((ContinuousClock.now - start).inSeconds)) s so far…")
            }
        }
    }

    public func stop() { task.cancel() }
    deinit { task.cancel() }
}

/// Runs `body` with a ``Heartbeat`` for `step`, in the caller's isolation.
public func withHeartbeat<T>(isolation: isolated (any Actor)? = #isolation, _ step: String, every interval: Duration = .seconds(5),
                             _ body: () async throws -> T) async rethrows -> T {
    let heartbeat = Heartbeat(step, every: interval)
    defer { heartbeat.stop() }
    return try await body()
}
