import Foundation
import Synchronization

/// One server-sent event as received, with the wall-clock time the bytes that completed it
/// came off the socket.
public struct ReceivedEvent: Sendable {
    public var id: String?
    public var type: String
    public var data: String
    public var received: Date
}

/// Listens to a `text/event-stream` (Roster's `/v1/events`) on its own thread, as a clinic
/// application would, and keeps every event with its receipt time. The thread does nothing
/// but read and split, so receipt times are not delayed by the caller's work.
public final class EventStreamListener: Sendable {
    private let state = Mutex<(events: [ReceivedEvent], failure: String?, finished: Bool)>(([], nil, false))
    private let connection: LoopbackHTTPConnection
    private let done = DispatchSemaphore(value: 0)

    /// Connects to 127.0.0.1:`port`, sends `GET path` with `headers` and waits for the
    /// response head (throws unless it is 200 `text/event-stream`).
    public init(port: Int, path: String, headers: [String: String] = [:]) throws {
        let http = try LoopbackHTTPConnection(port: port, timeout: 3600)
        try http.send(path, headers: headers.merging(["Accept": "text/event-stream"]) { $1 })
        let (status, responseHeaders) = try http.readHead()
        guard status == 200, responseHeaders["content-type"]?.hasPrefix("text/event-stream") == true else {
            throw BenchmarkError("GET \(path) answered \(status) \(responseHeaders["content-type"] ?? "")")
        }
        connection = http
        let thread = Thread { [self] in
            read(http)
            done.signal()
        }
        thread.name = "event-stream-listener"
        thread.start()
    }

    private func read(_ http: LoopbackHTTPConnection) {
        var text = ""
        do {
            while let chunk = try http.readChunk() {
                let received = http.lastReceipt
                text += String(decoding: chunk, as: UTF8.self)
                var parsed: [ReceivedEvent] = []
                while let end = text.range(of: "\n\n") {
                    let block = text[..<end.lowerBound]
                    text.removeSubrange(..<end.upperBound)
                    if let event = Self.parse(block, received: received) { parsed.append(event) }
                }
                if !parsed.isEmpty { state.withLock { $0.events += parsed } }
            }
            state.withLock { $0.finished = true }
        } catch {
            state.withLock {
                $0.finished = true
                $0.failure = "\(error)"
            }
        }
    }

    /// One event block; nil for a comment (keep-alive) or an empty block.
    static func parse(_ block: Substring, received: Date) -> ReceivedEvent? {
        var id: String?
        var type = "message"
        var data: [Substring] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix(":") { continue }
            let (field, value) = line.firstIndex(of: ":").map { (line[..<$0], line[line.index(after: $0)...]) } ?? (line, ""[...])
            let trimmed = value.hasPrefix(" ") ? value.dropFirst() : value
            switch field {
            case "id": id = String(trimmed)
            case "event": type = String(trimmed)
            case "data": data.append(trimmed)
            default: break
            }
        }
        guard id != nil || !data.isEmpty else { return nil }
        return ReceivedEvent(id: id, type: type, data: data.joined(separator: "\n"), received: received)
    }

    /// Every event so far.
    public var events: [ReceivedEvent] { state.withLock { $0.events } }
    public var count: Int { state.withLock { $0.events.count } }
    /// Why the stream ended early, if it did.
    public var failure: String? { state.withLock { $0.failure } }

    /// Stops listening and waits for the thread to end.
    public func stop() {
        connection.interrupt()
        done.wait()
        connection.close()
    }
}
