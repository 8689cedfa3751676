import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultDaemon
import LockvaultEngine
import PostgresClient

/// `lockvault doctor`: is this cluster, role and vault ready for lockvault? A checklist with the
/// exact setting or GRANT for every line that isn't.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the server, the role's privileges and the vault; print the fix for each failing line.",
        discussion: """
            Connects as the daemon would: with --config, its target and vault DSNs, server log and resolve settings; \
            otherwise with --dsn / --vault-dsn (libpq defaults when omitted). Read-only.
            \(LockvaultExit.help(success: "nothing failing (warnings allowed)", .init(LockvaultExit.failure, "at least one check failed"),
                                 .malformedDSN, .init(LockvaultExit.unavailable, "cannot reach the monitored cluster"),
                                 .authenticationFailed, .invalidConfiguration))
            """
    )

    @Option(name: .long, help: "Configuration file to check with (its DSNs, server log and resolve settings).")
    var config: String?

    @Option(name: .long, help: "Monitored cluster: libpq conninfo or URI (without --config).")
    var dsn: String = ""

    @Option(name: .long, help: "Vault: libpq conninfo or URI; default: the monitored cluster.")
    var vaultDSN: String?

    @Option(name: .long, help: "Server log path to check for readability (without --config).")
    var serverLog: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        var targetDSN = dsn, vault = vaultDSN, log = serverLog, resolveActs = false
        var session = SessionSettings(applicationName: "lockvault doctor")
        if let config {
            let c: LockvaultConfig
            do { c = try ConfigLoader.load(path: config) } catch {
                printError("lockvault doctor: invalid configuration: \(error)")
                throw ExitCode(LockvaultExit.config)
            }
            targetDSN = c.monitor.sampling.targetDSN
            vault = c.monitor.vault.dsn
            log = c.monitor.sampling.serverLogPath
            resolveActs = c.monitor.resolve.enabled && !c.monitor.resolve.dryRun
            session = c.monitor.sampling.session
            session.applicationName = "lockvault doctor"
        }
        let target: PostgresConnection
        do { target = try PostgresConnection(conninfo: targetDSN, settings: session) } catch {
            // Can't check anything without a connection: unreachable, bad DSN or authentication.
            throw MonitorFailure.classify(error, side: .target).exit("doctor")
        }
        defer { target.close() }
        let vaultConnection: Result<PostgresConnection, PostgresError>
        if let vault {
            do { vaultConnection = .success(try PostgresConnection(conninfo: vault, settings: session)) } catch { vaultConnection = .failure(error) }
        } else {
            vaultConnection = .success(target)
        }
        defer { if vault != nil, case .success(let c) = vaultConnection { c.close() } }

        let facts: DoctorFacts
        do {
            facts = try DoctorProbe.gather(target: target, vault: vaultConnection, serverLogPath: log, resolveActs: resolveActs)
        } catch {
            printError("lockvault doctor: \(error)")
            throw ExitCode(LockvaultExit.failure)
        }
        let findings = Diagnosis.evaluate(facts)
        let failed = findings.filter { $0.verdict == .fail }.count
        let warned = findings.filter { $0.verdict == .warn }.count
        if json {
            let lines = findings.map { f -> [String: String] in
                var o = ["verdict": f.verdict.rawValue, "check": f.check, "detail": f.detail]
                if let fix = f.fix { o["fix"] = fix }
                return o
            }
            let data = try JSONSerialization.data(withJSONObject: ["checks": lines, "failed": failed, "warnings": warned] as [String: Any],
                                                  options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("lockvault doctor — \(target.redactedConninfo.isEmpty ? "libpq defaults" : target.redactedConninfo)")
            for f in findings {
                print("[\(f.verdict.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0))] \(f.check): \(f.detail)")
                if let fix = f.fix, f.verdict != .ok { print("       fix: \(fix)") }
            }
            print(failed == 0 ? "verdict: ready (\(warned) warning\(warned == 1 ? "" : "s"))" : "verdict: NOT ready — \(failed) failing, \(warned) warning\(warned == 1 ? "" : "s")")
        }
        if failed > 0 { throw ExitCode(LockvaultExit.failure) }
    }
}
