import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultEngine
import Logging

/// `lockvault resolve`: what the auto-resolver would do (default) or does (`--execute`).
struct ResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Show which blockers the auto-resolver would end and why; --execute to act.",
        discussion: """
            A dry run unless --execute is given. Every decision is recorded in the vault (resolve_decision_s) and \
            shown on blocking_sessions_dashboard, whose auto_kill_eligible and auto_kill_reason are this same rule's \
            answer for every blocker (those below --min-severity included). The seed's auto_resolve_blocking(NULL, 300, true) is \
            `lockvault resolve --threshold 300`.
            The vault must be reachable and migrated before anything is decided: an action that could not be \
            audited is not taken.
            \(LockvaultExit.help(success: "nothing to do", .init(LockvaultExit.wouldAct, "would act (dry run) or acted"),
                                 .init(LockvaultExit.failure, "error"), .malformedDSN, .notMigrated, .cannotConnect, .unsupportedServer,
                                 .init(LockvaultExit.noPermission, "authentication failed or a privilege is missing")))
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(name: .long, help: "Really cancel/terminate (default: dry run).")
    var execute = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @Option(name: .long, help: "Minimum severity to consider: LOW, MEDIUM, HIGH or CRITICAL.")
    var minSeverity: String = "CRITICAL"

    @Option(name: .long, help: "Minimum blocking time in seconds (kill_threshold_seconds).")
    var threshold: Double = 300

    @Option(name: .long, help: "Cancel a queued request (a session waiting for a lock with others queued behind it) once it has waited this many seconds (cancel_queued_after_seconds; default: never).")
    var cancelQueuedAfter: Double?

    @Option(name: .long, help: "Exclude sessions of this role (repeatable; exact or /regex/).")
    var excludeRole: [String] = []

    @Option(name: .long, help: "Exclude sessions with this application_name (repeatable; exact or /regex/).")
    var excludeApplication: [String] = []

    @Option(name: .long, help: "Exclude sessions in this database (repeatable; exact or /regex/).")
    var excludeDatabase: [String] = []

    @Option(name: .long, help: "Exclude sessions from this client address (repeatable; exact or /regex/).")
    var excludeClientAddress: [String] = []

    @Flag(name: .long, help: "Allow acting on superuser sessions.")
    var allowSuperuser = false

    @Option(name: .long, help: "At most this many actions.")
    var max: Int = 1

    func run() async throws {
        guard let severity = BlockerSeverity(rawValue: minSeverity.uppercased()) else {
            throw ValidationError("--min-severity must be LOW, MEDIUM, HIGH or CRITICAL, not '\(minSeverity)'")
        }
        func patterns(_ values: [String], _ flag: String) throws -> [ExclusionPattern] {
            try values.map { value in
                do { return try ExclusionPattern(value) } catch { throw ValidationError("--\(flag): \(error)") }
            }
        }
        if let after = cancelQueuedAfter, !(after.isFinite && after >= 0) {
            throw ValidationError("--cancel-queued-after must be a number of seconds ≥ 0, not '\(after)'")
        }
        var settings = try connection.monitorSettings()
        var policy = ResolvePolicy()
        policy.enabled = true
        policy.dryRun = !execute
        policy.minSeverity = severity
        policy.killThresholdSeconds = threshold
        policy.cancelQueuedAfterSeconds = cancelQueuedAfter
        policy.allowSuperuser = allowSuperuser
        policy.excludeRoles = try patterns(excludeRole, "exclude-role")
        policy.excludeApplications = try patterns(excludeApplication, "exclude-application")
        policy.excludeDatabases = try patterns(excludeDatabase, "exclude-database")
        policy.excludeClientAddresses = try patterns(excludeClientAddress, "exclude-client-address")
        policy.maxActionsPerCycle = max
        policy.maxTerminationsPerMinute = Swift.max(max, 1)
        settings.resolve = policy
        let monitor = Monitor(settings: settings, decidedBy: "cli@\(ProcessInfo.processInfo.hostName)", logger: Logger(label: "lockvault.resolve") { _ in SwiftLogNoOpLogHandler() })
        do {
            try await monitor.checkTarget()
            try await monitor.checkVault()
        } catch {
            await monitor.close()
            throw error.exit("resolve")
        }
        let outcome = await monitor.runCycle()
        await monitor.close()
        if let failure = outcome.targetFailure { throw failure.exit("resolve") }
        if let error = outcome.vaultError { printError("lockvault resolve: decisions not recorded in the vault: \(error)") }
        if json {
            let rows: [[String: Any]] = outcome.decisions.map { d in
                let a = d.decision.assessment
                return ["pid": a.pid.map { Int($0) } ?? NSNull(), "prepared_gid": a.preparedTransaction?.gid ?? NSNull(),
                        "user": a.session?.user ?? NSNull(), "application": a.session?.applicationName ?? NSNull(),
                        "database": a.session?.database ?? NSNull(), "state": a.session?.state.description ?? "prepared",
                        "severity": a.severity.rawValue, "blocks_as": a.blocksAs.rawValue, "blocked": a.blockedCount, "blocked_seconds": Int(a.blockingDurationSeconds),
                        "decision": d.decisionName, "reason": d.decision.reason, "outcome": d.outcomeText ?? NSNull(), "dry_run": d.decision.dryRun,
                        "auto_kill_eligible": d.decision.eligibility.isEligible]
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(Self.table(outcome.decisions, dryRun: !execute))
        }
        if outcome.decisions.contains(where: { $0.decision.verdict == .act }) { throw ExitCode(LockvaultExit.wouldAct) }
    }

    static func table(_ decisions: [ExecutedDecision], dryRun: Bool) -> String {
        guard !decisions.isEmpty else { return "nothing to resolve: no blocker at or above the minimum severity" }
        let header = ["pid", "user", "app", "database", "state", "severity", "blocks as", "blocked", "for", "decision", "reason"]
        let rows = decisions.map { d -> [String] in
            let a = d.decision.assessment
            let clean = { (s: String?, w: Int) in BlockingForestRenderer.clean(s ?? "-", w) }
            return [a.pid.map(String.init) ?? "prepared", clean(a.session?.user ?? a.preparedTransaction?.owner, 16), clean(a.session?.applicationName, 16),
                    clean(a.session?.database ?? a.preparedTransaction?.database, 16), a.session?.state.description ?? "prepared",
                    a.severity.rawValue, a.blocksAs.rawValue, String(a.blockedCount), "\(Int(a.blockingDurationSeconds)) s", d.decisionName,
                    clean(d.decision.reason + (d.outcomeText.map { " — \($0)" } ?? ""), 100)]
        }
        let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([dryRun ? "dry run: nothing was signalled (use --execute to act)" : "executed", line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
