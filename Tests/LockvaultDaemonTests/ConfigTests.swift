import Foundation
import Testing
import LockvaultCore
@testable import LockvaultDaemon
import TestSupport

@Suite struct ConfigTests {
    static let etcFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("etc/lockvault.yaml").path

    @Test func theDocumentedFileLoadsAndEqualsTheDefaults() throws {
        let config = try ConfigLoader.load(path: Self.etcFile, environment: [:])
        #expect(config == LockvaultConfig())
        #expect(config.monitor.resolve.enabled == false && config.monitor.resolve.dryRun == true)
    }

    @Test func theDocumentedFileMentionsEveryKey() throws {
        let text = try String(contentsOfFile: Self.etcFile, encoding: .utf8)
        for field in ConfigSchema.fields {
            let leaf = String(field.path.split(separator: ".").last!)
            #expect(text.contains("\(leaf):"), "etc/lockvault.yaml does not document \(field.path)")
        }
    }

    @Test func aMalformedDSNNamesTheKeyButNotThePassword() throws {
        for (yaml, key) in [
            ("target: { dsn: \"postgresql://lv:s3cr3t-pw@[::1/app\" }\n", "target.dsn"),
            ("vault:\n  dsn: \"host=v password=s3cr3t-pw dbname\"\n", "vault.dsn"),
        ] {
            let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(yaml) }
            #expect(error.keyPath == key)
            #expect(error.description.contains("not a valid connection string"))
            #expect(!error.description.contains("s3cr3t"), "\(error)")
        }
        let env = try #require(throws: ConfigError.self) {
            var config = LockvaultConfig()
            try ConfigLoader.applyEnvironment(["LOCKVAULT_TARGET_DSN": "postgresql://lv:s3cr3t-pw@[::1/app"], to: &config)
        }
        #expect(env.keyPath == "target.dsn" && !env.description.contains("s3cr3t"))
    }

    @Test func emptyFileMeansDefaults() throws {
        #expect(try ConfigLoader.parse("") == LockvaultConfig())
        #expect(try ConfigLoader.parse("# only a comment\n") == LockvaultConfig())
    }

    @Test func valuesAreRead() throws {
        let c = try ConfigLoader.parse("""
            cluster_name: prod-eu
            target: { dsn: "service=prod" }
            vault:
              dsn: "host=vault dbname=history"
            sampling:
              interval_seconds: 2
              server_log: { path: /var/log/postgresql/pg.csv, format: csvlog }
            severity: { critical_after_seconds: 120 }
            resolve:
              enabled: true
              exclude: { roles: [replicator, "/^etl_/"] }
            """)
        #expect(c.monitor.clusterName == "prod-eu")
        #expect(c.monitor.sampling.targetDSN == "service=prod")
        #expect(c.monitor.vault.dsn == "host=vault dbname=history")
        #expect(c.intervalSeconds == 2)
        #expect(c.monitor.sampling.serverLogFormat == .csvlog)
        #expect(c.monitor.severity.criticalAfterSeconds == 120)
        #expect(c.monitor.resolve.enabled && c.monitor.resolve.dryRun)
        #expect(c.monitor.resolve.excludeRoles == ["replicator", "/^etl_/"])
    }

    /// Each section lands in the type that uses it, whole: what the resolver, the monitor and
    /// the alert tracker are given is what the file says, with nothing copied in between.
    @Test func sectionsDecodeIntoTheDomainTypes() throws {
        let c = try ConfigLoader.parse("""
            sampling: { query_text_length: 99, lock_hold_threshold_seconds: 7, statement_timeout_ms: 4000, lock_timeout_ms: 300 }
            resolve:
              enabled: true
              dry_run: false
              min_severity: HIGH
              kill_threshold_seconds: 42
              terminate_timeout_ms: 1500
              exclude: { applications: ["/^batch-/"], client_addresses: [10.0.0.9] }
            alerts: { min_severity: MEDIUM, query_text_length: 50 }
            logging: { level: debug, destination: json }
            """)
        var resolve = ResolvePolicy()
        resolve.enabled = true
        resolve.dryRun = false
        resolve.minSeverity = .high
        resolve.killThresholdSeconds = 42
        resolve.terminateTimeoutMs = 1500
        resolve.excludeApplications = ["/^batch-/"]
        resolve.excludeClientAddresses = ["10.0.0.9"]
        #expect(c.monitor.resolve == resolve)
        #expect(c.monitor.resolve.excludeApplications[0].matches("batch-7") && !c.monitor.resolve.excludeApplications[0].matches("/^batch-/"), "compiled when loaded")
        let monitor = c.monitorSettings
        #expect(monitor.resolve == resolve, "the kill threshold reaches the engine in one piece")
        #expect(monitor.sampling.snapshot.queryTextLength == 99 && monitor.sampling.snapshot.lockHoldThresholdSeconds == 7)
        let session = monitor.sampling.session
        #expect(session.statementTimeoutMs == 4000 && session.lockTimeoutMs == 300 && session.applicationName == "lockvault")
        #expect(c.alerts.policy.minSeverity == .medium && c.alerts.policy.queryTextLength == 50)
        #expect(c.logLevel == .debug && c.logDestination == .json)
    }

    @Test func environmentOverridesTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lv-config-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.yaml").path
        try "sampling:\n  interval_seconds: 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        let c = try ConfigLoader.load(path: path, environment: [
            "LOCKVAULT_SAMPLING_INTERVAL_SECONDS": "5", "LOCKVAULT_RESOLVE_ENABLED": "true", "LOCKVAULT_TARGET_DSN": "service=x",
            "LOCKVAULT_TEST_SERVER_LOG": "/ignored", "LOCKVAULT_PGPORT": "1", "PATH": "/bin",
            // The scripts' own settings, which a user may have exported for them.
            "LOCKVAULT_PG_CACHE_ROOT": "/srv/pg", "LOCKVAULT_BENCH_PORT": "1", "LOCKVAULT_SWIFT_DIR": "/opt/swift",
        ])
        #expect(c.intervalSeconds == 5)
        #expect(c.monitor.resolve.enabled)
        #expect(c.monitor.sampling.targetDSN == "service=x")
        let error = try #require(throws: ConfigError.self) {
            try ConfigLoader.load(path: path, environment: ["LOCKVAULT_SAMPLING_INTERVAL": "5"])
        }
        #expect(error.code == .unknownEnvironment)
        #expect(error.description.contains("LOCKVAULT_SAMPLING_INTERVAL_SECONDS"))
        let range = try #require(throws: ConfigError.self) {
            try ConfigLoader.load(path: path, environment: ["LOCKVAULT_SAMPLING_INTERVAL_SECONDS": "0"])
        }
        #expect(range.code == .outOfRange && range.source == "LOCKVAULT_SAMPLING_INTERVAL_SECONDS")
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        let yaml: String
        let code: ConfigError.Code
        let key: String
        let line: Int?
        var testDescription: String { "\(code) \(key)" }
    }

    static let bad: [Bad] = [
        Bad(yaml: "sampling:\n  interval_secs: 1\n", code: .unknownKey, key: "sampling.interval_secs", line: 2),
        Bad(yaml: "samplng:\n  interval_seconds: 1\n", code: .unknownKey, key: "samplng", line: 1),
        Bad(yaml: "sampling:\n  interval_seconds: fast\n", code: .wrongType, key: "sampling.interval_seconds", line: 2),
        Bad(yaml: "sampling:\n  interval_seconds: 0\n", code: .outOfRange, key: "sampling.interval_seconds", line: 2),
        Bad(yaml: "sampling:\n  interval_seconds: 99999\n", code: .outOfRange, key: "sampling.interval_seconds", line: 2),
        Bad(yaml: "sampling:\n  query_text_length: 1.5\n", code: .wrongType, key: "sampling.query_text_length", line: 2),
        Bad(yaml: "sampling:\n  query_text_length: -1\n", code: .outOfRange, key: "sampling.query_text_length", line: 2),
        Bad(yaml: "sampling:\n  statement_timeout_ms: [1, 2]\n", code: .wrongType, key: "sampling.statement_timeout_ms", line: 2),
        Bad(yaml: "sampling:\n  lock_timeout_ms: 5\n", code: .outOfRange, key: "sampling.lock_timeout_ms", line: 2),
        Bad(yaml: "sampling:\n  server_log:\n    format: syslog\n", code: .invalidChoice, key: "sampling.server_log.format", line: 3),
        Bad(yaml: "sampling: 5\n", code: .wrongType, key: "sampling", line: 1),
        Bad(yaml: "target:\n  dsn: {host: x}\n", code: .wrongType, key: "target.dsn", line: 2),
        Bad(yaml: "severity:\n  idle_in_transaction_factor: 2\n", code: .outOfRange, key: "severity.idle_in_transaction_factor", line: 2),
        Bad(yaml: "severity:\n  exclusive_lock_escalates: maybe\n", code: .wrongType, key: "severity.exclusive_lock_escalates", line: 2),
        Bad(yaml: "severity:\n  high_after_seconds: 5\n", code: .inconsistent, key: "severity", line: nil),
        Bad(yaml: "severity:\n  high_blocked_sessions: 30\n", code: .inconsistent, key: "severity", line: nil),
        Bad(yaml: "resolve:\n  enabled: yes please\n", code: .wrongType, key: "resolve.enabled", line: 2),
        Bad(yaml: "resolve:\n  min_severity: critical\n", code: .invalidChoice, key: "resolve.min_severity", line: 2),
        Bad(yaml: "resolve:\n  kill_threshold_seconds: 0\n", code: .outOfRange, key: "resolve.kill_threshold_seconds", line: 2),
        Bad(yaml: "resolve:\n  exclude:\n    roles: etl\n", code: .wrongType, key: "resolve.exclude.roles", line: 3),
        Bad(yaml: "resolve:\n  exclude:\n    applications: [\"/[unclosed/\"]\n", code: .invalidPattern, key: "resolve.exclude.applications", line: 3),
        Bad(yaml: "resolve:\n  exclude:\n    databases: [\"\"]\n", code: .wrongType, key: "resolve.exclude.databases", line: 3),
        Bad(yaml: "resolve:\n  enabled: true\n  dry_run: false\n  max_terminations_per_minute: 0\n", code: .inconsistent, key: "resolve.max_terminations_per_minute", line: nil),
        Bad(yaml: "resolve:\n  exclude:\n    users: [a]\n", code: .unknownKey, key: "resolve.exclude.users", line: 3),
        Bad(yaml: "schedule:\n  retention_days: 0\n", code: .outOfRange, key: "schedule.retention_days", line: 2),
        Bad(yaml: "logging:\n  level: verbose\n", code: .invalidChoice, key: "logging.level", line: 2),
        Bad(yaml: "logging:\n  destination: syslog\n", code: .invalidChoice, key: "logging.destination", line: 2),
        Bad(yaml: "logging:\n  level: info\n  level: debug\n", code: .duplicateKey, key: "logging.level", line: 3),
        Bad(yaml: "alerts:\n  min_severity: urgent\n", code: .invalidChoice, key: "alerts.min_severity", line: 2),
        Bad(yaml: "alerts:\n  sinks: {name: x}\n", code: .wrongType, key: "alerts.sinks", line: 2),
        Bad(yaml: "alerts:\n  sinks:\n    - type: command\n      command: [/bin/true]\n", code: .wrongType, key: "alerts.sinks[0].name", line: 3),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a\n      type: email\n", code: .invalidChoice, key: "alerts.sinks[0].type", line: 4),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a\n      type: command\n      command: [page-oncall]\n", code: .wrongType, key: "alerts.sinks[0].command", line: 5),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a\n      type: command\n", code: .wrongType, key: "alerts.sinks[0].command", line: 3),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a\n      type: webhook\n      url: ftp://x/y\n", code: .wrongType, key: "alerts.sinks[0].url", line: 5),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a\n      type: webhook\n      url: http://x/\n      retries: 99\n", code: .outOfRange, key: "alerts.sinks[0].retries", line: 6),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a\n      type: webhook\n      url: http://x/\n      timeout: 5\n", code: .unknownKey, key: "alerts.sinks[0].timeout", line: 6),
        Bad(yaml: "alerts:\n  sinks:\n    - {name: a, type: webhook, url: \"http://x/\"}\n    - {name: a, type: webhook, url: \"http://y/\"}\n", code: .duplicateKey, key: "alerts.sinks[1].name", line: 4),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a b\n      type: webhook\n      url: http://x/\n", code: .wrongType, key: "alerts.sinks[0].name", line: 3),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a\n      type: command\n      command: [/bin/true]\n      headers: {X: y}\n", code: .inconsistent,
            key: "alerts.sinks[0].headers", line: 6),
        Bad(yaml: "alerts:\n  sinks:\n    - name: a\n      type: command\n      command: [/bin/true]\n      url: http://x/\n", code: .inconsistent,
            key: "alerts.sinks[0].url", line: 6),
        Bad(yaml: "metrics:\n  listen: 99999\n", code: .wrongType, key: "metrics.listen", line: 2),
        Bad(yaml: "metrics:\n  listen: \"127.0.0.1:0\"\n", code: .wrongType, key: "metrics.listen", line: 2),
        Bad(yaml: "metrics:\n  listen: \"localhost:http\"\n", code: .wrongType, key: "metrics.listen", line: 2),
        Bad(yaml: "- a\n- b\n", code: .notAMapping, key: "", line: 1),
        Bad(yaml: "sampling:\n  interval_seconds: [1\n", code: .syntax, key: "", line: nil),
        Bad(yaml: "sampling:\n\tinterval_seconds: 1\n", code: .syntax, key: "", line: nil),
    ]

    @Test func alertSinksAndMetricsAreRead() throws {
        let c = try ConfigLoader.parse("""
            alerts:
              min_severity: HIGH
              clear_after_seconds: 0
              sinks:
                - name: oncall
                  type: command
                  command: ["/usr/local/bin/page", "--team", "dba"]
                  timeout_ms: 2000
                - name: chat
                  type: webhook
                  url: https://hooks.example.com/x
                  headers: {Authorization: "Bearer s3cret"}
                  retries: 0
                  queue_capacity: 5
            metrics:
              listen: "[::1]:9187"
            """)
        #expect(c.alerts.policy.minSeverity == .high && c.alerts.policy.clearAfterSeconds == 0)
        #expect(c.alerts.sinks.map(\.name) == ["oncall", "chat"])
        #expect(c.alerts.sinks[0].kind == .command && c.alerts.sinks[0].command == ["/usr/local/bin/page", "--team", "dba"] && c.alerts.sinks[0].timeoutMs == 2000)
        #expect(c.alerts.sinks[1].kind == .webhook && c.alerts.sinks[1].headers["Authorization"] == "Bearer s3cret")
        #expect(c.alerts.sinks[1].retries == 0 && c.alerts.sinks[1].queueCapacity == 5)
        #expect(c.metricsListen == "[::1]:9187")
        #expect(ListenAddress("[::1]:9187") == ListenAddress("[::1]:9187") && ListenAddress("[::1]:9187")?.host == "::1")
        #expect(ListenAddress("127.0.0.1:0")?.port == 0)
        #expect(ListenAddress("9187") == ListenAddress("127.0.0.1:9187"), "a bare port is loopback")
        let env = try #require(throws: ConfigError.self) {
            var config = LockvaultConfig()
            try ConfigLoader.applyEnvironment(["LOCKVAULT_ALERTS_SINKS": "[]"], to: &config)
        }
        #expect(env.description.contains("only be set in the config file"))
    }

    @Test func cancellingQueuedRequestsIsOffUntilANumberIsGiven() throws {
        #expect(try ConfigLoader.parse("", source: "t.yaml").monitor.resolve.cancelQueuedAfterSeconds == nil)
        #expect(try ConfigLoader.parse("resolve:\n  cancel_queued_after_seconds: null\n", source: "t.yaml").monitor.resolve.cancelQueuedAfterSeconds == nil)
        #expect(try ConfigLoader.parse("resolve:\n  cancel_queued_after_seconds: 2.5\n", source: "t.yaml").monitor.resolve.cancelQueuedAfterSeconds == 2.5)
        var config = LockvaultConfig()
        try ConfigLoader.applyEnvironment(["LOCKVAULT_RESOLVE_CANCEL_QUEUED_AFTER_SECONDS": "10"], to: &config)
        #expect(config.monitor.resolve.cancelQueuedAfterSeconds == 10)
        for (value, code) in [("yes", ConfigError.Code.wrongType), ("-1", .outOfRange), ("\"soon\"", .wrongType)] {
            let error = try #require(throws: ConfigError.self) {
                try ConfigLoader.parse("resolve:\n  cancel_queued_after_seconds: \(value)\n", source: "t.yaml")
            }
            #expect(error.code == code && error.keyPath == "resolve.cancel_queued_after_seconds" && error.line == 2, "\(error)")
        }
    }

    @Test(arguments: bad)
    func badConfigsAreRejectedWithKeyAndLine(_ bad: Bad) throws {
        let error = try #require(throws: ConfigError.self) {
            var c = try ConfigLoader.parse(bad.yaml, source: "test.yaml")
            try ConfigLoader.checkConsistency(c, source: "test.yaml")
            c.monitor.clusterName = ""
        }
        #expect(error.code == bad.code, "\(error)")
        #expect(error.keyPath == bad.key, "\(error)")
        if let line = bad.line { #expect(error.line == line, "\(error)") }
        if !bad.key.isEmpty { #expect(error.description.contains(bad.key)) }
    }

    @Test func aDSNValueIsNeverEchoed() throws {
        let error = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse("target:\n  dsn: [\"password=hunter2\"]\n")
        }
        #expect(!error.description.contains("hunter2"))
    }

    @Test func unknownKeysSuggestTheClosestName() throws {
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse("resolve:\n  dryrun: true\n") }
        #expect(error.description.contains("did you mean 'dry_run'"))
    }
}

/// The same bad configs through the real binary: `check-config` and `run` exit 78 and name the key.
@Suite struct BadConfigExitCodeTests {
    static var binary: String? {
        FileManager.default.isExecutableFile(atPath: ChildProcess.lockvaultBinary) ? ChildProcess.lockvaultBinary : nil
    }

    /// Runs the binary without the runner's LOCKVAULT_* settings; returns exit status and combined output.
    static func run(_ binary: String, _ args: [String]) async throws -> (Int32, String) {
        let child = try await ChildProcess(path: binary, arguments: args, environment: ["PGCONNECT_TIMEOUT": "1"],
                                           inheriting: { !$0.hasPrefix("LOCKVAULT_") || $0.hasPrefix("LOCKVAULT_TEST_") }, combinedOutput: true)
        let result = try await child.waitForExit()
        return (result.status, result.output)
    }

    @Test(arguments: ConfigTests.bad)
    func exits78NamingTheKey(_ bad: ConfigTests.Bad) async throws {
        let binary = try #require(Self.binary, "build the lockvault binary first (scripts/test.sh does)")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lv-bad-\(UUID()).yaml").path
        try bad.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        for verb in ["check-config", "run"] {
            let (status, output) = try await Self.run(binary, [verb, "--config", path])
            #expect(status == 78, "\(verb): \(output)")
            if !bad.key.isEmpty { #expect(output.contains(bad.key), "\(verb): \(output)") }
            if let line = bad.line { #expect(output.contains(".yaml:\(line):"), "\(verb): \(output)") }
        }
    }
}

/// Where the daemon spools cycle records the vault could not take.
@Suite struct SpoolDirectoryTests {
    @Test func theKeyWinsThenSystemdsStateDirectoryThenNone() throws {
        let defaults = LockvaultConfig()
        #expect(defaults.spoolDirectory(environment: ["STATE_DIRECTORY": "/var/lib/lockvault/prod:/var/lib/other"]) == "/var/lib/lockvault/prod/spool",
                "the first of StateDirectory='s paths")
        #expect(defaults.spoolDirectory(environment: [:]) == nil, "neither: memory only")
        let set = try ConfigLoader.parse("vault: { spool_directory: /srv/lockvault-spool, spool_max_mb: 16 }")
        #expect(set.spoolDirectory(environment: ["STATE_DIRECTORY": "/var/lib/lockvault"]) == "/srv/lockvault-spool")
        let monitor = set.monitorSettings(environment: [:])
        #expect(monitor.vault.spoolDirectory == "/srv/lockvault-spool" && monitor.vault.spoolMaxMB == 16)
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("vault: { spool_max_mb: 0 }") }
    }
}

/// `sampling.server_log.format`: `auto` (the default) leaves the format to the log file's name.
@Suite struct ServerLogFormatConfigTests {
    @Test func autoDecidesByTheFileNameAndANamedFormatIsKept() throws {
        #expect(LockvaultConfig().monitor.sampling.serverLogFormat == nil, "the default is auto")
        let auto = try ConfigLoader.parse("sampling: { server_log: { path: /var/log/pg.csv, format: auto } }")
        #expect(auto.monitor.sampling.serverLogFormat == nil && auto.monitorSettings(environment: [:]).sampling.serverLogFormat == nil)
        let stderr = try ConfigLoader.parse("sampling: { server_log: { path: /var/log/pg.csv, format: stderr } }")
        #expect(stderr.monitorSettings(environment: [:]).sampling.serverLogFormat == .stderr)
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse("sampling: { server_log: { format: syslog } }") }
        #expect(error.keyPath == "sampling.server_log.format" && error.description.contains("auto, stderr, csvlog, jsonlog"), "\(error)")
    }
}
