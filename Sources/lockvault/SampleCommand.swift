import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultEngine
import Logging
import PostgresClient

/// Connection options shared by the commands that read a cluster.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "Monitored cluster: libpq conninfo or URI; default: libpq environment (PGHOST, …).")
    var dsn: String = ""

    @Option(name: .long, help: "Vault: libpq conninfo or URI; default: the monitored cluster.")
    var vaultDSN: String?

    @Option(name: .long, help: "Longest query text kept per session.")
    var queryTextLength: Int = 1024

    @Option(name: .long, help: "Server log to read deadlock details from (needs read access).")
    var serverLog: String?

    @Option(name: .long, help: "Format of --server-log: auto (by its name: .csv csvlog, .json jsonlog, else stderr), stderr, csvlog or jsonlog.")
    var serverLogFormat: String = "auto"

    func monitorSettings() throws -> MonitorSettings {
        let format = ServerLogFormat(rawValue: serverLogFormat)
        guard format != nil || serverLogFormat == "auto" else {
            throw ValidationError("--server-log-format must be auto, stderr, csvlog or jsonlog, not '\(serverLogFormat)'")
        }
        return MonitorSettings(sampling: SamplingSettings(targetDSN: dsn, snapshot: SnapshotOptions(queryTextLength: queryTextLength),
                                                          serverLogPath: serverLog, serverLogFormat: format),
                               vault: VaultSettings(dsn: vaultDSN))
    }
}

/// `lockvault sample --once`: one cycle, like the seed's run_lock_monitoring().
struct SampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Run sampling cycles and record them in the vault; print a summary per cycle.",
        discussion: """
            \(LockvaultExit.help(success: "sampled and recorded", .malformedDSN, .notMigrated,
                                 .init(LockvaultExit.unavailable, "the cluster or vault is unreachable (or a write waited longer than lock_timeout)"),
                                 .unsupportedServer,
                                 .init(LockvaultExit.noPermission, "authentication failed or a privilege is missing (pg_monitor on the cluster, lock_writer_role on the vault)")))
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(name: .long, help: "Run one cycle and exit.")
    var once = false

    @Option(name: .long, help: "Cycles to run (ignored with --once).")
    var cycles: Int = 1

    @Option(name: .long, help: "Seconds between cycles.")
    var interval: Double = 1

    @Flag(name: .long, help: "Print JSON (one object per cycle).")
    var json = false

    @Flag(name: .long, help: "Don't write to the vault (just look).")
    var noWrite = false

    @Option(name: .long, help: "Count lock waits younger than this many seconds instead of resolving them (sampling.min_wait_seconds; default 0: resolve every wait). Needs --cycles: a wait's age is learnt from the cycle that first saw it.")
    var minWait: Double = 0

    func run() async throws {
        guard minWait.isFinite, (0...3600).contains(minWait) else { throw ValidationError("--min-wait must be between 0 and 3600 seconds, not '\(minWait)'") }
        var settings = try connection.monitorSettings()
        settings.sampling.snapshot.minWaitSeconds = minWait
        let monitor = Monitor(settings: settings, logger: Logger(label: "lockvault.sample") { _ in SwiftLogNoOpLogHandler() })
        do {
            try await monitor.checkTarget()
            if !noWrite { try await monitor.checkVault() }
        } catch {
            await monitor.close()
            throw error.exit("sample")
        }
        let total = once ? 1 : max(1, cycles)
        var failure: MonitorFailure?
        for i in 0..<total {
            if i > 0 { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
            let outcome = await monitor.runCycle(write: !noWrite)
            print(json ? Self.json(outcome) : Self.text(outcome))
            failure = outcome.targetFailure ?? outcome.vaultFailure ?? failure
        }
        await monitor.close()
        if let failure { throw failure.exit("sample") }
    }

    static func text(_ o: CycleOutcome) -> String {
        let locks = o.snapshot?.locks.count ?? 0
        let waits = o.snapshot.map { " waiting=\($0.lockWaiters) short_waits=\($0.shortWaits) longest_wait_s=\(String(format: "%.1f", $0.longestWaitSeconds))" } ?? ""
        return "\(o.succeeded ? "ok" : "degraded"): locks_captured=\(locks) blocking_sessions=\(o.assessments.count) deadlocks_detected=\(o.deadlocks.count) critical_issues=\(o.criticalCount) cycle_ms=\(String(format: "%.1f", o.cycleMilliseconds))\(waits)"
            + (o.targetError.map { " target_error=\($0)" } ?? "") + (o.vaultError.map { " vault_error=\($0)" } ?? "")
    }

    static func json(_ o: CycleOutcome) -> String {
        let object: [String: Any] = [
            "ok": o.succeeded, "locks_captured": o.snapshot?.locks.count ?? 0, "blocking_sessions": o.assessments.count,
            "deadlocks_detected": o.deadlocks.count, "critical_issues": o.criticalCount, "cycle_ms": o.cycleMilliseconds,
            "target_error": o.targetError ?? NSNull(), "vault_error": o.vaultError ?? NSNull(),
            "waiting": o.snapshot?.lockWaiters ?? NSNull(), "short_waits": o.snapshot?.shortWaits ?? NSNull(),
            "longest_wait_seconds": o.snapshot?.longestWaitSeconds ?? NSNull(),
        ]
        return String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }
}

/// `lockvault blocking`: the live blocking forest, read-only.
struct BlockingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blocking",
        abstract: "Show who blocks whom right now, as a tree (read-only; nothing is written); --at: as the vault recorded it at a past moment.",
        discussion: """
            With --at TIMESTAMP the tree comes from the vault (--vault-dsn, else --dsn), as recorded at that moment \
            (lock_monitoring.blocking_at), in the same text and JSON; a time without a zone is this machine's local \
            time. A moment before the retained history, or in the future, is refused (64); one at which lockvault was \
            not watching is said so (1). \
            \(LockvaultExit.help(success: "shown", .init(LockvaultExit.failure, "--at: lockvault was not watching at that moment"),
                                 .init(LockvaultExit.usage, "malformed DSN; --at: not a timestamp, before the retained history, in the future, or an unknown --cluster"),
                                 .notMigrated, .init(LockvaultExit.unavailable, "the cluster (or vault) is unreachable"), .unsupportedServer,
                                 .init(LockvaultExit.noPermission, "authentication failed, no pg_monitor, or (--at) the role may not read the vault")))
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(name: .long, help: "Print JSON: blockers with their assessment and the forest.")
    var json = false

    @Flag(name: .long, help: "Refresh every --interval seconds until interrupted.")
    var watch = false

    @Option(name: .long, help: "Seconds between refreshes with --watch.")
    var interval: Double = 2

    @Option(name: .long, help: "Show the tree the vault recorded at this moment: '2025-06-01 03:12' (local time) or with a zone, '2025-06-01 03:12:00+00'.")
    var at: String?

    @Option(name: .long, help: "With --at: the monitored cluster (its cluster_name or system_identifier), when the vault holds several.")
    var cluster: String?

    func run() async throws {
        if let at {
            guard !watch else { throw usage("blocking", "--at shows one recorded moment; --watch goes not with it") }
            let moment = try timestamp(at, option: "--at", verb: "blocking", zone: .current)
            try showRecorded(at: moment)
            return
        }
        guard cluster == nil else { throw usage("blocking", "--cluster needs --at (the live tree is the --dsn cluster's)") }
        let monitor = Monitor(settings: try connection.monitorSettings(), logger: Logger(label: "lockvault.blocking") { _ in SwiftLogNoOpLogHandler() })
        do {
            try await show(monitor)
        } catch {
            await monitor.close()
            throw error
        }
        await monitor.close()
    }

    /// The forest as the vault recorded it at `moment`, printed like the live one.
    private func showRecorded(at moment: Date) throws {
        let zone = TimeZone.current
        try VaultRead.run("blocking", dsn: connection.vaultDSN ?? connection.dsn) { conn in
            let (recorded, clusterName) = try EpisodeVault.moment(on: conn, at: moment, cluster: cluster)
            if json {
                try printJSON(BlockingReport(capturedAt: moment, blockers: recorded.assessments, forest: recorded.forest))
            } else {
                print("lockvault blocking at \(TimeText.format(moment, zone: zone)), as the vault recorded it\(clusterName.flatMap { $0.isEmpty ? nil : " (cluster \($0))" } ?? "")"
                      + " — \(recorded.snapshot.lockWaiters) waiting for locks")
                print(BlockingForestRenderer().render(recorded.snapshot, forest: recorded.forest, assessments: recorded.assessments))
            }
        }
    }

    private func printJSON(_ report: BlockingReport) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    private func show(_ monitor: Monitor) async throws {
        do { try await monitor.checkTarget() } catch { throw error.exit("blocking") }
        repeat {
            let outcome = await monitor.runCycle(write: false)
            guard let snapshot = outcome.snapshot else {
                throw (outcome.targetFailure ?? MonitorFailure(code: .unavailable, message: "cannot sample")).exit("blocking")
            }
            if json {
                try printJSON(BlockingReport(capturedAt: snapshot.capturedAt, blockers: outcome.assessments, forest: outcome.forest))
            } else {
                if watch { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                print("lockvault blocking — \(snapshot.backendCount) backends, \(snapshot.lockWaiters) waiting for locks")
                print(BlockingForestRenderer().render(snapshot, forest: outcome.forest, assessments: outcome.assessments))
            }
            if watch { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
        } while watch
    }
}

/// `lockvault blocking --json`.
struct BlockingReport: Encodable {
    var capturedAt: Date
    var blockers: [BlockerAssessment]
    var forest: [BlockingTree]
}
