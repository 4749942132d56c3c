import Foundation
import Prometheus
import Synchronization

/// Whether the daemon should receive traffic: `/readyz` answers 200 only when `.ready`.
public enum Readiness: Sendable, Hashable, CustomStringConvertible {
    case ready
    /// Why not, as a sentence, e.g. "The first refresh from the directory has not completed yet."
    case notReady(reason: String)

    public var isReady: Bool { self == .ready }

    public var description: String {
        switch self {
        case .ready: "Ready."
        case .notReady(let reason): reason
        }
    }
}

/// What `/v1/status` and `/readyz` (as JSON) show about the running daemon.
public struct StatusSnapshot: Codable, Sendable, Hashable {
    public var ready: Bool
    /// Why the daemon is not ready; nil when ready.
    public var reason: String?
    public var directoryConnected: Bool
    /// When the directory was last known reachable: now while connected, else when it went away.
    public var lastContact: Date?
    /// When the last full reconcile finished.
    public var lastReconcile: Date?
    /// `succeeded: <detail>` or `failed: <detail>`.
    public var lastReconcileResult: String?
    public var breakerTrips: Int
    public var lastBreakerReason: String?
    /// When the first refresh completed (the daemon became able to serve).
    public var refreshCompleted: Date?
    public var stalenessLimitSeconds: Double
    public var eventsApplied: Int

    /// The encoder `/readyz` and `/v1/status` use: ISO 8601 dates, sorted keys.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// The matching decoder.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// The metrics the daemon exports, made on one registry so that tests can use a fresh one
/// without touching the process-wide `MetricsSystem`.
public struct RosterMetrics: Sendable {
    /// Buckets of `roster_revocation_latency_seconds`: 1 ms to 10 s.
    public static let revocationLatencyBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    public let registry: PrometheusCollectorRegistry
    let eventsApplied: Counter
    let revocationLatency: DurationHistogram
    let revocationLag: DurationHistogram
    let lastReconcileTimestamp: Gauge
    let lastReconcileSuccess: Gauge
    let reconcilesSucceeded: Counter
    let reconcilesFailed: Counter
    let directoryConnected: Gauge
    let streamLag: Gauge
    let breakerTrips: Counter
    /// Set when `/metrics` is read.
    let mirrorPageCache: Gauge

    public init(registry: PrometheusCollectorRegistry) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "roster", metricName: metric, unitName: unit, helpText: help)
        }
        self.registry = registry
        eventsApplied = registry.makeCounter(
            descriptor: name("events_applied", "total", "Directory changes applied to the mirror by the change stream."))
        revocationLatency = registry.makeDurationHistogram(
            descriptor: name("revocation_latency", "seconds", "Time from a directory revocation (lock, deactivation, membership removal) to its commit in the mirror."),
            buckets: Self.revocationLatencyBuckets)
        revocationLag = registry.makeDurationHistogram(
            descriptor: name("revocation_lag", "seconds",
                             "Time from a revocation's change in the directory (its change sequence number, by the directory's clock) to its commit in the mirror; OpenLDAP only."),
            buckets: Self.revocationLatencyBuckets)
        lastReconcileTimestamp = registry.makeGauge(
            descriptor: name("last_reconcile_timestamp", "seconds", "When the last full reconcile finished (Unix time)."))
        lastReconcileSuccess = registry.makeGauge(
            descriptor: name("last_reconcile_success", "", "1 if the last full reconcile succeeded, else 0."))
        let reconciles = name("reconciles", "total", "Full reconciles run, by result.")
        reconcilesSucceeded = registry.makeCounter(descriptor: reconciles, labels: [("result", "success")])
        reconcilesFailed = registry.makeCounter(descriptor: reconciles, labels: [("result", "failure")])
        directoryConnected = registry.makeGauge(
            descriptor: name("directory_connected", "", "1 while the change stream is connected to the directory, else 0."))
        streamLag = registry.makeGauge(
            descriptor: name("stream_lag", "seconds",
                             "For the last change the stream applied, the time from its change in the directory (by the directory's clock) to its commit; OpenLDAP only."))
        breakerTrips = registry.makeCounter(
            descriptor: name("breaker_trips", "total", "Reconciles refused by the safety breaker."))
        mirrorPageCache = registry.makeGauge(
            descriptor: name("mirror_page_cache", "bytes", "Memory held by SQLite's page caches (bounded: 16 MiB for the writer, 8 MiB per reader)."))
    }
}

/// Shared, thread-safe state of the running daemon: what the change stream and reconciles
/// report, what `/readyz`, `/v1/status` and `/metrics` read.
public final class ServiceState: Sendable {
    private struct Fields {
        var directoryConnected = false
        var connectedSince: Date?
        var disconnectedSince: Date?
        var refreshCompleted: Date?
        var lastReconcile: Date?
        var lastReconcileSucceeded: Bool?
        var lastReconcileDetail: String?
        /// Set by a breaker trip, cleared by the next successful reconcile.
        var breakerHolding = false
        var breakerTrips = 0
        var lastBreakerReason: String?
        var eventsApplied = 0
        /// Why the change stream could not apply its last change (the disk full, say);
        /// cleared by the next change or reconcile that commits.
        var streamFailure: String?
    }

    /// How long the directory may be unreachable before the mirror counts as stale.
    public let stalenessLimit: Duration
    /// The metrics this state updates.
    public let metrics: RosterMetrics
    private let fields = Mutex(Fields())

    /// - Parameters:
    ///   - stalenessLimit: how long the directory may be unreachable before `/readyz` fails.
    ///   - registry: where the metrics live; give the one `/metrics` serves (``HTTPService``
    ///     also serves this one if it differs). A fresh registry by default.
    public init(stalenessLimit: Duration, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), at now: Date = Date()) {
        self.stalenessLimit = stalenessLimit
        self.metrics = RosterMetrics(registry: registry)
        fields.withLock { $0.disconnectedSince = now }
    }

    /// The change stream connected to (true) or lost (false) the directory.
    public func markDirectoryConnected(_ connected: Bool, at now: Date = Date()) {
        fields.withLock { fields in
            if connected, !fields.directoryConnected {
                fields.connectedSince = now
                fields.disconnectedSince = nil
            } else if !connected, fields.directoryConnected || fields.disconnectedSince == nil {
                fields.disconnectedSince = now
            }
            fields.directoryConnected = connected
        }
        metrics.directoryConnected.set(connected ? 1.0 : 0.0)
    }

    /// The first refresh from the directory is in the mirror: the daemon can serve (once;
    /// later calls change nothing).
    public func markRefreshComplete(at now: Date = Date()) {
        fields.withLock { fields in
            if fields.refreshCompleted == nil { fields.refreshCompleted = now }
        }
    }

    /// A full reconcile finished at `date`; `detail` says what it did or why it failed.
    public func recordReconcile(at date: Date, succeeded: Bool, detail: String) {
        fields.withLock { fields in
            fields.lastReconcile = date
            fields.lastReconcileSucceeded = succeeded
            fields.lastReconcileDetail = detail
            if succeeded {
                fields.breakerHolding = false
                fields.streamFailure = nil
            }
        }
        metrics.lastReconcileTimestamp.set(date.timeIntervalSince1970)
        metrics.lastReconcileSuccess.set(succeeded ? 1.0 : 0.0)
        (succeeded ? metrics.reconcilesSucceeded : metrics.reconcilesFailed).increment()
    }

    /// The change stream stopped because a change could not be applied (the mirror's disk
    /// full or read-only, say); not ready until a change or reconcile commits again.
    public func recordStreamFailure(_ reason: String) {
        fields.withLock { $0.streamFailure = reason }
    }

    /// The safety breaker refused a reconcile; the daemon is not ready until one succeeds.
    public func recordBreakerTrip(reason: String) {
        fields.withLock { fields in
            fields.breakerTrips += 1
            fields.lastBreakerReason = reason
            fields.breakerHolding = true
        }
        metrics.breakerTrips.increment()
    }

    /// The change stream committed `events` directory changes. For a revocation,
    /// `revocationLatency` is the time from its arrival in Roster to the commit. `sinceChange`,
    /// when the directory dates its changes, is the time from the change in the directory to
    /// the commit: the stream's lag, and a revocation's whole delay (a negative one, the two
    /// clocks disagreeing, counts as none).
    public func recordApplied(events: Int, revocationLatency: Duration?, sinceChange: Duration? = nil) {
        fields.withLock { $0.streamFailure = nil }
        if events > 0 {
            fields.withLock { $0.eventsApplied += events }
            metrics.eventsApplied.increment(by: Int64(events))
        }
        if let revocationLatency { metrics.revocationLatency.record(revocationLatency) }
        if let sinceChange {
            let lag = max(sinceChange, .zero)
            metrics.streamLag.set(lag.seconds)
            if revocationLatency != nil { metrics.revocationLag.record(lag) }
        }
    }

    /// Ready now?
    public var readiness: Readiness { readiness(at: Date()) }

    /// Ready at `now`? Not before the first refresh, nor while the directory has been
    /// unreachable longer than ``stalenessLimit``, nor while the breaker holds, nor after a
    /// failed reconcile until one succeeds.
    public func readiness(at now: Date) -> Readiness {
        let fields = fields.withLock { $0 }
        return Self.readiness(of: fields, at: now, stalenessLimit: stalenessLimit)
    }

    /// The state as `/readyz` shows it.
    public var snapshot: StatusSnapshot { snapshot(at: Date()) }

    public func snapshot(at now: Date) -> StatusSnapshot {
        let fields = fields.withLock { $0 }
        let readiness = Self.readiness(of: fields, at: now, stalenessLimit: stalenessLimit)
        let reason: String? = if case .notReady(let reason) = readiness { reason } else { nil }
        let result = fields.lastReconcileSucceeded.map { ($0 ? "succeeded: " : "failed: ") + (fields.lastReconcileDetail ?? "") }
        return StatusSnapshot(
            ready: readiness.isReady, reason: reason, directoryConnected: fields.directoryConnected,
            lastContact: fields.directoryConnected ? now : (fields.connectedSince == nil ? nil : fields.disconnectedSince),
            lastReconcile: fields.lastReconcile, lastReconcileResult: result,
            breakerTrips: fields.breakerTrips, lastBreakerReason: fields.lastBreakerReason,
            refreshCompleted: fields.refreshCompleted, stalenessLimitSeconds: stalenessLimit.seconds,
            eventsApplied: fields.eventsApplied)
    }

    private static func readiness(of fields: Fields, at now: Date, stalenessLimit: Duration) -> Readiness {
        guard fields.refreshCompleted != nil else {
            return .notReady(reason: "The first refresh from the directory has not completed yet.")
        }
        if !fields.directoryConnected, let since = fields.disconnectedSince {
            let away = now.timeIntervalSince(since)
            if away > stalenessLimit.seconds {
                return .notReady(reason: "The directory has been unreachable for \(format(seconds: away)) (since \(since.formatted(.iso8601))), "
                    + "longer than the staleness limit of \(format(seconds: stalenessLimit.seconds)): the mirror may be stale.")
            }
        }
        if fields.breakerHolding {
            return .notReady(reason: "The safety breaker refused the last reconcile (\(fields.lastBreakerReason ?? "no reason given")): "
                + "the mirror keeps its previous state until a reconcile succeeds.")
        }
        if let failure = fields.streamFailure {
            return .notReady(reason: "The change stream could not apply a change (\(failure)): "
                + "the mirror keeps serving its last good state, and Roster retries.")
        }
        if fields.lastReconcileSucceeded == false {
            return .notReady(reason: "The last full reconcile failed (\(fields.lastReconcileDetail ?? "no reason given")): "
                + "the mirror keeps its last good state until a reconcile succeeds.")
        }
        return .ready
    }

    private static func format(seconds: Double) -> String {
        seconds >= 10 || seconds == seconds.rounded() ? "\(Int(seconds.rounded())) s" : String(format: "%.1f s", seconds)
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

