import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultDaemon
import Logging
import ServiceLifecycle
import SystemdSupport

/// `lockvault run`: the daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the monitoring daemon (systemd Type=notify; SIGHUP reloads the config, SIGTERM stops).",
        discussion: """
            Before READY it waits (with backoff) for an unreachable vault; an unreachable monitored cluster is \
            retried by the cycles (STATUS=degraded). \
            \(LockvaultExit.help(success: "stopped cleanly", .init(LockvaultExit.dataError, "the vault is not migrated (run lockvault migrate)"),
                                 .init(LockvaultExit.unavailable, "the metrics address cannot be bound"), .unsupportedServer,
                                 .init(LockvaultExit.noPermission, "authentication failed or a privilege is missing (pg_monitor, lock_writer_role)"),
                                 .init(LockvaultExit.config, "invalid configuration (including a malformed DSN)")))
            """
    )

    @Option(name: .long, help: "Configuration file.")
    var config: String = "/etc/lockvault/lockvault.yaml"

    func run() async throws {
        // A peer that goes away (an alert program that exits without reading its stdin, a
        // webhook that closes early) must cost one delivery attempt, not the daemon.
        signal(SIGPIPE, SIG_IGN)
        let settings: LockvaultConfig
        do {
            settings = try ConfigLoader.load(path: config)
        } catch {
            printError("lockvault run: invalid configuration: \(error)")
            throw ExitCode(LockvaultExit.config)
        }
        LoggingSetup.bootstrap(destination: settings.logDestination, level: settings.logLevel, now: MonitorClock.system.date)
        let logger = Logger(label: "lockvault")
        let notifier = SystemdNotifier()
        logger.info("lockvault starting", metadata: ["version": "\(Lockvault.version)", "config": "\(config)",
                                                     "interval_s": "\(settings.intervalSeconds)", "under_systemd": "\(notifier.isUnderSystemd)"])
        let daemon = Daemon(config: settings, configPath: config, logger: logger)
        // The group shuts its services down in reverse order, each after the one before has
        // stopped: sampling first (its last step flushes the vault writer's buffer, or leaves it
        // in the spool), then the alerts (the sinks get a bounded time for what is queued), and
        // the metrics endpoint last, so it answers until everything else has stopped.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let listen = settings.metricsListen, let address = ListenAddress(listen) {
            let metrics = daemon.metrics
            services.append(.init(service: MetricsEndpoint(address: address, render: { metrics.exposition() }, onListening: { port in
                logger.info("metrics endpoint listening", metadata: ["listen": "\(address.host):\(port)", "path": "/metrics"])
            })))
        }
        services.append(.init(service: daemon.alerts))
        services.append(.init(service: SamplingService(runner: daemon, interval: settings.interval, notifier: notifier, logger: logger)))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as StartupError {
            logger.critical("cannot start", metadata: ["error": "\(error.message)"])
            printError("lockvault run: \(error.message)")
            throw ExitCode(LockvaultExit.code(for: error))
        } catch let error as MetricsServerError {
            logger.critical("cannot start", metadata: ["error": "\(error.description)"])
            printError("lockvault run: \(error.description)")
            throw ExitCode(LockvaultExit.unavailable)
        }
    }
}

/// `lockvault check-config`: validates without connecting.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file (and LOCKVAULT_* overrides) without connecting.",
        discussion: LockvaultExit.help(success: "valid", .init(LockvaultExit.config, "invalid (the message names the key and line)"))
    )

    @Option(name: .long, help: "Configuration file.")
    var config: String = "/etc/lockvault/lockvault.yaml"

    func run() throws {
        do {
            let c = try ConfigLoader.load(path: config)
            print("ok: \(config) (interval \(c.intervalSeconds) s, resolve \(c.monitor.resolve.enabled ? (c.monitor.resolve.dryRun ? "enabled, dry run" : "ENABLED") : "off"))")
        } catch {
            printError("lockvault check-config: \(error)")
            throw ExitCode(LockvaultExit.config)
        }
    }
}
