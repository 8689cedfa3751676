/// The sessions lockvault never signals, whatever else the rule says.
///
/// One list for both places that must agree: the kill rule (``ResolvePolicy/decide(_:scope:memory:now:)``)
/// checks a snapshot's session with ``protects(_:scope:)``, and the statement that signals
/// (`SessionSignaller`) re-checks the live session with ``sqlCondition(_:)`` in the same
/// statement as `pg_cancel_backend`/`pg_terminate_backend`. Adding a case here adds it to both;
/// the dashboard can't call a session eligible that the signalling statement would refuse, or
/// the other way round.
public enum ProtectedSession: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// Not a client backend: autovacuum, walsender, background workers. Ending them is never
    /// the way to free a lock a client waits for.
    case notClientBackend
    /// lockvault's own sessions: this process's connections, and any session with lockvault's
    /// application_name (another lockvault instance, the CLI).
    case lockvault
    /// A superuser session, unless `resolve.allow_superuser` is true.
    case superuser

    /// Whether `session` (as the snapshot saw it) is protected by this rule.
    public func protects(_ session: BackendActivity, scope: SignalScope) -> Bool {
        switch self {
        case .notClientBackend: !session.isClientBackend
        case .lockvault: scope.ownPids.contains(session.pid) || session.applicationName == scope.ownApplicationName
        case .superuser: !scope.allowSuperuser && session.isSuperuser
        }
    }

    /// The first rule protecting `session`, nil when none does.
    public static func protecting(_ session: BackendActivity, scope: SignalScope) -> ProtectedSession? {
        allCases.first { $0.protects(session, scope: scope) }
    }

    /// The same rule as a boolean SQL expression over a `pg_stat_activity` row aliased `a`,
    /// never NULL, TRUE when the session is protected. `parameters` names the statement's
    /// placeholders for the scope's values.
    public func sqlCondition(_ parameters: SignalScope.SQLParameters) -> String {
        switch self {
        case .notClientBackend:
            "a.backend_type IS DISTINCT FROM 'client backend'"
        case .lockvault:
            "(a.pid = pg_backend_pid() OR a.pid = ANY (\(parameters.ownPids)) OR a.application_name IS NOT DISTINCT FROM \(parameters.ownApplicationName))"
        case .superuser:
            // A role that can't be looked up counts as superuser: when unsure, don't signal.
            "(NOT \(parameters.allowSuperuser) AND coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.oid = a.usesysid), true))"
        }
    }

    /// `a` is protected by any rule, as one SQL condition.
    public static func sqlAnyCondition(_ parameters: SignalScope.SQLParameters) -> String {
        allCases.map { "(\($0.sqlCondition(parameters)))" }.joined(separator: " OR ")
    }

    /// For reasons and audit text.
    public var description: String {
        switch self {
        case .notClientBackend: "not a client backend"
        case .lockvault: "lockvault's own session"
        case .superuser: "superuser session (resolve.allow_superuser is false)"
        }
    }
}

/// Which sessions count as lockvault's own, and whether superusers may be signalled: what
/// ``ProtectedSession`` needs to decide.
public struct SignalScope: Sendable, Hashable {
    /// The pids of lockvault's connections (the snapshot's and the monitor's).
    public var ownPids: Set<Int32>
    /// lockvault's application_name.
    public var ownApplicationName: String
    /// `resolve.allow_superuser`.
    public var allowSuperuser: Bool

    public init(ownPids: Set<Int32> = [], ownApplicationName: String = "lockvault", allowSuperuser: Bool = false) {
        self.ownPids = ownPids
        self.ownApplicationName = ownApplicationName
        self.allowSuperuser = allowSuperuser
    }

    /// The SQL placeholders (with casts) a statement binds the scope's values to.
    public struct SQLParameters: Sendable {
        public var ownPids: String
        public var ownApplicationName: String
        public var allowSuperuser: String

        public init(ownPids: String, ownApplicationName: String, allowSuperuser: String) {
            self.ownPids = ownPids
            self.ownApplicationName = ownApplicationName
            self.allowSuperuser = allowSuperuser
        }
    }
}
