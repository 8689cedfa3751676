internal import CLibPQ
import Foundation

/// One libpq connection, used synchronously.
///
/// libpq calls block the calling thread, so this type is deliberately not `Sendable`: use it on
/// one thread (a test, a CLI command) or through ``PostgresSession``, which gives each
/// connection a thread of its own and keeps blocking calls off Swift's cooperative pool.
///
/// Connecting honours everything libpq does (conninfo strings and URIs, `PG*` environment
/// variables, `.pgpass`, service files). ``SessionSettings`` are applied on every (re)connect.
public final class PostgresConnection {
    private var handle: OpaquePointer?
    private let conninfo: String
    private let database: String?
    public let settings: SessionSettings
    private let secrets: [String]
    private var preparedNames: Set<String> = []

    /// The conninfo with its password masked: what to show in logs.
    public let redactedConninfo: String

    /// Cancels this connection's running statement from another thread (``QueryCanceller``);
    /// a new one after ``reset()``, and one that does nothing after ``close()``.
    public private(set) var canceller: QueryCanceller?

    /// - Parameters:
    ///   - conninfo: a libpq conninfo string or URI ("" = libpq defaults and environment).
    ///   - database: connect to this database instead of the one the conninfo names (everything
    ///     else — host, user, password, TLS — stays the same). Lets lockvault reach the other
    ///     databases of a monitored cluster with one configured DSN.
    public init(conninfo: String, database: String? = nil, settings: SessionSettings = .init()) throws(PostgresError) {
        self.conninfo = conninfo
        self.database = database
        self.settings = settings
        self.secrets = Conninfo.secrets(in: conninfo, environment: ProcessInfo.processInfo.environment)
        self.redactedConninfo = Conninfo.redacted(conninfo)
        try open()
    }

    deinit {
        canceller?.invalidate()
        if let handle { PQfinish(handle) }
    }

    private func open() throws(PostgresError) {
        guard !conninfo.utf8.contains(0) else {
            throw PostgresError(code: .invalidConninfo, message: "invalid connection string: it contains a NUL byte")
        }
        if let syntax = Conninfo.syntaxError(conninfo) {
            throw PostgresError(code: .invalidConninfo, message: "invalid connection string: \(syntax)")
        }
        // Order matters: libpq lets later keywords override earlier ones. connect_timeout comes
        // before the caller's conninfo (theirs wins); application_name after it (ours wins, so
        // lockvault can always recognise its own sessions).
        // Only the first dbname is expanded as a conninfo; a second one is a plain database name.
        var keywords = ["connect_timeout", "dbname", "application_name"]
        var values = ["\(settings.connectTimeoutSeconds)", conninfo, settings.applicationName]
        if let database {
            keywords.append("dbname")
            values.append(database)
        }
        let conn = withCStrings(keywords) { kw in
            withCStrings(values) { vals in PQconnectdbParams(kw, vals, 1) }
        }
        guard let conn else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            // One line: libpq adds indented hints on lines of their own.
            let message = cleaned(String(cString: PQerrorMessage(conn))).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
            let needsPassword = PQconnectionNeedsPassword(conn) == 1
            PQfinish(conn)
            throw PostgresError(code: .connectionFailed, sqlState: Self.authenticationState(message, needsPassword: needsPassword),
                                message: "could not connect (\(redactedConninfo)): \(message)")
        }
        handle = conn
        canceller?.invalidate()
        canceller = QueryCanceller(conn)
        preparedNames.removeAll()
        do {
            try applySettings()
        } catch {
            canceller?.invalidate()
            PQfinish(conn)
            handle = nil
            throw error
        }
    }

    private func applySettings() throws(PostgresError) {
        for (name, value) in settings.parameters {
            _ = try query("SELECT set_config($1, $2, false)", [name, value])
        }
    }

    /// Runs one parameterised statement and returns its rows.
    public func query(_ sql: String, _ params: [(any PostgresEncodable)?] = []) throws(PostgresError) -> PostgresResult {
        let conn = try liveHandle()
        let texts: [String?] = params.map { $0?.postgresText ?? nil }
        if texts.contains(where: { $0?.utf8.contains(0) ?? false }) {
            throw PostgresError(code: .invalidArgument, message: "a parameter contains a NUL byte, which PostgreSQL text cannot hold")
        }
        let result = withOptionalCStrings(texts) { values in
            PQexecParams(conn, sql, Int32(texts.count), nil, values, nil, nil, 0)
        }
        return try consume(result, conn: conn)
    }

    /// Runs a statement through a named prepared statement on this connection, preparing it on
    /// first use (and again after a reconnect). For statements run every cycle: planning a
    /// large query can cost more than running it, and a prepared statement is planned once.
    public func queryPrepared(_ name: String, _ sql: String, _ params: [(any PostgresEncodable)?] = []) throws(PostgresError) -> PostgresResult {
        let conn = try liveHandle()
        if !preparedNames.contains(name) {
            _ = try consume(PQprepare(conn, name, sql, Int32(params.count), nil), conn: conn)
            preparedNames.insert(name)
        }
        let texts: [String?] = params.map { $0?.postgresText ?? nil }
        if texts.contains(where: { $0?.utf8.contains(0) ?? false }) {
            throw PostgresError(code: .invalidArgument, message: "a parameter contains a NUL byte, which PostgreSQL text cannot hold")
        }
        let result = withOptionalCStrings(texts) { values in
            PQexecPrepared(conn, name, Int32(texts.count), values, nil, nil, 0)
        }
        return try consume(result, conn: conn)
    }

    /// Runs one parameterised statement; returns the number of rows it affected.
    @discardableResult
    public func execute(_ sql: String, _ params: [(any PostgresEncodable)?] = []) throws(PostgresError) -> Int {
        try query(sql, params).affectedRows
    }

    /// Runs a script of several statements without parameters (migration files). Statements
    /// run in one implicit transaction unless the script manages its own.
    public func executeScript(_ sql: String) throws(PostgresError) {
        let conn = try liveHandle()
        _ = try consume(PQexec(conn, sql), conn: conn)
    }

    /// Runs `body` inside BEGIN … COMMIT; rolls back and rethrows if it throws.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try execute("BEGIN")
        let value: T
        do {
            value = try body(self)
        } catch {
            if isHealthyHandle { _ = try? execute("ROLLBACK") }
            throw error
        }
        try execute("COMMIT")
        return value
    }

    /// The server process serving this connection (`pg_backend_pid()`), 0 when closed.
    public var backendPID: Int32 {
        guard let handle else { return 0 }
        return PQbackendPID(handle)
    }

    /// `server_version_num`, e.g. 150018; 0 when closed.
    public var serverVersion: Int {
        guard let handle else { return 0 }
        return Int(PQserverVersion(handle))
    }

    /// True when a trivial round trip succeeds.
    public func isHealthy() -> Bool {
        guard isHealthyHandle else { return false }
        return (try? query("SELECT 1")) != nil
    }

    /// The connection is open and libpq considers it good (no round trip).
    var isHealthyHandle: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Drops the current connection (if any) and connects again with the same conninfo and
    /// settings.
    public func reset() throws(PostgresError) {
        canceller?.invalidate()
        if let handle { PQfinish(handle) }
        handle = nil
        try open()
    }

    /// Closes the connection; later calls fail with ``PostgresError/Code/closed``.
    public func close() {
        canceller?.invalidate()
        if let handle { PQfinish(handle) }
        handle = nil
    }

    public var isClosed: Bool { handle == nil }

    // MARK: - internals

    private func liveHandle() throws(PostgresError) -> OpaquePointer {
        guard let handle else { throw PostgresError(code: .closed, message: "the connection is closed") }
        return handle
    }

    private func consume(_ result: OpaquePointer?, conn: OpaquePointer) throws(PostgresError) -> PostgresResult {
        guard let result else {
            throw lostOrFailed(conn, message: cleaned(String(cString: PQerrorMessage(conn))))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return copy(result)
        default:
            throw error(from: result, conn: conn)
        }
    }

    private func copy(_ result: OpaquePointer) -> PostgresResult {
        let rows = Int(PQntuples(result))
        let cols = Int(PQnfields(result))
        var names: [String] = []
        var types: [UInt32] = []
        names.reserveCapacity(cols)
        for c in 0..<cols {
            names.append(String(cString: PQfname(result, Int32(c))))
            types.append(UInt32(PQftype(result, Int32(c))))
        }
        var cells: [[String?]] = []
        cells.reserveCapacity(rows)
        for r in 0..<rows {
            var row: [String?] = []
            row.reserveCapacity(cols)
            for c in 0..<cols {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    row.append(nil)
                } else {
                    let length = Int(PQgetlength(result, Int32(r), Int32(c)))
                    let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, Int32(r), Int32(c)), count: length)
                    row.append(String(decoding: bytes, as: UTF8.self))
                }
            }
            cells.append(row)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresResult(columns: names, columnTypes: types, cells: cells, affectedRows: affected)
    }

    private func error(from result: OpaquePointer, conn: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let p = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return cleaned(String(cString: p))
        }
        let sqlState = field("C")
        let message = field("M") ?? cleaned(String(cString: PQresultErrorMessage(result)))
        if sqlState == nil, PQstatus(conn) != CONNECTION_OK {
            return PostgresError(code: .connectionLost, message: message.isEmpty ? "connection lost" : message)
        }
        let code: PostgresError.Code = PQstatus(conn) == CONNECTION_OK ? .queryFailed : .connectionLost
        return PostgresError(code: code, sqlState: sqlState, message: message, detail: field("D"), hint: field("H"))
    }

    private func lostOrFailed(_ conn: OpaquePointer, message: String) -> PostgresError {
        PostgresError(code: PQstatus(conn) == CONNECTION_OK ? .queryFailed : .connectionLost, message: message)
    }

    /// libpq reports a failed connection as text only; the server's SQLSTATE is lost. Class 28
    /// (invalid authorization) is recovered from the message, so callers can tell "wrong
    /// password" from "server down".
    static func authenticationState(_ message: String, needsPassword: Bool) -> String? {
        if message.contains("password authentication failed") || message.contains("no password supplied")
            || message.contains("no password was provided") || needsPassword { return SQLState.invalidPassword }
        if message.contains("authentication failed") || message.contains("no pg_hba.conf entry")
            || (message.contains("role \"") && message.contains("does not exist"))
            || message.contains("is not permitted to log in") { return SQLState.invalidAuthorization }
        return nil
    }

    /// The role this connection authenticated as (libpq's `PQuser`), "" when closed.
    public var user: String {
        guard let handle, let p = PQuser(handle) else { return "" }
        return String(cString: p)
    }

    /// libpq messages end in newlines and might, in odd cases, echo connection parameters.
    private func cleaned(_ text: String) -> String {
        Conninfo.scrub(text, secrets: secrets).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Calls `body` with a NULL-terminated-free array of C strings (NULL entries for nil).
private func withOptionalCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeMutableBufferPointer { buffer in
        body(buffer.map { $0.map { UnsafePointer($0) } })
    }
}

/// Calls `body` with a NULL-terminated array of C strings, as PQconnectdbParams wants.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for p in pointers { free(p) } }
    let constPointers = pointers.map { $0.map { UnsafePointer($0) } }
    return constPointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
