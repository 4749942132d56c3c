import AccessModel
import Foundation
import Mirror
import RosterConfig
import Sync
import Synchronization

/// Two full reconciles in this process, each timed: into the mirror as it is (empty, for a
/// first sync), then again with nothing changed.
public func timedFullSyncs(configuration: RosterConfiguration, mirror: Mirror) async throws
    -> (first: ReconcileReport, firstSeconds: Double, second: ReconcileReport, secondSeconds: Double) {
    let clock = ContinuousClock()
    log("full sync into an empty mirror…")
    var started = clock.now
    let first = try await Reconciler(configuration: configuration, mirror: mirror).run()
    let firstSeconds = (clock.now - started).inSeconds
    log("full sync with nothing changed…")
    started = clock.now
    let second = try await Reconciler(configuration: configuration, mirror: mirror).run()
    return (first, firstSeconds, second, (clock.now - started).inSeconds)
}

/// Roster's change stream run in this process (a full reconcile whenever it asks for one),
/// noting when each revocation commits, for latency figures against the directory's own
/// acknowledgement of the change.
public final class RevocationWatch: Sendable {
    private let commits = Mutex<[String: ContinuousClock.Instant]>([:])
    private let ready = Mutex(false)
    private let task = Mutex<Task<Void, any Error>?>(nil)

    /// Starts the stream; ``waitUntilReady()`` waits for its first refresh.
    public init(configuration: RosterConfiguration, mirror: Mirror) {
        let stream = ChangeStream(configuration: configuration, mirror: mirror)
        task.withLock {
            $0 = Task { [self] in
                try await stream.run(status: { status in
                    switch status {
                    case .refreshComplete: self.ready.withLock { $0 = true }
                    case .applied(_, let change, _, _) where change.revocation:
                        if let user = change.user { self.commits.withLock { $0[user.rawValue.lowercased()] = .now } }
                    default: break
                    }
                }, reconcile: { _ in (try? await Reconciler(configuration: configuration, mirror: mirror).run()) != nil })
            }
        }
    }

    public func waitUntilReady() async throws {
        while !ready.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
    }

    /// When the revocation of `user` (a user code, any case) committed; nil while it has not.
    public func commit(of user: String) -> ContinuousClock.Instant? { commits.withLock { $0[user.lowercased()] } }

    /// How many users' revocations have committed.
    public var count: Int { commits.withLock { $0.count } }

    /// Stops the stream and waits for it to end.
    public func stop() async {
        guard let running = task.withLock({ $0 }) else { return }
        running.cancel()
        _ = await running.result
    }
}
