import Foundation
import LockvaultCore
@testable import LockvaultEngine
import PostgresClient
import Testing
import TestSupport

extension LiveDatabaseSuite {
    @Suite struct VaultMigrationLiveTests {
        @Test func migratesAnEmptyDatabaseThenIsANoOp() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                let migrator = Migrator()
                #expect(try migrator.pending(on: conn).count == migrator.migrations.count)
                let applied = try migrator.apply(on: conn)
                #expect(applied == migrator.migrations.map(\.name))
                #expect(try migrator.apply(on: conn).isEmpty)
                #expect(try migrator.pending(on: conn).isEmpty)
                let rows = try conn.query("SELECT count(*) AS n FROM lock_monitoring.schema_migrations")[0].decode("n", as: Int.self)
                #expect(rows == migrator.migrations.count)
            }
        }

        @Test func everyExpectedObjectExists() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                let tables = Set(try conn.query("SELECT tablename FROM pg_tables WHERE schemaname = 'lock_monitoring'").map { try $0.decode("tablename", as: String.self) })
                for seed in ["lock_activity_h", "lock_activity_s", "blocking_session_h", "blocking_session_s", "lock_blocking_l", "deadlock_event_h",
                             "deadlock_event_s", "deadlock_involvement_l", "lock_wait_analysis_h", "lock_wait_analysis_s"] {
                    #expect(tables.contains(seed), "missing table \(seed)")
                }
                let views = Set(try conn.query("SELECT viewname FROM pg_views WHERE schemaname = 'lock_monitoring'").map { try $0.decode("viewname", as: String.self) })
                #expect(views == ["lock_activity_dashboard", "blocking_sessions_dashboard", "lock_wait_analysis_dashboard", "deadlock_events_dashboard", "alerts_dashboard",
                                  "fleet_dashboard", "blocking_episodes_dashboard"])
                let functions = Set(try conn.query("SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'lock_monitoring'").map { try $0.decode("proname", as: String.self) })
                #expect(functions.isSuperset(of: ["analyze_lock_waits", "cleanup_old_data", "hash_key", "bk_timestamp", "record_cycle"]))
                let indexes = try conn.query("SELECT count(*) AS n FROM pg_indexes WHERE schemaname = 'lock_monitoring' AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'")[0].decode("n", as: Int.self)
                #expect(indexes >= 12)
                // Every table, view and their columns a DBA reads are commented (a partitioned table is; its
                // daily partitions, which nobody reads by name, are not).
                let uncommented = try conn.query("""
                    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'lock_monitoring' AND c.relkind IN ('r', 'v', 'p') AND NOT c.relispartition AND obj_description(c.oid, 'pg_class') IS NULL
                    """).map { try $0.decode("relname", as: String.self) }
                #expect(uncommented.isEmpty, "no COMMENT ON: \(uncommented)")
                let uncommentedFunctions = try conn.query("""
                    SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'lock_monitoring' AND obj_description(p.oid, 'pg_proc') IS NULL
                    """).map { try $0.decode("f", as: String.self) }
                #expect(uncommentedFunctions.isEmpty, "no COMMENT ON: \(uncommentedFunctions)")
                let roles = Set(try conn.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'lock\\_%'").map { try $0.decode("rolname", as: String.self) })
                #expect(roles.isSuperset(of: ["lock_monitoring_role", "lock_admin_role", "lock_writer_role"]))
            }
        }

        @Test func aTamperedMigrationIsRefusedByName() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                var tampered = Migration.embedded
                tampered[1] = Migration(name: tampered[1].name, sql: tampered[1].sql + "\n-- edited after the fact\n")
                let error = try #require(throws: MigrationError.self) { try Migrator(migrations: tampered).apply(on: conn) }
                #expect(error.code == .checksumMismatch)
                #expect(error.migration == tampered[1].name)
                #expect(error.description.contains("changed after it was applied"))
            }
        }

        /// Each earlier text still in sql/ under its name (``Migration/superseded``): a vault
        /// that recorded its checksum is taken as migrated, not refused as tampered with.
        @Test func aVaultThatAppliedAnEarlierTextIsAsMigrated() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                let names = Set(Migration.embedded.map(\.name))
                let earlier = Migration.superseded.filter { names.contains($0.key) }
                #expect(earlier["015_fewer_indexes.sql"] != nil)
                for (name, checksums) in earlier {
                    for checksum in checksums {
                        _ = try conn.execute("UPDATE lock_monitoring.schema_migrations SET checksum = $1 WHERE name = $2", [checksum, name])
                        try Migrator().apply(on: conn)
                    }
                }
            }
        }

        @Test func migrationsSucceedAsANonSuperuserOwner() async throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            // Roles are cluster-wide: the vault's roles may exist already (from other tests); a
            // fresh owner needs CREATEROLE only when they don't.
            try admin.execute("DROP DATABASE IF EXISTS lv_nonsuper WITH (FORCE)")
            try admin.execute("DROP ROLE IF EXISTS lv_owner")
            try admin.execute("CREATE ROLE lv_owner LOGIN NOSUPERUSER CREATEROLE")
            try admin.execute("CREATE DATABASE lv_nonsuper OWNER lv_owner")
            defer {
                _ = try? admin.execute("DROP DATABASE IF EXISTS lv_nonsuper WITH (FORCE)")
                _ = try? admin.execute("DROP ROLE IF EXISTS lv_owner")
            }
            let owner = try LiveDatabase.connect(database: "lv_nonsuper", user: "lv_owner")
            defer { owner.close() }
            #expect(try owner.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0].decode("rolsuper", as: Bool.self) == false)
            let applied = try Migrator().apply(on: owner)
            #expect(applied.count == Migration.embedded.count)
            #expect(try owner.query("SELECT count(*) AS n FROM lock_monitoring.blocking_sessions_dashboard")[0].decode("n", as: Int.self) == 0)
            owner.close()
            // DROP OWNED so the role can go.
            let cleanup = try LiveDatabase.connect(database: "lv_nonsuper")
            _ = try? cleanup.execute("DROP OWNED BY lv_owner")
            cleanup.close()
        }

        @Test func concurrentMigrateRunsApplyEachMigrationOnce() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conninfo = try LiveDatabase.conninfo(database: db)
                let results = try await withThrowingTaskGroup(of: [String].self) { group in
                    for i in 0..<4 {
                        group.addTask {
                            let session = PostgresSession(conninfo: conninfo, settings: SessionSettings(applicationName: "lv-migrate-\(i)", statementTimeoutMs: 0, lockTimeoutMs: 0))
                            defer { Task { await session.close() } }
                            return try await session.withConnection { try Migrator().apply(on: $0) }
                        }
                    }
                    return try await group.reduce(into: [[String]]()) { $0.append($1) }
                }
                #expect(results.flatMap { $0 }.sorted() == Migration.embedded.map(\.name).sorted(), "each migration applied by exactly one run")
            }
        }

        /// A vault built before the kill rule's reason was recorded (migrations up to 012, with
        /// history in it) migrates forward: its rows stay, with no reason, and the next cycle
        /// writes the rule's verdict with its reason; replaying that cycle changes nothing.
        @Test func aVaultFromBeforeTheKillReasonMigratesForwardKeepingItsHistory() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                // Migrations 001-012 as released, and a blocker written by their record_cycle (its document's keys).
                try LiveDatabaseSuite.VaultUpgradeLiveTests.buildV1Vault(conn)
                let now = try conn.query("SELECT now() AS n")[0].decode("n", as: Date.self)
                let start = VaultHistoryLiveTests.ago(3600, from: now), since = VaultHistoryLiveTests.ago(400, from: now)
                let v1: [String: Any] = [
                    "system_identifier": VaultHistoryLiveTests.sysid, "record_source": "test", "captured_at": VaultHistoryLiveTests.ago(20, from: now),
                    "sessions": [["kind": "session", "pid": 10, "backend_start": start, "database_name": "shop"]],
                    "blockers": [[
                        "kind": "session", "pid": 10, "backend_start": start, "user_name": "app", "application_name": "web", "database_name": "shop",
                        "backend_type": "client backend", "state": "idle in transaction", "is_superuser": false, "blocked_count": 1, "direct_count": 1,
                        "blocked_pids": [11], "blocking_started": since, "severity": "CRITICAL", "held_mode": "AccessExclusiveLock",
                        "target": "relation public.orders", "relation_name": "public.orders", "is_root": true, "in_cycle": false,
                        "recommended_action": "commit it or terminate pid 10", "auto_kill_eligible": true, "kill_threshold_seconds": 300,
                        "query": "UPDATE orders SET x = 1", "hash_diff": "0abc",
                    ] as [String: Any]],
                ]
                try VaultHistoryLiveTests.record(conn, String(decoding: try JSONSerialization.data(withJSONObject: v1), as: UTF8.self))

                #expect(try Migrator().apply(on: conn) == Migration.embedded.filter { $0.kind == .versioned && $0.name >= "013" }.map(\.name) + [Migration.repeatableName])
                let kept = try conn.query("SELECT auto_kill_eligible, auto_kill_reason FROM lock_monitoring.blocking_sessions_dashboard")
                #expect(kept.count == 1)
                #expect(try kept[0].decode("auto_kill_eligible", as: Bool.self) == true, "the old row keeps its old value")
                #expect(try kept[0].decode("auto_kill_reason", as: String?.self) == nil)

                // Today's writer: the resolver's verdict and its reason (part of the hash diff).
                var blocker = VaultHistoryLiveTests.blocker(pid: 10, start: start, severity: "CRITICAL", blocked: [11], since: since)
                blocker["auto_kill_eligible"] = false
                blocker["auto_kill_reason"] = "excluded role (app)"
                blocker["hash_diff"] = VaultHistoryLiveTests.hashDiff("0bad")
                let next = try VaultHistoryLiveTests.cycle(at: VaultHistoryLiveTests.ago(10, from: now), blockers: [blocker])
                try VaultHistoryLiveTests.record(conn, next)
                try VaultHistoryLiveTests.record(conn, next)
                let rows = try conn.query("""
                    SELECT auto_kill_eligible, auto_kill_reason, load_end_date IS NULL AS current FROM lock_monitoring.blocking_session_s ORDER BY load_date
                    """)
                #expect(rows.count == 2, "the old row ended, one new row (the replay wrote nothing)")
                #expect(try rows[0].decode("current", as: Bool.self) == false && rows[0].decode("auto_kill_reason", as: String?.self) == nil)
                #expect(try rows[1].decode("auto_kill_eligible", as: Bool.self) == false)
                #expect(try rows[1].decode("auto_kill_reason", as: String?.self) == "excluded role (app)")
                let shown = try conn.query("SELECT auto_kill_reason FROM lock_monitoring.blocking_sessions_dashboard")
                #expect(try shown.map { try $0.decode("auto_kill_reason", as: String?.self) } == ["excluded role (app)"])
                // Read access survived the view being recreated.
                let grant = try conn.query("SELECT has_table_privilege('lock_monitoring_role', 'lock_monitoring.blocking_sessions_dashboard', 'SELECT') AS ok")
                #expect(try grant[0].decode("ok", as: Bool.self))
            }
        }

        @Test func embeddedMigrationsMatchTheSQLFiles() throws {
            let sqlDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("sql")
            func files(_ folder: String) throws -> [String] {
                try FileManager.default.contentsOfDirectory(atPath: sqlDir.appendingPathComponent(folder).path).filter { $0.hasSuffix(".sql") }.sorted()
                    .map { folder.isEmpty ? $0 : "\(folder)/\($0)" }
            }
            let steps = Migration.embedded
            #expect(try files("") == steps.filter { $0.kind == .versioned }.map(\.name), "run scripts/embed-sql.sh after changing sql/")
            #expect(steps.last?.kind == .repeatable, "the repeatable set runs last")
            #expect(try files("functions") + files("views") == steps.last?.files.map(\.path), "run scripts/embed-sql.sh after changing sql/")
            for file in steps.flatMap(\.files) {
                let text = try String(contentsOf: sqlDir.appendingPathComponent(file.path), encoding: .utf8)
                #expect(text.hasSuffix("\n") ? String(text.dropLast()) == file.sql : text == file.sql,
                        "\(file.path) differs from its embedded copy: run scripts/embed-sql.sh")
            }
        }

        @Test func swiftAndSQLHashesAreIdentical() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                let cases: [[String?]] = [
                    ["7711202675782683387", "session", "4711", "2026-11-23T03:11:48.123456Z"],
                    [nil], [""], ["\\N"], [nil, nil], ["", nil, ""],
                    ["a;b", "c\\d", ";", "\\", "\\;"], ["héllo", "👩‍💻", "e\u{301}", "日本語"], ["Orders", "orders"],
                    [String(repeating: "x", count: 10_000)],
                ]
                for parts in cases {
                    let placeholders = parts.indices.map { "$\($0 + 1)::text" }.joined(separator: ", ")
                    let sql = try conn.query("SELECT lock_monitoring.hash_key(\(placeholders)) AS h", parts)[0].decode("h", as: [UInt8].self)
                    #expect(sql == VaultHash.hashKey(parts), "\(parts)")
                }
                let when = Date(timeIntervalSince1970: 1_795_403_508.123456)
                let text = try conn.query("SELECT lock_monitoring.bk_timestamp($1) AS t", [when])[0].decode("t", as: String.self)
                #expect(text == VaultHash.timestamp(when))
            }
        }
    }
}

extension LiveDatabaseSuite.VaultMigrationLiveTests {
    /// The dashboards read current rows through the partial indexes (seq scans disabled so the
    /// planner shows what it can use; tables in a test are too small to prefer indexes) — on a
    /// partitioned table, through that index's partitions.
    @Test func dashboardsCanUseTheCurrentRowIndexes() async throws {
        try await LiveDatabase.withTemporaryDatabase { db in
            let conn = try LiveDatabase.connect(database: db)
            defer { conn.close() }
            try Migrator().apply(on: conn)
            try conn.execute("SET enable_seqscan = off")
            for (view, index) in [("blocking_sessions_dashboard", "blocking_session_s_current"),
                                  ("lock_activity_dashboard", "lock_activity_s_current"),
                                  ("deadlock_events_dashboard", "deadlock_event_s_current_detected"),
                                  ("lock_wait_analysis_dashboard", "lock_wait_analysis_s_current")] {
                let plan = try conn.query("EXPLAIN SELECT * FROM lock_monitoring.\(view)").map { try $0.decode(0, as: String.self) }.joined(separator: "\n")
                let names = [index] + (try conn.query("""
                    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass
                    """, ["lock_monitoring.\(index)"]).map { try $0.decode("relname", as: String.self) })
                #expect(names.contains { plan.contains($0) }, "\(view) does not use \(index):\n\(plan)")
            }
        }
    }
}

extension LiveDatabaseSuite.VaultMigrationLiveTests {
    /// A later change to a function is an edit of its one file: migrate sees the set changed,
    /// re-applies it in one transaction, and is a no-op again afterwards.
    @Test func aChangedFunctionFileIsReappliedAsASet() async throws {
        try await LiveDatabase.withTemporaryDatabase { db in
            let conn = try LiveDatabase.connect(database: db)
            defer { conn.close() }
            try Migrator().apply(on: conn)
            let steps = Migration.embedded.filter { $0.kind == .versioned }
            let set = try #require(Migration.embedded.last)
            let edited = set.files.map { file in
                file.path == "functions/record_lock_waits.sql"
                    ? Migration.File(path: file.path, sql: file.sql.replacingOccurrences(of: "Returns links added.", with: "Returns links added (edited)."))
                    : file
            }
            #expect(edited != set.files)
            let migrator = Migrator(migrations: steps + [Migration(repeatable: edited)])
            #expect(try migrator.pending(on: conn).map(\.name) == [Migration.repeatableName])
            #expect(try migrator.apply(on: conn) == [Migration.repeatableName])
            #expect(try migrator.apply(on: conn).isEmpty)
            let comment = try conn.query("""
                SELECT obj_description('lock_monitoring.record_lock_waits(text, text, timestamptz, jsonb)'::regprocedure, 'pg_proc') AS c
                """)[0].decode("c", as: String.self)
            #expect(comment.hasSuffix("(edited)."))
            let recorded = try conn.query("SELECT checksum FROM lock_monitoring.schema_migrations WHERE name = $1", [Migration.repeatableName])[0]
                .decode("checksum", as: String.self)
            #expect(recorded == Migration(repeatable: edited).checksum)
            // This binary's own set is now "pending" again: the vault runs another version.
            #expect(try Migrator().pending(on: conn).map(\.name) == [Migration.repeatableName])
        }
    }

    /// A broken file in the set fails by name and leaves the vault as it was (all or nothing).
    @Test func aFailingRepeatableFileIsNamedAndRolledBack() async throws {
        try await LiveDatabase.withTemporaryDatabase { db in
            let conn = try LiveDatabase.connect(database: db)
            defer { conn.close() }
            try Migrator().apply(on: conn)
            let steps = Migration.embedded.filter { $0.kind == .versioned }
            let set = try #require(Migration.embedded.last)
            let broken = set.files.map { file in
                file.path == "views/alerts_dashboard.sql" ? Migration.File(path: file.path, sql: file.sql + "\nSELECT no_such_column FROM lock_monitoring.alert_h;") : file
            }
            // An edit earlier in the set that must not survive the failure.
            let renamed = broken.map { file in
                file.path == "functions/keys.sql" ? Migration.File(path: file.path, sql: file.sql + "\nCOMMENT ON FUNCTION lock_monitoring.cluster_hk(text) IS 'edited';") : file
            }
            let error = try #require(throws: MigrationError.self) { try Migrator(migrations: steps + [Migration(repeatable: renamed)]).apply(on: conn) }
            #expect(error.code == .migrationFailed)
            #expect(error.migration.contains("views/alerts_dashboard.sql"), "\(error)")
            let comment = try conn.query("SELECT obj_description('lock_monitoring.cluster_hk(text)'::regprocedure, 'pg_proc') AS c")[0].decode("c", as: String.self)
            #expect(comment != "edited")
            #expect(try Migrator().pending(on: conn).isEmpty, "the vault still records this binary's set")
        }
    }
}

extension LiveDatabaseSuite.VaultMigrationLiveTests {
    /// `lockvault migrate --dry-run` lists what `migrate` would do and changes nothing.
    @Test func migrateDryRunListsTheNumberedFilesAndTheRepeatableSet() async throws {
        try await LiveDatabase.withTemporaryDatabase { db in
            let dsn = try LiveDatabase.conninfo(database: db)
            let dry = try await ChildProcess.lockvault(["migrate", "--dsn", dsn, "--dry-run"])
            #expect(dry.status == 0, "\(dry)")
            #expect(dry.stdout.contains("pending:") && dry.stdout.contains("  001_schema_and_hashing.sql") && dry.stdout.contains("  012_alerts.sql"), "\(dry)")
            #expect(dry.stdout.contains("  functions+views (re-create \(Migration.embedded.last?.files.count ?? 0) files"), "\(dry)")
            let conn = try LiveDatabase.connect(database: db)
            defer { conn.close() }
            #expect(try conn.query("SELECT to_regnamespace('lock_monitoring') IS NULL AS none")[0].decode("none", as: Bool.self), "a dry run creates nothing")
            let run = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
            #expect(run.status == 0 && run.stdout.contains("applied 001_schema_and_hashing.sql") && run.stdout.contains("applied functions+views"), "\(run)")
            let again = try await ChildProcess.lockvault(["migrate", "--dsn", dsn, "--dry-run"])
            #expect(again.status == 0 && again.stdout.contains("up to date"), "\(again)")
        }
    }
}
