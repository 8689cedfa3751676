public import Foundation
import LockvaultCore
public import PostgresClient

/// One numbered vault migration (a file in sql/).
public struct Migration: Sendable, Equatable {
    public let name: String
    public let sql: String

    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }

    /// SHA-256 of the text, hex: detects an applied file that was edited afterwards.
    public var checksum: String { VaultHash.hex(SHA256.hash(Array(sql.utf8))) }
}

/// A migration already applied to the vault.
public struct AppliedMigration: Sendable, Equatable {
    public let name: String
    public let checksum: String
    public let appliedAt: Date
}

/// Why migrating failed.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        /// An applied migration's file changed since it was applied.
        public static let checksumMismatch = Code("checksumMismatch")
        /// The vault has a migration this lockvault doesn't know (a newer lockvault migrated it).
        public static let unknownMigration = Code("unknownMigration")
        /// A migration's SQL failed; it was rolled back.
        public static let migrationFailed = Code("migrationFailed")
        public var description: String { raw }
    }

    public var code: Code
    public var migration: String
    public var message: String

    public var description: String { "\(migration): \(message)" }
}

/// Applies the vault's migrations in order, each in its own transaction, recording name and
/// checksum in `lock_monitoring.schema_migrations`.
///
/// Running it again changes nothing. It refuses to go on when an applied file was edited
/// (checksum differs): silently running a changed history would leave vaults that claim the
/// same version but differ. Concurrent runs serialise on an advisory lock.
public struct Migrator: Sendable {
    public let migrations: [Migration]

    /// Arbitrary, fixed key for `pg_advisory_lock`: "lockvault migrate".
    static let lockKey: Int64 = 0x6C6F_636B_7661_756C

    public init(migrations: [Migration] = Migration.embedded) {
        self.migrations = migrations.sorted { $0.name < $1.name }
    }

    static let bookkeeping = """
        CREATE SCHEMA IF NOT EXISTS lock_monitoring;
        CREATE TABLE IF NOT EXISTS lock_monitoring.schema_migrations (
            name       text PRIMARY KEY,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE lock_monitoring.schema_migrations IS 'lockvault migrate: which sql/ files were applied, with their SHA-256.';
        """

    /// Migrations applied so far (empty for a fresh database).
    public func applied(on conn: PostgresConnection) throws -> [AppliedMigration] {
        let exists = try conn.query("SELECT to_regclass('lock_monitoring.schema_migrations') IS NOT NULL AS e")[0].decode("e", as: Bool.self)
        guard exists else { return [] }
        return try conn.query("SELECT name, checksum, applied_at FROM lock_monitoring.schema_migrations ORDER BY name").map {
            AppliedMigration(name: try $0.decode("name"), checksum: try $0.decode("checksum"), appliedAt: try $0.decode("applied_at"))
        }
    }

    /// What `apply` would run, after verifying the applied ones.
    public func pending(on conn: PostgresConnection) throws -> [Migration] {
        try verify(applied(on: conn))
    }

    /// Applies what is pending; returns the names applied (empty when up to date).
    @discardableResult
    public func apply(on conn: PostgresConnection) throws -> [String] {
        _ = try conn.query("SELECT pg_advisory_lock($1)", [Self.lockKey])
        defer { _ = try? conn.query("SELECT pg_advisory_unlock($1)", [Self.lockKey]) }
        try conn.executeScript(Self.bookkeeping)
        let todo = try verify(applied(on: conn))
        var done: [String] = []
        for migration in todo {
            do {
                try conn.transaction { tx in
                    try tx.executeScript(migration.sql)
                    try tx.execute("INSERT INTO lock_monitoring.schema_migrations (name, checksum) VALUES ($1, $2)", [migration.name, migration.checksum])
                }
            } catch let error as PostgresError {
                throw MigrationError(code: .migrationFailed, migration: migration.name, message: "\(error) — rolled back; earlier migrations stay applied")
            }
            done.append(migration.name)
        }
        return done
    }

    /// Checks applied rows against the known files; returns the ones still to apply.
    func verify(_ applied: [AppliedMigration]) throws -> [Migration] {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.name, $0) })
        for row in applied {
            guard let migration = known[row.name] else {
                throw MigrationError(code: .unknownMigration, migration: row.name,
                                     message: "applied to this vault but unknown to this lockvault (is the binary older than the vault?)")
            }
            if migration.checksum != row.checksum {
                throw MigrationError(code: .checksumMismatch, migration: row.name,
                                     message: "was changed after it was applied (checksum \(row.checksum.prefix(12))… in the vault, \(migration.checksum.prefix(12))… now); restore the original file — applied migrations must never be edited, add a new one instead")
            }
        }
        let done = Set(applied.map(\.name))
        return migrations.filter { !done.contains($0.name) }
    }
}
