import PostgresClient
import Synchronization

/// One scenario session: a connection on a thread of its own (``PostgresSession``) that is
/// handed a step and returns at once, so a step that waits for a lock never blocks the test.
/// Reused across scenarios; the runner rolls it back between them.
final class DifferentialSession: Sendable {
    let session: PostgresSession
    private let state = Mutex(State())

    private struct State {
        var running: Task<Void, Never>?
        var busy = false
        var lastError: String?
    }

    init(conninfo: String, index: Int) {
        // Safety nets only: a scenario ends its waits itself, long before these.
        session = PostgresSession(
            conninfo: conninfo,
            settings: SessionSettings(applicationName: "lv-diff-s\(index)", statementTimeoutMs: 60_000, lockTimeoutMs: 60_000,
                                      idleInTransactionSessionTimeoutMs: 0),
            name: "lv-diff-s\(index)")
    }

    /// The backend pid, connecting if needed (a session whose connection broke comes back with a new one).
    func pid() async throws -> Int32 { try await session.withConnection { $0.backendPID } }

    /// Whether a step is still running (waiting, or not yet finished).
    var isBusy: Bool { state.withLock { $0.busy } }
    var lastError: String? { state.withLock { $0.lastError } }

    /// Starts `statements` in order; stops at the first error (the transaction is then aborted,
    /// which the scenario accepts: a deadlock victim's locks go, as on a real server).
    func issue(_ statements: [String]) {
        let session = self.session
        state.withLock { $0.busy = true; $0.lastError = nil }
        let task = Task {
            var failure: String?
            do {
                try await session.withConnection { conn in
                    for sql in statements { _ = try conn.execute(sql) }
                }
            } catch {
                failure = "\(error)"
            }
            self.state.withLock { $0.busy = false; $0.lastError = failure }
        }
        state.withLock { $0.running = task }
    }

    /// Waits for the running step, if any (after it was cancelled).
    func finish() async {
        let task = state.withLock { $0.running }
        await task?.value
    }

    /// Runs statements and waits for them, ignoring errors (cleanup: ROLLBACK outside a
    /// transaction only warns).
    func runQuietly(_ sql: String) async {
        _ = try? await session.withConnection { conn in _ = try conn.execute(sql) }
    }

    func close() async { await session.close() }
}
