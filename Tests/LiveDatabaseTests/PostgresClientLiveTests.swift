import Foundation
import PostgresClient
import Synchronization
import Testing

extension LiveDatabaseSuite {
    @Suite struct PostgresClientLiveTests {
        @Test func decodesEveryColumnTypeLockvaultReads() throws {
            let conn = try LiveDatabase.connect()
            defer { conn.close() }
            let row = try #require(try conn.query("""
                SELECT 'héllo ✓'::text AS t, 7::int2 AS i2, (-2147483648)::int4 AS i4, 9223372036854775807::int8 AS i8,
                       4294967295::oid AS o, true AS b, 2.5::float8 AS f,
                       '2026-11-23 03:11:48.123456+00'::timestamptz AS ts,
                       '5 minutes 12.25 seconds'::interval AS iv, extract(epoch FROM '1 day'::interval)::float8 AS epoch,
                       ARRAY[4711, 42]::int[] AS arr, '{}'::int[] AS empty_arr,
                       '\\x00ff7f'::bytea AS bin, '{"a": [1, "x"]}'::jsonb AS j, NULL::int4 AS n
                """).first)
            #expect(try row.decode("t", as: String.self) == "héllo ✓")
            #expect(try row.decode("i2", as: Int16.self) == 7)
            #expect(try row.decode("i4", as: Int32.self) == Int32.min)
            #expect(try row.decode("i8", as: Int64.self) == Int64.max)
            #expect(try row.decode("o", as: UInt32.self) == UInt32.max)
            #expect(try row.decode("b", as: Bool.self) == true)
            #expect(try row.decode("f", as: Double.self) == 2.5)
            let ts = try row.decode("ts", as: Date.self)
            #expect(abs(ts.timeIntervalSince1970 - 1_795_403_508.123456) < 0.000_001)
            #expect(try row.decode("iv", as: PostgresInterval.self).seconds == 312.25)
            #expect(try row.decode("epoch", as: Double.self) == 86_400)
            #expect(try row.decode("arr", as: [Int32].self) == [4711, 42])
            #expect(try row.decode("empty_arr", as: [Int32].self) == [])
            #expect(try row.decode("bin", as: [UInt8].self) == [0x00, 0xff, 0x7f])
            #expect(try row.decode("j", as: String.self) == #"{"a": [1, "x"]}"#)
            #expect(try row.decode("n", as: Int32?.self) == nil)
            #expect(throws: PostgresError.self) { try row.decode("n", as: Int32.self) }
            #expect(throws: PostgresError.self) { try row.decode("t", as: Int32.self) }
            #expect(throws: PostgresError.self) { try row.decode("no_such_column", as: Int32.self) }
        }

        @Test func parametersRoundTripWithoutInterpolation() throws {
            let conn = try LiveDatabase.connect()
            defer { conn.close() }
            let hostile = "'; DROP TABLE x; --\\ \"q\" \n ✓"
            let when = Date(timeIntervalSince1970: 1_795_403_508.654321)
            let row = try #require(try conn.query(
                "SELECT $1::text AS s, $2::timestamptz AS ts, $3::int8 AS n, $4::text AS null_text, $5::bytea AS b, $6::int[] AS a, $7::bool AS flag",
                [hostile, when, Int64(-5), String?.none, [UInt8]([0, 1, 2]), [Int32]([3, 4]), false]
            ).first)
            #expect(try row.decode("s", as: String.self) == hostile)
            #expect(abs(try row.decode("ts", as: Date.self).timeIntervalSince1970 - when.timeIntervalSince1970) < 0.000_001)
            #expect(try row.decode("n", as: Int64.self) == -5)
            #expect(try row.decode("null_text", as: String?.self) == nil)
            #expect(try row.decode("b", as: [UInt8].self) == [0, 1, 2])
            #expect(try row.decode("a", as: [Int32].self) == [3, 4])
            #expect(try row.decode("flag", as: Bool.self) == false)
        }

        @Test func sessionSettingsAreApplied() throws {
            let conn = try LiveDatabase.connect(settings: SessionSettings(applicationName: "lv-settings-test", statementTimeoutMs: 4321, lockTimeoutMs: 1234, idleInTransactionSessionTimeoutMs: 5678))
            defer { conn.close() }
            let row = try #require(try conn.query("""
                SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS st,
                       current_setting('lock_timeout') AS lt, current_setting('idle_in_transaction_session_timeout') AS it,
                       current_setting('TimeZone') AS tz
                """).first)
            #expect(try row.decode("app", as: String.self) == "lv-settings-test")
            #expect(try row.decode("st", as: String.self) == "4321ms")
            #expect(try row.decode("lt", as: String.self) == "1234ms")
            #expect(try row.decode("it", as: String.self) == "5678ms")
            #expect(try row.decode("tz", as: String.self) == "UTC")
        }

        @Test func lockTimeoutCarriesSQLState() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let holder = try LiveDatabase.connect(database: db)
                defer { holder.close() }
                try holder.execute("CREATE TABLE t (id int)")
                try holder.execute("BEGIN")
                try holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let waiter = try LiveDatabase.connect(database: db, settings: SessionSettings(applicationName: "lv-waiter", lockTimeoutMs: 200))
                defer { waiter.close() }
                let error = try #require(throws: PostgresError.self) { try waiter.query("SELECT * FROM t") }
                #expect(error.sqlState == SQLState.lockNotAvailable)
                #expect(error.code == .queryFailed)
                #expect(error.message.contains("lock timeout"))
                #expect(waiter.isHealthy(), "a statement error leaves the connection usable")
                try holder.execute("ROLLBACK")
            }
        }

        /// What a daemon told to stop does with a statement that would run on (a pass over a huge
        /// lock table): cancels it from another thread; the blocked call returns at once.
        @Test func aRunningStatementIsCancelledFromAnotherThread() async throws {
            final class Handed: Sendable { let value = Mutex<(canceller: QueryCanceller, pid: Int32)?>(nil) }
            let handed = Handed()
            let sleeper = Task.detached { () -> String? in
                guard let conn = try? LiveDatabase.connect(applicationName: "lv-cancel-test"), let canceller = conn.canceller else { return "no connection" }
                defer { conn.close() }
                handed.value.withLock { $0 = (canceller, conn.backendPID) }
                do { _ = try conn.query("SELECT pg_sleep(60)"); return nil } catch { return (error as? PostgresError)?.sqlState }
            }
            let watcher = try LiveDatabase.connect()
            defer { watcher.close() }
            let deadline = ContinuousClock.now + .seconds(10)
            while handed.value.withLock({ $0 == nil }) {
                guard ContinuousClock.now < deadline else { Issue.record("no connection"); return }
                try await Task.sleep(for: .milliseconds(10))
            }
            let (canceller, pid) = handed.value.withLock { $0! }
            while try watcher.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'", [pid]).isEmpty {
                guard ContinuousClock.now < deadline else { Issue.record("the statement never started"); break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(canceller.cancel())
            #expect(await sleeper.value == "57014", "query_canceled")
            #expect(!canceller.cancel(), "the connection closed: nothing to cancel")
        }

        @Test func errorsCarryDetailAndHint() throws {
            let conn = try LiveDatabase.connect()
            defer { conn.close() }
            let error = try #require(throws: PostgresError.self) {
                try conn.query("SELECT 1 FROM no_such_table_lockvault")
            }
            #expect(error.sqlState == SQLState.undefinedTable)
            let raised = try #require(throws: PostgresError.self) {
                try conn.query("DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = 'P0001'; END $$")
            }
            #expect(raised.sqlState == "P0001")
            #expect(raised.detail == "the detail")
            #expect(raised.hint == "the hint")
            #expect(raised.description.contains("boom"))
        }

        @Test func transactionRollsBackOnThrow() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try conn.execute("CREATE TABLE t (id int)")
                struct Boom: Error {}
                #expect(throws: Boom.self) {
                    try conn.transaction { tx in
                        try tx.execute("INSERT INTO t VALUES (1)")
                        throw Boom()
                    }
                }
                #expect(try conn.query("SELECT count(*) AS n FROM t").first?.decode("n", as: Int.self) == 0)
                let inserted = try conn.transaction { tx in try tx.execute("INSERT INTO t VALUES (1), (2)") }
                #expect(inserted == 2)
                #expect(try conn.query("SELECT count(*) AS n FROM t").first?.decode("n", as: Int.self) == 2)
            }
        }

        @Test func reconnectsAfterTheServerTerminatesItsBackend() async throws {
            let session = PostgresSession(conninfo: try LiveDatabase.conninfo(), settings: SessionSettings(applicationName: "lv-reconnect"))
            let firstPID = try await session.withConnection { $0.backendPID }
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            _ = try admin.query("SELECT pg_terminate_backend($1, 5000)", [firstPID])
            await #expect(throws: PostgresError.self) {
                _ = try await session.withConnection { try $0.query("SELECT 1") }
            }
            let secondPID = try await session.withConnection { conn in
                _ = try conn.query("SELECT 1")
                return conn.backendPID
            }
            #expect(secondPID != firstPID)
            #expect(secondPID != 0)
            await session.close()

            // The synchronous connection can be reset in place.
            let conn = try LiveDatabase.connect()
            defer { conn.close() }
            _ = try admin.query("SELECT pg_terminate_backend($1, 5000)", [conn.backendPID])
            let lost = try #require(throws: PostgresError.self) { try conn.query("SELECT 1") }
            #expect(lost.requiresReconnect)
            try conn.reset()
            #expect(conn.isHealthy())
        }

        @Test func wrongPasswordErrorNeverContainsThePassword() throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            try admin.execute("DROP ROLE IF EXISTS pw_lockvault_test")
            // pg-cluster.sh's pg_hba.conf makes members of password_login authenticate by password.
            try admin.execute("DO $$ BEGIN CREATE ROLE password_login NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
            try admin.execute("CREATE ROLE pw_lockvault_test LOGIN PASSWORD 'right-horse-battery' IN ROLE password_login")
            defer { _ = try? admin.execute("DROP ROLE IF EXISTS pw_lockvault_test") }
            let secret = "Wr0ng-S3cret-Value"
            for conninfo in [
                try LiveDatabase.conninfo(user: "pw_lockvault_test", password: secret),
                "postgresql://pw_lockvault_test:\(secret)@/postgres?host=\(ProcessInfo.processInfo.environment["PGHOST"] ?? "")",
                "host=127.0.0.1 port=1 user=x password=\(secret) connect_timeout=2",
            ] {
                let error = try #require(throws: PostgresError.self) { _ = try PostgresConnection(conninfo: conninfo) }
                #expect(error.code == .connectionFailed)
                #expect(!error.description.contains(secret), "\(error)")
                #expect(!"\(error)".contains(secret))
            }
            // And the right password works over the same path.
            let ok = try PostgresConnection(conninfo: try LiveDatabase.conninfo(user: "pw_lockvault_test", password: "right-horse-battery"))
            #expect(ok.isHealthy())
            ok.close()
        }
    }
}
