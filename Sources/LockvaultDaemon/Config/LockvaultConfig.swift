public import LockvaultCore
public import LockvaultEngine
public import Logging
public import PostgresClient
public import SystemdSupport

/// lockvault's configuration: what `etc/lockvault.yaml` documents, key by key.
///
/// Each section decodes straight into the type that uses it — `severity:` into Core's
/// ``SeverityPolicy``, `resolve:` into ``ResolvePolicy`` (exclusion regexes compiled), `alerts:`
/// into ``AlertPolicy``, `sampling:` into the engine's ``SnapshotOptions`` and the sessions'
/// ``SessionSettings`` — through one table of key paths (``ConfigSchema``). No twin structs to
/// copy field by field, so a setting exists in exactly one place.
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
    /// `sampling.query_text_length`, `sampling.lock_hold_threshold_seconds`.
    /// The daemon resolves a wait once it is a second old (`sampling.min_wait_seconds`); the
    /// one-shot commands, which see a moment once, resolve every wait.
    public var snapshot = SnapshotOptions(minWaitSeconds: 1)
    /// `sampling.statement_timeout_ms`, `sampling.lock_timeout_ms` for lockvault's own sessions.
    public var session = SessionSettings(applicationName: "lockvault")
    public var serverLogPath: String? = nil
    /// `sampling.server_log.format`; nil (`auto`) = by the file's name (`.csv` csvlog,
    /// `.json` jsonlog, else stderr).
    public var serverLogFormat: ServerLogFormat? = nil

    public var severity = SeverityPolicy()

    /// The kill rule and the resolver: the only copy of its settings (kill threshold included).
    public var resolve = ResolvePolicy()

    public var analyzeIntervalSeconds = 3600.0
    public var cleanupIntervalSeconds = 86400.0
    public var retentionDays = 30
    /// statement_timeout of the daemon's retention runs (0 = none): a day of a fleet's history
    /// takes longer to drop than the sampling timeout allows a cycle's write.
    public var retentionStatementTimeoutMs = 600_000

    public var logLevel = Logger.Level.info
    public var logDestination = LogDestination.auto

    public var alerts = AlertSettings()

    /// `metrics.listen`: `host:port` for the Prometheus endpoint; nil (the default) = off.
    public var metricsListen: String? = nil

    public init() {}
}

/// The `alerts:` section: when to alert (Core's policy) and where to (the sinks).
public struct AlertSettings: Sendable, Equatable {
    public var policy = AlertPolicy()
    public var sinks: [AlertSinkSettings] = []

    public init() {}
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
