import ArgumentParser
import Foundation
import Logging
import Mirror
import Prometheus
import RosterConfig
import RosterService
import ServiceLifecycle
import UnixSignals

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Runs the daemon: follows directory changes in real time, reconciles on a schedule, serves health, metrics and the read API.",
        discussion: "SIGTERM stops it gracefully; SIGHUP reloads the configuration (an invalid one is logged and ignored).")

    @OptionGroup var options: ConfigOption

    @Option(help: "The least severe messages logged: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = JournaldLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "roster")
        let configuration = try loadConfiguration(options.config)
        let mirror = try openMirror(configuration)
        let registry = PrometheusCollectorRegistry()
        _ = RosterMetrics.bootstrapMetricsSystem(with: registry)
        let state = ServiceState(stalenessLimit: .milliseconds(Int64(configuration.schedule.stalenessLimitSeconds * 1000)), registry: registry)
        let notifier = EventNotifier()
        let systemd = SystemdNotifier()

        var token: String?
        if let file = configuration.http.tokenFile {
            do {
                token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                printError("The HTTP token file \(file) cannot be read: \(error.localizedDescription)")
                throw ExitCode(2)
            }
            if token?.isEmpty == true {
                printError("The HTTP token file \(file) is empty; write the token clients must send into it.")
                throw ExitCode(2)
            }
        }
        var httpConfiguration = HTTPConfiguration(address: configuration.http.address, port: configuration.http.port, bearerToken: token)
        if let certificate = configuration.http.tlsCertificateFile, let key = configuration.http.tlsKeyFile {
            httpConfiguration.tls = (certificate, key)
        }
        let http = HTTPService(
            configuration: httpConfiguration,
            mirror: mirror, state: state, notifier: notifier, metrics: registry, logger: Logger(label: "roster.http"),
            onServerRunning: { [scheme = httpConfiguration.tls == nil ? "http" : "https"] port in
                logger.info("Serving health, metrics and the read API on \(scheme)://\(configuration.http.address):\(port).")
            })
        let directory = DirectoryService(configurationPath: options.config, configuration: configuration, mirror: mirror, state: state,
                                         notifier: notifier, systemd: systemd, logger: Logger(label: "roster.directory"))
        let commits: CommitWatcher
        do {
            commits = try CommitWatcher(path: configuration.mirror.path)
        } catch {
            printError("The mirror at \(configuration.mirror.path) cannot be watched for commits: \(error)")
            throw ExitCode.failure
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: http), .init(service: directory), .init(service: WatchdogService(notifier: systemd)),
                       .init(service: CommitWatchService(watcher: commits, notifier: notifier))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        logger.info("Roster starts: directory \(configuration.directory.urls.joined(separator: " ")), mirror \(configuration.mirror.path).")
        try await group.run()
        notifier.finishAll()
        logger.info("Roster stopped.")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
