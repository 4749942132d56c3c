import AccessModel
import CHeap
import Foundation
import LDAPKit
import Logging
import Mirror
import RosterConfig
import ServiceLifecycle
import Sync
import Synchronization

/// The daemon's directory side, as one `Service`: the change stream that applies each
/// directory change at once, the scheduled full reconcile (with the safety breaker), and
/// the timers that flip accounts at their expiry or lockout end. It reports to
/// `ServiceState` (health and metrics), wakes event-stream clients after each commit, and
/// tells systemd when the first refresh is done. SIGHUP reloads the configuration: a bad
/// new file is logged problem by problem and the old one stays.
public final class DirectoryService: Service, Sendable {
    private let configurationPath: String
    private let current: Mutex<RosterConfiguration>
    private let mirror: Mirror
    private let state: ServiceState
    private let notifier: EventNotifier
    private let systemd: SystemdNotifier
    private let logger: Logger
    private let reconcileGate = ReconcileGate()
    private let reloadSignal = ReloadSignal()
    private let timers = ExpiryTimers()

    public init(configurationPath: String, configuration: RosterConfiguration, mirror: Mirror, state: ServiceState,
                notifier: EventNotifier, systemd: SystemdNotifier, logger: Logger) {
        self.configurationPath = configurationPath
        self.current = Mutex(configuration)
        self.mirror = mirror
        self.state = state
        self.notifier = notifier
        self.systemd = systemd
        self.logger = logger
        // Made here, on the thread that starts the service, not on first use: a thread begins at
        // its creator's priority, and the apply's, made lazily by the first reconcile, began on a
        // reconcile thread at nice 10 and could not rise again without privileges.
        // Lowered only where a thread can also return to the process's priority: otherwise a
        // Dispatch worker started from a reconcile thread would keep the lower priority and
        // serve the change stream with it (see ThreadPriority.Control).
        priorityControl = ThreadPriority.probe()
        reconcileExecutor = ThreadExecutor(name: "reconcile", threads: 2,
                                           niceness: priorityControl == .lowerAndRestore ? reconcileNiceness : nil)
        applyExecutor = ThreadExecutor(name: "apply", threads: 1)
    }

    public var configuration: RosterConfiguration { current.withLock { $0 } }

    public func run() async throws {
        // The daemon is idle between bursts (a reconcile, a change): freed pages go back to the
        // kernel at once rather than after mimalloc's delay, which kept about 90 MB more
        // resident when ready at 100k users (at 0.3 s more CPU per 100k-user full reconcile).
        if roster_heap_return_freed_memory_at_once() == 1 { logger.debug("Freed memory goes back to the system at once (mimalloc).") }
        logReconcilePriority()
        let reloads = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let signalSource = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        signal(SIGHUP, SIG_IGN)
        signalSource.setEventHandler { reloads.continuation.yield() }
        signalSource.resume()
        defer { signalSource.cancel() }

        // On SIGTERM everything is cancelled: a change being applied is a synchronous SQLite
        // transaction, which commits (with its cookie) or rolls back whole before the
        // cancellation is seen.
        do {
            try await withGracefulShutdownHandler {
                try await cancelWhenGracefulShutdown {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await self.followChanges(reloads: reloads.stream) }
                        group.addTask { try await self.scheduleReconciles() }
                        group.addTask { try await self.runTimers() }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            } onGracefulShutdown: {
                self.systemd.stopping()
                self.logger.info("Stopping: finishing the change being applied.")
            }
        } catch is CancellationError {
            // A graceful stop.
        }
    }

    /// Runs the change stream; restarts it with the new configuration after a valid SIGHUP.
    private func followChanges(reloads: AsyncStream<Void>) async throws {
        var reloadIterator = reloads.makeAsyncIterator()
        while !Task.isCancelled {
            let configuration = self.configuration
            let stream = ChangeStream(configuration: configuration, mirror: mirror, reloadSignal: reloadSignal)
            let streamTask = Task {
                // The stream only ends on its own for a reason retrying may fix later (the
                // bind account locked, say): say so, and start it again after a pause.
                var retry = Backoff(initial: .seconds(1), maximum: .seconds(60))
                while !Task.isCancelled {
                    do {
                        try await stream.run(status: { [self] status in self.report(status) },
                                             reconcile: { [self] why in await self.reconcile(because: why, full: true, raisingReload: false) })
                    } catch is CancellationError {
                        return
                    } catch {
                        let delay = retry.nextDelay()
                        state.recordStreamFailure("\(error)")
                        logger.error("The change stream stopped: \(error). Starting it again in \(delay); the mirror keeps serving its last state.")
                        try? await Task.sleep(for: delay)
                    }
                }
            }
            // Wait for a reload request (or cancellation), then swap the configuration.
            while !Task.isCancelled {
                guard await reloadIterator.next() != nil else { break }
                if reloadConfiguration() { break }
            }
            streamTask.cancel()
            _ = await streamTask.result
        }
    }

    /// Loads the configuration file again; true when it was valid and replaced the old one.
    private func reloadConfiguration() -> Bool {
        do {
            let next = try ConfigurationLoader.load(path: configurationPath)
            current.withLock { $0 = next }
            logger.notice("Configuration reloaded from \(configurationPath).")
            return true
        } catch {
            for problem in error.problems { logger.error("\(problem)") }
            logger.error("The new configuration in \(configurationPath) has \(error.problems.count) problem(s); Roster keeps running with the old one.")
            return false
        }
    }

    private func report(_ status: ChangeStreamStatus) {
        switch status {
        case .connected(let kind, let resuming):
            state.markDirectoryConnected(true)
            logger.info("Following \(kind.rawValue) changes\(resuming ? ", resuming from the stored cookie" : " from a full refresh").")
        case .disconnected(let kind, let error, let delay):
            state.markDirectoryConnected(false)
            logger.warning("The \(kind.rawValue) change stream is down (\(error)); retrying in \(delay). The mirror keeps serving its last state.")
        case .refreshComplete:
            // What the refresh's reconciles and the stream's reload of the mirror freed goes back
            // before the daemon reports ready: the reload comes after the last reconcile's
            // release (measured at 100k users: 365-378 MB when ready without this, 156-181 MB with).
            releaseFreedMemory()
            state.markRefreshComplete()
            systemd.ready()
            logger.info("The mirror is current; following changes.")
            logAuditHead()
        case .applied(let kind, let change, let latency, let changedAt):
            let committed = Date()
            let sinceChange = changedAt.map { Duration.seconds(committed.timeIntervalSince($0)) }
            state.recordApplied(events: max(1, change.changes), revocationLatency: change.revocation ? latency : nil, sinceChange: sinceChange)
            notifier.notify()
            for (user, date) in change.nextChanges { timers.schedule(user, at: date) }
            // When exactly a change was committed, for tracing one revocation (and for the
            // benchmark, which compares it with the directory's acknowledgement).
            logger.debug("Applied a \(kind.rawValue) change.", metadata: [
                "user": "\(change.user?.rawValue ?? "-")",
                "revocation": "\(change.revocation)",
                "changes": "\(change.changes)",
                "arrival_to_commit_ms": "\(String(format: "%.3f", latency.seconds * 1000))",
                "directory_to_commit_ms": "\(sinceChange.map { String(format: "%.3f", $0.seconds * 1000) } ?? "-")",
                "committed_at": "\(PreciseTimestamp.string(committed))",
            ])
        case .fullReconcileNeeded(let why):
            logger.info("A full reconcile follows: \(why).")
        case .problem(let text):
            logger.warning("\(text)")
        case .breakerHolds(let trip):
            state.recordBreakerTrip(reason: trip.reason)
            logger.error("Safety breaker: \(trip)")
        }
    }

    /// The threads full reconciles read and map on: two, as the reconcile reads with the
    /// providers' search beside the users'. Where ``priorityControl`` allows it they run at a
    /// lower priority than the rest of the process (and so do the threads they start): when a
    /// revocation arrives while a reconcile reads, the stream's thread takes a core from them at
    /// once instead of sharing it.
    let reconcileExecutor: ThreadExecutor
    /// Ten below the process's own priority (nice 10 for a process at 0), as far as nice goes (19).
    private let reconcileNiceness = min(19, ThreadPriority.processNiceness + 10)
    /// What this process may do with its threads' priorities, found when the service is made.
    private let priorityControl: ThreadPriority.Control
    /// The thread a reconcile applies on, at the process's own priority: the apply holds the
    /// mirror's writer, which the stream's next revocation waits for, so it must not be the one
    /// that yields the core.
    let applyExecutor: ThreadExecutor

    /// Runs one full reconcile, one at a time, whoever asks; true when it applied. `full`: read
    /// every entry, not just the changed ones (the change stream's requests: it lost track of the
    /// directory). With `raisingReload`, the change stream is told to reload its identities (or
    /// only restart its breaker) before its next change: a scheduled reconcile's business; the
    /// stream handles those it runs itself.
    private func reconcile(because why: String, full: Bool, raisingReload: Bool = true) async -> Bool {
        await reconcileGate.run { [self] in
            defer { releaseFreedMemory() }
            let configuration = self.configuration
            do {
                // Off the cooperative pool, so that the change stream keeps a thread (see ThreadExecutor).
                let report = try await withTaskExecutorPreference(reconcileExecutor) {
                    try await Reconciler(configuration: configuration, mirror: mirror)
                        .run(ReconcileOptions(full: full, listChanges: false, applyExecutor: applyExecutor))
                }
                state.recordReconcile(at: Date(), succeeded: true, detail: "\(report.changeCount) changes")
                for problem in report.problems { logger.warning("Directory entry \(problem)") }
                if let notice = report.entriesNotStored { logger.warning("\(notice)") }
                for (user, date) in report.nextChanges { timers.schedule(user, at: date) }
                if raisingReload { reloadSignal.raise(mirrorChanged: report.changeCount > 0, since: report.auditMark) }
                if report.changeCount > 0 { notifier.notify() }
                logger.info("Full reconcile (\(why); \(report.source)): \(report.changeCount) changes, \(report.eventCount) events (\(report.phaseTimes)).")
                logAuditHead()
                return true
            } catch let ReconcileError.breaker(trip, _) {
                state.recordBreakerTrip(reason: trip.description)
                state.recordReconcile(at: Date(), succeeded: false, detail: trip.description)
                logger.error("Safety breaker: \(trip)")
                return false
            } catch {
                state.recordReconcile(at: Date(), succeeded: false, detail: "\(error)")
                logger.error("Full reconcile failed, nothing was changed: \(error)")
                return false
            }
        }
    }

    /// Says at start, when it is so, that reconciles run at the change stream's priority, and why.
    private func logReconcilePriority() {
        // A process already at the lowest priority (nice 19) has none to lower.
        guard reconcileNiceness > ThreadPriority.processNiceness else { return }
        switch priorityControl {
        case .lowerAndRestore:
            logger.debug("Reconciles read and map at nice \(reconcileNiceness), below the change stream.")
        case .lowerOnly:
            logger.warning("""
                Reconciles run at the change stream's priority: a thread of this process can lower its priority but not \
                return to nice \(ThreadPriority.processNiceness) (no CAP_SYS_NICE, RLIMIT_NICE too low), and a Dispatch thread \
                started from a lowered one would serve the change stream at the lower priority. Revocations arriving during \
                a reconcile share the cores with it. Allow it with LimitNICE=+0 (roster.service has it).
                """)
        case .fixed:
            logger.warning("""
                Reconciles run at the change stream's priority: lowering a thread's priority (nice \(reconcileNiceness)) was \
                refused. Revocations arriving during a reconcile share the cores with it. Allow the setpriority system call \
                (roster.service has SystemCallFilter=setpriority).
                """)
        }
    }

    /// Logs the audit log's newest row and its hash, once ready and after every reconcile (every
    /// `schedule.reconcile_interval_minutes`): a journal shipped off the machine then anchors the
    /// hash chain, so a rewrite of the rows before an anchor is noticed (`roster audit export
    /// --after ID --after-hash HASH` refuses it).
    private func logAuditHead() {
        do {
            let head = try mirror.auditHead()
            logger.notice("Audit log head: row \(head.id), hash \(head.hash.isEmpty ? "none (empty log)" : head.hash).")
        } catch {
            logger.warning("The audit log's head could not be read: \(error)")
        }
    }

    /// Hands the heap's free memory back to the kernel. A full reconcile frees most of what it
    /// held (hundreds of MB at 100k users), but an allocator keeps freed memory for reuse (glibc
    /// in its arenas until `malloc_trim`, about 45 ms at 100k users; mimalloc, which `roster`
    /// links, for a short delay), so the daemon's resident memory would stay near the peak.
    private func releaseFreedMemory() {
        let clock = ContinuousClock()
        let started = clock.now
        let released = roster_heap_release_free_memory() == 1
        logger.debug("Freed memory \(released ? "returned" : "checked, none to return") to the system in \(clock.now - started).")
    }

    /// Every `schedule.reconcile_interval_minutes`; after a failure (the directory down, the
    /// breaker), sooner: from 10 s, doubling up to the interval.
    private func scheduleReconciles() async throws {
        var retry: Backoff?
        var scheduled = 0
        while !Task.isCancelled {
            let minutes = configuration.schedule.reconcileIntervalMinutes
            let interval = Duration.milliseconds(Int64(minutes * 60_000))
            var wait = interval
            if var backoff = retry {
                wait = min(backoff.nextDelay(), interval)
                retry = backoff
            }
            try await Task.sleep(for: wait)
            // Every `schedule.full_reconcile_every`-th scheduled reconcile reads everything.
            scheduled += 1
            let full = scheduled % max(1, configuration.schedule.fullReconcileEvery) == 0
            if await reconcile(because: retry == nil ? "the schedule (every \(minutes) minutes)" : "a retry after a failed reconcile", full: full) {
                retry = nil
            } else if retry == nil {
                retry = Backoff(initial: min(.seconds(10), interval), maximum: interval)
            }
        }
    }

    /// Flips accounts when an expiry or a lockout end comes, without a directory event: the
    /// entry is read again and its state applied.
    private func runTimers() async throws {
        while !Task.isCancelled {
            let due = timers.takeDue(at: Date())
            if !due.isEmpty {
                let configuration = self.configuration
                do {
                    let connection = try await LDAPConnection.connect(Reconciler.ldapConfiguration(configuration.directory))
                    // The lockout durations, so that a lockout whose end has come reads as ended
                    // (ppolicy leaves pwdAccountLockedTime in place until the next bind), and a
                    // DC that still says "locked" a moment after the computed end gets looked
                    // at again soon.
                    let lockout = try await LockoutPolicy.read(configuration, connection: connection)
                    let reader = AccountStateReader(flavor: configuration.directory.flavor, lockout: lockout)
                    for user in due {
                        guard let stored = try mirror.user(user), let dn = stored.directoryDN,
                              let entry = try await connection.read(dn, attributes: reader.attributes) else { continue }
                        let now = Date()
                        let fresh = reader.state(of: entry, at: now)
                        let summary = try mirror.setDirectoryState(of: user, locked: fresh.locked, inactive: fresh.inactive || stored.state.inactiveByDirectory,
                                                                   reason: fresh.reason, actor: .rule("expiry timer"), at: now)
                        if !summary.changes.isEmpty { notifier.notify() }
                        if let next = fresh.nextChange { timers.schedule(user, at: next) }
                    }
                    await connection.close()
                } catch {
                    logger.warning("An expiry timer could not read the directory (\(error)); retrying soon.")
                    for user in due { timers.schedule(user, at: Date().addingTimeInterval(30)) }
                }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}

/// Runs one body at a time.
actor ReconcileGate {
    private var running = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        while running { await withCheckedContinuation { waiters.append($0) } }
        running = true
        defer {
            running = false
            if !waiters.isEmpty { waiters.removeFirst().resume() }
        }
        return await body()
    }
}

/// When each user's directory state changes by itself next.
final class ExpiryTimers: Sendable {
    private let due = Mutex<[UserCode: Date]>([:])

    func schedule(_ user: UserCode, at date: Date) {
        due.withLock { $0[user] = min($0[user] ?? date, date) }
    }

    func takeDue(at now: Date) -> [UserCode] {
        due.withLock { entries in
            let ready = entries.filter { $0.value <= now }.map(\.key)
            for user in ready { entries[user] = nil }
            return ready
        }
    }
}
