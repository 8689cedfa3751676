public import Foundation
public import PostgresClient

/// What to do to a blocking session.
public enum SignalAction: String, Sendable, Codable {
    /// `pg_cancel_backend`: ends the running statement, keeps the session (and its transaction).
    case cancel
    /// `pg_terminate_backend(pid, timeout)`: ends the session; its transaction rolls back and
    /// its locks are released.
    case terminate
}

/// What actually happened when lockvault tried to signal a session.
public enum SignalOutcome: Sendable, Equatable {
    /// The session was cancelled, or terminated and confirmed gone within the timeout.
    case done
    /// `pg_terminate_backend` was sent but the session had not exited when the timeout passed.
    case timedOut
    /// No session with that `(pid, backend_start)` exists any more: the pid ended or was reused.
    case identityChanged
    /// Same session, but it no longer blocks anyone: nothing to do.
    case noLongerBlocking
    /// The session is one lockvault must never touch (not a client backend, lockvault's own,
    /// or a superuser while superusers are not allowed).
    case protected
    /// The server refused (e.g. no `pg_signal_backend`, or a superuser target).
    case refused(String)
}

/// Sends cancel/terminate to one session, re-checking its identity in the same statement.
///
/// The snapshot that chose a victim is already in the past when we act. Between the two, the
/// session may have finished, or its pid been reused by a new session, or it may have stopped
/// blocking. So the statement that signals also checks, atomically, that the pid still has the
/// `backend_start` we saw, is a client backend that is not lockvault itself, and still blocks at
/// least one waiter; if any check fails, no signal is sent. Afterwards a second read only
/// explains *why* nothing was sent (for the audit), it never decides to act.
public enum SessionSignaller {
    static let signalSQL = """
        SELECT a.pid,
               CASE $3::text WHEN 'terminate' THEN pg_terminate_backend(a.pid, $4::bigint)
                             ELSE pg_cancel_backend(a.pid) END AS signalled
        FROM pg_stat_activity a
        WHERE a.pid = $1::int
          AND a.backend_start = $2::timestamptz
          AND a.backend_type = 'client backend'
          AND a.pid <> pg_backend_pid()
          AND a.application_name IS DISTINCT FROM $6::text
          AND NOT (a.pid = ANY ($7::int[]))
          AND ($5::bool OR NOT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.oid = a.usesysid), true))
          AND EXISTS (SELECT 1 FROM pg_stat_activity w
                      WHERE w.wait_event_type = 'Lock' AND a.pid = ANY (pg_blocking_pids(w.pid)))
        """

    static let explainSQL = """
        SELECT a.backend_type, a.application_name, a.pid = pg_backend_pid() AS is_self,
               coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.oid = a.usesysid), true) AS is_superuser,
               EXISTS (SELECT 1 FROM pg_stat_activity w
                       WHERE w.wait_event_type = 'Lock' AND a.pid = ANY (pg_blocking_pids(w.pid))) AS blocks
        FROM pg_stat_activity a
        WHERE a.pid = $1::int AND a.backend_start = $2::timestamptz
        """

    /// Signals `(pid, backendStart)` if, at this instant, it is still that session and still
    /// blocks someone.
    ///
    /// - Parameters:
    ///   - terminateTimeout: how long `pg_terminate_backend` waits to confirm the exit.
    ///   - allowSuperuser: when false, superuser sessions are never signalled.
    ///   - monitorApplicationName, monitorPids: lockvault's own sessions, never signalled (the
    ///     connection running this statement is excluded in any case).
    public static func signal(
        _ action: SignalAction,
        pid: Int32,
        backendStart: Date,
        terminateTimeout: Duration = .seconds(5),
        allowSuperuser: Bool = false,
        monitorApplicationName: String = "lockvault",
        monitorPids: Set<Int32> = [],
        on conn: PostgresConnection
    ) -> SignalOutcome {
        let timeoutMs = Int64(terminateTimeout.components.seconds * 1000 + terminateTimeout.components.attoseconds / 1_000_000_000_000_000)
        do {
            let rows = try conn.query(signalSQL, [
                pid, backendStart, action.rawValue, timeoutMs, allowSuperuser, monitorApplicationName, monitorPids.sorted(),
            ])
            if let row = rows.first {
                return try row.decode("signalled", as: Bool.self) ? .done : (action == .terminate ? .timedOut : .refused("pg_cancel_backend returned false"))
            }
            return try explain(
                pid: pid, backendStart: backendStart, allowSuperuser: allowSuperuser,
                monitorApplicationName: monitorApplicationName, monitorPids: monitorPids, on: conn)
        } catch {
            return .refused(error.message)
        }
    }

    private static func explain(
        pid: Int32, backendStart: Date, allowSuperuser: Bool, monitorApplicationName: String, monitorPids: Set<Int32>,
        on conn: PostgresConnection
    ) throws(PostgresError) -> SignalOutcome {
        guard let row = try conn.query(explainSQL, [pid, backendStart]).first else { return .identityChanged }
        let backendType = try row.decode("backend_type", as: String?.self)
        let isSelf = try row.decode("is_self", as: Bool.self)
        let application = try row.decode("application_name", as: String?.self)
        let isSuperuser = try row.decode("is_superuser", as: Bool.self)
        if backendType != "client backend" || isSelf || monitorPids.contains(pid) || application == monitorApplicationName
            || (!allowSuperuser && isSuperuser) {
            return .protected
        }
        return try row.decode("blocks", as: Bool.self) ? .refused("the session changed between check and signal") : .noLongerBlocking
    }
}
