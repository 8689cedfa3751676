import Foundation
import LockvaultCore
import LockvaultEngine
import LockvaultDaemon
import PostgresClient
import Testing
import TestSupport

extension LiveDatabaseSuite {
    /// Deadlocks nobody sampled (between cron runs of `lockvault sample --once`), and deadlocks
    /// in server logs of any `log_line_prefix`, csvlog and jsonlog: each exactly one event.
    @Suite struct DeadlockCoverageLiveTests {
        static func events(_ conn: PostgresConnection) throws -> PostgresResult {
            try conn.query("""
                SELECT h.database_name, h.event_key, s.detected_at, array_to_string(s.sources, ',') AS sources, s.participant_pids,
                       s.victim_pid, s.details
                FROM lock_monitoring.deadlock_event_h h JOIN lock_monitoring.deadlock_event_s s USING (deadlock_event_hk)
                WHERE s.load_end_date IS NULL
                """)
        }

        /// The seed's way of working: a cron job. A deadlock between two runs is recorded by
        /// the second, as a counter-only event timed between the first run's reading and now.
        @Test func sampleOnceCountsADeadlockThatHappenedBetweenRuns() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                try Migrator().apply(on: admin)
                try EngineScenario.ensureLeastPrivilegedRole()
                try admin.executeScript("CREATE TABLE dl (id int PRIMARY KEY, v int); INSERT INTO dl VALUES (1, 0), (2, 0)")
                let dsn = try LiveDatabase.conninfo(database: db, user: EngineScenario.leastPrivilegedRole)

                let first = try await ChildProcess.lockvault(["sample", "--once", "--dsn", dsn])
                #expect(first.status == 0, "\(first)")
                #expect(first.stdout.contains("deadlocks_detected=0"), "\(first)")
                let t1 = try admin.query("SELECT max(last_cycle_at) AS t FROM lock_monitoring.monitor_cycle_s")[0].decode("t", as: Date.self)

                // Nobody samples now.
                let before = try RealDeadlock.counter(db)
                _ = try await RealDeadlock.provoke(database: db)
                try await RealDeadlock.waitForCounter(db, above: before)

                let second = try await ChildProcess.lockvault(["sample", "--once", "--dsn", dsn])
                #expect(second.status == 0, "\(second)")
                #expect(second.stdout.contains("deadlocks_detected=1"), "\(second)")
                let rows = try Self.events(admin)
                try #require(rows.count == 1, "one deadlock, one event")
                let row = rows[0]
                #expect(try row.decode("database_name", as: String.self) == db)
                #expect(try row.decode("sources", as: String.self) == "counter")
                #expect(try row.decode("participant_pids", as: [Int32].self).isEmpty)
                let t2 = try row.decode("detected_at", as: Date.self)
                #expect(t2 > t1)
                let details = try row.decode("details", as: String.self)
                #expect(details.contains("between \(VaultHash.timestamp(t1)) and \(VaultHash.timestamp(t2))"), "\(details)")
                #expect(details.contains("from \(before) to \(before + 1)"), "\(details)")

                // A third run finds nothing new.
                let third = try await ChildProcess.lockvault(["sample", "--once", "--dsn", dsn])
                #expect(third.status == 0 && third.stdout.contains("deadlocks_detected=0"), "\(third)")
                #expect(try Self.events(admin).count == 1)
            }
        }
    
        /// Sets a server parameter on the test cluster and reloads; waits until new sessions see it.
        static func setServer(_ name: String, _ value: String?) async throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            if let value {
                try admin.execute("ALTER SYSTEM SET \(name) = '\(value.replacingOccurrences(of: "'", with: "''"))'")
            } else {
                try admin.execute("ALTER SYSTEM RESET \(name)")
            }
            _ = try admin.query("SELECT pg_reload_conf()")
            // What the configuration files now say (postgresql.conf's value once reset).
            let files = try admin.query("SELECT setting FROM pg_file_settings WHERE name = $1 ORDER BY seqno DESC LIMIT 1", [name])
            let expected = try value ?? files.first?.decode("setting", as: String.self)
            try await waitUntil("\(name) reloaded", timeout: .seconds(20), every: .milliseconds(50)) {
                let fresh = try LiveDatabase.connect()
                defer { fresh.close() }
                return try fresh.query("SELECT current_setting($1) AS v", [name])[0].decode("v", as: String.self) == expected
            }
        }

        /// One real deadlock under the server's current logging, read from `log`: exactly one
        /// event (counter and server log merged) with the database, participants, victim and
        /// queries, and exactly one alert that names the database.
        static func expectOneEventAndOneAlert(log: String, kind: RealDeadlock.Kind = .rows, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            try await EngineScenario.run(serverLog: log) { s in
                var tracker = AlertTracker(policy: AlertPolicy(), cluster: "test")
                var alerts: [Alert] = []
                func cycle() async throws {
                    let o = try await s.cycle()
                    if let snapshot = o.snapshot { alerts += tracker.observe(snapshot, assessments: o.assessments, deadlocks: o.deadlocks).filter { $0.kind == .deadlock } }
                }
                try await cycle()   // baseline: counters and log position
                let before = try RealDeadlock.counter(s.database)
                let deadlock = try await RealDeadlock.provoke(database: s.database, kind: kind) { try await cycle() }
                try await RealDeadlock.waitForCounter(s.database, above: before)
                var seen: [String] = []
                do {
                    try await waitUntil("deadlock recorded from counter and server log", timeout: .seconds(30), every: .milliseconds(150)) {
                        try await cycle()
                        seen = try Self.events(s.admin).map { try $0.decode("sources", as: String.self) }
                        return seen.count == 1 && seen[0].contains("counter") && seen[0].contains("server_log")
                    }
                } catch {
                    Issue.record("recorded so far: \(seen)", sourceLocation: sourceLocation)
                    throw error
                }
                for _ in 0..<3 { try await cycle() }
                let rows = try Self.events(s.admin)
                try #require(rows.count == 1, "one deadlock, one event: \(seen)", sourceLocation: sourceLocation)
                #expect(try s.rows("SELECT count(*) AS n FROM lock_monitoring.deadlock_event_h")[0].decode("n", as: Int.self) == 1, sourceLocation: sourceLocation)
                let row = rows[0]
                #expect(try row.decode("database_name", as: String.self) == s.database, sourceLocation: sourceLocation)
                #expect(try row.decode("participant_pids", as: [Int32].self).sorted() == deadlock.pids.sorted(), sourceLocation: sourceLocation)
                #expect(try row.decode("victim_pid", as: Int32?.self) == deadlock.victim, sourceLocation: sourceLocation)
                let details = try row.decode("details", as: String.self)
                for (pid, query) in deadlock.queries {
                    #expect(details.contains("Process \(pid): \(query)"), "\(details)", sourceLocation: sourceLocation)
                }
                try #require(alerts.count == 1, "one deadlock, one alert: \(alerts.map(\.summary))", sourceLocation: sourceLocation)
                #expect(alerts[0].summary.contains("deadlock in database \(s.database) between pids"), "\(alerts[0].summary)", sourceLocation: sourceLocation)
                // Raised when the deadlock is first seen: from a live cycle, before the server log
                // names the victim, or from the log with it.
                #expect(alerts[0].deadlock?.pids.sorted() == deadlock.pids.sorted(), sourceLocation: sourceLocation)
                #expect(alerts[0].deadlock?.victimPid == nil || alerts[0].deadlock?.victimPid == deadlock.victim, sourceLocation: sourceLocation)
            }
        }

        /// Real prefixes: Debian's default, two common ones without %d, one with %l and %v, and
        /// one with the epoch, SQLSTATE and backend type.
        static let prefixes: [(prefix: String, kind: RealDeadlock.Kind)] = [
            ("%m [%p] %q%u@%d ", .rows),
            ("%t [%p]: ", .rows),
            ("%m [%p] %a ", .tables),
            ("%m [%p-%l] %q%v %x %a ", .rows),
            ("%n %e [%p] %b user=%u ", .tables),
        ]

        @Test(arguments: 0..<DeadlockCoverageLiveTests.prefixes.count)
        func oneEventAndOneAlertWhateverTheLogLinePrefix(_ index: Int) async throws {
            let log = try #require(LiveDatabase.serverLogPath, "the test harness sets LOCKVAULT_TEST_SERVER_LOG")
            let (prefix, kind) = Self.prefixes[index]
            try await Self.setServer("log_line_prefix", prefix)
            do {
                try await Self.expectOneEventAndOneAlert(log: log, kind: kind)
            } catch {
                try? await Self.setServer("log_line_prefix", nil)
                throw error
            }
            try await Self.setServer("log_line_prefix", nil)
        }

        /// Through the real daemon, under a prefix without %d: one deadlock, one event, one alert
        /// delivered to a sink, naming the database.
        @Test func theDaemonAlertsOnceForADeadlockInALogWithoutDatabaseNames() async throws {
            let log = try #require(LiveDatabase.serverLogPath, "the test harness sets LOCKVAULT_TEST_SERVER_LOG")
            try await Self.setServer("log_line_prefix", "%m [%p] %a ")
            do {
                try await LiveDatabase.withTemporaryDatabase { db in
                    let admin = try LiveDatabase.connect(database: db)
                    defer { admin.close() }
                    try Migrator().apply(on: admin)
                    let alertFile = FileManager.default.temporaryDirectory.appendingPathComponent("lv-dl-alerts-\(UUID().uuidString.prefix(8))").path
                    defer { unlink(alertFile) }
                    let configPath = try writeTemporaryConfig("""
                        target: { dsn: "dbname=\(db)" }
                        sampling:
                          interval_seconds: 0.2
                          server_log: { path: "\(log)" }
                        alerts:
                          sinks:
                            - {name: file, type: command, command: ["/bin/sh", "-c", "cat >> '\(alertFile)'; echo >> '\(alertFile)'"]}
                        """)
                    defer { unlink(configPath) }
                    let daemon = try await ChildProcess(lockvault: ["run", "--config", configPath])
                    try await waitUntil("the daemon records its first cycle", timeout: .seconds(30), every: .milliseconds(100)) {
                        try !admin.query("SELECT 1 FROM lock_monitoring.monitor_cycle_s").isEmpty
                    }
                    let before = try RealDeadlock.counter(db)
                    let deadlock = try await RealDeadlock.provoke(database: db)
                    try await RealDeadlock.waitForCounter(db, above: before)
                    try await waitUntil("the event has the counter and the server log", timeout: .seconds(30), every: .milliseconds(100)) {
                        let sources = try Self.events(admin).map { try $0.decode("sources", as: String.self) }
                        return sources.contains { $0.contains("counter") && $0.contains("server_log") }
                    }
                    try await waitUntil("every deadlock alert is delivered and audited", timeout: .seconds(30), every: .milliseconds(100)) {
                        let n = try admin.query("""
                            SELECT (SELECT count(*) FROM lock_monitoring.alert_event_s WHERE kind = 'deadlock') AS raised,
                                   (SELECT count(*) FROM lock_monitoring.alert_delivery_s WHERE kind = 'deadlock' AND outcome = 'delivered') AS delivered
                            """)[0]
                        return try n.decode("raised", as: Int.self) > 0 && n.decode("raised", as: Int.self) == n.decode("delivered", as: Int.self)
                    }
                    daemon.signal(SIGTERM)
                    #expect(try await daemon.waitForExit().status == 0)

                    let rows = try Self.events(admin)
                    #expect(rows.count == 1, "one deadlock, one event")
                    #expect(try rows.first?.decode("database_name", as: String.self) == db)
                    #expect(try rows.first?.decode("participant_pids", as: [Int32].self).sorted() == deadlock.pids.sorted())
                    let lines = ((try? String(contentsOfFile: alertFile, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains("\"kind\":\"deadlock\"") }
                    try #require(lines.count == 1, "one deadlock, one alert: \(lines)")
                    #expect(lines[0].contains("deadlock in database \(db) between pids"), "\(lines[0])")
                }
            } catch {
                try? await Self.setServer("log_line_prefix", nil)
                throw error
            }
            try await Self.setServer("log_line_prefix", nil)
        }

        /// csvlog and jsonlog need the logging collector, which takes a server restart: once
        /// for both, and once more to put the test cluster's stderr log back. jsonlog where the
        /// server has it (15 on); csvlog everywhere.
        @Test func oneEventAndOneAlertFromCsvlogAndJsonlog() async throws {
            let data = try #require(ProcessInfo.processInfo.environment["LOCKVAULT_TEST_PGDATA"], "the test harness sets LOCKVAULT_TEST_PGDATA")
            let probe = try LiveDatabase.connect()
            let jsonLog = probe.capabilities.has(.jsonLog)
            probe.close()
            func restart(collector: Bool) async throws {
                let admin = try LiveDatabase.connect()
                if collector {
                    try admin.execute("ALTER SYSTEM SET logging_collector = on")
                    try admin.execute("ALTER SYSTEM SET log_destination = '\(jsonLog ? "stderr,csvlog,jsonlog" : "stderr,csvlog")'")
                } else {
                    try admin.execute("ALTER SYSTEM RESET logging_collector")
                    try admin.execute("ALTER SYSTEM RESET log_destination")
                }
                admin.close()
                let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                let script = root.appendingPathComponent("scripts/pg-cluster.sh").path
                let status = await ChildProgram([script, "restart"]).run(stdin: [], timeout: .seconds(120))
                try #require(status == .exited(0), "scripts/pg-cluster.sh restart")
            }
            try await restart(collector: true)
            do {
                let admin = try LiveDatabase.connect()
                let csv = try admin.query("SELECT pg_current_logfile('csvlog') AS f")[0].decode("f", as: String.self)
                let json = jsonLog ? try admin.query("SELECT pg_current_logfile('jsonlog') AS f")[0].decode("f", as: String.self) : nil
                admin.close()
                for file in [csv] + (json.map { [$0] } ?? []) {
                    let path = file.hasPrefix("/") ? file : "\(data)/\(file)"
                    try await Self.expectOneEventAndOneAlert(log: path, kind: .rows)
                }
            } catch {
                try? await restart(collector: false)
                throw error
            }
            try await restart(collector: false)
        }
    }
}
