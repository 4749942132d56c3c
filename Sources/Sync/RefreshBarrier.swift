/// Decides when the change stream runs the full reconcile that completes a full refresh.
///
/// A stream that starts without a cookie (a first start, or after the directory asked for a
/// full refresh) skips its refresh's entries: a full reconcile run after the refresh ends
/// reads them instead. When both streams reload at once, one reconcile run after both
/// refreshes have ended covers both, where one per stream would read the whole directory
/// twice. So a stream whose refresh has ended waits for the others still refreshing, keeping
/// the newest cookie it sends meanwhile (the changes behind those cookies happened before the
/// reconcile reads, so it sees them). A stream still refreshing after `patience` no longer
/// holds back those that have ended; the barrier is checked as events arrive.
///
/// Pure bookkeeping, no I/O: the change stream feeds it events and runs the reconcile it asks for.
struct RefreshBarrier {
    /// How long streams whose refresh has ended wait for the others.
    let patience: Duration
    /// Streams reloading from a full refresh: their changes wait for a reconcile.
    private(set) var reloading: Set<ChangeStreamKind>
    /// Reloading streams whose refresh has ended: when, and the newest cookie each has sent.
    private var ended: [ChangeStreamKind: Ended] = [:]

    private struct Ended {
        var at: ContinuousClock.Instant
        var cookie: [UInt8]?
    }

    init(reloading: Set<ChangeStreamKind>, patience: Duration) {
        self.reloading = reloading
        self.patience = patience
    }

    /// A stream (re)connected; `full`: its refresh starts without a cookie. Either way a refresh
    /// follows, so an earlier end of this stream's refresh no longer counts.
    mutating func started(_ kind: ChangeStreamKind, full: Bool) {
        if full { reloading.insert(kind) }
        ended[kind] = nil
    }

    /// The directory asked this stream for a full refresh; its reconnection follows.
    mutating func refreshRequired(_ kind: ChangeStreamKind) {
        started(kind, full: true)
    }

    /// A reloading stream's refresh ended, with the cookie that came with its end (if any).
    mutating func refreshEnded(_ kind: ChangeStreamKind, cookie: [UInt8]?, at now: ContinuousClock.Instant) {
        guard reloading.contains(kind) else { return }
        ended[kind] = Ended(at: now, cookie: cookie)
    }

    /// Anything else a reloading stream sent. After its refresh ended, a change there is read
    /// by the coming reconcile; its cookie becomes the one to keep.
    mutating func received(_ kind: ChangeStreamKind, cookie: [UInt8]?) {
        guard let cookie, ended[kind] != nil else { return }
        ended[kind]?.cookie = cookie
    }

    /// The streams one reconcile should complete now, each with the cookie to store after
    /// it; empty while there is nothing to complete or refreshes still running are waited for.
    func due(at now: ContinuousClock.Instant) -> [ChangeStreamKind: [UInt8]?] {
        guard let waitingSince = ended.values.map(\.at).min() else { return [:] }
        let allEnded = reloading.allSatisfy { ended[$0] != nil }
        guard allEnded || now - waitingSince >= patience else { return [:] }
        return ended.mapValues(\.cookie)
    }

    /// The reconcile for `kinds` applied: their changes are applied as they come from now on.
    mutating func completed(_ kinds: some Sequence<ChangeStreamKind>) {
        for kind in kinds {
            reloading.remove(kind)
            ended[kind] = nil
        }
    }
}
