import AccessModel
import Foundation
import LDAPKit
import Logging
import Mirror
import RosterConfig
@testable import RosterService
import SlapdHarness
import Sync
import Testing

@Suite("The daemon's directory service: thread priorities, against a real slapd")
struct DirectoryServicePriorityTests {
    @Test("After the reconcile that completes the first refresh, reconciles read at a lower priority than the process and apply at the process's own")
    func reconcilesReadLowAndApplyAtTheProcesssPriority() async throws {
        let fixture = try await ClinicFixture.start()
        defer { fixture.server.shutdown() }
        let state = ServiceState(stalenessLimit: .seconds(300))
        let service = DirectoryService.quiet(configuration: fixture.configuration, mirror: fixture.mirror, state: state)
        let task = Task { try await service.run() }
        defer { task.cancel() }
        // Ready only once a full reconcile has applied: the executors have both run by then.
        #expect(try await eventually(within: readinessTimeout) { state.readiness.isReady })
        #expect(try fixture.mirror.snapshot().users.count == fixture.clinic.userCount)
        let process = ThreadPriority.processNiceness
        try #require(process < 19, "the test process already runs at nice 19")
        let reading = await withTaskExecutorPreference(service.reconcileExecutor) { ThreadPriority.niceness }
        let applying = await withTaskExecutorPreference(service.applyExecutor) { ThreadPriority.niceness }
        #expect(reading > process)
        #expect(applying == process, "the apply holds the writer revocations wait for: it must not run at the reconcile's lower priority")
    }
}

extension DirectoryService {
    /// The daemon's directory service as `roster run` builds it, without systemd and logging
    /// nowhere; `configurationPath` is what a reload would read.
    static func quiet(configuration: RosterConfiguration, mirror: Mirror, state: ServiceState,
                      configurationPath: String = "/nonexistent/roster.yaml") -> DirectoryService {
        DirectoryService(configurationPath: configurationPath, configuration: configuration, mirror: mirror, state: state,
                         notifier: EventNotifier(), systemd: SystemdNotifier(environment: [:]),
                         logger: Logger(label: "roster.test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }
}
