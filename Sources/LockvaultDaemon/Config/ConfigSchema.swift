import Foundation
import LockvaultCore

/// Every key the config file may contain: its path, type, range and the property of the
/// domain type it sets (``LockvaultConfig`` holds those types: ``ResolvePolicy``,
/// ``SeverityPolicy``, ``AlertPolicy``, …).
///
/// One table drives parsing, validation, environment overrides and error messages, so a key
/// can't be accepted in one place and unknown in another.
// Key paths are immutable values; the table is built once and only read.
struct ConfigField: @unchecked Sendable {
    enum Kind {
        case string(WritableKeyPath<LockvaultConfig, String>)
        case optionalString(WritableKeyPath<LockvaultConfig, String?>)
        case double(WritableKeyPath<LockvaultConfig, Double>, ClosedRange<Double>)
        /// A number in range, or null for "off".
        case optionalDouble(WritableKeyPath<LockvaultConfig, Double?>, ClosedRange<Double>)
        case int(WritableKeyPath<LockvaultConfig, Int>, ClosedRange<Int>)
        case bool(WritableKeyPath<LockvaultConfig, Bool>)
        /// One of `choices`; `set` stores the typed value.
        case choice(choices: [String], set: (inout LockvaultConfig, String) -> Void)
        case patterns(WritableKeyPath<LockvaultConfig, [ExclusionPattern]>)
        case sinks(WritableKeyPath<LockvaultConfig, [AlertSinkSettings]>)
        case listenAddress(WritableKeyPath<LockvaultConfig, String?>)

        /// A string-backed enum: its cases (in declaration order) are the choices.
        static func choice<T: RawRepresentable & CaseIterable>(_ kp: WritableKeyPath<LockvaultConfig, T>) -> Kind where T.RawValue == String {
            .choice(choices: T.allCases.map(\.rawValue)) { config, raw in
                if let value = T(rawValue: raw) { config[keyPath: kp] = value }
            }
        }

        /// An optional string-backed enum: `none` (listed first) stores nil, meaning "decide
        /// later" (`sampling.server_log.format: auto` = by the log file's name).
        static func choice<T: RawRepresentable & CaseIterable>(_ kp: WritableKeyPath<LockvaultConfig, T?>, none: String) -> Kind where T.RawValue == String {
            .choice(choices: [none] + T.allCases.map(\.rawValue)) { config, raw in
                config[keyPath: kp] = raw == none ? nil : T(rawValue: raw)
            }
        }
    }

    let path: String
    let kind: Kind

    /// `sampling.interval_seconds` → `LOCKVAULT_SAMPLING_INTERVAL_SECONDS`.
    var environmentName: String { "LOCKVAULT_" + path.replacingOccurrences(of: ".", with: "_").uppercased() }
}

enum ConfigSchema {
    static let fields: [ConfigField] = [
        .init(path: "cluster_name", kind: .string(\.monitor.clusterName)),
        .init(path: "target.dsn", kind: .string(\.monitor.sampling.targetDSN)),
        .init(path: "vault.dsn", kind: .optionalString(\.monitor.vault.dsn)),
        .init(path: "vault.max_buffered_cycles", kind: .int(\.monitor.vault.maxBufferedCycles, 1...1_000_000)),
        .init(path: "vault.spool_directory", kind: .optionalString(\.monitor.vault.spoolDirectory)),
        .init(path: "vault.spool_max_mb", kind: .int(\.monitor.vault.spoolMaxMB, 1...1_048_576)),
        .init(path: "sampling.interval_seconds", kind: .double(\.intervalSeconds, 0.1...3600)),
        .init(path: "sampling.query_text_length", kind: .int(\.monitor.sampling.snapshot.queryTextLength, 0...1_048_576)),
        .init(path: "sampling.min_wait_seconds", kind: .double(\.monitor.sampling.snapshot.minWaitSeconds, 0...3600)),
        .init(path: "sampling.lock_hold_threshold_seconds", kind: .double(\.monitor.sampling.snapshot.lockHoldThresholdSeconds, 0...86400)),
        .init(path: "sampling.statement_timeout_ms", kind: .int(\.monitor.sampling.session.statementTimeoutMs, 100...600_000)),
        .init(path: "sampling.lock_timeout_ms", kind: .int(\.monitor.sampling.session.lockTimeoutMs, 10...600_000)),
        .init(path: "sampling.server_log.path", kind: .optionalString(\.monitor.sampling.serverLogPath)),
        .init(path: "sampling.server_log.format", kind: .choice(\.monitor.sampling.serverLogFormat, none: "auto")),
        .init(path: "severity.medium_after_seconds", kind: .double(\.monitor.severity.mediumAfterSeconds, 0...604_800)),
        .init(path: "severity.high_after_seconds", kind: .double(\.monitor.severity.highAfterSeconds, 0...604_800)),
        .init(path: "severity.critical_after_seconds", kind: .double(\.monitor.severity.criticalAfterSeconds, 0...604_800)),
        .init(path: "severity.high_blocked_sessions", kind: .int(\.monitor.severity.highBlockedSessions, 1...100_000)),
        .init(path: "severity.critical_blocked_sessions", kind: .int(\.monitor.severity.criticalBlockedSessions, 1...100_000)),
        .init(path: "severity.idle_in_transaction_factor", kind: .double(\.monitor.severity.idleInTransactionFactor, 0.001...1)),
        .init(path: "severity.exclusive_lock_escalates", kind: .bool(\.monitor.severity.exclusiveLockEscalates)),
        .init(path: "resolve.enabled", kind: .bool(\.monitor.resolve.enabled)),
        .init(path: "resolve.dry_run", kind: .bool(\.monitor.resolve.dryRun)),
        .init(path: "resolve.min_severity", kind: .choice(\.monitor.resolve.minSeverity)),
        .init(path: "resolve.kill_threshold_seconds", kind: .double(\.monitor.resolve.killThresholdSeconds, 1...86400)),
        .init(path: "resolve.cancel_grace_seconds", kind: .double(\.monitor.resolve.cancelGraceSeconds, 0...3600)),
        .init(path: "resolve.cancel_queued_after_seconds", kind: .optionalDouble(\.monitor.resolve.cancelQueuedAfterSeconds, 0...86400)),
        .init(path: "resolve.terminate_timeout_ms", kind: .int(\.monitor.resolve.terminateTimeoutMs, 100...60_000)),
        .init(path: "resolve.max_terminations_per_minute", kind: .int(\.monitor.resolve.maxTerminationsPerMinute, 0...1000)),
        .init(path: "resolve.max_actions_per_cycle", kind: .int(\.monitor.resolve.maxActionsPerCycle, 0...100)),
        .init(path: "resolve.allow_superuser", kind: .bool(\.monitor.resolve.allowSuperuser)),
        .init(path: "resolve.exclude.roles", kind: .patterns(\.monitor.resolve.excludeRoles)),
        .init(path: "resolve.exclude.applications", kind: .patterns(\.monitor.resolve.excludeApplications)),
        .init(path: "resolve.exclude.databases", kind: .patterns(\.monitor.resolve.excludeDatabases)),
        .init(path: "resolve.exclude.client_addresses", kind: .patterns(\.monitor.resolve.excludeClientAddresses)),
        .init(path: "schedule.analyze_interval_seconds", kind: .double(\.schedule.analyzeIntervalSeconds, 0...604_800)),
        .init(path: "schedule.cleanup_interval_seconds", kind: .double(\.schedule.cleanupIntervalSeconds, 0...604_800)),
        .init(path: "schedule.retention_days", kind: .int(\.schedule.retentionDays, 1...3650)),
        .init(path: "schedule.retention_statement_timeout_ms", kind: .int(\.schedule.retentionStatementTimeoutMs, 0...86_400_000)),
        .init(path: "logging.level", kind: .choice(\.logLevel)),
        .init(path: "logging.destination", kind: .choice(\.logDestination)),
        .init(path: "alerts.min_severity", kind: .choice(\.alerts.policy.minSeverity)),
        .init(path: "alerts.clear_after_seconds", kind: .double(\.alerts.policy.clearAfterSeconds, 0...86400)),
        .init(path: "alerts.flap_window_seconds", kind: .double(\.alerts.policy.flapWindowSeconds, 0...86400)),
        .init(path: "alerts.query_text_length", kind: .int(\.alerts.policy.queryTextLength, 0...1_048_576)),
        .init(path: "alerts.sinks", kind: .sinks(\.alerts.sinks)),
        .init(path: "metrics.listen", kind: .listenAddress(\.metricsListen)),
    ]

    static let byPath = Dictionary(uniqueKeysWithValues: fields.map { ($0.path, $0) })

    /// Section paths ("sampling", "sampling.server_log", "resolve.exclude", …).
    static let sections: Set<String> = {
        var s: Set<String> = []
        for f in fields {
            var parts = f.path.split(separator: ".").dropLast()
            while !parts.isEmpty {
                s.insert(parts.joined(separator: "."))
                parts = parts.dropLast()
            }
        }
        return s
    }()

    /// Keys allowed directly under `section` ("" = top level).
    static func children(of section: String) -> [String] {
        let prefix = section.isEmpty ? "" : section + "."
        var names: Set<String> = []
        for path in fields.map(\.path) + Array(sections) where path.hasPrefix(prefix) {
            let rest = path.dropFirst(prefix.count)
            if let first = rest.split(separator: ".").first { names.insert(String(first)) }
        }
        return names.sorted()
    }

    /// `LOCKVAULT_*` variables that are not config keys: the scripts' settings (scripts/, bench/, .ci/),
    /// which a user may have exported for them while running the daemon; `LOCKVAULT_TEST_*` and
    /// `LOCKVAULT_BENCH_*` are the harnesses' (``nonConfigPrefixes``).
    static let nonConfigEnvironment: Set<String> = [
        "LOCKVAULT_CONFIG", "LOCKVAULT_PGDATA", "LOCKVAULT_PGPORT", "LOCKVAULT_PGBIN", "LOCKVAULT_SWIFT_FLAGS",
        "LOCKVAULT_PG_MAX_CONNECTIONS", "LOCKVAULT_PG_CACHE_ROOT", "LOCKVAULT_SWIFT_DIR", "LOCKVAULT_SWIFT_MIN",
        "LOCKVAULT_SWIFT_PACKAGES", "LOCKVAULT_MINBASE_CACHE", "LOCKVAULT_ROOTFS_CACHE", "LOCKVAULT_SYSTEMD_PGDATA",
        "LOCKVAULT_SYSTEMD_PGPORT", "LOCKVAULT_COMPARE_PGDATA", "LOCKVAULT_MAX_EXPOSURE",
    ]
    static let nonConfigPrefixes = ["LOCKVAULT_TEST_", "LOCKVAULT_BENCH_"]
}

/// One key of an `alerts.sinks` entry: the sinks' rows of the schema, read by the same
/// loader (`ConfigLoader.parseSink`), so a sink's key is accepted, checked and named in errors
/// like every other key. A new sink's keys go here.
// Key paths are immutable values; the table is built once and only read.
struct SinkField: @unchecked Sendable {
    enum Kind {
        /// Required: letters, digits, '_' or '-' (at most 64); labels metrics and audit rows.
        case name
        /// Required: one of ``AlertSinkSettings/Kind``.
        case type
        case int(WritableKeyPath<AlertSinkSettings, Int>, ClosedRange<Int>)
        /// `[program, args…]`, the program an absolute path.
        case argv(WritableKeyPath<AlertSinkSettings, [String]>)
        /// An http(s) URL.
        case url(WritableKeyPath<AlertSinkSettings, String?>)
        /// Header name → value (never logged).
        case headers(WritableKeyPath<AlertSinkSettings, [String: String]>)
    }

    let key: String
    let kind: Kind
    /// The sink type the key belongs to (nil: every type); on another type it is refused.
    let only: AlertSinkSettings.Kind?
    /// Whether a sink of type `only` must have it.
    let required: Bool
    /// What the key is, for the error that says it is missing.
    let help: String

    init(_ key: String, _ kind: Kind, only: AlertSinkSettings.Kind? = nil, required: Bool = false, help: String = "") {
        self.key = key
        self.kind = kind
        self.only = only
        self.required = required
        self.help = help
    }
}

extension ConfigSchema {
    /// The keys of an `alerts.sinks` entry, in the order they are checked.
    static let sinkFields: [SinkField] = [
        .init("name", .name),
        .init("type", .type),
        .init("timeout_ms", .int(\.timeoutMs, 100...300_000)),
        .init("retries", .int(\.retries, 0...20)),
        .init("queue_capacity", .int(\.queueCapacity, 1...100_000)),
        .init("command", .argv(\.command), only: .command, required: true,
              help: "a command sink needs command: a list [program, args…] (no shell; the alert JSON arrives on stdin)"),
        .init("url", .url(\.url), only: .webhook, required: true, help: "a webhook sink needs url: http(s)://…"),
        .init("headers", .headers(\.headers), only: .webhook),
    ]
}
