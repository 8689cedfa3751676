import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient

/// `lockvault migrate`: brings the vault schema up to date.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Make sure of the vault's roles, then apply pending vault migrations (schema lock_monitoring).",
        discussion: """
            First the roles (cluster-wide: lock_monitoring_role, lock_admin_role, lock_writer_role, and \
            lock_admin_role's membership in lock_monitoring_role), one line each: created, already there, or — when \
            one is missing and this role may not create it (no SUPERUSER or CREATEROLE; on PostgreSQL 16+ no ADMIN \
            OPTION on a role it did not create) — nothing is changed at all, the CREATE ROLE / GRANT statements to \
            run as a role that may are printed on standard output, and the exit code is \(LockvaultExit.noPermission). Then the numbered \
            migrations (sql/NNN_*.sql: tables, columns, indexes) are applied once, each in its own transaction; then \
            the functions and views (sql/functions, sql/views) are re-applied as one set, in one transaction, \
            whenever they changed. Safe to run again (nothing to do is success) and concurrently (runs serialise on \
            an advisory lock). Refuses when an applied numbered migration's file changed since it was applied.
            \(LockvaultExit.help(success: "up to date / applied", .init(LockvaultExit.failure, "a migration failed (rolled back)"),
                                 .init(LockvaultExit.dataError, "an applied migration was changed or is unknown to this lockvault"),
                                 .malformedDSN, .cannotConnect,
                                 .init(LockvaultExit.noPermission, "authentication failed, or a vault role is missing and this role may not create it (also with --dry-run)")))
            """
    )

    @Option(name: .long, help: "Vault conninfo or URI; default: libpq environment (PGHOST, PGDATABASE, …).")
    var dsn: String = ""

    @Flag(name: .long, help: "Say what would be done about the roles and list pending migrations, changing nothing.")
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
                let roles = try VaultRoleStep.plan(on: conn)
                if roles.isBlocked { throw VaultRoleStep.refusal(roles) }
                for line in roles.reportLines(dryRun: true) { print(line) }
                print(pending.isEmpty ? "up to date (\(migrator.migrations.count) migrations applied)" : "pending:")
                for m in pending { print("  \(Self.describe(m))") }
                return
            }
            let report = try migrator.migrate(on: conn)
            for line in report.roles.reportLines() { print(line) }
            if report.applied.isEmpty {
                print("up to date (\(migrator.migrations.count) migrations applied)")
            } else {
                for name in report.applied { print("applied \(name)") }
            }
        } catch let error as MigrationError {
            if let roles = error.roles {
                // Standard output is SQL a DBA can paste (or pipe into psql); the one line on
                // standard error says what happened.
                print(roles.statementsForDBA)
                printError("lockvault migrate: \(error.message); run the statements printed on standard output as a role that may, then run lockvault migrate again")
            } else {
                printError("lockvault migrate: \(error)")
            }
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
