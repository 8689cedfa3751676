public import LockvaultCore
public import PostgresClient

/// The config file's `target.dsn` and `sampling:` keys the ``Monitor`` reads the monitored
/// cluster with. A section of `LockvaultConfig` (the daemon's), not a copy of it: the config
/// file's loader writes into this value, and the Monitor receives it whole.
public struct SamplingSettings: Sendable, Equatable {
    /// The monitored cluster ("" = libpq environment).
    public var targetDSN: String
    /// `sampling.query_text_length`, `min_wait_seconds`, `lock_hold_threshold_seconds`.
    public var snapshot: SnapshotOptions
    /// `sampling.statement_timeout_ms`, `sampling.lock_timeout_ms` for lockvault's own sessions.
    public var session: SessionSettings
    /// `sampling.server_log.path`: where "deadlock detected" details are read (nil = don't).
    public var serverLogPath: String?
    /// `sampling.server_log.format`; nil (`auto`) = by the file's name (`.csv` csvlog,
    /// `.json` jsonlog, else stderr).
    public var serverLogFormat: ServerLogFormat?

    public init(targetDSN: String = "", snapshot: SnapshotOptions = .init(), session: SessionSettings = .init(),
                serverLogPath: String? = nil, serverLogFormat: ServerLogFormat? = nil) {
        self.targetDSN = targetDSN
        self.snapshot = snapshot
        self.session = session
        self.serverLogPath = serverLogPath
        self.serverLogFormat = serverLogFormat
    }
}

/// The config file's `vault:` section: where history is written and how an outage is
/// survived. The one home of the heartbeat too, which both the vault's change plan and the
/// target's gap detection read, so they can't disagree about it.
public struct VaultSettings: Sendable, Equatable {
    /// `vault.dsn`: where history is written; nil = the target itself.
    public var dsn: String?
    /// `vault.max_buffered_cycles`: cycles kept in memory while the vault is unreachable;
    /// beyond it the oldest are dropped and a gap is recorded.
    public var maxBufferedCycles: Int
    /// `vault.spool_directory`: where buffered cycles survive a restart (nil = memory only,
    /// for the Monitor; the daemon fills in its state directory first). Read at start.
    public var spoolDirectory: String?
    /// `vault.spool_max_mb`: the spool's bound; beyond it cycles stay in memory only.
    public var spoolMaxMB: Int
    /// How long one cycle may spend writing buffered cycles after the vault returns; the rest
    /// is written in the following cycles, so a long backlog never stalls sampling.
    public var flushBudgetMs: Int
    /// A cycle-summary row is written at least this often, even when nothing changed; a
    /// longer silence in the vault means lockvault was not recording.
    public var heartbeatSeconds: Double

    public init(dsn: String? = nil, maxBufferedCycles: Int = 3600, spoolDirectory: String? = nil, spoolMaxMB: Int = 256,
                flushBudgetMs: Int = 500, heartbeatSeconds: Double = 60) {
        self.dsn = dsn
        self.maxBufferedCycles = maxBufferedCycles
        self.spoolDirectory = spoolDirectory
        self.spoolMaxMB = spoolMaxMB
        self.flushBudgetMs = flushBudgetMs
        self.heartbeatSeconds = heartbeatSeconds
    }

    /// The vault state machine's bounds.
    public var limits: VaultLimits {
        VaultLimits(maxBufferedCycles: maxBufferedCycles, flushBudget: .milliseconds(max(1, flushBudgetMs)), heartbeatSeconds: heartbeatSeconds)
    }
}

/// The sections of the configuration a ``Monitor`` works with, each the config file's own
/// value (`LockvaultConfig.monitor` in the daemon; the commands build one from their options).
public struct MonitorSettings: Sendable, Equatable {
    /// `cluster_name`: label in record_source; "" = derived from host name and database.
    public var clusterName: String
    public var sampling: SamplingSettings
    public var vault: VaultSettings
    /// `severity:`.
    public var severity: SeverityPolicy
    /// `resolve:`: the auto-resolver and the kill rule (off unless `resolve.enabled`).
    public var resolve: ResolvePolicy

    public init(clusterName: String = "", sampling: SamplingSettings = .init(), vault: VaultSettings = .init(),
                severity: SeverityPolicy = .init(), resolve: ResolvePolicy = .init()) {
        self.clusterName = clusterName
        self.sampling = sampling
        self.vault = vault
        self.severity = severity
        self.resolve = resolve
    }
}
