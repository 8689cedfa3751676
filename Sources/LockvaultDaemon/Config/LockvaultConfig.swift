public import LockvaultCore

/// lockvault's configuration: what `etc/lockvault.yaml` documents, key by key.
///
/// Defaults are the safe ones: the resolver is off and, when turned on, starts in dry-run.
public struct LockvaultConfig: Sendable, Equatable {
    public var clusterName = ""
    public var targetDSN = ""
    public var vaultDSN: String? = nil
    public var maxBufferedCycles = 3600

    public var intervalSeconds = 1.0
    public var queryTextLength = 1024
    public var lockHoldThresholdSeconds = 5.0
    public var statementTimeoutMs = 5000
    public var lockTimeoutMs = 1000
    public var serverLogPath: String? = nil
    public var serverLogFormat = "stderr"

    public var severity = SeverityPolicy()

    public var resolve = ResolveSettings()

    public var analyzeIntervalSeconds = 3600.0
    public var cleanupIntervalSeconds = 86400.0
    public var retentionDays = 30

    public var logLevel = "info"
    public var logDestination = "auto"

    public init() {}
}

/// The `resolve:` section (used by the auto-resolver).
public struct ResolveSettings: Sendable, Equatable {
    public var enabled = false
    public var dryRun = true
    public var minSeverity = "CRITICAL"
    public var killThresholdSeconds = 300.0
    public var cancelGraceSeconds = 30.0
    public var terminateTimeoutMs = 5000
    public var maxTerminationsPerMinute = 3
    public var maxActionsPerCycle = 1
    public var allowSuperuser = false
    public var excludeRoles: [String] = []
    public var excludeApplications: [String] = []
    public var excludeDatabases: [String] = []
    public var excludeClientAddresses: [String] = []

    public init() {}
}
