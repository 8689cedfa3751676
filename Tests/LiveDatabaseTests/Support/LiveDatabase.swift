import Foundation
import PostgresClient
import Testing

/// Every live-database test is nested in this suite, so they run one at a time: lockvault
/// observes the whole cluster, and one test's blocking sessions must not show up in another's
/// assertions.
///
/// The cluster comes from libpq's environment (`scripts/pg-cluster.sh env`; `scripts/test.sh`
/// sets it up). Without it the tests fail, they don't skip: a CI run that silently skipped its
/// database tests would prove nothing.
@Suite(.serialized) enum LiveDatabaseSuite {}

enum LiveDatabase {
    /// Conninfo for a database on the test cluster (libpq env supplies host/port/user).
    static func conninfo(database: String = "postgres", user: String? = nil, password: String? = nil) throws -> String {
        guard ProcessInfo.processInfo.environment["PGHOST"] != nil else {
            throw LiveDatabaseUnavailable()
        }
        // libpq conninfo quoting: single quotes, with ' and \ escaped by a backslash.
        func quoted(_ v: String) -> String { "'" + v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'" }
        var parts = ["dbname=\(database)"]
        if let user { parts.append("user=\(quoted(user))") }
        if let password { parts.append("password=\(quoted(password))") }
        return parts.joined(separator: " ")
    }

    static func connect(
        database: String = "postgres",
        user: String? = nil,
        applicationName: String = "lv-test",
        settings: SessionSettings? = nil
    ) throws -> PostgresConnection {
        var s = settings ?? SessionSettings(applicationName: applicationName, statementTimeoutMs: 30_000, lockTimeoutMs: 0, idleInTransactionSessionTimeoutMs: 0)
        if settings == nil { s.applicationName = applicationName }
        return try PostgresConnection(conninfo: conninfo(database: database, user: user), settings: s)
    }

    /// Creates a fresh database, runs `body`, and drops it (terminating leftover sessions).
    static func withTemporaryDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
        let name = "lv_test_\(UInt32.random(in: 0...UInt32.max))"
        do {
            let admin = try connect()
            defer { admin.close() }
            try admin.execute("CREATE DATABASE \(name)")
        }
        do {
            let value = try await body(name)
            try drop(name)
            return value
        } catch {
            try? drop(name)
            throw error
        }
    }

    /// On a fresh connection: the body may have restarted the server.
    private static func drop(_ name: String) throws {
        let admin = try connect()
        defer { admin.close() }
        try admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Path of the test cluster's server log, when the harness knows it.
    static var serverLogPath: String? { ProcessInfo.processInfo.environment["LOCKVAULT_TEST_SERVER_LOG"] }
}

struct LiveDatabaseUnavailable: Error, CustomStringConvertible {
    var description: String {
        "PGHOST is not set: start the private cluster with scripts/test.sh (or eval \"$(scripts/pg-cluster.sh env)\" after scripts/pg-cluster.sh start)"
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for: \(what)" }
}

/// Polls `condition` until it holds or `timeout` passes (then throws). The way to wait for
/// something in a test: never a bare sleep.
func waitUntil(
    _ what: String,
    timeout: Duration = .seconds(15),
    every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if try await condition() { return }
        if clock.now >= deadline { throw TimedOut(what: what) }
        try await Task.sleep(for: interval)
    }
}

/// Runs a blocking statement on its own connection in the background, like a second psql
/// session would. The connection lives on its own thread (a `PostgresSession`).
final class BackgroundSession: Sendable {
    let session: PostgresSession
    let pid: Int32

    init(database: String = "postgres", applicationName: String = "lv-test-bg", user: String? = nil) async throws {
        session = PostgresSession(
            conninfo: try LiveDatabase.conninfo(database: database, user: user),
            settings: SessionSettings(applicationName: applicationName, statementTimeoutMs: 0, lockTimeoutMs: 0, idleInTransactionSessionTimeoutMs: 0)
        )
        pid = try await session.withConnection { $0.backendPID }
    }

    /// Runs statements in order on this session (awaits completion).
    func run(_ sql: String...) async throws {
        let statements = sql
        try await session.withConnection { conn in
            for s in statements { try conn.execute(s) }
        }
    }

    /// Starts a statement that is expected to block; returns a task that completes when it does.
    func start(_ sql: String) -> Task<Result<Void, PostgresError>, Never> {
        let session = self.session
        return Task {
            do {
                try await session.withConnection { conn in _ = try conn.execute(sql) }
                return .success(())
            } catch let error as PostgresError {
                return .failure(error)
            } catch {
                return .failure(PostgresError(code: .queryFailed, message: "\(error)"))
            }
        }
    }

    func close() async { await session.close() }
}

/// Writes a daemon config to a temporary file; returns its path (the caller unlinks it).
func writeTemporaryConfig(_ yaml: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("lv-\(UUID().uuidString.prefix(8)).yaml").path
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
