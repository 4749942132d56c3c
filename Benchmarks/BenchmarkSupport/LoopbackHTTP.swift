import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Something a benchmark could not do, as a sentence.
public struct BenchmarkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One keep-alive HTTP/1.1 connection to 127.0.0.1, on a blocking socket: the plainest client
/// there is, so a latency measured through it is the server's and the loopback's, not a
/// client library's. Used by one thread at a time; only ``interrupt()`` may be called from
/// another (it is a `shutdown(2)`), hence `@unchecked Sendable`.
public final class LoopbackHTTPConnection: @unchecked Sendable {
    public struct Response {
        public var status: Int
        /// Header names lowercased.
        public var headers: [String: String]
        public var body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public let port: Int
    private var socket: Int32
    /// Received bytes not consumed yet.
    private var pending: [UInt8] = []
    private var pendingStart = 0
    private var receiveBuffer = [UInt8](repeating: 0, count: 65_536)
    /// When the last `recv` returned (wall clock).
    public private(set) var lastReceipt = Date()

    /// Connects to 127.0.0.1:`port`; each read gives up after `timeout` seconds.
    public init(port: Int, timeout: Double = 30) throws {
        self.port = port
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw BenchmarkError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(socket)
            throw BenchmarkError("connecting to 127.0.0.1:\(port): \(reason)")
        }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var limit = timeval(tv_sec: max(1, Int(timeout.rounded(.up))), tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close() }

    /// Closes the socket; a read blocked on it in another thread returns.
    public func close() {
        guard socket >= 0 else { return }
        Glibc.shutdown(socket, Int32(SHUT_RDWR))
        Glibc.close(socket)
        socket = -1
    }

    /// Wakes a read blocked in another thread (it then fails), without freeing the descriptor.
    public func interrupt() {
        if socket >= 0 { Glibc.shutdown(socket, Int32(SHUT_RDWR)) }
    }

    /// `GET path` and its whole response (Content-Length or chunked body).
    public func get(_ path: String, headers: [String: String] = [:]) throws -> Response {
        try send(path, headers: headers)
        let (status, responseHeaders) = try readHead()
        return Response(status: status, headers: responseHeaders, body: try readBody(responseHeaders))
    }

    /// Sends `GET path` without reading the answer (for a stream read piece by piece).
    public func send(_ path: String, headers: [String: String] = [:]) throws {
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        var bytes = Array(request.utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeMutableBytes { Glibc.send(socket, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw BenchmarkError("sending to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    /// The status line and headers of the next response.
    public func readHead() throws -> (status: Int, headers: [String: String]) {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw BenchmarkError("not an HTTP/1.1 status line: '\(statusLine)'")
        }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw BenchmarkError("not a header line: '\(line)'") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers)
    }

    /// The next chunk of a chunked body; nil at the last (empty) chunk.
    public func readChunk() throws -> [UInt8]? {
        let sizeLine = try readLine()
        guard let size = Int(sizeLine.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) ?? "", radix: 16) else {
            throw BenchmarkError("not a chunk size: '\(sizeLine)'")
        }
        if size == 0 {
            while try !readLine().isEmpty {}  // trailers
            return nil
        }
        let chunk = try read(count: size)
        guard try readLine().isEmpty else { throw BenchmarkError("a chunk did not end with CRLF") }
        return chunk
    }

    private func readBody(_ headers: [String: String]) throws -> [UInt8] {
        if let length = headers["content-length"].flatMap({ Int($0) }) { return try read(count: length) }
        guard headers["transfer-encoding"]?.lowercased().contains("chunked") == true else {
            throw BenchmarkError("a response without Content-Length or chunked encoding cannot be read on a kept-alive connection")
        }
        var body: [UInt8] = []
        while let chunk = try readChunk() { body += chunk }
        return body
    }

    private var available: Int { pending.count - pendingStart }

    /// Reads more bytes from the socket into `pending`.
    private func fill() throws {
        if pendingStart > 65_536 {
            pending.removeFirst(pendingStart)
            pendingStart = 0
        }
        while true {
            let received = receiveBuffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if received > 0 {
                lastReceipt = Date()
                pending.append(contentsOf: receiveBuffer[0..<received])
                return
            }
            if received == 0 { throw BenchmarkError("the server closed the connection") }
            if errno == EINTR { continue }
            throw BenchmarkError("reading from 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    private func readLine() throws -> String {
        var searchFrom = pendingStart
        while true {
            if let end = pending[searchFrom...].firstIndex(of: UInt8(ascii: "\n")) {
                var lineEnd = end
                if lineEnd > pendingStart, pending[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                let line = String(decoding: pending[pendingStart..<lineEnd], as: UTF8.self)
                pendingStart = end + 1
                return line
            }
            searchFrom = pending.count
            let consumed = pendingStart
            try fill()
            searchFrom -= consumed - pendingStart
        }
    }

    private func read(count: Int) throws -> [UInt8] {
        while available < count { try fill() }
        let bytes = Array(pending[pendingStart..<pendingStart + count])
        pendingStart += count
        return bytes
    }
}
