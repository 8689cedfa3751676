import Foundation
import LockvaultEngine
import PostgresClient
import Testing
import TestSupport

extension LiveDatabaseSuite {
    /// What a DBA sees when lockvault is pointed at the wrong place, with the wrong password,
    /// at an unmigrated vault or with a role that lacks privileges: the real binary prints one
    /// line on stderr, exits with the documented code, and never shows the password.
    @Suite struct BadInvocationLiveTests {
        static let secret = "Wr0ng-Horse-Battery-9"

        /// The binary says which lockvault it is: the one version the package and the vault's
        /// daemon_version carry too.
        @Test func versionPrintsTheProjectsVersion() async throws {
            let r = try await ChildProcess.lockvault(["--version"])
            #expect(r.status == 0, "\(r)")
            #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == LockvaultVersion.current, "\(r)")
        }

        /// lv_pw (password login, pg_monitor), lv_nomon (no pg_monitor), lv_nowriter
        /// (pg_monitor, but not lock_writer_role).
        static func ensureRoles() throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            try admin.executeScript("""
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'password_login') THEN CREATE ROLE password_login NOLOGIN; END IF;
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lv_pw') THEN CREATE ROLE lv_pw LOGIN PASSWORD 'right-horse-battery'; END IF;
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lv_nomon') THEN CREATE ROLE lv_nomon LOGIN; END IF;
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lv_nowriter') THEN CREATE ROLE lv_nowriter LOGIN; END IF;
                END $$;
                GRANT password_login, pg_monitor TO lv_pw;
                GRANT pg_monitor TO lv_nowriter;
                """)
        }

        /// The verbs that talk to a database, with a DSN.
        static func verbs(dsn: String) -> [(String, [String])] {
            [
                ("sample", ["sample", "--once", "--dsn", dsn]),
                ("resolve", ["resolve", "--dsn", dsn]),
                ("blocking", ["blocking", "--dsn", dsn]),
                ("status", ["status", "--dsn", dsn]),
                ("ping", ["ping", "--dsn", dsn]),
            ]
        }

        static func expectOneLine(_ r: ChildProcess.Result, exit code: Int32, mentioning words: [String], _ what: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status == code, "\(what): \(r)", sourceLocation: sourceLocation)
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(what): one message on stderr: \(r)", sourceLocation: sourceLocation)
            for word in words {
                #expect(r.stderr.contains(word), "\(what): stderr should mention '\(word)': \(r)", sourceLocation: sourceLocation)
            }
            #expect(!r.output.contains(secret), "\(what): the password leaked: \(r)", sourceLocation: sourceLocation)
        }

        static func daemonConfig(target: String, vault: String? = nil) throws -> String {
            try writeTemporaryConfig("""
                target: { dsn: '\(target.replacingOccurrences(of: "'", with: "''"))' }
                vault: { dsn: \(vault.map { "'\($0)'" } ?? "null") }
                sampling: { interval_seconds: 0.2 }
                logging: { destination: json }
                """)
        }

        @Test func aMalformedDSNExits64AndNeverShowsThePassword() async throws {
            for dsn in ["postgresql://lv_pw:\(Self.secret)@[::1/postgres", "dbname=postgres password=\(Self.secret) oops"] {
                for (verb, args) in Self.verbs(dsn: dsn) {
                    let r = try await ChildProcess.lockvault(args)
                    Self.expectOneLine(r, exit: 64, mentioning: ["lockvault \(verb):", "invalid connection string"], "\(verb) \(dsn.prefix(12))")
                }
            }
            // In the daemon's config it is a configuration error naming the key, for run and check-config alike.
            let config = try Self.daemonConfig(target: "postgresql://lv_pw:\(Self.secret)@[::1/postgres")
            defer { unlink(config) }
            for verb in ["run", "check-config"] {
                let r = try await ChildProcess.lockvault([verb, "--config", config])
                #expect(r.status == 78, "\(verb): \(r)")
                #expect(r.stderr.contains("target.dsn") && r.stderr.contains("not a valid connection string"), "\(r)")
                #expect(!r.output.contains(Self.secret), "\(r)")
            }
        }

        /// A bad exclusion regex is refused before anything is decided: before, it silently
        /// matched nothing, so the session it was meant to spare could be ended.
        @Test func aBadExclusionRegexExits64BeforeConnecting() async throws {
            let r = try await ChildProcess.lockvault(["resolve", "--dsn", "host=/nonexistent", "--exclude-role", "/[unclosed/"])
            #expect(r.status == 64, "\(r)")
            #expect(r.stderr.contains("--exclude-role: invalid regular expression /[unclosed/"), "\(r)")
            #expect(!r.stderr.contains("cannot reach"), "refused before connecting: \(r)")
        }

        @Test func anUnreachableServerExits69() async throws {
            // Nothing listens on TCP port 1 (the test cluster has no TCP listener at all).
            let dsn = "host=127.0.0.1 port=1 connect_timeout=3 dbname=postgres user=lv_pw password=\(Self.secret)"
            for (verb, args) in Self.verbs(dsn: dsn) {
                let r = try await ChildProcess.lockvault(args)
                Self.expectOneLine(r, exit: 69, mentioning: ["lockvault \(verb):", "cannot reach", "127.0.0.1"], verb)
            }
            // The daemon waits for its vault (databases often start after their monitor) and says
            // why; SIGTERM while it waits is a clean stop.
            let config = try Self.daemonConfig(target: dsn)
            defer { unlink(config) }
            let daemon = try await ChildProcess(lockvault: ["run", "--config", config])
            try await waitUntil("the daemon reports it is waiting for the vault", timeout: .seconds(30)) {
                daemon.stdout.contains("vault not reachable yet")
            }
            #expect(daemon.isRunning)
            daemon.signal(SIGTERM)
            let r = try await daemon.waitForExit(timeout: .seconds(30))
            #expect(r.status == 0, "\(r)")
            #expect(!r.output.contains(Self.secret), "\(r)")
        }

        @Test func aWrongPasswordExits77AndIsNeverPrinted() async throws {
            try Self.ensureRoles()
            let dsns = [
                try LiveDatabase.conninfo(user: "lv_pw", password: Self.secret),
                "postgresql://lv_pw:\(Self.secret)@/postgres?host=\(ProcessInfo.processInfo.environment["PGHOST"] ?? "")",
            ]
            for dsn in dsns {
                for (verb, args) in Self.verbs(dsn: dsn) {
                    let r = try await ChildProcess.lockvault(args)
                    Self.expectOneLine(r, exit: 77, mentioning: ["lockvault \(verb):", "authentication", "lv_pw"], "\(verb) \(dsn.prefix(10))")
                }
            }
            // The same through PGPASSWORD, and through the daemon.
            let viaEnv = try await ChildProcess.lockvault(["sample", "--once", "--dsn", try LiveDatabase.conninfo(user: "lv_pw")],
                                                          environment: ["PGPASSWORD": Self.secret])
            Self.expectOneLine(viaEnv, exit: 77, mentioning: ["authentication"], "PGPASSWORD")
            let config = try Self.daemonConfig(target: dsns[0])
            defer { unlink(config) }
            let run = try await ChildProcess.lockvault(["run", "--config", config])
            #expect(run.status == 77, "\(run)")
            #expect(run.stderr.contains("lockvault run: authentication"), "\(run)")
            #expect(!run.output.contains(Self.secret), "\(run)")
            // And the right password works, so it was the password that was refused.
            let ok = try await ChildProcess.lockvault(["ping", "--dsn", try LiveDatabase.conninfo(user: "lv_pw", password: "right-horse-battery")])
            #expect(ok.status == 0, "\(ok)")
        }

        @Test func aVaultThatWasNeverMigratedExits65() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let dsn = try LiveDatabase.conninfo(database: db)
                for (verb, args) in [("sample", ["sample", "--once", "--dsn", dsn]), ("resolve", ["resolve", "--dsn", dsn]),
                                     ("status", ["status", "--dsn", dsn])] {
                    let r = try await ChildProcess.lockvault(args)
                    Self.expectOneLine(r, exit: 65, mentioning: ["lockvault \(verb):", "lockvault migrate"], verb)
                }
                // Looking without writing needs no vault.
                let look = try await ChildProcess.lockvault(["sample", "--once", "--no-write", "--dsn", dsn])
                #expect(look.status == 0, "\(look)")
                let config = try Self.daemonConfig(target: dsn)
                defer { unlink(config) }
                let run = try await ChildProcess.lockvault(["run", "--config", config])
                #expect(run.status == 65, "\(run)")
                #expect(run.stderr.contains("lockvault migrate"), "\(run)")
                // Nothing was written: the schema still doesn't exist.
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                #expect(try admin.query("SELECT 1 FROM pg_namespace WHERE nspname = 'lock_monitoring'").isEmpty)
            }
        }

        @Test func aRoleWithoutPgMonitorOrVaultRolesExits77NamingTheGrant() async throws {
            try Self.ensureRoles()
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try LiveDatabase.connect(database: db)
                defer { admin.close() }
                try Migrator().apply(on: admin)

                // No pg_monitor: other roles' sessions would be invisible; refused, not "0 blockers".
                let nomon = try LiveDatabase.conninfo(database: db, user: "lv_nomon")
                for (verb, args) in [("sample", ["sample", "--once", "--no-write", "--dsn", nomon]), ("blocking", ["blocking", "--dsn", nomon]),
                                     ("resolve", ["resolve", "--dsn", nomon, "--vault-dsn", try LiveDatabase.conninfo(database: db)])] {
                    let r = try await ChildProcess.lockvault(args)
                    Self.expectOneLine(r, exit: 77, mentioning: ["lockvault \(verb):", "GRANT pg_monitor TO lv_nomon"], verb)
                }
                let config = try Self.daemonConfig(target: nomon, vault: try LiveDatabase.conninfo(database: db))
                defer { unlink(config) }
                let run = try await ChildProcess.lockvault(["run", "--config", config])
                #expect(run.status == 77, "\(run)")
                #expect(run.stderr.contains("GRANT pg_monitor TO lv_nomon"), "\(run)")

                // pg_monitor but not the vault writer: may look, may not record.
                let nowriter = try LiveDatabase.conninfo(database: db, user: "lv_nowriter")
                let look = try await ChildProcess.lockvault(["sample", "--once", "--no-write", "--dsn", nowriter])
                #expect(look.status == 0, "\(look)")
                let write = try await ChildProcess.lockvault(["sample", "--once", "--dsn", nowriter])
                Self.expectOneLine(write, exit: 77, mentioning: ["GRANT lock_writer_role TO lv_nowriter"], "sample as lv_nowriter")
                let status = try await ChildProcess.lockvault(["status", "--dsn", nowriter])
                Self.expectOneLine(status, exit: 77, mentioning: ["GRANT lock_monitoring_role TO lv_nowriter"], "status as lv_nowriter")
                #expect(try admin.query("SELECT 1 FROM lock_monitoring.monitor_cycle_s").isEmpty, "nothing was recorded")
            }
        }
    }
}
