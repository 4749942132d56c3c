import Logging
import Mirror
import ServiceLifecycle

/// Wakes the `/v1/events` streams when the mirror changed through another process (an admin's
/// `roster user lock`, say), within `interval`: this process's own commits notify at once,
/// and without this the streams would only find other processes' events at their periodic
/// re-read (3 s).
public struct CommitWatchService: Service, CustomStringConvertible {
    let watcher: CommitWatcher
    let notifier: EventNotifier
    let interval: Duration
    let logger: Logger

    public init(watcher: CommitWatcher, notifier: EventNotifier, interval: Duration = .milliseconds(100),
                logger: Logger = Logger(label: "roster.commits")) {
        self.watcher = watcher
        self.notifier = notifier
        self.interval = interval
        self.logger = logger
    }

    public var description: String { "CommitWatchService" }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                var warned = false
                while true {
                    try await Task.sleep(for: interval)
                    do {
                        if try watcher.hasNewCommits() { notifier.notify() }
                        warned = false
                    } catch {
                        // The streams still re-read the mirror on their own; say so once.
                        if !warned { logger.warning("The mirror cannot be watched for other processes' commits (\(error)); event streams find them within 3 s instead.") }
                        warned = true
                    }
                }
            }
        } catch is CancellationError {
            // Graceful shutdown.
        }
    }
}
