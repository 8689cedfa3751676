public import LockvaultCore

/// lockvault's configuration: what `etc/lockvault.yaml` documents, key by key.
///
/// Defaults are the safe ones: the resolver is off and, when turned on, starts in dry-run.
public struct LockvaultConfig: Sendable, Equatable {
    public var clusterName = ""
    public var targetDSN = ""
    public var vaultDSN: String? = nil
    public var maxBufferedCycles = 3600
    /// `vault.spool_directory`: where buffered cycle records survive a restart; nil = the
    /// service's state directory (`$STATE_DIRECTORY/spool`, systemd's StateDirectory=), and
    /// no spool when that is unset either.
    public var spoolDirectory: String? = nil
    public var spoolMaxMB = 256

    public var intervalSeconds = 1.0
    public var queryTextLength = 1024
    public var lockHoldThresholdSeconds = 5.0
    public var statementTimeoutMs = 5000
    public var lockTimeoutMs = 1000
    public var serverLogPath: String? = nil
    public var serverLogFormat = "auto"

    public var severity = SeverityPolicy()

    public var resolve = ResolveSettings()

    public var analyzeIntervalSeconds = 3600.0
    public var cleanupIntervalSeconds = 86400.0
    public var retentionDays = 30

    public var logLevel = "info"
    public var logDestination = "auto"

    public var alerts = AlertSettings()

    /// `metrics.listen`: `host:port` for the Prometheus endpoint; nil (the default) = off.
    public var metricsListen: String? = nil

    public init() {}
}

/// The `alerts:` section.
public struct AlertSettings: Sendable, Equatable {
    public var minSeverity = "CRITICAL"
    public var clearAfterSeconds = 10.0
    public var flapWindowSeconds = 600.0
    public var queryTextLength = 1000
    public var sinks: [AlertSinkSettings] = []

    public init() {}

    /// The core's alert policy.
    public var policy: AlertPolicy {
        var p = AlertPolicy()
        p.minSeverity = BlockerSeverity(rawValue: minSeverity) ?? .critical
        p.clearAfterSeconds = clearAfterSeconds
        p.flapWindowSeconds = flapWindowSeconds
        p.queryTextLength = queryTextLength
        return p
    }
}

/// One entry of `alerts.sinks`: where alerts go.
public struct AlertSinkSettings: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// Runs `command` (argv, no shell) with the alert's JSON on stdin.
        case command
        /// POSTs the alert's JSON to `url`.
        case webhook
    }

    public var name: String
    public var kind: Kind
    public var command: [String] = []
    public var url: String? = nil
    /// Extra HTTP headers (e.g. an Authorization token); never logged.
    public var headers: [String: String] = [:]
    public var timeoutMs = 5000
    /// Further attempts after a failed one, with exponential backoff.
    public var retries = 3
    /// Alerts waiting for this sink; when full the oldest is dropped (and counted).
    public var queueCapacity = 100

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
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
