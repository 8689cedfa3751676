import Foundation
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// 200 client sessions fighting over five rows (pgbench), the real daemon at 1 Hz watching.
    ///
    /// `LOCKVAULT_TEST_LOAD_SECONDS` sets the length: 20 s by default (CI), 300 for the full
    /// five-minute run (`LOCKVAULT_TEST_LOAD_SECONDS=300 scripts/test.sh --filter LoadLiveTests`).
    @Suite struct LoadLiveTests {
        static var seconds: Int { Int(ProcessInfo.processInfo.environment["LOCKVAULT_TEST_LOAD_SECONDS"] ?? "") ?? 20 }

        static func rssKiB(_ pid: Int32) -> Int? {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
            return Int(line.split(separator: " ").dropFirst().first ?? "")
        }

        static var pgbench: String {
            let bin = ProcessInfo.processInfo.environment["LOCKVAULT_PGBIN"] ?? "/usr/lib/postgresql/15/bin"
            return bin + "/pgbench"
        }

        @Test func twoHundredContendingSessionsEveryCycleCompletesMemoryFlatVaultConsistent() async throws {
            let seconds = Self.seconds
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                try Migrator().apply(on: admin)
                try admin.executeScript("CREATE TABLE hot (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO hot SELECT g, 0 FROM generate_series(1, 5) g")
                let script = FileManager.default.temporaryDirectory.appendingPathComponent("lv-load-\(UUID().uuidString.prefix(8)).sql").path
                try """
                    \\set id random(1, 5)
                    BEGIN;
                    UPDATE hot SET v = v + 1 WHERE id = :id;
                    SELECT pg_sleep(0.02);
                    COMMIT;
                    """.write(toFile: script, atomically: true, encoding: .utf8)
                defer { unlink(script) }
                let port = try WebhookReceiver.freePort()
                let configPath = try DaemonProcess.writeConfig("""
                    target: { dsn: "dbname=\(db)" }
                    sampling: { interval_seconds: 1 }
                    metrics: { listen: "127.0.0.1:\(port)" }
                    """)
                defer { unlink(configPath) }
                let daemon = try DaemonProcess(arguments: ["run", "--config", configPath])
                try await waitUntil("the daemon serves metrics", timeout: .seconds(20)) {
                    (try? HTTPWire.get(port: port, path: "/metrics").0) == 200
                }

                let load = Task.detached {
                    DaemonLiveTests.spawnAndWait(Self.pgbench, ["-n", "-c", "200", "-j", "2", "-T", "\(seconds)", "-f", script, "-d", db])
                }
                var rss: [Int] = []
                var sawWaiters = 0
                let clock = ContinuousClock()
                let end = clock.now + .seconds(seconds)
                while clock.now < end {
                    if let kib = Self.rssKiB(daemon.process.processIdentifier) { rss.append(kib) }
                    if let m = try? PrometheusText(HTTPWire.get(port: port, path: "/metrics").1) {
                        sawWaiters = max(sawWaiters, Int(m.value("lockvault_blocked_sessions") ?? 0))
                    }
                    try await Task.sleep(for: .seconds(1))
                }
                let pgbenchStatus = await load.value
                #expect(pgbenchStatus == 0, "pgbench failed (exit \(pgbenchStatus))")
                #expect(daemon.process.isRunning, "\(daemon.output.suffix(2000))")
                #expect(sawWaiters >= 50, "the load produced contention (most sessions queued): saw at most \(sawWaiters) waiting")

                // Every cycle completed: at 1 Hz, about one per second, and none failed.
                let m = try PrometheusText(HTTPWire.get(port: port, path: "/metrics").1)
                let ok = m.value("lockvault_cycles_total", ["outcome": "ok"]) ?? 0
                #expect(ok >= Double(seconds) * 0.8, "\(ok) ok cycles in \(seconds) s")
                #expect(m.value("lockvault_cycles_total", ["outcome": "target_error"]) == 0)
                #expect(m.value("lockvault_cycles_total", ["outcome": "vault_error"]) == 0)

                // Memory stays flat: the last quarter's peak within 25 % (+8 MiB) of the first quarter's.
                let quarter = max(1, rss.count / 4)
                let early = rss.prefix(quarter).max() ?? 0, late = rss.suffix(quarter).max() ?? 0
                print("load: \(seconds) s, \(Int(ok)) cycles, max waiting \(sawWaiters), RSS early \(early) KiB, late \(late) KiB, samples \(rss)")
                #expect(late <= early + early / 4 + 8192, "RSS grew from \(early) KiB to \(late) KiB")

                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(timeout: .seconds(20)) == 0)

                // The vault is consistent: no two current rows for one key, no satellite without its hub.
                for (sat, hk, hub) in [("lock_activity_s", "lock_activity_hk", "lock_activity_h"), ("blocking_session_s", "blocking_session_hk", "blocking_session_h"),
                                       ("deadlock_event_s", "deadlock_event_hk", "deadlock_event_h"), ("monitor_cycle_s", "cluster_hk", "monitored_cluster_h")] {
                    let twoCurrent = try admin.query("""
                        SELECT count(*) AS n FROM (SELECT \(hk) FROM lock_monitoring.\(sat) WHERE load_end_date IS NULL GROUP BY 1 HAVING count(*) > 1) d
                        """)[0].decode("n", as: Int.self)
                    #expect(twoCurrent == 0, "\(sat): keys with two current rows")
                    let orphans = try admin.query("""
                        SELECT count(*) AS n FROM lock_monitoring.\(sat) s WHERE NOT EXISTS (SELECT 1 FROM lock_monitoring.\(hub) h WHERE h.\(hk) = s.\(hk))
                        """)[0].decode("n", as: Int.self)
                    #expect(orphans == 0, "\(sat): rows without a hub")
                }
                let blockers = try admin.query("SELECT count(*) AS n FROM lock_monitoring.blocking_session_h")[0].decode("n", as: Int.self)
                #expect(blockers > 0, "the history recorded the blockers")
            }
        }
    }
}
