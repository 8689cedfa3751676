public import Foundation
public import LockvaultCore
public import PostgresClient

/// What to do to a blocking session.
public enum SignalAction: String, Sendable, Codable {
    /// `pg_cancel_backend`: ends the running statement, keeps the session (and its transaction).
    case cancel
    /// `pg_cancel_backend` of a queued request: only while it still waits for a lock and someone
    /// is still queued behind it, so the cancel can only remove a request from a queue.
    case cancelQueued = "cancel_queued"
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
/// `backend_start` we saw, is none of the ``ProtectedSession``s (the same list the kill rule
/// checks, rendered as SQL), and still blocks at least one waiter; if any check fails, no signal
/// is sent. Afterwards a second read only explains *why* nothing was sent (for the audit), it
/// never decides to act.
public enum SessionSignaller {
    /// $5 allow superuser, $6 lockvault's application_name, $7 lockvault's pids.
    static let scopeParameters = SignalScope.SQLParameters(ownPids: "$7::int[]", ownApplicationName: "$6::text", allowSuperuser: "$5::bool")

    static let blocksSomeone = """
        EXISTS (SELECT 1 FROM pg_stat_activity w
                WHERE w.wait_event_type = 'Lock' AND a.pid = ANY (pg_blocking_pids(w.pid)))
        """

    /// Someone waits for `a` while `a` holds no granted lock on what it waits for: `a` is only
    /// ahead of it in the queue (a soft edge; see ``BlockKind``).
    static let queuedAheadOfSomeone = """
        EXISTS (SELECT 1 FROM pg_stat_activity w
                WHERE w.wait_event_type = 'Lock' AND a.pid = ANY (pg_blocking_pids(w.pid))
                  AND NOT EXISTS (
                      SELECT 1 FROM pg_locks wl JOIN pg_locks hl
                        ON hl.locktype = wl.locktype AND hl.database IS NOT DISTINCT FROM wl.database
                       AND hl.relation IS NOT DISTINCT FROM wl.relation AND hl.page IS NOT DISTINCT FROM wl.page
                       AND hl.tuple IS NOT DISTINCT FROM wl.tuple AND hl.virtualxid IS NOT DISTINCT FROM wl.virtualxid
                       AND hl.transactionid IS NOT DISTINCT FROM wl.transactionid AND hl.classid IS NOT DISTINCT FROM wl.classid
                       AND hl.objid IS NOT DISTINCT FROM wl.objid AND hl.objsubid IS NOT DISTINCT FROM wl.objsubid
                      WHERE wl.pid = w.pid AND NOT wl.granted AND hl.pid = a.pid AND hl.granted))
        """

    static let signalSQL = """
        SELECT a.pid,
               CASE $3::text WHEN 'terminate' THEN pg_terminate_backend(a.pid, $4::bigint)
                             ELSE pg_cancel_backend(a.pid) END AS signalled
        FROM pg_stat_activity a
        WHERE a.pid = $1::int
          AND a.backend_start = $2::timestamptz
          AND NOT (\(ProtectedSession.sqlAnyCondition(scopeParameters)))
          AND \(blocksSomeone)
          AND ($3::text <> 'cancel_queued' OR (a.wait_event_type = 'Lock' AND \(queuedAheadOfSomeone)))
        """

    /// $3 allow superuser, $4 lockvault's application_name, $5 lockvault's pids.
    static let explainParameters = SignalScope.SQLParameters(ownPids: "$5::int[]", ownApplicationName: "$4::text", allowSuperuser: "$3::bool")

    /// One column per protection (`protected_<name>`), and whether it still blocks someone.
    static let explainSQL = """
        SELECT \(ProtectedSession.allCases.map { "(\($0.sqlCondition(explainParameters))) AS protected_\($0.rawValue.lowercased())" }.joined(separator: ",\n       ")),
               \(blocksSomeone) AS blocks,
               (a.wait_event_type = 'Lock' AND \(queuedAheadOfSomeone)) AS queued
        FROM pg_stat_activity a
        WHERE a.pid = $1::int AND a.backend_start = $2::timestamptz
        """

    /// Signals `(pid, backendStart)` if, at this instant, it is still that session, is not
    /// protected, and still blocks someone.
    ///
    /// - Parameters:
    ///   - terminateTimeout: how long `pg_terminate_backend` waits to confirm the exit.
    ///   - scope: lockvault's own sessions (never signalled; the connection running this
    ///     statement is excluded in any case) and whether superusers may be.
    public static func signal(
        _ action: SignalAction,
        pid: Int32,
        backendStart: Date,
        terminateTimeout: Duration = .seconds(5),
        scope: SignalScope = SignalScope(),
        on conn: PostgresConnection
    ) -> SignalOutcome {
        let timeoutMs = terminateTimeout.wholeMilliseconds
        do {
            let rows = try conn.query(signalSQL, [
                pid, backendStart, action.rawValue, timeoutMs, scope.allowSuperuser, scope.ownApplicationName, scope.ownPids.sorted(),
            ])
            if let row = rows.first {
                return try row.decode("signalled", as: Bool.self) ? .done : (action == .terminate ? .timedOut : .refused("pg_cancel_backend returned false"))
            }
            return try explain(action, pid: pid, backendStart: backendStart, scope: scope, on: conn)
        } catch {
            return .refused(error.message)
        }
    }

    private static func explain(_ action: SignalAction, pid: Int32, backendStart: Date, scope: SignalScope, on conn: PostgresConnection) throws(PostgresError) -> SignalOutcome {
        let rows = try conn.query(explainSQL, [pid, backendStart, scope.allowSuperuser, scope.ownApplicationName, scope.ownPids.sorted()])
        guard let row = rows.first else { return .identityChanged }
        for protection in ProtectedSession.allCases {
            if try row.decode("protected_\(protection.rawValue.lowercased())", as: Bool.self) { return .protected }
        }
        let stillBlocks = try row.decode("blocks", as: Bool.self)
        let stillQueued = try row.decode("queued", as: Bool?.self) == true
        let blocks = stillBlocks && (action != .cancelQueued || stillQueued)
        return blocks ? .refused("the session changed between check and signal") : .noLongerBlocking
    }
}
