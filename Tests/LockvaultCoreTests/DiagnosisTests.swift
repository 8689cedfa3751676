import Testing
@testable import LockvaultCore

@Suite struct DiagnosisTests {
    static func healthy() -> DoctorFacts {
        var f = DoctorFacts()
        f.serverVersionNum = 150018
        f.serverVersion = "PostgreSQL 15.18"
        f.role = "lockvault"
        f.hasPgMonitor = true
        f.hasPgSignalBackend = true
        f.logLockWaits = true
        f.lockTimeoutMs = 5000
        f.idleInTransactionTimeoutMs = 600_000
        f.locksInUse = 10
        f.vaultPendingMigrations = []
        f.vaultWritable = true
        f.vaultRole = "lockvault"
        f.serverLogPath = "/var/log/postgresql/postgresql-15-main.log"
        f.serverLogReadable = true
        return f
    }

    func line(_ f: DoctorFacts, _ check: String) -> DoctorFinding? {
        Diagnosis.evaluate(f).first { $0.check == check }
    }

    @Test func aHealthySetupHasNothingToFix() {
        let findings = Diagnosis.evaluate(Self.healthy())
        #expect(findings.allSatisfy { $0.verdict == .ok }, "\(findings.filter { $0.verdict != .ok })")
    }

    @Test func eachProblemFailsItsLineWithTheFix() {
        var f = Self.healthy()
        f.hasPgMonitor = false
        f.role = "Monitor Bot"
        #expect(line(f, "pg_monitor")?.verdict == .fail)
        #expect(line(f, "pg_monitor")?.fix == "GRANT pg_monitor TO \"Monitor Bot\";")

        f = Self.healthy()
        f.hasPgSignalBackend = false
        #expect(line(f, "pg_signal_backend")?.verdict == .warn, "resolver off: only a warning")
        f.resolveActs = true
        #expect(line(f, "pg_signal_backend")?.verdict == .fail)

        f = Self.healthy()
        f.logLockWaits = false
        #expect(line(f, "log_lock_waits")?.fix?.contains("ALTER SYSTEM SET log_lock_waits = on") == true)

        f = Self.healthy()
        f.serverVersionNum = 120000
        #expect(line(f, "server version")?.verdict == .fail)
        f.serverVersionNum = 130010
        #expect(line(f, "server version")?.verdict == .fail, "13 is below the floor")
        #expect(line(f, "server version")?.detail.contains("needs PostgreSQL 14 or later") == true)
        f.serverVersionNum = 190000
        #expect(line(f, "server version")?.verdict == .warn, "accepted, untested")
        #expect(line(f, "server version")?.detail.contains("tests run on PostgreSQL 14-18") == true)
        for tested in [140022, 150018, 160015, 170010, 180006] {
            f.serverVersionNum = tested
            #expect(line(f, "server version")?.verdict == .ok, "\(tested)")
        }
        f.serverVersionNum = 140022
        #expect(line(f, "server version")?.detail.contains("lacks (handled): jsonlog, stat_force_next_flush") == true, "14 says what it lacks")

        f = Self.healthy()
        f.locksInUse = 19_000   // of 64 × 100
        #expect(line(f, "lock table")?.verdict == .fail)
        #expect(line(f, "lock table")?.fix?.contains("max_locks_per_transaction = 128") == true)

        f = Self.healthy()
        f.vaultPendingMigrations = ["012_alerts.sql"]
        #expect(line(f, "vault schema")?.verdict == .fail)
        #expect(line(f, "vault privileges") == nil, "privileges are moot until the schema is there")

        f = Self.healthy()
        f.vaultWritable = false
        #expect(line(f, "vault privileges")?.fix == "GRANT lock_writer_role TO lockvault;")

        f = Self.healthy()
        f.vaultPendingMigrations = nil
        f.vaultError = "connection refused"
        #expect(line(f, "vault")?.verdict == .fail)

        f = Self.healthy()
        f.serverLogReadable = false
        #expect(line(f, "server log")?.verdict == .fail)

        f = Self.healthy()
        f.clockSkewSeconds = -7
        #expect(line(f, "clock skew")?.verdict == .fail)
        #expect(line(f, "clock skew")?.detail.contains("behind") == true)
    }
}
