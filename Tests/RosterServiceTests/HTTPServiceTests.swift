import AccessModel
import Foundation
import Logging
import Mirror
import Prometheus
@testable import RosterService
import ServiceLifecycle
import SlapdHarness
import Synchronization
import Testing

/// A quiet logger for the services under test.
let quietLogger = Logger(label: "roster.test") { _ in SwiftLogNoOpLogHandler() }

/// A fresh mirror in its own temporary directory, with one group and two users (RGrey in the
/// group, which writes a few events).
func makeSampleMirror() throws -> Mirror {
    let directory = TemporaryFolders.make("roster-http")
    let mirror = try Mirror(path: directory.appendingPathComponent("mirror.sqlite").path)
    let group = try Group(
        id: "g-office", name: "Grey office", kind: .provider, healthCenter: "HC1", careVenues: ["HC1-OR1"],
        modules: [.reports: ModuleGrant(privacy: .toggleDefaultOff, defaultPrivilege: .readOnly)])
    let users = try ["RGrey", "MYang"].map { code in
        try User(code: UserCode(code), directoryDN: "uid=\(code),ou=people,dc=clinic", firstName: "F", lastName: code, healthCenters: ["HC1"])
    }
    try mirror.apply(
        Changeset(
            healthCenters: [HealthCenter(id: "HC1", name: "General Hospital")],
            careVenues: [CareVenue(id: "HC1-OR1", healthCenter: "HC1", name: "OR 1")],
            groups: [group], users: users, groupMembers: ["g-office": ["RGrey"]]),
        actor: .system)
    return mirror
}

/// A running ``HTTPService`` on 127.0.0.1 with a free port, inside a `ServiceGroup`.
struct RunningServer: Sendable {
    let port: Int
    let mirror: Mirror
    let state: ServiceState
    let notifier: EventNotifier
    let registry: PrometheusCollectorRegistry
    let group: ServiceGroup

    func get(_ path: String, headers: [String: String] = [:]) async throws -> RawHTTPConnection.Response {
        try await RawHTTPConnection.get(port: port, path: path, headers: headers)
    }
}

/// Starts the server, runs `body`, then shuts the group down gracefully and checks it ended.
func withServer(
    token: String? = nil, mirror: Mirror? = nil, configure: (inout HTTPConfiguration) -> Void = { _ in },
    _ body: (RunningServer) async throws -> Void
) async throws {
    let mirror = try mirror ?? makeSampleMirror()
    let registry = PrometheusCollectorRegistry()
    let state = ServiceState(stalenessLimit: .seconds(60), registry: registry)
    let notifier = EventNotifier()
    var configuration = HTTPConfiguration(address: "127.0.0.1", port: 0, bearerToken: token)
    configure(&configuration)
    let bound = Mutex<Int?>(nil)
    let service = HTTPService(
        configuration: configuration, mirror: mirror, state: state, notifier: notifier, metrics: registry, logger: quietLogger,
        onServerRunning: { port in bound.withLock { $0 = port } })
    let group = ServiceGroup(services: [service], logger: quietLogger)
    let running = Task { try await group.run() }
    var port: Int?
    for _ in 0..<2000 {
        port = bound.withLock { $0 }
        if port != nil { break }
        try await Task.sleep(for: .milliseconds(5))
    }
    guard let port else {
        running.cancel()
        throw TestFailure("The HTTP service did not start listening")
    }
    let server = RunningServer(port: port, mirror: mirror, state: state, notifier: notifier, registry: registry, group: group)
    do {
        try await body(server)
    } catch {
        await group.triggerGracefulShutdown()
        _ = await running.result
        throw error
    }
    await group.triggerGracefulShutdown()
    try await running.value
}

@Suite struct HTTPServiceTests {
    @Test func healthzAnswersOk() async throws {
        try await withServer { server in
            let response = try await server.get("/healthz")
            #expect(response.status == 200)
            #expect(response.body == "ok\n")
        }
    }

    @Test func readyzIs503UntilTheFirstRefreshThen200() async throws {
        try await withServer { server in
            let before = try await server.get("/readyz")
            #expect(before.status == 503)
            #expect(before.body == "The first refresh from the directory has not completed yet.\n")
            #expect(before.headers["content-type"]?.hasPrefix("text/plain") == true)

            let json = try await server.get("/readyz", headers: ["Accept": "application/json"])
            #expect(json.status == 503)
            let snapshot = try StatusSnapshot.makeDecoder().decode(StatusSnapshot.self, from: Data(json.body.utf8))
            #expect(!snapshot.ready)
            #expect(snapshot.reason == "The first refresh from the directory has not completed yet.")

            server.state.markDirectoryConnected(true)
            server.state.markRefreshComplete()
            let after = try await server.get("/readyz")
            #expect(after.status == 200)
            #expect(after.body == "ready\n")
            let status = try await server.get("/v1/status")
            let ready = try StatusSnapshot.makeDecoder().decode(StatusSnapshot.self, from: Data(status.body.utf8))
            #expect(ready.ready && ready.directoryConnected && ready.reason == nil)
        }
    }

    @Test func metricsServesEveryRosterMetric() async throws {
        try await withServer { server in
            server.state.recordApplied(events: 3, revocationLatency: .milliseconds(4), sinceChange: .milliseconds(30))
            server.state.recordApplied(events: 1, revocationLatency: nil, sinceChange: .milliseconds(250))
            server.state.recordReconcile(at: Date(timeIntervalSince1970: 1_700_000_000), succeeded: true, detail: "12 changes")
            server.state.markDirectoryConnected(true)
            server.state.recordBreakerTrip(reason: "would deactivate 40% of users")
            let response = try await server.get("/metrics")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("text/plain") == true)
            let text = response.body
            for name in [
                "roster_events_applied_total", "roster_revocation_latency_seconds_bucket", "roster_revocation_lag_seconds_bucket",
                "roster_last_reconcile_timestamp_seconds",
                "roster_last_reconcile_success", "roster_directory_connected", "roster_stream_lag_seconds", "roster_breaker_trips_total",
            ] {
                #expect(text.contains(name), "missing \(name)")
            }
            #expect(text.contains("roster_events_applied_total 4"))
            #expect(text.contains("roster_breaker_trips_total 1"))
            #expect(text.contains("roster_directory_connected 1"))
            #expect(text.contains("roster_last_reconcile_success 1"))
            // The mirror is open (migrated), so its writer holds some pages.
            let pageCache = text.split(separator: "\n").first { $0.hasPrefix("roster_mirror_page_cache_bytes ") }
            #expect(pageCache.flatMap { Double($0.split(separator: " ").last ?? "") }.map { $0 > 0 } == true, "\(pageCache ?? "missing")")
            #expect(text.contains("roster_stream_lag_seconds 0.25"))
            #expect(text.contains(#"roster_revocation_latency_seconds_bucket{le="0.001"} 0"#))
            #expect(text.contains(#"roster_revocation_latency_seconds_bucket{le="0.005"} 1"#))
            #expect(text.contains(#"roster_revocation_latency_seconds_bucket{le="10.0"} 1"#))
            // Only the revocation counts in the lag's histogram; the gauge has the last change's.
            #expect(text.contains(#"roster_revocation_lag_seconds_bucket{le="0.025"} 0"#))
            #expect(text.contains(#"roster_revocation_lag_seconds_bucket{le="0.05"} 1"#))
            #expect(text.contains(#"roster_revocation_lag_seconds_count 1"#))
        }
    }

    @Test func usersAreServedAsJSONAndUnknownOnesAre404() async throws {
        try await withServer { server in
            let response = try await server.get("/v1/users/rgrey")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("application/json") == true)
            let document = try JSONDecoder().decode(UserDocument.self, from: Data(response.body.utf8))
            #expect(document.userCode == "RGrey")
            #expect(document.groups.map(\.id) == ["g-office"])
            #expect(try document == server.mirror.userDocument("RGrey"))

            let missing = try await server.get("/v1/users/nobody")
            #expect(missing.status == 404)
            #expect(missing.headers["content-type"]?.hasPrefix("application/json") == true)
            let error = try JSONDecoder().decode([String: String].self, from: Data(missing.body.utf8))
            #expect(error["error"] == "No user 'nobody' in the mirror.")
        }
    }

    @Test func aBearerTokenGuardsEverythingButHealthz() async throws {
        try await withServer(token: "s3cret-token") { server in
            #expect(try await server.get("/healthz").status == 200)
            for path in ["/readyz", "/metrics", "/v1/users/rgrey", "/v1/events", "/v1/status"] {
                let refused = try await server.get(path)
                #expect(refused.status == 401, "\(path)")
                #expect(refused.headers["www-authenticate"] == "Bearer realm=\"roster\"")
                #expect(try await server.get(path, headers: ["Authorization": "Bearer wrong-token!"]).status == 401)
                #expect(try await server.get(path, headers: ["Authorization": "Bearer s3cret-toke"]).status == 401)
                #expect(try await server.get(path, headers: ["Authorization": "Basic s3cret-token"]).status == 401)
            }
            #expect(try await server.get("/v1/users/rgrey", headers: ["Authorization": "Bearer s3cret-token"]).status == 200)
            #expect(try await server.get("/metrics", headers: ["Authorization": "Bearer s3cret-token"]).status == 200)
            #expect(try await server.get("/readyz", headers: ["Authorization": "Bearer s3cret-token"]).status == 503)
        }
    }

    @Test func constantTimeComparisonAgreesWithEquality() {
        for (given, expected) in [("", "a"), ("a", ""), ("abc", "abc"), ("abc", "abd"), ("abcabc", "abc"), ("abc", "abcabc")] {
            #expect(constantTimeEqual(Array(given.utf8), Array(expected.utf8)) == (given == expected), "\(given) vs \(expected)")
        }
    }
}

@Suite struct EventStreamTests {
    /// `id: ...` lines of an event-stream body.
    func ids(_ body: String) -> [Int64] {
        body.components(separatedBy: "\n").compactMap { $0.hasPrefix("id: ") ? Int64($0.dropFirst(4)) : nil }
    }

    @Test func storedEventsAfterLastEventIDComeFirstInTheSSEFormat() async throws {
        try await withServer { server in
            let stored = try server.mirror.events(after: 0)
            #expect(stored.count >= 2)
            let first = stored[0]
            let connection = try await RawHTTPConnection(port: server.port, path: "/v1/events", headers: ["Last-Event-ID": "\(first.id)"])
            defer { connection.close() }
            let expected = stored.dropFirst().map(\.id)
            #expect(await connection.waitForBody { ids($0) == expected })
            #expect(connection.status == 200)
            #expect(connection.headers["content-type"]?.hasPrefix("text/event-stream") == true)

            let block = connection.body.components(separatedBy: "\n\n")[0]
            let lines = block.components(separatedBy: "\n")
            let event = stored[1]
            #expect(lines.count == 3)
            #expect(lines[0] == "id: \(event.id)")
            #expect(lines[1] == "event: \(event.type)")
            #expect(lines[2].hasPrefix("data: "))
            let data = try JSONSerialization.jsonObject(with: Data(lines[2].dropFirst(6).utf8)) as? [String: Any]
            #expect(data?["id"] as? Int == Int(event.id))
            #expect(data?["type"] as? String == event.type)
            #expect(data?["at"] as? String == event.at)
            #expect(data?["userCode"] as? String == event.userCode)

            // ?after= works the same when no header is sent.
            let byQuery = try await RawHTTPConnection(port: server.port, path: "/v1/events?after=\(stored.last!.id - 1)")
            defer { byQuery.close() }
            #expect(await byQuery.waitForBody { ids($0) == [stored.last!.id] })
            #expect(try await server.get("/v1/events?after=minus-one").status == 400)
        }
    }

    @Test func aNewEventIsPushedWhenTheNotifierFires() async throws {
        // The fallback re-check is an hour away: only notify() can deliver the new event.
        try await withServer(configure: { $0.recheckInterval = .seconds(3600) }) { server in
            let stored = try server.mirror.events(after: 0)
            let connection = try await RawHTTPConnection(port: server.port, path: "/v1/events")
            defer { connection.close() }
            // Stored events arrive only after the stream subscribed to the notifier.
            #expect(await connection.waitForBody { ids($0) == stored.map(\.id) })

            try server.mirror.setLocalLock(of: "RGrey", locked: true, reason: "badge lost", actor: .local("admin"))
            let new = try server.mirror.events(after: stored.last!.id)
            #expect(new.first?.type == "user.locked")
            let notified = ContinuousClock.now
            server.notifier.notify()
            #expect(await connection.waitForBody { ids($0) == (stored + new).map(\.id) })
            let latency = ContinuousClock.now - notified
            print("event stream: new event delivered \(latency) after notify()")
            #expect(connection.body.contains("event: user.locked\ndata: "))
            #expect(connection.body.contains(#""detail":"badge lost""#))
        }
    }

    @Test func theFallbackRecheckFindsEventsWithoutANotification() async throws {
        try await withServer(configure: { $0.recheckInterval = .milliseconds(50) }) { server in
            let stored = try server.mirror.events(after: 0)
            let connection = try await RawHTTPConnection(port: server.port, path: "/v1/events?after=\(stored.last!.id)")
            defer { connection.close() }
            #expect(connection.body.isEmpty)
            try server.mirror.setLocalLock(of: "MYang", locked: true, actor: .local("admin"))
            #expect(await connection.waitForBody { $0.contains("event: user.locked") })
        }
    }

    @Test func idleStreamsSendKeepAliveComments() async throws {
        try await withServer(configure: { $0.keepAliveInterval = .milliseconds(50) }) { server in
            let connection = try await RawHTTPConnection(port: server.port, path: "/v1/events?after=1000000")
            defer { connection.close() }
            #expect(await connection.waitForBody { $0.hasPrefix(": keepalive\n\n: keepalive\n\n") })
        }
    }

    @Test func streamsEndCleanlyOnGracefulShutdown() async throws {
        let mirror = try makeSampleMirror()
        let connection = Mutex<RawHTTPConnection?>(nil)
        try await withServer(mirror: mirror) { server in
            let open = try await RawHTTPConnection(port: server.port, path: "/v1/events")
            connection.withLock { $0 = open }
            let stored = try mirror.events(after: 0)
            #expect(await open.waitForBody { ids($0) == stored.map(\.id) })
            #expect(server.notifier.subscriberCount == 1)
        }
        // withServer returned: the group ran to its end with the stream open. The response
        // ended with its last chunk, not a reset.
        let open = try #require(connection.withLock { $0 })
        _ = try await open.response()
        #expect(open.isComplete)
    }

    @Test func largeBacklogsArriveInBatches() async throws {
        let mirror = try makeSampleMirror()
        for index in 0..<30 {
            try mirror.setLocalLock(of: "MYang", locked: index % 2 == 0, actor: .local("admin"))
        }
        let all = try mirror.events(after: 0, limit: 10_000)
        try await withServer(mirror: mirror, configure: { $0.eventBatchSize = 7 }) { server in
            let connection = try await RawHTTPConnection(port: server.port, path: "/v1/events")
            defer { connection.close() }
            #expect(await connection.waitForBody { ids($0) == all.map(\.id) })
        }
    }
}
