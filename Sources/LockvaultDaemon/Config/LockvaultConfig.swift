public import LockvaultCore
public import LockvaultEngine
public import Logging
import PostgresClient
public import SystemdSupport

/// lockvault's configuration: what `etc/lockvault.yaml` documents, key by key.
///
/// Each section decodes straight into the type that uses it — `severity:` into Core's
/// ``SeverityPolicy``, `resolve:` into ``ResolvePolicy`` (exclusion regexes compiled), `alerts:`
/// into ``AlertPolicy``, `sampling:` into the engine's ``SamplingSettings``, `vault:` into its
/// ``VaultSettings`` — through one table of key paths (``ConfigSchema``). No twin structs to
/// copy field by field, so a setting exists in exactly one place.
///
/// Defaults are the safe ones: the resolver is off and, when turned on, starts in dry-run.
public struct LockvaultConfig: Sendable, Equatable {
    /// `cluster_name`, `target.dsn`, `vault:`, `sampling:` (but its interval), `severity:` and
    /// `resolve:` (the kill rule: the only copy of its settings): the Monitor's sections, handed
    /// to it whole. The daemon resolves a wait once it is a second old
    /// (`sampling.min_wait_seconds`); the one-shot commands, which see a moment once, resolve
    /// every wait. `vault.spool_directory` nil = the service's state directory
    /// (`$STATE_DIRECTORY/spool`, systemd's StateDirectory=), and no spool when that is unset.
    public var monitor = MonitorSettings(
        sampling: SamplingSettings(snapshot: SnapshotOptions(minWaitSeconds: 1), session: SessionSettings(applicationName: "lockvault")))

    public var intervalSeconds = 1.0

    /// `schedule:`: the vault's maintenance, handed to it whole.
    public var schedule = VaultMaintenance.Settings()

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
