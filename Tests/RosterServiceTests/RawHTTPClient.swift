import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A bare HTTP/1.1 client over TCP, written for these tests so that the server is exercised
/// through real sockets with nothing in between: sends one request, decodes the response
/// (Content-Length, chunked or until close) as it arrives.
final class RawHTTPConnection: Sendable {
    struct Response: Sendable {
        var status: Int
        /// Header names lowercased.
        var headers: [String: String]
        var body: String
    }

    private struct Progress {
        var raw: [UInt8] = []
        var status: Int?
        var headers: [String: String] = [:]
        var bodyStart: Int?
        var body: [UInt8] = []
        var decodedUpTo = 0
        var complete = false
        var closed = false
    }

    private let progress = Mutex(Progress())
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    /// Opens a connection to 127.0.0.1:`port` and sends `GET path`.
    init(port: Int, path: String, headers: [String: String] = [:]) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let text = request
        let reader = Task { [self] in
            do {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: text))
                    for try await buffer in inbound {
                        self.progress.withLock { Self.consume(Array(buffer.readableBytesView), into: &$0) }
                    }
                }
            } catch {}
            self.progress.withLock { $0.closed = true }
        }
        task.withLock { $0 = reader }
    }

    /// Closes the connection.
    func close() {
        task.withLock { $0?.cancel() }
    }

    var isClosed: Bool { progress.withLock { $0.closed } }
    var status: Int? { progress.withLock { $0.status } }
    var headers: [String: String] { progress.withLock { $0.headers } }
    /// The body received so far, decoded.
    var body: String { progress.withLock { String(decoding: $0.body, as: UTF8.self) } }
    /// Whether the response's end (last chunk, full length, or close) has arrived.
    var isComplete: Bool { progress.withLock { $0.complete || $0.closed } }

    /// Waits until `condition` holds on the body so far; false after `timeout`.
    func waitForBody(timeout: Duration = .seconds(10), _ condition: (String) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(body) { return true }
            if isClosed { return condition(body) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition(body)
    }

    /// Waits for the whole response.
    func response(timeout: Duration = .seconds(10)) async throws -> Response {
        let deadline = ContinuousClock.now + timeout
        while !isComplete {
            guard ContinuousClock.now < deadline else { throw TestFailure("No complete response within \(timeout); got: \(body)") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return progress.withLock { Response(status: $0.status ?? 0, headers: $0.headers, body: String(decoding: $0.body, as: UTF8.self)) }
    }

    /// One request, the whole response.
    static func get(port: Int, path: String, headers: [String: String] = [:]) async throws -> Response {
        let connection = try await RawHTTPConnection(port: port, path: path, headers: headers)
        defer { connection.close() }
        return try await connection.response()
    }

    private static func consume(_ bytes: [UInt8], into state: inout Progress) {
        state.raw += bytes
        if state.bodyStart == nil {
            guard let end = findHeaderEnd(state.raw) else { return }
            let head = String(decoding: state.raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
            state.status = head.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") }
            for line in head.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                state.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            state.bodyStart = end + 4
            state.decodedUpTo = end + 4
        }
        if state.headers["transfer-encoding"]?.lowercased() == "chunked" {
            decodeChunks(&state)
        } else {
            state.body = Array(state.raw[state.bodyStart!...])
            if let length = state.headers["content-length"].flatMap(Int.init), state.body.count >= length { state.complete = true }
        }
    }

    private static func decodeChunks(_ state: inout Progress) {
        while true {
            let rest = state.raw[state.decodedUpTo...]
            guard let lineEnd = rest.indices.first(where: { $0 + 1 < state.raw.count && state.raw[$0] == 13 && state.raw[$0 + 1] == 10 }) else { return }
            let sizeText = String(decoding: state.raw[state.decodedUpTo..<lineEnd], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { return }
            let dataStart = lineEnd + 2
            guard state.raw.count >= dataStart + size + 2 else { return }
            if size == 0 {
                state.complete = true
                return
            }
            state.body += state.raw[dataStart..<dataStart + size]
            state.decodedUpTo = dataStart + size + 2
        }
    }

    private static func findHeaderEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
