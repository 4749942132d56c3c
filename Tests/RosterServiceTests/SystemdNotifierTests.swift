import Foundation
import Logging
import RosterService
import ServiceLifecycle
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A unix datagram socket the test binds, standing in for systemd's notification socket.
final class NotifySocket: @unchecked Sendable {
    // Safe to share: the descriptor is only read from (recv) and closed once in deinit.
    let descriptor: Int32
    /// What NOTIFY_SOCKET would say: a path, or `@name` for an abstract socket.
    let name: String
    private let path: String?

    init(abstract: Bool) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let unique = "roster-notify-\(UUID().uuidString.prefix(8))"
        var bytes: [UInt8]
        if abstract {
            name = "@" + unique
            path = nil
            bytes = [0] + Array(unique.utf8)
        } else {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent(unique).path
            name = file
            path = file
            bytes = Array(file.utf8) + [0]
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard result == 0 else { throw TestFailure("bind(\(name)) failed: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(descriptor)
        if let path { unlink(path) }
    }

    /// The next datagram, waiting without blocking a thread (up to 60 s), or nil. The bound only
    /// guards against a hang: in the whole suite, CPU-heavy tests beside this one can keep the two
    /// cooperative threads (and so the service under test) busy for more than 10 s.
    func next() async -> String? {
        let deadline = ContinuousClock.now + .seconds(60)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count >= 0 { return String(decoding: buffer[..<count], as: UTF8.self) }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    /// The next datagram (waits up to 10 s), or nil.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }
}

@Suite struct SystemdNotifierTests {
    @Test(arguments: [false, true])
    func notificationsReachTheSocket(abstract: Bool) throws {
        let socket = try NotifySocket(abstract: abstract)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.name])
        #expect(notifier.isEnabled)
        #expect(notifier.ready())
        #expect(socket.receive() == "READY=1")
        #expect(notifier.status("Mirroring 1204 users\nfrom ldap://dir"))
        #expect(socket.receive() == "STATUS=Mirroring 1204 users from ldap://dir")
        #expect(notifier.watchdog())
        #expect(socket.receive() == "WATCHDOG=1")
        #expect(notifier.stopping())
        #expect(socket.receive() == "STOPPING=1")
    }

    @Test func withoutNotifySocketNothingIsSent() throws {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.isEnabled)
        #expect(!notifier.ready())
        #expect(notifier.watchdogInterval == nil)
        try notifier.send("READY=1")
    }

    @Test func aMissingSocketIsReportedBySend() {
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/roster/notify"])
        #expect(!notifier.ready())
        let error = #expect(throws: SystemdNotifyError.self) { try notifier.send("READY=1") }
        #expect(error?.description.hasPrefix("Cannot notify systemd through NOTIFY_SOCKET '/nonexistent/roster/notify': sendto() failed") == true)
        let relative = #expect(throws: SystemdNotifyError.self) { try SystemdNotifier(environment: ["NOTIFY_SOCKET": "notify"]).send("READY=1") }
        #expect(relative?.description.contains("neither an absolute path nor an abstract '@' name") == true)
    }

    @Test func theWatchdogIntervalIsHalfOfWatchdogUsec() {
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000"]).watchdogInterval == .seconds(15))
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())"]).watchdogInterval == .seconds(15))
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "0"]).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "soon"]).watchdogInterval == nil)
    }

    @Test func theWatchdogServicePingsUntilGracefulShutdown() async throws {
        let socket = try NotifySocket(abstract: true)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.name, "WATCHDOG_USEC": "40000"])
        #expect(notifier.watchdogInterval == .milliseconds(20))
        let group = ServiceGroup(services: [WatchdogService(notifier: notifier, logger: quietLogger)], logger: quietLogger)
        let running = Task { try await group.run() }
        for _ in 0..<3 { #expect(await socket.next() == "WATCHDOG=1") }
        await group.triggerGracefulShutdown()
        try await running.value
    }

    @Test func aDisabledWatchdogWaitsForShutdownInsteadOfEndingTheGroup() async throws {
        let group = ServiceGroup(services: [WatchdogService(notifier: SystemdNotifier(environment: [:]), logger: quietLogger)], logger: quietLogger)
        let running = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(20))
        await group.triggerGracefulShutdown()
        try await running.value
    }
}
