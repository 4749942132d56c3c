import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a benchmark must undo however it ends (a slapd, a daemon it started): run on a
/// normal end, on ``fail(_:)`` and on SIGINT or SIGTERM, newest first, once.
public final class Cleanup: Sendable {
    private let actions = Mutex<[@Sendable () -> Void]>([])
    /// Kept alive here; written only by ``onSignals()``, which runs once at the start.
    private nonisolated(unsafe) var signalSources: [any DispatchSourceSignal] = []
    private let failing = Mutex(false)

    /// Whether the clean-up runs for ``fail(_:)``: actions then keep evidence (a log, a
    /// folder) rather than remove it.
    public var failed: Bool { failing.withLock { $0 } }

    public init() {}

    /// Runs the clean-up on SIGINT and SIGTERM, then exits with 128 + the signal.
    public func onSignals() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                log("interrupted; stopping what this benchmark started…")
                run()
                exit(128 + number)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    public func add(_ action: @escaping @Sendable () -> Void) {
        actions.withLock { $0.append(action) }
    }

    /// Runs every action registered so far, newest first.
    public func run() {
        let pending = actions.withLock { actions in
            defer { actions.removeAll() }
            return actions
        }
        for action in pending.reversed() { action() }
    }

    /// Logs `message`, cleans up and exits with status 1.
    public func fail(_ message: String) -> Never {
        log(message)
        failing.withLock { $0 = true }
        run()
        exit(1)
    }
}
