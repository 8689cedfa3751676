import Foundation
import LockvaultCore
import LockvaultDaemon
import LockvaultEngine
import Logging
import PostgresClient
import TestSupport
import Testing

extension LiveDatabaseSuite {
    /// Alerts, metrics and doctor through the real binary against the real server.
    @Suite struct AlertsLiveTests {
        static func lines(_ path: String) -> [String] {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        static func kinds(_ jsonLines: [String]) -> [String] {
            jsonLines.compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["kind"] as? String
            }
        }

        /// Timestamps of the daemon's per-cycle debug events.
        static func cycleTimes(_ output: String) -> [Date] {
            let iso = ISO8601DateFormatter()
            iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return output.split(separator: "\n").compactMap { line in
                guard line.contains("\"msg\":\"cycle\""), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let ts = object["ts"] as? String else { return nil }
                return iso.date(from: ts)
            }
        }

        static func scrape(_ port: UInt16) async throws -> PrometheusText {
            let (status, body) = try await LoopbackHTTP.get(port: port, path: "/metrics")
            guard status == 200 else { throw PrometheusText.Invalid(description: "GET /metrics answered \(status)") }
            return try PrometheusText(body)
        }

        @Test func blockerEscalationClearAndDeadlockEachAlertOnceAndSlowSinksDontDelayCycles() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                try Migrator().apply(on: admin)
                try admin.executeScript("CREATE TABLE orders (id int PRIMARY KEY, v int); INSERT INTO orders VALUES (1, 0), (2, 0)")

                let hook = try await WebhookReceiver(.ok), broken = try await WebhookReceiver(.status(500)), stuck = try await WebhookReceiver(.hang)
                defer { hook.stop(); broken.stop(); stuck.stop() }
                let alertFile = FileManager.default.temporaryDirectory.appendingPathComponent("lv-alerts-\(UUID().uuidString.prefix(8)).jsonl").path
                defer { unlink(alertFile) }
                let metricsPort = try await LoopbackHTTP.freePort()
                let configPath = try writeTemporaryConfig("""
                    target: { dsn: "dbname=\(db)" }
                    sampling: { interval_seconds: 0.5, lock_timeout_ms: 600000, statement_timeout_ms: 600000 }
                    severity: { medium_after_seconds: 1, high_after_seconds: 2, critical_after_seconds: 5, idle_in_transaction_factor: 1, exclusive_lock_escalates: false }
                    alerts:
                      min_severity: HIGH
                      clear_after_seconds: 0
                      sinks:
                        - {name: file, type: command, command: ["/bin/sh", "-c", "cat >> '\(alertFile)'"]}
                        - {name: hook, type: webhook, url: "\(hook.url)"}
                        - {name: broken, type: webhook, url: "\(broken.url)", retries: 1, timeout_ms: 1000}
                        - {name: stuck, type: webhook, url: "\(stuck.url)", retries: 0, timeout_ms: 10000}
                    metrics: { listen: "127.0.0.1:\(metricsPort)" }
                    logging: { level: debug }
                    """)
                defer { unlink(configPath) }
                let listener = try NotifySocketListener()
                let daemon = try await ChildProcess(lockvault: ["run", "--config", configPath], environment: ["NOTIFY_SOCKET": listener.path], combinedOutput: true)
                var log: [String] = []
                _ = try DaemonLiveTests.expect(listener, "READY=1", into: &log) { $0 == "READY=1" }
                let quiet = try await Self.scrape(metricsPort)
                #expect(quiet.types["lockvault_cycle_duration_seconds"] == "histogram")
                #expect(quiet.value("lockvault_blockers", ["severity": "CRITICAL"]) == 0)
                #expect(quiet.value("lockvault_alert_deliveries_total", ["sink": "stuck", "outcome": "failed"]) == 0)

                // An idle-in-transaction blocker: HIGH after 2 s (raised), CRITICAL after 5 s (escalated).
                let blocker = try await BackgroundSession(database: db, applicationName: "lv-alert-blocker")
                let waiter = try await BackgroundSession(database: db, applicationName: "lv-alert-waiter")
                try await blocker.run("BEGIN", "LOCK TABLE orders IN ROW EXCLUSIVE MODE")
                try await waiter.run("BEGIN")
                let waiting = waiter.start("LOCK TABLE orders IN SHARE MODE")
                do {
                    try await waitUntil("raised and escalated reach the command sink", timeout: .seconds(30)) {
                        Self.kinds(Self.lines(alertFile)) == ["raised", "escalated"]
                    }
                } catch {
                    let alerts = daemon.output.split(separator: "\n").filter { $0.contains("alert") || $0.contains("error") }.suffix(10)
                    Issue.record("command sink got: \(Self.lines(alertFile)); daemon said: \(alerts)")
                    throw error
                }
                // The metrics describe the same situation.
                let during = try await Self.scrape(metricsPort)
                #expect(during.value("lockvault_blockers", ["severity": "CRITICAL"]) == 1)
                #expect(during.value("lockvault_blockers", ["severity": "HIGH"]) == 0)
                #expect(during.value("lockvault_blocked_sessions") == 1)
                #expect(during.value("lockvault_lock_waits", ["locktype": "relation", "mode": "ShareLock"]) == 1)
                #expect((during.value("lockvault_longest_wait_seconds") ?? 0) >= 5)
                #expect(during.value("lockvault_connection_up", ["connection": "target"]) == 1)
                #expect(during.value("lockvault_connection_up", ["connection": "vault"]) == 1)
                #expect((during.value("lockvault_cycles_total", ["outcome": "ok"]) ?? 0) >= 5)
                #expect(during.value("lockvault_cycle_duration_seconds_count") == during.value("lockvault_cycles_total", ["outcome": "ok"]))
                #expect(during.value("lockvault_alerts_total", ["kind": "raised"]) == 1)
                #expect(during.value("lockvault_alerts_total", ["kind": "escalated"]) == 1)

                let raised = try #require(Self.lines(alertFile).first.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
                let who = try #require(raised["blocker"] as? [String: Any])
                #expect(who["pid"] as? Int == Int(blocker.pid))
                #expect(who["application_name"] as? String == "lv-alert-blocker")
                #expect(raised["blocked_count"] as? Int == 1)
                #expect(raised["relation"] as? String == "public.orders")

                // Release: the waiter gets its lock, the blocker is cleared.
                try await blocker.run("ROLLBACK")
                if case .failure(let error) = await waiting.value { Issue.record("the waiter failed: \(error)") }
                try await waiter.run("ROLLBACK")
                try await waitUntil("cleared", timeout: .seconds(20)) { Self.kinds(Self.lines(alertFile)) == ["raised", "escalated", "cleared"] }

                // A real deadlock: one alert.
                let a = try await BackgroundSession(database: db, applicationName: "lv-alert-dl-a")
                let b = try await BackgroundSession(database: db, applicationName: "lv-alert-dl-b")
                try await a.run("BEGIN", "UPDATE orders SET v = 1 WHERE id = 1")
                try await b.run("BEGIN", "UPDATE orders SET v = 2 WHERE id = 2")
                let aTask = a.start("UPDATE orders SET v = 1 WHERE id = 2")
                try await waitUntil("a waits") {
                    try !admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", [a.pid]).isEmpty
                }
                let bTask = b.start("UPDATE orders SET v = 2 WHERE id = 1")
                _ = await (aTask.value, bTask.value)
                try await a.run("ROLLBACK"); try await b.run("ROLLBACK")
                try await waitUntil("the deadlock alert", timeout: .seconds(30)) { Self.kinds(Self.lines(alertFile)).contains("deadlock") }

                // Some more cycles: nothing new (one alert per state change, never one per cycle).
                let cyclesSoFar = Self.cycleTimes(daemon.output).count
                try await waitUntil("six more cycles", timeout: .seconds(20)) { Self.cycleTimes(daemon.output).count >= cyclesSoFar + 6 }
                #expect(Self.kinds(Self.lines(alertFile)) == ["raised", "escalated", "cleared", "deadlock"])
                try await waitUntil("the webhook got the same four", timeout: .seconds(20)) { hook.bodies.count >= 4 }
                #expect(Self.kinds(hook.bodies) == ["raised", "escalated", "cleared", "deadlock"])
                let ids = Self.lines(alertFile).compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["alert_id"] as? String }
                #expect(Set(ids.prefix(3)).count == 1, "raise, escalation and clear share the incident's id")

                // Failing sinks: retried, counted, recorded — and cycles kept their rhythm throughout: the
                // hanging sink holds each alert 10 s, so a cycle that waited for it would leave a gap of
                // 10 s or more; a loaded machine can stretch a 0.5 s cycle to a few seconds, not that.
                try await waitUntil("failures are counted", timeout: .seconds(30)) {
                    let m = try await Self.scrape(metricsPort)
                    return (m.value("lockvault_alert_deliveries_total", ["sink": "broken", "outcome": "failed"]) ?? 0) >= 4
                        && (m.value("lockvault_alert_deliveries_total", ["sink": "stuck", "outcome": "failed"]) ?? 0) >= 1
                }
                #expect(broken.bodies.count == 8, "4 alerts × (1 attempt + 1 retry)")
                let after = try await Self.scrape(metricsPort)
                #expect(after.value("lockvault_alert_deliveries_total", ["sink": "file", "outcome": "delivered"]) == 4)
                #expect(after.value("lockvault_alert_deliveries_total", ["sink": "hook", "outcome": "delivered"]) == 4)
                #expect((after.value("lockvault_deadlocks_total") ?? 0) >= 1)
                // Every series the Grafana dashboard queries exists (resolve decisions need the resolver on).
                let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                let dashboard = try String(contentsOf: root.appendingPathComponent("docs/grafana-dashboard.json"), encoding: .utf8)
                let queried = Set(dashboard.matches(of: /lockvault_[a-z_]+/).map { String($0.output) }).subtracting(["lockvault_resolve_decisions_total"])
                let exposed = Set(after.samples.map(\.name))
                #expect(queried.subtracting(exposed).isEmpty, "the dashboard queries series lockvault doesn't expose: \(queried.subtracting(exposed).sorted())")
                let times = Self.cycleTimes(daemon.output)
                let gaps = zip(times.dropFirst(), times).map { $0.timeIntervalSince($1) }
                #expect(times.count >= 10, "enough cycles for the gap check to mean something")
                #expect((gaps.max() ?? 0) < 8, "a cycle waited for a sink: largest gap \(gaps.max() ?? 0) s")

                // The audit trail.
                try await waitUntil("deliveries recorded in the vault", timeout: .seconds(20)) {
                    try admin.query("SELECT count(*) AS n FROM lock_monitoring.alert_delivery_s WHERE sink IN ('file', 'hook', 'broken')")[0].decode("n", as: Int.self) == 12
                }
                let audit = try admin.query("SELECT kind, deliveries FROM lock_monitoring.alerts_dashboard ORDER BY event_at")
                #expect(try audit.map { try $0.decode("kind", as: String.self) } == ["raised", "escalated", "cleared", "deadlock"])
                let first = try audit[0].decode("deliveries", as: String.self)
                #expect(first.contains("broken: failed after 2 attempts") && first.contains("file: delivered") && first.contains("hook: delivered"), "\(first)")
                #expect(daemon.output.contains("\"msg\":\"alert delivery failed\""))

                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(timeout: .seconds(20)).status == 0, "\(daemon.output.suffix(1500))")
                for s in [blocker, waiter, a, b] { await s.close() }
            }
        }

        /// The default: CRITICAL only. One CRITICAL blocker, many cycles: exactly one alert at each
        /// sink. (In-process Daemon: the same code `lockvault run` drives.)
        @Test func aCriticalBlockerAlertsExactlyOncePerSink() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                try Migrator().apply(on: admin)
                try admin.executeScript("CREATE TABLE orders (id int)")
                let hook = try await WebhookReceiver(.ok)
                defer { hook.stop() }
                let alertFile = FileManager.default.temporaryDirectory.appendingPathComponent("lv-alerts-\(UUID().uuidString.prefix(8)).jsonl").path
                defer { unlink(alertFile) }
                var config = LockvaultConfig()
                config.monitor.sampling.targetDSN = "dbname=\(db)"
                config.monitor.severity = SeverityPolicy(mediumAfterSeconds: 0.2, highAfterSeconds: 0.4, criticalAfterSeconds: 1, idleInTransactionFactor: 1, exclusiveLockEscalates: false)
                var file = AlertSinkSettings(name: "file", kind: .command)
                file.command = ["/bin/sh", "-c", "cat >> '\(alertFile)'"]
                var webhook = AlertSinkSettings(name: "hook", kind: .webhook)
                webhook.url = hook.url
                config.alerts.sinks = [file, webhook]
                #expect(config.alerts.policy.minSeverity == .critical)
                let engine = Daemon(config: config, configPath: "/nonexistent", logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
                let delivering = Task { try await engine.alerts.run() }
                defer { delivering.cancel() }

                let blocker = try await BackgroundSession(database: db, applicationName: "lv-crit-blocker")
                let waiter = try await BackgroundSession(database: db, applicationName: "lv-crit-waiter")
                try await blocker.run("BEGIN", "LOCK TABLE orders IN ROW EXCLUSIVE MODE")
                try await waiter.run("BEGIN")
                let waiting = waiter.start("LOCK TABLE orders IN SHARE MODE")
                try await waitUntil("the CRITICAL alert reaches both sinks", timeout: .seconds(20), every: .milliseconds(100)) {
                    let report = await engine.runCycle()
                    #expect(report.succeeded, "\(report.statusLine)")
                    return Self.lines(alertFile).count >= 1 && hook.bodies.count >= 1
                }
                for _ in 0..<10 { _ = await engine.runCycle() }
                #expect(Self.kinds(Self.lines(alertFile)) == ["raised"])
                #expect(Self.kinds(hook.bodies) == ["raised"])
                let alert = try #require(Self.lines(alertFile).first.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
                #expect(alert["severity"] as? String == "CRITICAL")
                #expect((alert["blocker"] as? [String: Any])?["pid"] as? Int == Int(blocker.pid))

                try await blocker.run("ROLLBACK")
                _ = await waiting.value
                try await waiter.run("ROLLBACK")
                await blocker.close(); await waiter.close()
                await engine.shutdown()
            }
        }

        @Test func doctorFailsTheMissingGrantAndNamesIt() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                try Migrator().apply(on: admin)
                let role = "lv_doctor_\(UInt32.random(in: 0...UInt32.max))"
                try admin.execute("CREATE ROLE \(role) LOGIN")
                defer { _ = try? admin.execute("DROP ROLE IF EXISTS \(role)") }
                try admin.execute("GRANT CONNECT ON DATABASE \(db) TO \(role)")
                try admin.execute("GRANT lock_writer_role TO \(role)")

                let lacking = try await ChildProcess(lockvault: ["doctor", "--dsn", "dbname=\(db) user=\(role)"], combinedOutput: true)
                #expect(try await lacking.waitForExit().status == 1)
                let report = lacking.output
                #expect(report.contains("[FAIL] pg_monitor: role \(role) lacks pg_monitor"), "\(report)")
                #expect(report.contains("fix: GRANT pg_monitor TO \(role);"), "\(report)")
                #expect(report.contains("[OK  ] vault schema"), "\(report)")
                #expect(report.contains("verdict: NOT ready"))

                try admin.execute("GRANT pg_monitor TO \(role)")
                let granted = try await ChildProcess(lockvault: ["doctor", "--dsn", "dbname=\(db) user=\(role)", "--json"], combinedOutput: true)
                #expect(try await granted.waitForExit().status == 0, "\(granted.output)")
                let object = try #require(try JSONSerialization.jsonObject(with: Data(granted.output.utf8)) as? [String: Any])
                let checks = try #require(object["checks"] as? [[String: String]])
                #expect(checks.first { $0["check"] == "pg_monitor" }?["verdict"] == "OK")
                #expect(checks.first { $0["check"] == "pg_signal_backend" }?["verdict"] == "WARN")
                #expect(checks.first { $0["check"] == "vault privileges" }?["verdict"] == "OK")

                let unreachable = try await ChildProcess(lockvault: ["doctor", "--dsn", "host=/nonexistent-dir dbname=x password=hunter2"], combinedOutput: true)
                #expect(try await unreachable.waitForExit().status == 69)
                #expect(!unreachable.output.contains("hunter2"))
            }
        }
    }
}
