/// An error from the PostgreSQL client: a failed connection, a failed statement, or a value that
/// could not be decoded.
///
/// `description` is safe to log: it never contains a password. Connection errors carry the
/// redacted conninfo, not the original, and any password text libpq might echo is masked.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, coarsely. Extensible: switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case connectionFailed, connectionLost, queryFailed, decodingFailed, invalidArgument, closed, invalidConninfo
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server could not be reached or refused the connection (wrong host, password, database…).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke during a statement (server restart, terminated backend, network drop).
        public static let connectionLost = Code(.connectionLost)
        /// The server rejected or failed a statement; see `sqlState`.
        public static let queryFailed = Code(.queryFailed)
        /// A column value could not be turned into the requested Swift type.
        public static let decodingFailed = Code(.decodingFailed)
        /// The caller passed something unusable (e.g. a NUL byte inside a parameter).
        public static let invalidArgument = Code(.invalidArgument)
        /// The connection was closed by the caller.
        public static let closed = Code(.closed)
        /// libpq cannot parse the connection string (nothing was attempted).
        public static let invalidConninfo = Code(.invalidConninfo)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// Five-character SQLSTATE from the server, e.g. `55P03` for `lock_timeout`.
    public var sqlState: String?
    /// Primary message (the server's, libpq's, or ours).
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(code: Code, sqlState: String? = nil, message: String, detail: String? = nil, hint: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    public var description: String {
        var text = "\(code)"
        if let sqlState { text += " [\(sqlState)]" }
        text += ": \(message)"
        if let detail, !detail.isEmpty { text += " (detail: \(detail))" }
        if let hint, !hint.isEmpty { text += " (hint: \(hint))" }
        return text
    }

    /// The server refused the credentials: wrong password, no `pg_hba.conf` entry, no password
    /// given where one is required (SQLSTATE class 28, inferred from libpq's message when the
    /// connection never started).
    public var isAuthenticationFailure: Bool { sqlState?.hasPrefix("28") ?? false }

    /// Errors after which the connection can't be used and must be re-established.
    public var requiresReconnect: Bool {
        code == .connectionLost || code == .connectionFailed || code == .closed
            || (sqlState?.hasPrefix("08") ?? false) || sqlState == SQLState.adminShutdown || sqlState == "57P02" || sqlState == "57P03"
    }
}

/// Well-known SQLSTATE codes lockvault reacts to.
public enum SQLState {
    public static let adminShutdown = "57P01"
    public static let insufficientPrivilege = "42501"
    public static let undefinedTable = "42P01"
    public static let invalidPassword = "28P01"
    public static let invalidAuthorization = "28000"
    public static let uniqueViolation = "23505"
    public static let duplicateObject = "42710"
}
