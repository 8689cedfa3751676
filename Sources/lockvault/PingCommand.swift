import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient

/// Connects once and reports what lockvault sees: the quickest proof that DSN, credentials and
/// the session settings work.
struct PingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Connect to PostgreSQL with lockvault's session settings and print what the server reports.",
        discussion: LockvaultExit.help(success: "connected", .malformedDSN, .cannotConnect, .authenticationFailed)
    )

    @Option(name: .long, help: "libpq conninfo or URI; default: libpq environment (PGHOST, PGPORT, …).")
    var dsn: String = ""

    func run() throws {
        let conn: PostgresConnection
        do { conn = try PostgresConnection(conninfo: dsn) } catch {
            throw MonitorFailure.classify(error, side: .target).exit("ping")
        }
        defer { conn.close() }
        do {
            let row = try conn.query("""
                SELECT version() AS version, current_user AS usr, current_database() AS db,
                       current_setting('application_name') AS app, current_setting('statement_timeout') AS st,
                       current_setting('lock_timeout') AS lt, current_setting('idle_in_transaction_session_timeout') AS it,
                       (SELECT system_identifier::text FROM pg_control_system()) AS sysid
                """)[0]
            print("connected:  \(conn.redactedConninfo)")
            print("server:     \(try row.decode("version", as: String.self))")
            print("cluster id: \(try row.decode("sysid", as: String?.self) ?? "unknown")")
            print("session:    user=\(try row.decode("usr", as: String.self)) database=\(try row.decode("db", as: String.self)) pid=\(conn.backendPID)")
            print("settings:   application_name=\(try row.decode("app", as: String.self)) statement_timeout=\(try row.decode("st", as: String.self)) lock_timeout=\(try row.decode("lt", as: String.self)) idle_in_transaction_session_timeout=\(try row.decode("it", as: String.self))")
        } catch {
            printError("lockvault ping: \(error)")
            throw ExitCode(LockvaultExit.unavailable)
        }
    }
}

/// Writes one line to standard error (messages for people; stdout stays parseable).
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
