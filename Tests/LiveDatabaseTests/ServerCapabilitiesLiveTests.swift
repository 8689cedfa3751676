import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// ``ServerCapabilities`` is the one place that knows what each major has: here, against the
    /// server the suite runs on (14 to 18 in CI), that what it says is so, and that the SQL side
    /// (`lock_monitoring.server_capabilities()`, migration 034) says the same.
    @Suite struct ServerCapabilitiesLiveTests {
        /// Runs `sql` and says whether the server took it (false: it does not know the function,
        /// column or privilege; any other failure is the test's).
        static func accepts(_ conn: PostgresConnection, _ sql: String) throws(PostgresError) -> Bool {
            // undefined column, undefined function, undefined object (an unknown setting), invalid
            // parameter value (an unknown privilege or log format)
            let unknownToThisServer: Set<String> = ["42703", "42883", "42704", "22023"]
            do {
                _ = try conn.query(sql)
                return true
            } catch {
                if unknownToThisServer.contains(error.sqlState ?? "") { return false }
                throw error
            }
        }

        @Test func whatTheCapabilitiesSayIsWhatTheServerDoes() throws {
            let conn = try LiveDatabase.connect()
            defer { conn.close() }
            let server = conn.capabilities
            #expect(server.isSupported && server.isTested, "\(server): CI runs only supported, tested majors")
            let facts: [(ServerCapabilities.Capability, String)] = [
                (.waitStart, "SELECT waitstart FROM pg_locks LIMIT 1"),
                (.queryID, "SELECT query_id FROM pg_stat_activity LIMIT 1"),
                (.jsonLog, "SELECT pg_current_logfile('jsonlog')"),
                (.statForceNextFlush, "SELECT pg_stat_force_next_flush()"),
                (.maintain, "SELECT has_table_privilege('pg_catalog.pg_class', 'MAINTAIN')"),
                (.transactionTimeout, "SELECT current_setting('transaction_timeout')"),
            ]
            for (capability, sql) in facts {
                #expect(try Self.accepts(conn, sql) == server.has(capability), "\(server), \(capability): \(sql)")
            }
            // CREATEROLE's rules changed without a new name to probe; MigrateRolesLiveTests runs
            // a real grant on each major.
        }

        @Test func theSQLSideListsTheSameCapabilitiesAsSwift() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try Migrator().apply(on: conn)
                let rows = try conn.query("SELECT capability, since, present FROM lock_monitoring.server_capabilities() ORDER BY capability")
                let sql = try rows.map { "\(try $0.decode("capability", as: String.self)) \(try $0.decode("since", as: Int.self)) \(try $0.decode("present", as: Bool.self))" }
                let server = conn.capabilities
                let swift = ServerCapabilities.Capability.allCases.sorted { $0.rawValue < $1.rawValue }
                    .map { "\($0.rawValue) \($0.since) \(server.has($0))" }
                #expect(sql == swift)
                for capability in ServerCapabilities.Capability.allCases {
                    let has = try conn.query("SELECT lock_monitoring.server_has($1) AS h", [capability.rawValue])[0].decode("h", as: Bool.self)
                    #expect(has == server.has(capability), "\(capability)")
                }
                // A misspelt name is an error, not "this server lacks it".
                let error = #expect(throws: PostgresError.self) { try conn.query("SELECT lock_monitoring.server_has('maintian')") }
                #expect(error?.sqlState == "22023" && error?.message.contains("unknown capability") == true, "\(String(describing: error))")
            }
        }
    }
}
