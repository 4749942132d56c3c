import Mirror
import Synchronization

/// Runs the full reconciles that applied changes ask for (a new provider, a change to a group
/// read for providers or pools, a deleted group...) beside the change stream, one at a time, so
/// that the stream goes on applying changes, revocations above all, while the directory is read:
/// at 100k users a reconcile takes seconds, and a stream waiting for it held every lock back as
/// long.
///
/// The reconcile takes its own audit mark before reading and keeps whatever the stream changed
/// after it (see `Mirror.apply(_:keepingChangesAfter:)`). Requests that arrive while one runs
/// are answered by one more reconcile after it (its read may have begun before their changes).
/// After each reconcile that applied, the reload signal is raised: the stream reloads the stored
/// identities of the users changed since the reconcile began before its next change.
final class ReconcileRequests: Sendable {
    private struct State {
        var running = false
        var pending: [String] = []
        var task: Task<Void, Never>?
    }
    private let state = Mutex(State())
    private let reconcile: @Sendable (String) async -> Bool
    private let reloadSignal: ReloadSignal
    private let mirror: Mirror

    init(reconcile: @escaping @Sendable (String) async -> Bool, reloadSignal: ReloadSignal, mirror: Mirror) {
        self.reconcile = reconcile
        self.reloadSignal = reloadSignal
        self.mirror = mirror
    }

    /// Asks for a full reconcile and returns at once.
    func request(_ why: String) {
        state.withLock { state in
            if !state.pending.contains(why) { state.pending.append(why) }
            guard !state.running else { return }
            state.running = true
            state.task = Task { [self] in await drain() }
        }
    }

    /// Stops the reconcile running, if any, and drops those pending (the stream has stopped).
    func cancel() {
        state.withLock { state in
            state.pending = []
            state.task?.cancel()
        }
    }

    private func drain() async {
        while let why = next() {
            // The users the reconcile changes have audit rows after this mark: the stream reads
            // those identities again, not every one (without a mark, all of them).
            let mark = try? mirror.auditMark()
            if await reconcile(why) { reloadSignal.raise(since: mark) }
        }
    }

    /// The reasons pending, in one, or nil (and no longer running) when there are none or the
    /// stream has stopped.
    private func next() -> String? {
        state.withLock { state in
            guard !state.pending.isEmpty, !Task.isCancelled else {
                state.running = false
                return nil
            }
            let reasons = state.pending
            state.pending = []
            return reasons.count <= 3 ? reasons.joined(separator: "; ")
                : reasons.prefix(3).joined(separator: "; ") + "; and \(reasons.count - 3) more"
        }
    }
}
