/// Settings lockvault applies to every session it opens, on every (re)connect.
///
/// They exist so that lockvault can never be the thing that blocks: a monitor statement that
/// waits for a lock gives up after `lockTimeoutMs`, a runaway query after `statementTimeoutMs`,
/// and a transaction left open by a bug is ended by the server after
/// `idleInTransactionSessionTimeoutMs`. `applicationName` lets DBAs (and lockvault itself) tell
/// the monitor's sessions apart.
public struct SessionSettings: Sendable, Equatable {
    public var applicationName: String
    public var statementTimeoutMs: Int
    public var lockTimeoutMs: Int
    public var idleInTransactionSessionTimeoutMs: Int
    /// libpq `connect_timeout` in seconds, used unless the conninfo sets its own.
    public var connectTimeoutSeconds: Int

    public init(
        applicationName: String = "lockvault",
        statementTimeoutMs: Int = 5000,
        lockTimeoutMs: Int = 1000,
        idleInTransactionSessionTimeoutMs: Int = 60000,
        connectTimeoutSeconds: Int = 10
    ) {
        self.applicationName = applicationName
        self.statementTimeoutMs = statementTimeoutMs
        self.lockTimeoutMs = lockTimeoutMs
        self.idleInTransactionSessionTimeoutMs = idleInTransactionSessionTimeoutMs
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// `(name, value)` pairs for `set_config`. TimeZone/DateStyle/IntervalStyle are fixed so the
    /// text decoders always see one format.
    var parameters: [(String, String)] {
        [
            ("statement_timeout", "\(statementTimeoutMs)"),
            ("lock_timeout", "\(lockTimeoutMs)"),
            ("idle_in_transaction_session_timeout", "\(idleInTransactionSessionTimeoutMs)"),
            ("TimeZone", "UTC"),
            ("DateStyle", "ISO, YMD"),
            ("IntervalStyle", "iso_8601"),
            ("extra_float_digits", "3"),
            ("client_min_messages", "warning"),
        ]
    }
}
