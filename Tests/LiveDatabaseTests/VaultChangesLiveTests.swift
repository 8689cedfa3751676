import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// The monitor sends the vault only what changed since its last successful write: a steady
    /// cycle makes no call at all, and what ended while the vault was away is end-dated when it
    /// is back, once, at the cycle that first saw it end.
    @Suite struct VaultChangesLiveTests {
        typealias Faults = MonitorFaultLiveTests

        /// When the monitor's session on the vault database last finished a statement.
        static func vaultLastActive(_ vaultDB: String) throws -> Date? {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            return try admin.query("SELECT max(state_change) AS t FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lockvault'",
                                   [vaultDB])[0].decode("t", as: Date?.self)
        }

        static func count(_ conn: PostgresConnection, _ sql: String) throws -> Int {
            try conn.query(sql)[0].decode("n", as: Int.self)
        }

        @Test func aSteadyCycleMakesNoCallToTheVaultAndAChangeIsWrittenAtOnce() async throws {
            try await Faults.withSeparateVault(maxBuffered: 100) { s, vaultDB in
                let vault = try LiveDatabase.connect(database: vaultDB)
                defer { vault.close() }
                let c = try await Faults.Contention(s)
                try await c.addWaiter()
                try await s.cycle()
                let rowsAfterFirst = try Self.count(vault, "SELECT (SELECT count(*) FROM lock_monitoring.lock_activity_s) + (SELECT count(*) FROM lock_monitoring.blocking_session_s) AS n")
                let active = try #require(try Self.vaultLastActive(vaultDB), "the first cycle wrote through its own vault session")

                for _ in 1...3 {
                    let o = try await s.cycle()
                    #expect(o.pendingWrites == 0 && o.vaultFailure == nil)
                    #expect(o.assessments.first?.blockedCount == 1, "the blocker is still seen")
                }
                #expect(try Self.vaultLastActive(vaultDB) == active, "no statement reached the vault in the steady cycles")

                try await c.addWaiter()
                let changed = try await s.cycle()
                #expect(try #require(try Self.vaultLastActive(vaultDB)) > active, "a change is written in its own cycle")
                let versions = try vault.query("SELECT blocked_sessions_count AS n, load_end_date IS NULL AS current FROM lock_monitoring.blocking_session_s ORDER BY load_date")
                    .map { (try $0.decode("n", as: Int.self), try $0.decode("current", as: Bool.self)) }
                #expect(versions.map(\.0) == [1, 2] && versions.map(\.1) == [false, true], "the blocker's versions: \(versions)")
                let waiting = try vault.query("SELECT count(*) AS n, count(*) FILTER (WHERE load_end_date IS NULL) AS current FROM lock_monitoring.lock_activity_s WHERE NOT lock_granted")[0]
                #expect(try waiting.decode("n", as: Int.self) == 2 && waiting.decode("current", as: Int.self) == 2,
                        "one row per waiting lock, both current: the first one's was not written again")
                let rowsNow = try Self.count(vault, "SELECT (SELECT count(*) FROM lock_monitoring.lock_activity_s) + (SELECT count(*) FROM lock_monitoring.blocking_session_s) AS n")
                #expect(rowsNow > rowsAfterFirst)
                #expect(changed.pendingWrites == 0)
                #expect(try Self.count(vault, "SELECT waiting_sessions AS n FROM lock_monitoring.monitor_cycle_s WHERE load_end_date IS NULL") == 2, "the summary too")
                try VaultConsistency.expectConsistent(vault)
                try await c.release()
            }
        }

        /// While nothing changes, the heartbeat is the only write: the vault's summary still
        /// moves on once a heartbeat, so `lockvault status` keeps a steady daemon alive (the
        /// stale rule allows 90 s against the 60 s heartbeat; here the heartbeat is 2 s).
        @Test func aSteadyMonitorStillWritesItsHeartbeat() async throws {
            try await EngineScenario.run(configure: { $0.vault.heartbeatSeconds = 2 }) { s in
                let c = try await Faults.Contention(s)
                try await c.addWaiter()
                let t0 = try #require(try await s.cycle().snapshot).capturedAt
                func lastCycleAt() throws -> Date {
                    try s.rows("SELECT last_cycle_at AS t FROM lock_monitoring.monitor_cycle_s WHERE load_end_date IS NULL")[0].decode("t", as: Date.self)
                }
                #expect(Faults.same(try lastCycleAt(), t0))
                var beat: Date?
                try await waitUntil("a steady cycle writes the heartbeat", timeout: .seconds(30), every: .milliseconds(200)) {
                    let o = try await s.cycle()
                    let at = try #require(o.snapshot).capturedAt
                    #expect(o.assessments.first?.blockedCount == 1, "steady: the same blocker")
                    if at.timeIntervalSince(t0) >= 2, Faults.same(try lastCycleAt(), at) { beat = at }
                    return beat != nil
                }
                #expect(try #require(beat).timeIntervalSince(t0) >= 2)
                let state = try s.rows("SELECT state FROM lock_monitoring.fleet_status()")[0].decode("state", as: String.self)
                #expect(state == "alive")
                #expect(try s.rows("SELECT count(*) AS n FROM lock_monitoring.blocking_session_s")[0].decode("n", as: Int.self) == 1,
                        "the heartbeat wrote no new blocker version")
                try await c.release()
            }
        }

        /// A reload that points the daemon at another vault makes the next write whole: the new
        /// vault holds the current blocker and its locks at once, although nothing changed, and
        /// what ends later is end-dated there.
        @Test func aReloadToAnotherVaultWritesTheWholeCycleThere() async throws {
            try await Faults.withSeparateVault(maxBuffered: 100) { s, firstVault in
                try await LiveDatabase.withTemporaryDatabase { secondVault in
                    do {
                        let admin = try LiveDatabase.connect(database: secondVault)
                        defer { admin.close() }
                        try Migrator().apply(on: admin)
                    }
                    let c = try await Faults.Contention(s)
                    try await c.addWaiter()
                    try await s.cycle()
                    try await s.cycle()
                    var config = s.configuration
                    config.vault.dsn = try LiveDatabase.conninfo(database: secondVault, user: EngineScenario.leastPrivilegedRole)
                    await s.monitor.reconfigure(config)
                    let steady = try await s.cycle()
                    #expect(steady.pendingWrites == 0 && steady.assessments.first?.blockedCount == 1)

                    let vault = try LiveDatabase.connect(database: secondVault)
                    defer { vault.close() }
                    let current = "SELECT count(*) AS n FROM lock_monitoring.blocking_session_s WHERE load_end_date IS NULL"
                    #expect(try Self.count(vault, current) == 1, "the blocker is in the new vault after the first cycle")
                    let first = try LiveDatabase.connect(database: firstVault)
                    defer { first.close() }
                    let locks = "SELECT count(*) AS n FROM lock_monitoring.lock_activity_s WHERE load_end_date IS NULL"
                    #expect(try Self.count(vault, locks) == Self.count(first, locks), "and every current lock the first vault holds")

                    try await c.release()
                    try await s.cycle()
                    #expect(try Self.count(vault, current) == 0, "the end is written to the new vault")
                    try VaultConsistency.expectConsistent(vault)
                }
            }
        }

        @Test func whatEndedWhileTheVaultWasAwayIsEndDatedWhenItIsBack() async throws {
            try await Faults.withSeparateVault(maxBuffered: 100) { s, vaultDB in
                let c = try await Faults.Contention(s)
                try await c.addWaiter()
                try await c.addWaiter()
                try await s.cycle()

                try Faults.setVault(vaultDB, reachable: false)
                try await c.release()
                let ended = await s.monitor.runCycle()
                #expect(ended.assessments.isEmpty, "nobody blocks any more")
                #expect(ended.vaultFailure?.code == .unavailable && ended.pendingWrites == 1, "\(ended.vaultError ?? "")")
                let endedAt = try #require(ended.snapshot).capturedAt
                let steady = await s.monitor.runCycle()
                #expect(steady.pendingWrites == 2)

                try Faults.setVault(vaultDB, reachable: true)
                try await Faults.drain(s.monitor)
                let vault = try LiveDatabase.connect(database: vaultDB)
                defer { vault.close() }
                #expect(try Self.count(vault, "SELECT count(*) AS n FROM lock_monitoring.blocking_session_s WHERE load_end_date IS NULL") == 0,
                        "the blocker that stopped while the vault was away is not current")
                #expect(try Self.count(vault, "SELECT count(*) AS n FROM lock_monitoring.lock_activity_s WHERE NOT lock_granted AND load_end_date IS NULL") == 0,
                        "nor are the waits")
                let ends = try vault.query("SELECT DISTINCT load_end_date AS e FROM lock_monitoring.blocking_session_s").map { try $0.decode("e", as: Date?.self) }
                #expect(ends.count == 1 && Faults.same(ends[0], endedAt), "ended at the cycle that first saw it end: \(ends)")
                #expect(try Self.count(vault, "SELECT count(*) AS n FROM lock_monitoring.blocking_session_s") == 1, "one version, written once")
                try VaultConsistency.expectConsistent(vault)
            }
        }
    }
}
