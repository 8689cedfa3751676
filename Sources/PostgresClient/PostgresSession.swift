import Foundation

/// A connection that async code can share, running every libpq call on a thread of its own.
///
/// It connects lazily and, after a connection-level failure, drops the connection so that the
/// next call connects again. It does not retry statements itself: whether a failed statement
/// may be repeated is the caller's decision (the sampler retries a cycle; a terminate is never
/// repeated blindly).
public actor PostgresSession {
    private let executor: ThreadExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public nonisolated let conninfo: String
    public nonisolated let settings: SessionSettings
    public nonisolated let redactedConninfo: String
    private var connection: PostgresConnection?

    public nonisolated let database: String?

    public init(conninfo: String, database: String? = nil, settings: SessionSettings = .init(), name: String = "lockvault-pg") {
        self.conninfo = conninfo
        self.database = database
        self.settings = settings
        self.redactedConninfo = Conninfo.redacted(conninfo)
        self.executor = ThreadExecutor(name: name)
    }

    deinit {
        executor.shutdown()
    }

    /// Runs `body` with a live connection on this session's thread, connecting first if needed.
    /// A connection-level error closes the connection, so the next call reconnects.
    public func withConnection<T: Sendable>(_ body: @Sendable (PostgresConnection) throws -> T) throws -> T {
        let conn = try connected()
        do {
            return try body(conn)
        } catch let error as PostgresError where error.requiresReconnect || !conn.isHealthyHandle {
            conn.close()
            connection = nil
            throw error
        }
    }

    /// The backend pid of the current connection, if connected.
    public func backendPID() -> Int32? {
        connection.map(\.backendPID)
    }

    /// Closes the connection (the session may connect again on next use).
    public func close() {
        connection?.close()
        connection = nil
    }

    private func connected() throws(PostgresError) -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        let conn = try PostgresConnection(conninfo: conninfo, database: database, settings: settings)
        connection = conn
        return conn
    }
}
