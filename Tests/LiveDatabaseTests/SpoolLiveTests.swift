import Foundation
import LockvaultEngine
import PostgresClient
import Testing
import TestSupport

extension LiveDatabaseSuite {
    /// The real daemon loses nothing to a restart during a vault outage: what it buffered is
    /// in the spool (systemd's state directory), replayed in order, exactly once, when the
    /// vault is back.
    @Suite struct SpoolLiveTests {
        /// What the test reads back from a spool file.
        struct SpooledCycle: Decodable {
            var sequence: UInt64
            var capturedAt: Date
            var document: String

            var waiting: Int {
                let object = try? JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any]
                return ((object?["summary"] as? [String: Any])?["waiting_sessions"] as? Int) ?? -1
            }
        }

        static func spooled(_ directory: String) -> [SpooledCycle] {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("cycle-") && $0.hasSuffix(".json") }
            return names.sorted().compactMap { name in
                FileManager.default.contents(atPath: "\(directory)/\(name)").flatMap { try? JSONDecoder().decode(SpooledCycle.self, from: $0) }
            }
        }

        /// A target and a vault database (migrated), a least-privileged role, a table `t` in the
        /// target that the role may lock, and a state directory for the daemon's spool: what
        /// each kill -9 scenario starts from.
        static func withKillScenario(_ body: (_ target: String, _ vaultDB: String, _ role: String, _ state: String) async throws -> Void) async throws {
            try await LiveDatabase.withTemporaryDatabase { target in
                try await LiveDatabase.withTemporaryDatabase { vaultDB in
                    do {
                        let admin = try LiveDatabase.connect(database: vaultDB)
                        defer { admin.close() }
                        try Migrator().apply(on: admin)
                    }
                    try EngineScenario.ensureLeastPrivilegedRole()
                    let targetAdmin = try LiveDatabase.connect(database: target)
                    defer { targetAdmin.close() }
                    try targetAdmin.executeScript("CREATE TABLE t (id int); GRANT ALL ON t TO PUBLIC;")
                    let state = FileManager.default.temporaryDirectory.appendingPathComponent("lv-state-\(UUID().uuidString.prefix(8))").path
                    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
                    defer { try? FileManager.default.removeItem(atPath: state) }
                    try await body(target, vaultDB, EngineScenario.leastPrivilegedRole, state)
                }
            }
        }

        @Test func aKilledDaemonsBufferIsReplayedInOrderExactlyOnceAfterARestart() async throws {
            try await Self.withKillScenario { target, vaultDB, role, state in
                let spool = "\(state)/spool"
                let configPath = try writeTemporaryConfig("""
                    target: { dsn: "dbname=\(target) user=\(role)" }
                    vault: { dsn: "dbname=\(vaultDB) user=\(role)" }
                    sampling: { interval_seconds: 0.2 }
                    """)
                defer { unlink(configPath) }
                let environment = ["STATE_DIRECTORY": state]
                let vault = { try LiveDatabase.connect(database: vaultDB) }
                func waitingRows() throws -> [Int] {
                    let conn = try vault()
                    defer { conn.close() }
                    return try conn.query("SELECT waiting_sessions AS n FROM lock_monitoring.monitor_cycle_s ORDER BY load_date").map { try $0.decode("n", as: Int.self) }
                }

                // A holder, and waiters added one at a time: each count is a new cycle summary.
                let holder = try await BackgroundSession(database: target, applicationName: "spool-holder")
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let targetAdmin = try LiveDatabase.connect(database: target)
                defer { targetAdmin.close() }
                var waiters: [(BackgroundSession, Task<Result<Void, PostgresError>, Never>)] = []
                func addWaiter() async throws {
                    let w = try await BackgroundSession(database: target, applicationName: "spool-waiter-\(waiters.count + 1)")
                    waiters.append((w, w.start("SELECT count(*) FROM t")))
                    let n = waiters.count
                    try await waitUntil("\(n) waiters", timeout: .seconds(20)) {
                        try targetAdmin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = $1", [target])[0]
                            .decode("n", as: Int.self) == n
                    }
                }
                defer {
                    for (w, _) in waiters { Task { await w.close() } }
                    Task { await holder.close() }
                }

                let first = try await ChildProcess(lockvault: ["run", "--config", configPath], environment: environment)
                try await waitUntil("the first daemon records the holder alone", timeout: .seconds(30), every: .milliseconds(100)) { try waitingRows() == [0] }
                try await addWaiter()
                try await waitUntil("the first daemon records one waiter", timeout: .seconds(30), every: .milliseconds(100)) { try waitingRows().last == 1 }

                // The vault goes away; the daemon samples on and spools.
                try MonitorFaultLiveTests.setVault(vaultDB, reachable: false)
                for n in 2...3 {
                    try await addWaiter()
                    try await waitUntil("a spooled cycle with \(n) waiters", timeout: .seconds(30), every: .milliseconds(100)) {
                        Self.spooled(spool).contains { $0.waiting == n }
                    }
                }
                first.signal(SIGKILL)
                let killed = try await first.waitForExit()
                #expect(killed.status == 128 + SIGKILL)
                let onDisk = Self.spooled(spool)
                #expect(onDisk.map(\.sequence) == onDisk.map(\.sequence).sorted())
                #expect(Set(onDisk.map(\.waiting)).isSuperset(of: [2, 3]), "\(onDisk.map(\.waiting))")

                // Restarted while the vault is still away: it waits for it, then replays.
                let second = try await ChildProcess(lockvault: ["run", "--config", configPath], environment: environment)
                try await waitUntil("the restarted daemon finds the spool", timeout: .seconds(30)) {
                    second.stdout.contains("found spooled cycle records")
                }
                #expect(second.stdout.contains("\"spooled\":\"\(onDisk.count)\""), "\(second.stdout.suffix(2000))")
                try MonitorFaultLiveTests.setVault(vaultDB, reachable: true)
                try await waitUntil("the replay is logged", timeout: .seconds(60), every: .milliseconds(100)) {
                    second.stdout.contains("replayed the spooled cycle records")
                }
                #expect(second.stdout.contains("\"replayed\":\"\(onDisk.count)\""), "\(second.stdout.suffix(2000))")
                // A backlog's end is a change of the summary (MonitorRows): once the buffer is
                // empty, the next cycle says so, and `lockvault status` stops showing a backlog.
                try await waitUntil("the vault hears that nothing is buffered any more", timeout: .seconds(30), every: .milliseconds(100)) {
                    let conn = try vault()
                    defer { conn.close() }
                    return try conn.query("SELECT buffered_cycles AS b FROM lock_monitoring.monitor_cycle_s WHERE load_end_date IS NULL")
                        .map { try $0.decode("b", as: Int.self) } == [0]
                }
                second.signal(SIGTERM)
                let stopped = try await second.waitForExit()
                #expect(stopped.status == 0, "\(stopped.stdout.suffix(2000))")
                #expect(Self.spooled(spool).isEmpty, "the spool is empty once the vault has everything")

                // Every summary sampled, in order, once: 0 and 1 written live, 2 and 3 replayed,
                // each at the time of the first cycle that saw it. A count has a second row
                // only where the backlog started or ended while it held (buffered_cycles
                // from 0 to more, or back): how many cycles ran between the test's steps is
                // the machine's timing, not the daemon's choice.
                let conn = try vault()
                defer { conn.close() }
                let rows = try conn.query("""
                    SELECT load_date, load_end_date, waiting_sessions AS n, buffered_cycles > 0 AS backlog
                    FROM lock_monitoring.monitor_cycle_s ORDER BY load_date
                    """)
                let summaries = try rows.map { try $0.decode("n", as: Int.self) }
                let situations = try rows.map { "\(try $0.decode("n", as: Int.self)) backlog=\(try $0.decode("backlog", as: Bool.self))" }
                #expect(summaries.reduce(into: [Int]()) { if $0.last != $1 { $0.append($1) } } == [0, 1, 2, 3], "\(situations)")
                #expect(zip(situations, situations.dropFirst()).allSatisfy { $0 != $1 }, "no situation written twice: \(situations)")
                #expect(situations.last == "3 backlog=false", "\(situations)")
                for n in [2, 3] {
                    let firstSeen = try #require(onDisk.first { $0.waiting == n }).capturedAt
                    let loadDate = try #require(rows.first { try $0.decode("n", as: Int.self) == n }).decode("load_date", as: Date.self)
                    #expect(abs(loadDate.timeIntervalSince(firstSeen)) < 0.000_002, "the row for \(n) waiters is the first spooled cycle that saw them")
                }
                let ends = try rows.map { try $0.decode("load_end_date", as: Date?.self) }
                #expect(ends.filter { $0 == nil }.count == 1, "exactly one current row")
                let versions = try conn.query("""
                    SELECT blocked_sessions_count AS n FROM lock_monitoring.blocking_session_s WHERE session_pid = $1 ORDER BY load_date
                    """, [holder.pid]).map { try $0.decode("n", as: Int.self) }
                #expect(versions == [1, 2, 3], "one version of the blocker per situation, none written twice")
                #expect(try conn.query("SELECT 1 FROM lock_monitoring.monitor_gap_s").isEmpty, "nothing was lost, so no gap")

                try await holder.run("ROLLBACK")
                for (_, task) in waiters { _ = await task.value }
            }
        }

        /// The alert trail takes the cycles' write path: an alert raised while the vault is
        /// away, delivered to a command sink, then kill -9 and a restart, then the vault
        /// returns: its event and its delivery are in the vault exactly once.
        @Test func anAlertAndItsDeliveryDuringAVaultOutageSurviveAKillMinus9Once() async throws {
            try await Self.withKillScenario { target, vaultDB, role, state in
                let spool = "\(state)/spool", sinkFile = "\(state)/alerts.jsonl"
                let configPath = try writeTemporaryConfig("""
                    target: { dsn: "dbname=\(target) user=\(role)" }
                    vault: { dsn: "dbname=\(vaultDB) user=\(role)" }
                    sampling: { interval_seconds: 0.2 }
                    severity: { medium_after_seconds: 0.2, high_after_seconds: 0.4, critical_after_seconds: 1, idle_in_transaction_factor: 1, exclusive_lock_escalates: false }
                    alerts:
                      clear_after_seconds: 3600
                      sinks:
                        - {name: file, type: command, command: ["/bin/sh", "-c", "cat >> '\(sinkFile)'"]}
                    """)
                defer { unlink(configPath) }
                let environment = ["STATE_DIRECTORY": state]
                func vaultRows(_ sql: String) throws -> [String] {
                    let conn = try LiveDatabase.connect(database: vaultDB)
                    defer { conn.close() }
                    return try conn.query(sql).map { try $0.decode("r", as: String.self) }
                }
                func spooledParts(_ key: String) -> [[String: Any]] {
                    Self.spooled(spool).flatMap { cycle -> [[String: Any]] in
                        let object = try? JSONSerialization.jsonObject(with: Data(cycle.document.utf8)) as? [String: Any]
                        return object?[key] as? [[String: Any]] ?? []
                    }
                }

                let first = try await ChildProcess(lockvault: ["run", "--config", configPath], environment: environment)
                try await waitUntil("the first daemon records a cycle", timeout: .seconds(30), every: .milliseconds(100)) {
                    try !vaultRows("SELECT load_date::text AS r FROM lock_monitoring.monitor_cycle_s").isEmpty
                }
                try MonitorFaultLiveTests.setVault(vaultDB, reachable: false)

                // A CRITICAL blocker while the vault is away: raised, delivered, both spooled.
                let holder = try await BackgroundSession(database: target, applicationName: "spool-alert-holder")
                defer { Task { await holder.close() } }
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let waiter = try await BackgroundSession(database: target, applicationName: "spool-alert-waiter")
                defer { Task { await waiter.close() } }
                let waiting = waiter.start("SELECT count(*) FROM t")
                try await waitUntil("the command sink gets the alert", timeout: .seconds(30), every: .milliseconds(100)) {
                    AlertsLiveTests.kinds(AlertsLiveTests.lines(sinkFile)) == ["raised"]
                }
                try await waitUntil("the alert and its delivery are spooled", timeout: .seconds(30), every: .milliseconds(100)) {
                    spooledParts("alerts").count == 1 && spooledParts("alert_deliveries").count == 1
                }
                let alertID = try #require(spooledParts("alerts").first?["alert_id"] as? String)
                #expect(spooledParts("alert_deliveries").first?["outcome"] as? String == "delivered")
                first.signal(SIGKILL)
                #expect(try await first.waitForExit().status == 128 + SIGKILL)

                // The blocker ends while nobody watches: the restarted daemon raises nothing new.
                try await holder.run("ROLLBACK")
                if case .failure(let e) = await waiting.value { Issue.record("waiter failed: \(e)") }

                let second = try await ChildProcess(lockvault: ["run", "--config", configPath], environment: environment)
                try await waitUntil("the restarted daemon finds the spool", timeout: .seconds(30)) {
                    second.stdout.contains("found spooled cycle records")
                }
                try MonitorFaultLiveTests.setVault(vaultDB, reachable: true)
                try await waitUntil("the replay is logged", timeout: .seconds(60), every: .milliseconds(100)) {
                    second.stdout.contains("replayed the spooled cycle records")
                }
                second.signal(SIGTERM)
                #expect(try await second.waitForExit().status == 0, "\(second.stdout.suffix(2000))")
                #expect(Self.spooled(spool).isEmpty)

                let events = try vaultRows("""
                    SELECT e.kind || ' ' || e.severity AS r FROM lock_monitoring.alert_event_s e
                    JOIN lock_monitoring.alert_h h USING (alert_hk) WHERE h.alert_id = '\(alertID)'
                    """)
                #expect(events == ["raised CRITICAL"], "the alert, once: \(events)")
                let deliveries = try vaultRows("""
                    SELECT d.sink || ' ' || d.outcome || ' ' || d.attempts AS r FROM lock_monitoring.alert_delivery_s d
                    JOIN lock_monitoring.alert_h h USING (alert_hk) WHERE h.alert_id = '\(alertID)'
                    """)
                #expect(deliveries == ["file delivered 1"], "its delivery, once: \(deliveries)")
                #expect(try vaultRows("SELECT count(*)::text AS r FROM lock_monitoring.alert_h") == ["1"])
            }
        }

        /// A spool that can't be written (its path is a file) never stops the daemon: it keeps
        /// sampling and buffering in memory, and says so once. A steady daemon doesn't call the
        /// vault (only what changed is sent, docs/operations.md), so the outage is met by the
        /// write of a change: a blocker that appears while the vault is away.
        @Test func anUnwritableSpoolIsLoggedAndSamplingGoesOn() async throws {
            try await LiveDatabase.withTemporaryDatabase { target in
                try await LiveDatabase.withTemporaryDatabase { vaultDB in
                    do {
                        let admin = try LiveDatabase.connect(database: vaultDB)
                        defer { admin.close() }
                        try Migrator().apply(on: admin)
                    }
                    let targetAdmin = try LiveDatabase.connect(database: target)
                    defer { targetAdmin.close() }
                    try targetAdmin.executeScript("CREATE TABLE t (id int); GRANT ALL ON t TO PUBLIC;")
                    let blocker = FileManager.default.temporaryDirectory.appendingPathComponent("lv-not-a-dir-\(UUID().uuidString.prefix(8))").path
                    try "x".write(toFile: blocker, atomically: true, encoding: .utf8)
                    defer { unlink(blocker) }
                    let configPath = try writeTemporaryConfig("""
                        target: { dsn: "dbname=\(target)" }
                        vault: { dsn: "dbname=\(vaultDB)", spool_directory: "\(blocker)/spool" }
                        sampling: { interval_seconds: 0.2 }
                        """)
                    defer { unlink(configPath) }
                    let daemon = try await ChildProcess(lockvault: ["run", "--config", configPath])
                    try await waitUntil("the daemon writes its first cycle", timeout: .seconds(30), every: .milliseconds(100)) {
                        let conn = try LiveDatabase.connect(database: vaultDB)
                        defer { conn.close() }
                        return try !conn.query("SELECT 1 FROM lock_monitoring.monitor_cycle_s").isEmpty
                    }
                    try MonitorFaultLiveTests.setVault(vaultDB, reachable: false)
                    let holder = try await BackgroundSession(database: target, applicationName: "spool-holder")
                    defer { Task { await holder.close() } }
                    try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                    let waiter = try await BackgroundSession(database: target, applicationName: "spool-waiter")
                    defer { Task { await waiter.close() } }
                    let waiting = waiter.start("SELECT count(*) FROM t")
                    try await waitUntil("the spool failure is logged", timeout: .seconds(30), every: .milliseconds(100)) {
                        daemon.stdout.contains("cannot spool buffered cycle records")
                    }
                    try MonitorFaultLiveTests.setVault(vaultDB, reachable: true)
                    try await waitUntil("the buffer reaches the vault", timeout: .seconds(60), every: .milliseconds(100)) {
                        daemon.stdout.contains("\"msg\":\"recovered\"")
                    }
                    #expect(daemon.isRunning)
                    let failures = daemon.stdout.components(separatedBy: "cannot spool buffered cycle records").count - 1
                    #expect(failures == 1, "said once, not every cycle")
                    // The line names what failed, where, and the system's reason (SpoolError's description).
                    let line = daemon.stdout.split(separator: "\n").first { $0.contains("cannot spool buffered cycle records") } ?? ""
                    #expect(line.contains("cannot create \(blocker)/spool: ") && !line.contains("Error"), "\(line)")
                    try await holder.run("ROLLBACK")
                    if case .failure(let e) = await waiting.value { Issue.record("waiter failed: \(e)") }
                    daemon.signal(SIGTERM)
                    #expect(try await daemon.waitForExit().status == 0)
                }
            }
        }
    }
}
