import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a notification could not be sent to systemd.
public struct SystemdNotifyError: Error, Sendable, CustomStringConvertible {
    public var socket: String
    public var reason: String

    public var description: String { "Cannot notify systemd through NOTIFY_SOCKET '\(socket)': \(reason)." }
}

/// sd_notify(3) for a `Type=notify` unit: datagrams to `$NOTIFY_SOCKET` (a path, or an
/// abstract socket written `@name`). Without `NOTIFY_SOCKET` (not started by systemd) every
/// call does nothing and returns false.
public struct SystemdNotifier: Sendable {
    /// The socket systemd gave, or nil when not running under a `Type=notify` unit.
    public let socketPath: String?
    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, or nil when the watchdog is
    /// off (or meant for another process, per `WATCHDOG_PID`).
    public let watchdogInterval: Duration?

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `environment`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let socket = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = socket
        var interval: Duration? = nil
        if let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 {
            let forUs = environment["WATCHDOG_PID"].flatMap { Int32($0) }.map { $0 == getpid() } ?? true
            if forUs { interval = .microseconds(Int64(usec / 2)) }
        }
        watchdogInterval = interval
    }

    /// Whether systemd listens (`NOTIFY_SOCKET` is set).
    public var isEnabled: Bool { socketPath != nil }

    /// `READY=1`: start-up finished (first refresh done, HTTP listening).
    @discardableResult public func ready() -> Bool { trySend("READY=1") }

    /// `STOPPING=1`: graceful shutdown began.
    @discardableResult public func stopping() -> Bool { trySend("STOPPING=1") }

    /// `STATUS=...`: one line `systemctl status` shows.
    @discardableResult public func status(_ text: String) -> Bool {
        trySend("STATUS=" + text.replacingOccurrences(of: "\n", with: " "))
    }

    /// `WATCHDOG=1`: still alive.
    @discardableResult public func watchdog() -> Bool { trySend("WATCHDOG=1") }

    private func trySend(_ state: String) -> Bool {
        guard socketPath != nil else { return false }
        do {
            try send(state)
            return true
        } catch {
            return false
        }
    }

    /// Sends `state` (newline-separated `KEY=value` assignments) in one datagram.
    /// Does nothing without `NOTIFY_SOCKET`; throws when the socket cannot be reached.
    public func send(_ state: String) throws {
        guard let socketPath else { return }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        if abstract { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity, abstract || pathBytes.first == UInt8(ascii: "/") else {
            throw SystemdNotifyError(socket: socketPath, reason: "it is neither an absolute path nor an abstract '@' name shorter than \(capacity) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        // An abstract name is exactly its bytes; a path also takes its terminating NUL.
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + pathBytes.count + (abstract ? 0 : 1)

        #if canImport(Glibc)
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(AF_UNIX, SOCK_DGRAM, 0)
        #endif
        guard descriptor >= 0 else {
            throw SystemdNotifyError(socket: socketPath, reason: "socket() failed: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { buffer in
                    sendto(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), socketAddress, socklen_t(length))
                }
            }
        }
        guard sent == bytes.count else {
            throw SystemdNotifyError(socket: socketPath, reason: sent < 0 ? "sendto() failed: \(String(cString: strerror(errno)))" : "the datagram was cut short")
        }
    }
}

/// Pings the systemd watchdog (`WATCHDOG=1`) at the notifier's interval until graceful
/// shutdown; with the watchdog off it just waits for shutdown.
public struct WatchdogService: Service, CustomStringConvertible {
    let notifier: SystemdNotifier
    let interval: Duration?
    let logger: Logger

    /// - Parameter interval: overrides ``SystemdNotifier/watchdogInterval``.
    public init(notifier: SystemdNotifier, interval: Duration? = nil, logger: Logger = Logger(label: "roster.watchdog")) {
        self.notifier = notifier
        self.interval = interval ?? notifier.watchdogInterval
        self.logger = logger
    }

    public var description: String { "WatchdogService" }

    public func run() async throws {
        guard let interval, notifier.isEnabled else {
            // Returning early would end the service group: wait for shutdown instead.
            try? await gracefulShutdown()
            return
        }
        logger.debug("Pinging the systemd watchdog", metadata: ["interval": "\(interval)"])
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    if !notifier.watchdog() { logger.warning("The systemd watchdog ping failed") }
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            // Graceful shutdown or cancellation: stop pinging.
        }
    }
}
