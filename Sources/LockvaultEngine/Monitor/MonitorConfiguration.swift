public import LockvaultCore
public import PostgresClient

/// Everything a ``Monitor`` needs to know; the daemon builds it from the config file.
public struct MonitorConfiguration: Sendable {
    /// The monitored cluster ("" = libpq environment).
    public var targetDSN: String
    /// Where history is written; nil = the target itself.
    public var vaultDSN: String?
    /// Label in record_source; default: derived from host name and database.
    public var clusterName: String
    public var snapshot: SnapshotOptions
    public var severity: SeverityPolicy
    public var session: SessionSettings
    /// Server log to read "deadlock detected" details from (nil = don't).
    public var serverLogPath: String?
    /// nil = by the file's name (`.csv` csvlog, `.json` jsonlog, else stderr).
    public var serverLogFormat: ServerLogFormat?
    /// A cycle-summary row is written at least this often, even when nothing changed.
    public var heartbeatSeconds: Double
    /// Cycle records kept in memory while the vault is unreachable; beyond it the oldest are
    /// dropped and a gap is recorded.
    public var maxBufferedCycles: Int
    /// Where buffered cycle records are spooled so a restart during a vault outage loses
    /// none (nil = memory only). Read at start; a change takes effect at the next start.
    public var spoolDirectory: String? = nil
    /// The spool's bound in bytes; beyond it records stay in memory only.
    public var spoolMaxBytes: Int = 256 << 20
    /// How long one cycle may spend writing buffered records after the vault returns; the rest
    /// is written in the following cycles, so a long backlog never stalls sampling.
    public var flushBudgetMs: Int
    /// The auto-resolver and the kill rule (off unless `resolve.enabled`).
    public var resolve: ResolvePolicy
    /// Who decided, for the audit ("daemon@host" or "cli@host").
    public var decidedBy: String

    public init(
        targetDSN: String = "", vaultDSN: String? = nil, clusterName: String = "", snapshot: SnapshotOptions = .init(),
        severity: SeverityPolicy = .init(), session: SessionSettings = .init(), serverLogPath: String? = nil,
        serverLogFormat: ServerLogFormat? = nil, heartbeatSeconds: Double = 60, maxBufferedCycles: Int = 3600,
        resolve: ResolvePolicy = ResolvePolicy(), decidedBy: String = "daemon", flushBudgetMs: Int = 500
    ) {
        self.flushBudgetMs = flushBudgetMs
        self.resolve = resolve
        self.decidedBy = decidedBy
        self.targetDSN = targetDSN
        self.vaultDSN = vaultDSN
        self.clusterName = clusterName
        self.snapshot = snapshot
        self.severity = severity
        self.session = session
        self.serverLogPath = serverLogPath
        self.serverLogFormat = serverLogFormat
        self.heartbeatSeconds = heartbeatSeconds
        self.maxBufferedCycles = maxBufferedCycles
    }
}
