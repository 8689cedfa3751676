import Foundation
import LockvaultEngine
import PostgresClient
import Synchronization
import TestSupport
import Testing

extension LiveDatabaseSuite {
    /// The daemon at 1 Hz next to 200 client sessions fighting over ten rows, an advisory key
    /// and, now and then, the whole table. `LOCKVAULT_TEST_LOAD_SECONDS` sets how long (default 20;
    /// 300 for the full five-minute run), `LOCKVAULT_TEST_LOAD_SESSIONS` how many sessions (200).
    @Suite struct LoadLiveTests {
        static var seconds: Int { Int(ProcessInfo.processInfo.environment["LOCKVAULT_TEST_LOAD_SECONDS"] ?? "") ?? 20 }
        static var sessions: Int { Int(ProcessInfo.processInfo.environment["LOCKVAULT_TEST_LOAD_SESSIONS"] ?? "") ?? 200 }

        /// One client's loop: short transactions on random rows (sometimes two, in random
        /// order, so deadlocks happen), advisory locks, and — for client 0 — a SHARE lock on the
        /// whole table that queues everyone behind it. Errors (deadlock victims) roll back and go on.
        final class Shared: Sendable {
            let stop = Mutex(false)
            let transactions = Mutex(0)
        }

        static func client(_ index: Int, _ session: BackgroundSession, _ shared: Shared) async {
            var rng = SystemRandomNumberGenerator()
            while !shared.stop.withLock({ $0 }) {
                let sleep = String(format: "%.3f", Double.random(in: 0.01...0.08, using: &rng))
                let a = Int.random(in: 1...10, using: &rng), b = Int.random(in: 1...10, using: &rng)
                let statements: [String]
                switch (index, Int.random(in: 0..<10, using: &rng)) {
                case (0, _):
                    statements = ["BEGIN", "LOCK TABLE hot IN SHARE MODE", "SELECT pg_sleep(0.3)", "COMMIT", "SELECT pg_sleep(1.5)"]
                case (_, 0..<6):
                    statements = ["BEGIN", "UPDATE hot SET n = n + 1 WHERE id = \(a)", "SELECT pg_sleep(\(sleep))", "COMMIT"]
                case (_, 6..<8):
                    statements = ["BEGIN", "UPDATE hot SET n = n + 1 WHERE id = \(a)", "SELECT pg_sleep(\(sleep))",
                                  "UPDATE hot SET n = n + 1 WHERE id = \(b)", "COMMIT"]
                default:
                    statements = ["BEGIN", "SELECT pg_advisory_xact_lock(hashtext('load:\(a % 3)'))", "SELECT pg_sleep(\(sleep))", "COMMIT"]
                }
                do {
                    try await session.session.withConnection { conn in
                        do {
                            for s in statements { try conn.execute(s) }
                        } catch {
                            _ = try? conn.execute("ROLLBACK")
                            throw error
                        }
                    }
                    shared.transactions.withLock { $0 += 1 }
                } catch {
                    // A deadlock victim or a cancelled statement: the next transaction starts over.
                }
            }
        }

        @Test func twoHundredContendingSessionsNextToTheDaemon() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                try Migrator().apply(on: admin)
                try EngineScenario.ensureLeastPrivilegedRole()
                try admin.executeScript("""
                    CREATE TABLE hot (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
                    INSERT INTO hot (id) SELECT generate_series(1, 10);
                    GRANT ALL ON hot TO PUBLIC;
                    """)

                // The real daemon, as the least-privileged role, at 1 Hz.
                let config = try writeTemporaryConfig("""
                    target: { dsn: "\(try LiveDatabase.conninfo(database: db, user: EngineScenario.leastPrivilegedRole))" }
                    sampling: { interval_seconds: 1.0 }
                    logging: { destination: json }
                    """)
                defer { unlink(config) }
                let listener = try NotifySocketListener()
                let daemon = try await ChildProcess(lockvault: ["run", "--config", config], environment: ["NOTIFY_SOCKET": listener.path])
                var statuses: [String] = []
                try await waitUntil("READY=1", timeout: .seconds(30), every: .milliseconds(1)) {
                    guard daemon.isRunning else { throw ScenarioError(message: "lockvault run exited: \(daemon.stderr)\(daemon.stdout.suffix(2000))") }
                    guard let m = listener.receive(timeout: .milliseconds(100)) else { return false }
                    if m.hasPrefix("STATUS=") { statuses.append(m) }
                    return m == "READY=1"
                }

                // The clients.
                let shared = Shared()
                var clients: [BackgroundSession] = []
                for i in 0..<Self.sessions {
                    clients.append(try await BackgroundSession(database: db, applicationName: "load-\(i)"))
                }
                let workers = clients.enumerated().map { i, session in
                    Task { await Self.client(i, session, shared) }
                }

                // Let the queues form before measuring.
                try await waitUntil("half the clients wait for a lock", timeout: .seconds(60), every: .milliseconds(200)) {
                    while let m = listener.receive(timeout: .milliseconds(1)) { if m.hasPrefix("STATUS=") { statuses.append(m) } }
                    return try admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0]
                        .decode("n", as: Int.self) >= Self.sessions / 2
                }

                // Run, sampling the daemon's memory once a second and collecting its STATUS lines.
                var rss: [Int] = []
                let clock = ContinuousClock()
                let end = clock.now + .seconds(Self.seconds)
                var nextSample = clock.now
                while clock.now < end {
                    if let m = listener.receive(timeout: .milliseconds(200)), m.hasPrefix("STATUS=") { statuses.append(m) }
                    if clock.now >= nextSample {
                        rss.append(try #require(daemon.residentKB, "the daemon is running"))
                        nextSample = nextSample + .seconds(1)
                    }
                }
                let maxWaiting = try admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0].decode("n", as: Int.self)
                shared.stop.withLock { $0 = true }
                for w in workers { await w.value }
                for c in clients { await c.close() }

                daemon.signal(SIGTERM)
                let result = try await daemon.waitForExit(timeout: .seconds(60))
                #expect(result.status == 0, "\(result.stderr.suffix(2000))")

                // Every cycle completed and was recorded: no degraded cycle, none hung.
                let cycles = statuses.filter { $0.hasPrefix("STATUS=ok:") || $0.hasPrefix("STATUS=degraded") }
                let degraded = cycles.filter { !$0.hasPrefix("STATUS=ok:") }
                #expect(degraded.isEmpty, "\(degraded.prefix(5))")
                #expect(cycles.count >= max(2, Self.seconds / 5), "cycles kept coming: \(cycles.count) in \(Self.seconds) s")
                #expect(cycles.contains { !$0.hasPrefix("STATUS=ok: 0 blockers") }, "the daemon saw the contention")
                #expect(shared.transactions.withLock { $0 } > Self.sessions, "the clients got work done")
                print("load: \(Self.sessions) sessions for \(Self.seconds) s: \(cycles.count) cycles, \(shared.transactions.withLock { $0 }) transactions, "
                      + "\(maxWaiting) waiting at the end; daemon RSS kB per second: \(rss)")

                // Memory stays flat: after a warm-up third (allocator arenas, the snapshot growing
                // with the queues), the last third never exceeds the middle third's peak by more
                // than 10 % + 4 MB (a per-cycle leak would show here).
                let third = rss.count / 3
                let middlePeak = rss.dropFirst(third).prefix(max(1, third)).max() ?? 0
                let lastPeak = rss.suffix(max(1, third)).max() ?? 0
                #expect(lastPeak <= middlePeak + middlePeak / 10 + 4096, "RSS kB over time: \(rss)")

                // And the vault is consistent.
                try VaultConsistency.expectConsistent(admin)
                let recorded = try admin.query("SELECT count(*) AS n FROM lock_monitoring.blocking_session_s")[0].decode("n", as: Int.self)
                #expect(recorded > 0)
            }
        }
    }
}
