import Foundation
import LockvaultCore
import LockvaultEngine
import Logging
import PostgresClient
import Testing

/// A migrated temporary database with a Monitor pointed at it (target = vault), plus helpers
/// to provoke contention with real sessions and read the dashboards.
///
/// The monitor connects as ``leastPrivilegedRole`` — a role holding only pg_monitor,
/// pg_signal_backend and lock_writer_role, the grants docs/operations.md tells operators to
/// give — so every engine scenario proves lockvault works without superuser.
final class EngineScenario: @unchecked Sendable {
    /// The role every scenario's monitor uses unless a test asks for another.
    static let leastPrivilegedRole = "lv_monitor"
    /// Exactly the roles it is a member of.
    static let leastPrivilegedGrants: Set<String> = ["pg_monitor", "pg_signal_backend", "lock_writer_role"]

    let database: String
    let admin: PostgresConnection
    let monitor: Monitor
    private(set) var sessions: [BackgroundSession] = []

    let configuration: MonitorSettings

    init(database: String, severity: SeverityPolicy = SeverityPolicy(), serverLog: String? = nil, resolve: ResolvePolicy = ResolvePolicy(),
         monitorUser: String? = EngineScenario.leastPrivilegedRole, migrator: Migrator? = Migrator(),
         configure: (inout MonitorSettings) throws -> Void = { _ in }) throws {
        self.database = database
        admin = try LiveDatabase.connect(database: database, applicationName: "lv-test-admin")
        // nil: the test builds the vault itself (VaultUpgradeLiveTests: with older migrations).
        try migrator?.apply(on: admin)
        if monitorUser == Self.leastPrivilegedRole { try Self.ensureLeastPrivilegedRole() }
        var config = MonitorSettings(
            clusterName: "test",
            sampling: SamplingSettings(targetDSN: try LiveDatabase.conninfo(database: database, user: monitorUser),
                                       session: SessionSettings(applicationName: "lockvault"), serverLogPath: serverLog),
            vault: VaultSettings(heartbeatSeconds: 3600), severity: severity, resolve: resolve)
        try configure(&config)
        configuration = config
        monitor = Monitor(settings: config, decidedBy: "test", logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// Creates ``leastPrivilegedRole`` (LOGIN, nothing else) and grants it exactly
    /// ``leastPrivilegedGrants``, revoking anything else it was given. lock_writer_role is
    /// created by the first migration, so call this after migrating.
    static func ensureLeastPrivilegedRole() throws {
        let admin = try LiveDatabase.connect()
        defer { admin.close() }
        try admin.executeScript("""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(leastPrivilegedRole)') THEN CREATE ROLE \(leastPrivilegedRole) LOGIN; END IF;
            END $$;
            ALTER ROLE \(leastPrivilegedRole) NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS LOGIN;
            GRANT \(leastPrivilegedGrants.sorted().joined(separator: ", ")) TO \(leastPrivilegedRole);
            """)
        let extra = try admin.query("""
            SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
            WHERE u.rolname = $1
            """, [leastPrivilegedRole]).map { try $0.decode("rolname", as: String.self) }.filter { !leastPrivilegedGrants.contains($0) }
        for role in extra { try admin.execute("REVOKE \(role) FROM \(leastPrivilegedRole)") }
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

    /// Waits until `count` of this scenario's sessions (``session(_:database:user:)``) wait for a lock.
    func waitForWaiters(_ count: Int, timeout: Duration = .seconds(20)) async throws {
        // Its own sessions only: suites run in parallel, and another scenario's waiters must not count.
        let pids = "{" + sessions.map { String($0.pid) }.joined(separator: ",") + "}"
        try await waitUntil("\(count) sessions waiting for a lock", timeout: timeout) {
            try admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = ANY ($1::int4[])", [pids])[0]
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
                    monitorUser: String? = EngineScenario.leastPrivilegedRole, configure: (inout MonitorSettings) throws -> Void = { _ in },
                    _ body: (EngineScenario) async throws -> Void) async throws {
        try await LiveDatabase.withTemporaryDatabase { db in
            let scenario = try EngineScenario(database: db, severity: severity, serverLog: serverLog, resolve: resolve, monitorUser: monitorUser,
                                              configure: configure)
            do {
                try await body(scenario)
                await scenario.close()
            } catch {
                // A failed body may leave sessions blocked for good (nobody will release their
                // blockers): end them from the server side first, or closing them waits forever.
                _ = try? scenario.admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
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
