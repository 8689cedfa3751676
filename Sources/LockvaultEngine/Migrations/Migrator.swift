public import Foundation
public import LockvaultCore
public import PostgresClient

/// One step of the vault schema: a numbered migration (a file `sql/NNN_*.sql`: tables, columns,
/// indexes — applied once, never edited afterwards), or the repeatable set (every file in
/// `sql/functions/` and `sql/views/`, re-applied as a whole whenever any of them changed).
public struct Migration: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Applied once; its text is checksummed and must never change afterwards.
        case versioned
        /// `CREATE OR REPLACE` definitions, re-applied whenever the set's checksum differs
        /// from the one the vault recorded (and after any versioned migration).
        case repeatable
    }

    /// One file of a step: its path under sql/ and its text.
    public struct File: Sendable, Equatable {
        public let path: String
        public let sql: String
    }

    public let name: String
    public let kind: Kind
    /// One file for a versioned migration; the set's files, in the order they run, for the
    /// repeatable one.
    public let files: [File]

    /// A numbered migration.
    public init(name: String, sql: String) {
        self.name = name
        self.kind = .versioned
        self.files = [File(path: name, sql: sql)]
    }

    /// The repeatable set, named ``Migration/repeatableName`` in `schema_migrations`.
    public init(repeatable files: [File]) {
        self.name = Self.repeatableName
        self.kind = .repeatable
        self.files = files
    }

    /// The `schema_migrations` row of the repeatable set.
    public static let repeatableName = "functions+views"

    public var sql: String { files.map(\.sql).joined(separator: "\n") }

    /// SHA-256, hex: of the text for a numbered migration (detects an applied file that was
    /// edited afterwards); of every file's path and text, in order, for the repeatable set.
    public var checksum: String {
        switch kind {
        case .versioned:
            return VaultHash.hex(SHA256.hash(Array(sql.utf8)))
        case .repeatable:
            var bytes: [UInt8] = []
            for file in files { bytes += Array(file.path.utf8) + [0] + Array(file.sql.utf8) + [0] }
            return VaultHash.hex(SHA256.hash(bytes))
        }
    }

    /// Every step this lockvault knows, in the order they run: the numbered migrations, then
    /// the repeatable set (both embedded by scripts/embed-sql.sh).
    public static let embedded: [Migration] = embeddedVersioned + [Migration(repeatable: embeddedRepeatable)]
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
        /// A vault role (or the membership between them) is missing and the migrating role may
        /// not create it; nothing was changed (``MigrationError/roles`` has the statements).
        public static let rolesNotPermitted = Code("rolesNotPermitted")
        public var description: String { raw }
    }

    public var code: Code
    public var migration: String
    public var message: String
    /// For ``Code/rolesNotPermitted``: the roles step's plan, with the statements a DBA must run.
    public var roles: VaultRolePlan? = nil

    public var description: String { "\(migration): \(message)" }
}

/// What `lockvault migrate` did: the roles step, then the migrations applied.
public struct MigrationReport: Sendable, Equatable {
    public let roles: VaultRolePlan
    /// Names applied, in order (empty when the schema was up to date).
    public let applied: [String]
}

/// Applies the vault's migrations in order, each in its own transaction, recording name and
/// checksum in `lock_monitoring.schema_migrations`; then, in one more transaction, the
/// repeatable set (functions and views) when it changed. Before all of them, the roles step
/// (``VaultRoleStep``): the vault's roles are made sure of first, or nothing is changed.
///
/// Running it again changes nothing. It refuses to go on when an applied numbered file was
/// edited (checksum differs): silently running a changed history would leave vaults that claim
/// the same version but differ. The repeatable set may change freely: it is re-applied, and its
/// row records the checksum of what was applied. Concurrent runs serialise on an advisory lock.
public struct Migrator: Sendable {
    public let migrations: [Migration]
    /// Checksums of earlier texts of numbered migrations, accepted as applied (see
    /// ``Migration/superseded``).
    public let superseded: [String: Set<String>]

    /// Arbitrary, fixed key for `pg_advisory_lock`: "lockvault migrate".
    static let lockKey: Int64 = 0x6C6F_636B_7661_756C

    public init(migrations: [Migration] = Migration.embedded, superseded: [String: Set<String>] = Migration.superseded) {
        let versioned = migrations.filter { $0.kind == .versioned }.sorted { $0.name < $1.name }
        self.migrations = versioned + migrations.filter { $0.kind == .repeatable }
        self.superseded = superseded
    }

    static let bookkeeping = """
        CREATE SCHEMA IF NOT EXISTS lock_monitoring;
        CREATE TABLE IF NOT EXISTS lock_monitoring.schema_migrations (
            name       text PRIMARY KEY,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE lock_monitoring.schema_migrations IS 'lockvault migrate: which sql/ files were applied, with their SHA-256 (functions+views: the set of sql/functions and sql/views, as last applied).';
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
        try migrate(on: conn).applied
    }

    /// The roles step, then what is pending. When a role is missing that this role may not
    /// create, throws ``MigrationError/Code/rolesNotPermitted`` before anything was changed;
    /// an applied migration that changed (or is unknown) is refused before the roles step, too.
    public func migrate(on conn: PostgresConnection) throws -> MigrationReport {
        _ = try conn.query("SELECT pg_advisory_lock($1)", [Self.lockKey])
        defer { _ = try? conn.query("SELECT pg_advisory_unlock($1)", [Self.lockKey]) }
        _ = try verify(applied(on: conn))
        let roles = try VaultRoleStep.apply(on: conn)
        try conn.executeScript(Self.bookkeeping)
        let todo = try verify(applied(on: conn))
        var done: [String] = []
        for migration in todo {
            var file = migration.files.first?.path ?? migration.name
            do {
                try conn.transaction { tx in
                    // Functions may name functions of files later in the set.
                    if migration.kind == .repeatable { try tx.execute("SET LOCAL check_function_bodies = off") }
                    for part in migration.files {
                        file = part.path
                        try tx.executeScript(part.sql)
                    }
                    try tx.execute("""
                        INSERT INTO lock_monitoring.schema_migrations (name, checksum) VALUES ($1, $2)
                        ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()
                        """, [migration.name, migration.checksum])
                }
            } catch let error as PostgresError {
                let which = migration.kind == .repeatable ? "\(migration.name) (\(file))" : migration.name
                throw MigrationError(code: .migrationFailed, migration: which, message: "\(error) — rolled back; earlier migrations stay applied")
            }
            done.append(migration.name)
        }
        return MigrationReport(roles: roles, applied: done)
    }

    /// Checks applied rows against the known files; returns the ones still to apply: numbered
    /// migrations not applied yet, then the repeatable set if it changed or anything else is
    /// pending.
    func verify(_ applied: [AppliedMigration]) throws -> [Migration] {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.name, $0) })
        for row in applied {
            // The repeatable set's row records what was applied last; a changed set is pending, not an error.
            if known[row.name]?.kind == .repeatable || superseded[row.name]?.contains(row.checksum) == true { continue }
            guard let migration = known[row.name] else {
                throw MigrationError(code: .unknownMigration, migration: row.name,
                                     message: "applied to this vault but unknown to this lockvault (is the binary older than the vault?)")
            }
            if migration.checksum != row.checksum {
                throw MigrationError(code: .checksumMismatch, migration: row.name,
                                     message: "was changed after it was applied (checksum \(row.checksum.prefix(12))… in the vault, \(migration.checksum.prefix(12))… now); restore the original file — applied migrations must never be edited, add a new one instead")
            }
        }
        let done = Dictionary(applied.map { ($0.name, $0.checksum) }, uniquingKeysWith: { a, _ in a })
        let versioned = migrations.filter { $0.kind == .versioned && done[$0.name] == nil }
        let repeatable = migrations.filter { $0.kind == .repeatable && (!versioned.isEmpty || done[$0.name] != $0.checksum) }
        return versioned + repeatable
    }
}
