import Foundation

/// What `lockvault doctor` found out about a cluster, a role and a vault: plain values, gathered
/// by the engine, judged here without I/O so every rule is unit-tested.
public struct DoctorFacts: Sendable, Equatable {
    public var serverVersionNum = 0
    public var serverVersion = ""
    public var role = ""
    public var isSuperuser = false
    public var hasPgMonitor = false
    public var hasPgSignalBackend = false
    public var logLockWaits = false
    public var deadlockTimeoutMs = 1000
    /// Server defaults (`reset_val`), not lockvault's own session settings.
    public var lockTimeoutMs = 0
    public var idleInTransactionTimeoutMs = 0
    public var maxLocksPerTransaction = 64
    public var maxConnections = 100
    public var maxPreparedTransactions = 0
    public var locksInUse = 0
    /// nil: the vault could not be reached (`vaultError` says why).
    public var vaultPendingMigrations: [String]? = nil
    public var vaultError: String? = nil
    /// The role may write the vault (lock_writer_role, or the privileges it carries).
    public var vaultWritable = false
    public var vaultRole = ""
    /// `sampling.server_log.path` from the config; nil when not configured.
    public var serverLogPath: String? = nil
    public var serverLogReadable = false
    public var loggingCollector = false
    /// Server clock minus this host's, in seconds (round-trip corrected).
    public var clockSkewSeconds = 0.0
    /// The config lets the resolver act (enabled, not a dry run).
    public var resolveActs = false

    public init() {}

    /// What the monitored server can do, from ``serverVersionNum``.
    public var capabilities: ServerCapabilities { ServerCapabilities(serverVersionNum: serverVersionNum) }

    public var lockTableCapacity: Int { maxLocksPerTransaction * (maxConnections + maxPreparedTransactions) }
}

/// One line of the checklist.
public struct DoctorFinding: Sendable, Equatable {
    public enum Verdict: String, Sendable, Comparable {
        case ok = "OK", warn = "WARN", fail = "FAIL"
        var rank: Int { self == .ok ? 0 : self == .warn ? 1 : 2 }
        public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
    }

    public var verdict: Verdict
    public var check: String
    public var detail: String
    /// The exact setting or GRANT that fixes it (nil when nothing to do).
    public var fix: String?

    public init(_ verdict: Verdict, _ check: String, _ detail: String, fix: String? = nil) {
        self.verdict = verdict
        self.check = check
        self.detail = detail
        self.fix = fix
    }
}

public enum Diagnosis {
    /// The checklist, in the order a DBA would work through it.
    public static func evaluate(_ f: DoctorFacts) -> [DoctorFinding] {
        var out: [DoctorFinding] = []
        let role = quoteIdent(f.role)

        // Server version and what it enables.
        let server = f.capabilities, minimum = ServerCapabilities.minimumMajorVersion
        let tested = ServerCapabilities.testedMajorVersions
        if !server.isSupported {
            out.append(.init(.fail, "server version", "\(f.serverVersion): lockvault needs PostgreSQL \(minimum) or later", fix: "upgrade PostgreSQL"))
        } else if !server.isTested {
            // Accepted, and what it lacks is handled, but no test of lockvault ran on it (docs/operations.md, "PostgreSQL versions").
            out.append(.init(.warn, "server version", "\(f.serverVersion): accepted, but lockvault's tests run on PostgreSQL \(tested.first!)-\(tested.last!) only",
                             fix: "expect to be the first to find what differs; PostgreSQL \(tested.first!)-\(tested.last!) are tested"))
        } else {
            let lacks = ServerCapabilities.Capability.allCases.filter { !server.has($0) }.map(\.rawValue)
            out.append(.init(.ok, "server version", "\(f.serverVersion): pg_locks.waitstart gives exact wait times"
                             + (lacks.isEmpty ? "" : "; lacks (handled): \(lacks.joined(separator: ", "))")))
        }

        // Privileges on the monitored cluster.
        if f.isSuperuser {
            out.append(.init(.warn, "role \(f.role)", "is a superuser: works, but a monitor needs far less",
                             fix: "CREATE ROLE lockvault LOGIN; GRANT pg_monitor, pg_signal_backend, lock_writer_role TO lockvault;"))
        } else {
            out.append(f.hasPgMonitor
                ? .init(.ok, "pg_monitor", "role \(f.role) sees every session's query and lock")
                : .init(.fail, "pg_monitor", "role \(f.role) lacks pg_monitor: other roles' queries show as <insufficient privilege> and their waits cannot be attributed",
                        fix: "GRANT pg_monitor TO \(role);"))
            if f.hasPgSignalBackend {
                out.append(.init(.ok, "pg_signal_backend", "role \(f.role) may cancel and terminate non-superuser sessions"))
            } else {
                out.append(.init(f.resolveActs ? .fail : .warn, "pg_signal_backend",
                                 "role \(f.role) lacks pg_signal_backend: " + (f.resolveActs ? "the resolver is enabled and will fail to act" : "needed only if the resolver is to act"),
                                 fix: "GRANT pg_signal_backend TO \(role);"))
            }
        }

        // Server settings a lock monitor relies on.
        out.append(f.logLockWaits
            ? .init(.ok, "log_lock_waits", "on: waits longer than deadlock_timeout are in the server log")
            : .init(.warn, "log_lock_waits", "off: the server log says nothing about long lock waits",
                    fix: "ALTER SYSTEM SET log_lock_waits = on; SELECT pg_reload_conf();"))
        if f.deadlockTimeoutMs > 5000 {
            out.append(.init(.warn, "deadlock_timeout", "\(f.deadlockTimeoutMs) ms: deadlocks stay undetected (and sessions stuck) that long",
                             fix: "ALTER SYSTEM SET deadlock_timeout = '1s'; SELECT pg_reload_conf();"))
        } else {
            out.append(.init(.ok, "deadlock_timeout", "\(f.deadlockTimeoutMs) ms"))
        }
        if f.idleInTransactionTimeoutMs == 0 {
            out.append(.init(.warn, "idle_in_transaction_session_timeout", "0 (off): a forgotten open transaction can hold its locks forever",
                             fix: "ALTER SYSTEM SET idle_in_transaction_session_timeout = '10min'; SELECT pg_reload_conf();  -- or per role: ALTER ROLE app SET …"))
        } else {
            out.append(.init(.ok, "idle_in_transaction_session_timeout", "\(f.idleInTransactionTimeoutMs) ms"))
        }
        if f.lockTimeoutMs == 0 {
            out.append(.init(.warn, "lock_timeout", "0 (off) by default: DDL waiting for a lock queues everyone behind it",
                             fix: "set lock_timeout in migration/DDL sessions (SET lock_timeout = '5s'), or ALTER ROLE deploy SET lock_timeout = '5s';"))
        } else {
            out.append(.init(.ok, "lock_timeout", "\(f.lockTimeoutMs) ms by default"))
        }

        // Lock table.
        let capacity = f.lockTableCapacity
        let use = capacity > 0 ? Double(f.locksInUse) / Double(capacity) : 0
        let pct = Int((use * 100).rounded())
        let table = "\(f.locksInUse) of \(capacity) slots in use (\(pct) %; max_locks_per_transaction \(f.maxLocksPerTransaction) × (max_connections \(f.maxConnections) + max_prepared_transactions \(f.maxPreparedTransactions)))"
        if use >= 0.9 {
            out.append(.init(.fail, "lock table", table + ": close to 'out of shared memory'",
                             fix: "ALTER SYSTEM SET max_locks_per_transaction = \(f.maxLocksPerTransaction * 2);  -- needs a restart"))
        } else if use >= 0.5 {
            out.append(.init(.warn, "lock table", table, fix: "ALTER SYSTEM SET max_locks_per_transaction = \(f.maxLocksPerTransaction * 2);  -- needs a restart"))
        } else {
            out.append(.init(.ok, "lock table", table))
        }

        // The vault.
        if let pending = f.vaultPendingMigrations {
            out.append(pending.isEmpty
                ? .init(.ok, "vault schema", "lock_monitoring is migrated and current")
                : .init(.fail, "vault schema", "\(pending.count) migration(s) pending: \(pending.joined(separator: ", "))",
                        fix: "lockvault migrate --dsn '<vault dsn>'  (as the role that owns the vault)"))
            if pending.isEmpty { out.append(f.vaultWritable
                ? .init(.ok, "vault privileges", "role \(f.vaultRole) may write the vault")
                : .init(.fail, "vault privileges", "role \(f.vaultRole) cannot write lock_monitoring (record_cycle, inserts)",
                        fix: "GRANT lock_writer_role TO \(quoteIdent(f.vaultRole));")) }
        } else {
            out.append(.init(.fail, "vault", "cannot read the vault: \(f.vaultError ?? "unknown error")", fix: "check vault.dsn, then lockvault migrate"))
        }

        // Deadlock details from the server log.
        if let path = f.serverLogPath {
            out.append(f.serverLogReadable
                ? .init(.ok, "server log", "\(path) is readable: deadlocks are recorded with participants and queries")
                : .init(.fail, "server log", "\(path) is not readable by this user: deadlocks are recorded without details",
                        fix: "grant read access (e.g. add the lockvault user to the postgres group, or log_file_mode = 0640), or unset sampling.server_log.path"))
        } else {
            out.append(.init(.warn, "server log", "sampling.server_log.path is not set: deadlocks are counted and seen in the graph, but without the server's report"
                             + (f.loggingCollector ? "" : " (and logging_collector is off)"),
                             fix: "set sampling.server_log.path (and format) to the server's current log file"))
        }

        // Clocks: durations compare the server's timestamps with each other, but alert and gap
        // times mix in this host's clock.
        let skew = abs(f.clockSkewSeconds)
        let skewText = "server clock \(f.clockSkewSeconds >= 0 ? "ahead of" : "behind") this host by \(formatSeconds(skew))"
        if skew > 5 {
            out.append(.init(.fail, "clock skew", skewText, fix: "synchronise both clocks (chrony / systemd-timesyncd)"))
        } else if skew > 1 {
            out.append(.init(.warn, "clock skew", skewText, fix: "synchronise both clocks (chrony / systemd-timesyncd)"))
        } else {
            out.append(.init(.ok, "clock skew", skewText))
        }
        return out
    }

    /// `fred` stays `fred`; `Fred`, `a b`, `a"b` are quoted as PostgreSQL would need them.
    public static func quoteIdent(_ name: String) -> String {
        let plain = !name.isEmpty && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            && !("0"..."9").contains(name.unicodeScalars.first!)
        return plain ? name : "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func formatSeconds(_ s: Double) -> String {
        s < 1 ? "\(Int((s * 1000).rounded())) ms" : "\(Int(s.rounded())) s"
    }
}

