import Metrics
import Prometheus
import Synchronization

extension RosterMetrics {
    private static let bootstrapped = Mutex(false)

    /// Makes `registry` the process-wide swift-metrics backend (so Hummingbird's and other
    /// libraries' metrics land in `/metrics` too). `MetricsSystem.bootstrap` may run only once
    /// per process: later calls do nothing and return false. Tests need not call it.
    @discardableResult
    public static func bootstrapMetricsSystem(with registry: PrometheusCollectorRegistry) -> Bool {
        bootstrapped.withLock { done in
            guard !done else { return false }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            done = true
            return true
        }
    }
}
