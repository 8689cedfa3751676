import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient

/// `lockvault migrate`: brings the vault schema up to date.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending vault migrations (schema lock_monitoring), each in its own transaction.",
        discussion: """
            Numbered migrations (sql/NNN_*.sql: tables, columns, indexes) are applied once; then the functions \
            and views (sql/functions, sql/views) are re-applied as one set, in one transaction, whenever they \
            changed. Safe to run again (nothing to do is success) and concurrently (runs serialise on an advisory \
            lock). Refuses when an applied numbered migration's file changed since it was applied.
            Exit codes: 0 up to date / applied; 1 a migration failed (rolled back); 65 an applied migration was \
            changed or is unknown to this lockvault; 64 malformed DSN; 69 cannot connect; 77 authentication failed.
            """
    )

    @Option(name: .long, help: "Vault conninfo or URI; default: libpq environment (PGHOST, PGDATABASE, …).")
    var dsn: String = ""

    @Flag(name: .long, help: "List pending migrations without applying them.")
    var dryRun = false

    func run() throws {
        let conn: PostgresConnection
        do {
            conn = try PostgresConnection(conninfo: dsn, settings: SessionSettings(statementTimeoutMs: 0, lockTimeoutMs: 10_000))
        } catch {
            throw MonitorFailure.classify(error, side: .vault).exit("migrate")
        }
        defer { conn.close() }
        let migrator = Migrator()
        do {
            if dryRun {
                let pending = try migrator.pending(on: conn)
                print(pending.isEmpty ? "up to date (\(migrator.migrations.count) migrations applied)" : "pending:")
                for m in pending { print("  \(Self.describe(m))") }
                return
            }
            let applied = try migrator.apply(on: conn)
            if applied.isEmpty {
                print("up to date (\(migrator.migrations.count) migrations applied)")
            } else {
                for name in applied { print("applied \(name)") }
            }
        } catch let error as MigrationError {
            printError("lockvault migrate: \(error)")
            throw ExitCode(LockvaultExit.code(for: error))
        } catch {
            printError("lockvault migrate: \(error)")
            throw ExitCode(LockvaultExit.failure)
        }
    }

    /// `012_alerts.sql`, or `functions+views (re-create 19 files: sql/functions/*.sql, sql/views/*.sql)`.
    static func describe(_ m: Migration) -> String {
        switch m.kind {
        case .versioned: return m.name
        case .repeatable: return "\(m.name) (re-create \(m.files.count) files: sql/functions/*.sql, sql/views/*.sql)"
        }
    }
}
