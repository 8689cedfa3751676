import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing
import TestSupport

extension LiveDatabaseSuite {
    /// `lockvault migrate` as a user runs it — the real binary — by a database owner without
    /// CREATEROLE, by one with CREATEROLE but without ADMIN OPTION (what PostgreSQL 16 changed),
    /// and by a superuser; with the vault's roles there and not. Runs on whichever server the
    /// suite runs on (CI: 15 and 18).
    @Suite struct MigrateRolesLiveTests {
        static let owner = "lv_vault_owner"
        static let database = "lv_owned_vault"

        static let createStatements = [
            "CREATE ROLE lock_monitoring_role NOLOGIN;",
            "CREATE ROLE lock_admin_role NOLOGIN;",
            "CREATE ROLE lock_writer_role NOLOGIN;",
        ]
        static let grantStatement = "GRANT lock_monitoring_role TO lock_admin_role;"

        /// A fresh database owned by a fresh login role with the given attributes (and CREATE on
        /// the database as its owner); dropped again afterwards.
        static func withOwnedDatabase(_ attributes: String, _ body: (String) async throws -> Void) async throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            func drop() throws {
                try admin.execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
                if try !admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [owner]).isEmpty {
                    for db in try databases(admin) {
                        let c = try LiveDatabase.connect(database: db)
                        defer { c.close() }
                        try c.execute("DROP OWNED BY \(owner)")
                    }
                    try admin.execute("DROP ROLE \(owner)")
                }
            }
            try drop()
            try admin.execute("CREATE ROLE \(owner) LOGIN NOSUPERUSER \(attributes)")
            try admin.execute("CREATE DATABASE \(database) OWNER \(owner)")
            do {
                try await body("dbname=\(database) user=\(owner)")
            } catch {
                try? drop()
                throw error
            }
            try drop()
        }

        static func databases(_ admin: PostgresConnection) throws -> [String] {
            try admin.query("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1").map { try $0.decode("datname", as: String.self) }
        }

        /// Removes the vault's roles from the cluster (their privileges in every database first),
        /// runs `body`, and puts them back as a superuser's migrate would, with the monitor role's grant.
        static func withoutVaultRoles(_ body: () async throws -> Void) async throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            let existing = try admin.query("SELECT rolname::text AS r FROM pg_roles WHERE rolname = ANY($1::text[])", [VaultRoles.all])
                .map { try $0.decode("r", as: String.self) }
            if !existing.isEmpty {
                for db in try databases(admin) {
                    let c = try LiveDatabase.connect(database: db)
                    defer { c.close() }
                    try c.execute("DROP OWNED BY \(existing.joined(separator: ", "))")
                }
                try admin.execute("DROP ROLE \(existing.joined(separator: ", "))")
            }
            defer {
                _ = try? VaultRoleStep.apply(on: admin)
                try? EngineScenario.ensureLeastPrivilegedRole()
            }
            try await body()
        }

        static func ensureVaultRoles() throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            _ = try VaultRoleStep.apply(on: admin)
        }

        static func vaultRoles(_ conn: PostgresConnection) throws -> Set<String> {
            Set(try conn.query("SELECT rolname::text AS r FROM pg_roles WHERE rolname = ANY($1::text[])", [VaultRoles.all]).map { try $0.decode("r", as: String.self) })
        }

        /// The owned database has no lock_monitoring schema at all.
        static func schemaIsAbsent() throws -> Bool {
            let conn = try LiveDatabase.connect(database: database)
            defer { conn.close() }
            return try conn.query("SELECT to_regnamespace('lock_monitoring') IS NULL AS absent")[0].decode("absent", as: Bool.self)
        }

        static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

        static let allThere = [
            "role lock_monitoring_role: already there", "role lock_admin_role: already there", "role lock_writer_role: already there",
            "grant lock_monitoring_role to lock_admin_role: already there",
        ]

        /// The vault as the migrating owner built it works: the daemon's role may write it,
        /// lock_admin_role reads the dashboards through its membership in lock_monitoring_role.
        static func expectUsableVault(sourceLocation: SourceLocation = #_sourceLocation) throws {
            let conn = try LiveDatabase.connect(database: database)
            defer { conn.close() }
            let ok = try conn.query("""
                SELECT has_table_privilege('lock_writer_role', 'lock_monitoring.monitor_cycle_s', 'INSERT')
                   AND has_function_privilege('lock_writer_role', 'lock_monitoring.record_cycle(jsonb)', 'EXECUTE')
                   AND has_table_privilege('lock_admin_role', 'lock_monitoring.blocking_sessions_dashboard', 'SELECT')
                   AND NOT has_table_privilege('lock_monitoring_role', 'lock_monitoring.monitor_cycle_s', 'INSERT') AS ok
                """)[0].decode("ok", as: Bool.self)
            #expect(ok, "the roles carry the vault's privileges", sourceLocation: sourceLocation)
        }

        /// The case the issue names: an owner with CREATE on its database, without CREATEROLE,
        /// migrates the schema when the roles are there — also on PostgreSQL 16+.
        @Test func anOwnerWithoutCreateRoleMigratesWhenTheRolesExist() async throws {
            try Self.ensureVaultRoles()
            try await Self.withOwnedDatabase("NOCREATEROLE") { dsn in
                let first = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
                #expect(first.status == 0, "\(first)")
                #expect(Array(Self.lines(first.stdout).prefix(4)) == Self.allThere, "\(first)")
                #expect(first.stdout.contains("applied 001_schema_and_hashing.sql") && first.stdout.contains("applied \(Migration.repeatableName)"), "\(first)")
                try Self.expectUsableVault()
                let again = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
                #expect(again.status == 0, "\(again)")
                #expect(Self.lines(again.stdout) == Self.allThere + ["up to date (\(Migration.embedded.count) migrations applied)"], "\(again)")
            }
        }

        /// Roles missing, and the owner may not create them: nothing changes, the statements are
        /// printed (pasteable: a superuser runs exactly that text), exit 77; afterwards the owner migrates.
        @Test func rolesMissingAndNotPermittedExits77WithTheStatementsAndChangesNothing() async throws {
            try await Self.withoutVaultRoles {
                try await Self.withOwnedDatabase("NOCREATEROLE") { dsn in
                    for args in [["migrate", "--dsn", dsn, "--dry-run"], ["migrate", "--dsn", dsn]] {
                        let r = try await ChildProcess.lockvault(args)
                        #expect(r.status == 77, "\(args): \(r)")
                        let sql = Self.lines(r.stdout).filter { !$0.hasPrefix("--") }
                        #expect(sql == Self.createStatements + [Self.grantStatement], "\(args): \(r)")
                        #expect(r.stdout.contains("-- role lock_writer_role: missing, and \(Self.owner) has neither SUPERUSER nor CREATEROLE"), "\(r)")
                        let err = Self.lines(r.stderr)
                        #expect(err.count == 1 && err[0].hasPrefix("lockvault migrate: ") && err[0].contains("nothing was changed")
                                && err[0].contains("run the statements printed on standard output"), "\(r)")
                        #expect(try Self.schemaIsAbsent(), "the schema is untouched")
                        let admin = try LiveDatabase.connect()
                        defer { admin.close() }
                        #expect(try Self.vaultRoles(admin).isEmpty, "no role was created")
                    }
                    // What a DBA does with it: paste it, as a superuser.
                    let printed = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
                    let admin = try LiveDatabase.connect()
                    defer { admin.close() }
                    try admin.executeScript(printed.stdout)
                    #expect(try Self.vaultRoles(admin) == Set(VaultRoles.all))
                    let migrated = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
                    #expect(migrated.status == 0, "\(migrated)")
                    #expect(Array(Self.lines(migrated.stdout).prefix(4)) == Self.allThere, "\(migrated)")
                    try Self.expectUsableVault()
                }
            }
        }

        /// The roles exist but lock_admin_role's membership is missing. An owner with CREATEROLE
        /// may grant it on PostgreSQL 15; from 16 on it needs ADMIN OPTION on lock_monitoring_role,
        /// which it does not have (it did not create it): then exit 77 with just the GRANT.
        @Test func aMissingMembershipIsGrantedOrPrintedAsThisServerAllows() async throws {
            try Self.ensureVaultRoles()
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            try admin.execute("REVOKE lock_monitoring_role FROM lock_admin_role")
            defer { _ = try? VaultRoleStep.apply(on: admin) }
            try await Self.withOwnedDatabase("CREATEROLE") { dsn in
                let r = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
                if admin.capabilities.has(.createRoleNeedsAdminOption) {
                    #expect(r.status == 77, "\(r)")
                    #expect(Self.lines(r.stdout).filter { !$0.hasPrefix("--") } == [Self.grantStatement], "\(r)")
                    #expect(r.stdout.contains("no ADMIN OPTION on lock_monitoring_role"), "\(r)")
                    #expect(try Self.schemaIsAbsent(), "the schema is untouched")
                } else {
                    #expect(r.status == 0, "\(r)")
                    #expect(r.stdout.contains("grant lock_monitoring_role to lock_admin_role: granted"), "\(r)")
                    try Self.expectUsableVault()
                }
            }
        }

        /// An owner with CREATEROLE creates missing roles itself — on 16+ it then holds ADMIN
        /// OPTION on them, so the membership grant works too.
        @Test func anOwnerWithCreateRoleCreatesMissingRoles() async throws {
            try await Self.withoutVaultRoles {
                try await Self.withOwnedDatabase("CREATEROLE") { dsn in
                    let r = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
                    #expect(r.status == 0, "\(r)")
                    #expect(Array(Self.lines(r.stdout).prefix(4)) == [
                        "role lock_monitoring_role: created", "role lock_admin_role: created", "role lock_writer_role: created",
                        "grant lock_monitoring_role to lock_admin_role: granted",
                    ], "\(r)")
                    try Self.expectUsableVault()
                }
            }
        }

        /// A superuser: roles created and reported so; the second run finds them there; a dry run
        /// before says what it would do and does nothing.
        @Test func aSuperuserCreatesTheRolesThenFindsThemThere() async throws {
            try await Self.withoutVaultRoles {
                try await LiveDatabase.withTemporaryDatabase { db in
                    let dsn = try LiveDatabase.conninfo(database: db)
                    let dry = try await ChildProcess.lockvault(["migrate", "--dsn", dsn, "--dry-run"])
                    #expect(dry.status == 0, "\(dry)")
                    #expect(Array(Self.lines(dry.stdout).prefix(5)) == [
                        "role lock_monitoring_role: would create", "role lock_admin_role: would create", "role lock_writer_role: would create",
                        "grant lock_monitoring_role to lock_admin_role: would grant", "pending:",
                    ], "\(dry)")
                    let admin = try LiveDatabase.connect()
                    defer { admin.close() }
                    #expect(try Self.vaultRoles(admin).isEmpty, "a dry run creates nothing")
                    let first = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
                    #expect(first.status == 0, "\(first)")
                    #expect(Array(Self.lines(first.stdout).prefix(5)) == [
                        "role lock_monitoring_role: created", "role lock_admin_role: created", "role lock_writer_role: created",
                        "grant lock_monitoring_role to lock_admin_role: granted", "applied 001_schema_and_hashing.sql",
                    ], "\(first)")
                    let second = try await ChildProcess.lockvault(["migrate", "--dsn", dsn])
                    #expect(second.status == 0, "\(second)")
                    #expect(Self.lines(second.stdout) == Self.allThere + ["up to date (\(Migration.embedded.count) migrations applied)"], "\(second)")
                }
            }
        }

        /// A vault built by the migrations as released before the roles step (001 created the
        /// roles, 011 granted the membership) keeps working: the binary accepts both files as
        /// applied, finds the roles there and upgrades the rest.
        @Test func aVaultBuiltWithTheOldRoleMigrationsUpgradesThroughTheBinary() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let conn = try LiveDatabase.connect(database: db)
                defer { conn.close() }
                try LiveDatabaseSuite.VaultUpgradeLiveTests.buildV1Vault(conn)
                let old = Set(try conn.query("SELECT name FROM lock_monitoring.schema_migrations").map { try $0.decode("name", as: String.self) })
                #expect(old.isSuperset(of: ["001_schema_and_hashing.sql", "011_grants.sql"]))
                let r = try await ChildProcess.lockvault(["migrate", "--dsn", try LiveDatabase.conninfo(database: db)])
                #expect(r.status == 0, "\(r)")
                let later = Migration.embedded.filter { $0.kind == .versioned && $0.name >= "013" }.map(\.name)
                #expect(Self.lines(r.stdout) == Self.allThere + (later + [Migration.repeatableName]).map { "applied \($0)" }, "\(r)")
                let status = try await ChildProcess.lockvault(["migrate", "--dsn", try LiveDatabase.conninfo(database: db), "--dry-run"])
                #expect(status.status == 0 && status.stdout.contains("up to date"), "\(status)")
            }
        }
    }
}
