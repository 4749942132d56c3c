import AccessModel
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Mirror
import NIOCore
import NIOSSL
import Prometheus
import ServiceLifecycle
import Synchronization

/// The certificate or key for HTTPS could not be loaded.
public struct HTTPSSetupError: Error, CustomStringConvertible {
    public var certificateFile: String
    public var keyFile: String
    public var underlying: String
    public var description: String {
        "HTTPS cannot start: the certificate \(certificateFile) or the key \(keyFile) cannot be loaded as PEM (\(underlying))."
    }
}

/// Where and how the HTTP endpoint listens.
public struct HTTPConfiguration: Sendable {
    /// The address to bind, e.g. `127.0.0.1` (the default in roster.yaml) or `0.0.0.0`.
    public var address: String
    /// The TCP port; 0 picks a free one (see ``HTTPService/init(configuration:mirror:state:notifier:metrics:logger:onServerRunning:)``).
    public var port: Int
    /// When set, every endpoint but `/healthz` requires `Authorization: Bearer <token>`.
    public var bearerToken: String?
    /// When set, the endpoint serves HTTPS with this PEM certificate chain and key.
    public var tls: (certificateFile: String, keyFile: String)?
    /// How often an idle `/v1/events` stream sends a `: keepalive` comment.
    public var keepAliveInterval: Duration = .seconds(15)
    /// How often `/v1/events` re-reads the mirror without a notification (a fallback).
    public var recheckInterval: Duration = .seconds(3)
    /// Most events one read of the mirror sends on `/v1/events`.
    public var eventBatchSize: Int = 500

    public init(address: String, port: Int, bearerToken: String?) {
        self.address = address
        self.port = port
        self.bearerToken = bearerToken
    }
}

/// The HTTP endpoint as a `Service`: health, readiness, Prometheus metrics, the user read API
/// and the event stream, on a Hummingbird 2 application.
///
/// | path | answer |
/// |---|---|
/// | `GET /healthz` | 200 `ok` while the process serves (never needs the token) |
/// | `GET /readyz` | 200 `ready`, or 503 and the reason; JSON ``StatusSnapshot`` with `Accept: application/json` |
/// | `GET /v1/status` | 200 and the JSON ``StatusSnapshot`` |
/// | `GET /metrics` | Prometheus text |
/// | `GET /v1/users/{code}` | 200 and the ``UserDocument`` JSON, 404 JSON error when unknown |
/// | `GET /v1/events` | `text/event-stream` of mirror events after `Last-Event-ID` (or `?after=`) |
public struct HTTPService: Service, CustomStringConvertible {
    let configuration: HTTPConfiguration
    let mirror: Mirror
    let state: ServiceState
    let notifier: EventNotifier
    let metrics: PrometheusCollectorRegistry
    let logger: Logger
    let onServerRunning: @Sendable (Int) async -> Void

    /// - Parameters:
    ///   - metrics: the registry `/metrics` serves; `state`'s own registry is served too when it
    ///     is a different one.
    ///   - onServerRunning: called with the bound port once the server listens (useful with port 0).
    public init(
        configuration: HTTPConfiguration, mirror: Mirror, state: ServiceState, notifier: EventNotifier,
        metrics: PrometheusCollectorRegistry, logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.mirror = mirror
        self.state = state
        self.notifier = notifier
        self.metrics = metrics
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    public var description: String { "HTTPService(\(configuration.address):\(configuration.port))" }

    /// Serves until graceful shutdown (open event streams end then) or cancellation.
    public func run() async throws {
        let logger = logger
        let address = configuration.address
        let onServerRunning = onServerRunning
        var server = HTTPServerBuilder.http1()
        if let tls = configuration.tls {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(tls.certificateFile).map { NIOSSLCertificateSource.certificate($0) }
                let key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)
                server = try .tls(.http1(), tlsConfiguration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
            } catch {
                throw HTTPSSetupError(certificateFile: tls.certificateFile, keyFile: tls.keyFile, underlying: "\(error)")
            }
        }
        let app = Application(
            router: makeRouter(),
            server: server,
            configuration: ApplicationConfiguration(address: .hostname(address, port: configuration.port), serverName: "roster"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("HTTP endpoint listening", metadata: ["address": "\(address)", "port": "\(port)"])
                await onServerRunning(port)
            },
            logger: logger)
        try await app.run()
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        if let token = configuration.bearerToken {
            router.add(middleware: BearerTokenMiddleware(token: token, openPaths: ["/healthz"]))
        }
        let handlers = Handlers(service: self)
        router.get("healthz") { _, _ in Handlers.text("ok\n") }
        router.get("readyz") { request, _ in handlers.readiness(request) }
        router.get("v1/status") { _, _ in handlers.status() }
        router.get("metrics") { _, _ in handlers.metricsText() }
        router.get("v1/users/:code") { _, context in handlers.user(context) }
        router.get("v1/events") { request, _ in handlers.events(request) }
        return router
    }
}

/// The route handlers, separate from the service's wiring.
struct Handlers: Sendable {
    let service: HTTPService

    static let jsonType = "application/json; charset=utf-8"

    static func text(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: jsonType], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `{"error": "..."}` with `status`.
    static func error(_ message: String, status: HTTPResponse.Status) -> Response {
        let data = (try? JSONEncoder().encode(["error": message])) ?? Data()
        return json(data, status: status)
    }

    func readiness(_ request: Request) -> Response {
        let snapshot = service.state.snapshot
        let status: HTTPResponse.Status = snapshot.ready ? .ok : .serviceUnavailable
        if request.headers[.accept]?.contains("application/json") == true || request.uri.queryParameters.get("format") == "json" {
            return Self.json((try? StatusSnapshot.makeEncoder().encode(snapshot)) ?? Data(), status: status)
        }
        return Self.text((snapshot.reason ?? "ready") + "\n", status: status)
    }

    func status() -> Response {
        Self.json((try? StatusSnapshot.makeEncoder().encode(service.state.snapshot)) ?? Data())
    }

    func metricsText() -> Response {
        service.state.metrics.mirrorPageCache.set(Double(Mirror.pageCacheBytes))
        var bytes: [UInt8] = []
        service.metrics.emit(into: &bytes)
        if service.state.metrics.registry !== service.metrics {
            service.state.metrics.registry.emit(into: &bytes)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func user(_ context: BasicRequestContext) -> Response {
        guard let raw = context.parameters.get("code"), let code = raw.removingPercentEncoding, !code.isEmpty else {
            return Self.error("A user code is required: GET /v1/users/{code}.", status: .badRequest)
        }
        do {
            guard let document = try service.mirror.userDocument(UserCode(code)) else {
                return Self.error("No user '\(code)' in the mirror.", status: .notFound)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return Self.json(try encoder.encode(document))
        } catch {
            service.logger.error("Reading a user from the mirror failed", metadata: ["user": "\(code)", "error": "\(error)"])
            return Self.error("The mirror could not be read: \(error)", status: .internalServerError)
        }
    }

    func events(_ request: Request) -> Response {
        let header = request.headers[HTTPField.Name("Last-Event-ID")!]
        let query = request.uri.queryParameters.get("after")
        let start: Int64
        if let given = header ?? query {
            guard let value = Int64(given.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                return Self.error("Last-Event-ID (or ?after=) must be an event id, a whole number of 0 or more; got '\(given)'.", status: .badRequest)
            }
            start = value
        } else {
            start = 0
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: EventStream(service: service, after: start).body())
    }
}

/// One `/v1/events` connection: stored events first, then new ones as the notifier (or the
/// fallback re-check) wakes it, with keep-alive comments; ends at graceful shutdown.
struct EventStream: Sendable {
    let service: HTTPService
    let after: Int64

    /// Set by the keep-alive ticker, cleared when the comment is written.
    final class Flag: Sendable {
        let raised = Mutex(false)
        func raise() { raised.withLock { $0 = true } }
        func lower() -> Bool {
            raised.withLock { raised in
                defer { raised = false }
                return raised
            }
        }
    }

    func body() -> ResponseBody {
        ResponseBody { writer in
            // Subscribe before the first read, so nothing committed meanwhile is missed.
            let changes = service.notifier.changes()
            let (wake, wakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let keepAliveDue = Flag()
            let configuration = service.configuration
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await _ in changes { wakeUp.yield() }
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: configuration.recheckInterval)
                            wakeUp.yield()
                        }
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: configuration.keepAliveInterval)
                            keepAliveDue.raise()
                            wakeUp.yield()
                        }
                    }
                    defer { group.cancelAll() }
                    try await send(to: &writer, wake: wake, keepAliveDue: keepAliveDue)
                }
            } onGracefulShutdown: {
                wakeUp.finish()
            }
            try await writer.finish(nil)
        }
    }

    private func send(to writer: inout any ResponseBodyWriter, wake: AsyncStream<Void>, keepAliveDue: Flag) async throws {
        var last = after
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let batch = max(1, service.configuration.eventBatchSize)
        var wakeUps = wake.makeAsyncIterator()
        repeat {
            while !Task.isCancelled {
                let events: [MirrorEvent]
                do {
                    events = try service.mirror.events(after: last, limit: batch)
                } catch {
                    service.logger.error("Reading events from the mirror failed; ending the stream", metadata: ["error": "\(error)"])
                    return
                }
                guard let final = events.last else { break }
                var buffer = ByteBuffer()
                for event in events {
                    buffer.writeString("id: \(event.id)\nevent: \(event.type)\ndata: ")
                    buffer.writeBytes(try encoder.encode(EventPayload(event)))
                    buffer.writeString("\n\n")
                }
                try await writer.write(buffer)
                last = final.id
                if events.count < batch { break }
            }
            if keepAliveDue.lower() {
                try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
            }
        } while await wakeUps.next() != nil
    }
}

/// A ``MirrorEvent`` as the `data:` line of the event stream carries it.
struct EventPayload: Codable, Sendable, Hashable {
    var id: Int64
    var type: String
    var at: String
    var userCode: String?
    var groupID: String?
    var detail: String?

    init(_ event: MirrorEvent) {
        id = event.id
        type = event.type
        at = event.at
        userCode = event.userCode
        groupID = event.groupID
        detail = event.detail
    }
}

/// Requires `Authorization: Bearer <token>` (compared in constant time) outside `openPaths`.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    let openPaths: Set<String>

    init(token: String, openPaths: Set<String>) {
        self.token = Array(token.utf8)
        self.openPaths = openPaths
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if openPaths.contains(request.uri.path) { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.count > 7,
              header.prefix(7).lowercased() == "bearer ",
              constantTimeEqual(Array(header.utf8.dropFirst(7)), token)
        else {
            var response = Handlers.error("This endpoint requires 'Authorization: Bearer <token>' with the configured token.", status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer realm=\"roster\""
            return response
        }
        return try await next(request, context)
    }
}

/// Compares `given` with `expected` in time that depends only on `expected`'s length.
func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
    var difference: UInt8 = given.count == expected.count ? 0 : 1
    let count = given.count
    for index in expected.indices {
        let byte = count == 0 ? 0 : given[index % count]
        difference |= byte ^ expected[index]
    }
    return difference == 0
}
