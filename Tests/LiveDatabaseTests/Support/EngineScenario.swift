import Foundation
import LockvaultCore
import LockvaultEngine
import Logging
import PostgresClient
import Testing

/// A migrated temporary database with a Monitor pointed at it (target = vault), plus helpers
/// to provoke contention with real sessions and read the dashboards.
final class EngineScenario: @unchecked Sendable {
    let database: String
    let admin: PostgresConnection
    let monitor: Monitor
    private(set) var sessions: [BackgroundSession] = []

    init(database: String, severity: SeverityPolicy = SeverityPolicy(), serverLog: String? = nil, resolve: ResolvePolicy = ResolvePolicy(),
         monitorUser: String? = nil) throws {
        self.database = database
        admin = try LiveDatabase.connect(database: database, applicationName: "lv-test-admin")
        try Migrator().apply(on: admin)
        let config = MonitorConfiguration(
            targetDSN: try LiveDatabase.conninfo(database: database, user: monitorUser), clusterName: "test", severity: severity,
            session: SessionSettings(applicationName: "lockvault"), serverLogPath: serverLog, heartbeatSeconds: 3600,
            resolve: resolve, terminateTimeoutMs: 5000, decidedBy: "test")
        monitor = Monitor(configuration: config, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// A new session on the scenario's database (or another one).
    func session(_ app: String = "lv-test", database: String? = nil, user: String? = nil) async throws -> BackgroundSession {
        let s = try await BackgroundSession(database: database ?? self.database, applicationName: app, user: user)
        sessions.append(s)
        return s
    }

    @discardableResult
    func cycle() async throws -> CycleOutcome {
        let outcome = await monitor.runCycle()
        if let e = outcome.targetError ?? outcome.vaultError { throw ScenarioError(message: e) }
        return outcome
    }

    /// Waits until `count` sessions of this scenario's database wait for a lock.
    func waitForWaiters(_ count: Int, timeout: Duration = .seconds(20)) async throws {
        try await waitUntil("\(count) sessions waiting for a lock", timeout: timeout) {
            try admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND backend_type = 'client backend'")[0]
                .decode("n", as: Int.self) >= count
        }
    }

    func rows(_ sql: String, _ params: [(any PostgresEncodable)?] = []) throws -> PostgresResult { try admin.query(sql, params) }

    /// No key has two current satellite rows, and every satellite row has its hub.
    func assertVaultConsistent(sourceLocation: SourceLocation = #_sourceLocation) throws {
        for (sat, hk) in [("lock_activity_s", "lock_activity_hk"), ("blocking_session_s", "blocking_session_hk"), ("deadlock_event_s", "deadlock_event_hk")] {
            let dupes = try admin.query("SELECT count(*) AS n FROM (SELECT \(hk) FROM lock_monitoring.\(sat) WHERE load_end_date IS NULL GROUP BY 1 HAVING count(*) > 1) d")[0].decode("n", as: Int.self)
            #expect(dupes == 0, "\(sat) has keys with two current rows", sourceLocation: sourceLocation)
            let overlapping = try admin.query("""
                SELECT count(*) AS n FROM lock_monitoring.\(sat) a JOIN lock_monitoring.\(sat) b USING (\(hk))
                WHERE a.load_date < b.load_date AND (a.load_end_date IS NULL OR a.load_end_date > b.load_date)
                """)[0].decode("n", as: Int.self)
            #expect(overlapping == 0, "\(sat) has overlapping versions", sourceLocation: sourceLocation)
        }
    }

    func close() async {
        for s in sessions { await s.close() }
        sessions.removeAll()
        await monitor.close()
        admin.close()
    }

    /// Runs `body` on a fresh scenario and always cleans up.
    static func run(severity: SeverityPolicy = SeverityPolicy(), serverLog: String? = nil, resolve: ResolvePolicy = ResolvePolicy(),
                    monitorUser: String? = nil, _ body: (EngineScenario) async throws -> Void) async throws {
        try await LiveDatabase.withTemporaryDatabase { db in
            let scenario = try EngineScenario(database: db, severity: severity, serverLog: serverLog, resolve: resolve, monitorUser: monitorUser)
            do {
                try await body(scenario)
                await scenario.close()
            } catch {
                await scenario.close()
                throw error
            }
        }
    }
}

struct ScenarioError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
