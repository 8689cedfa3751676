import PostgresClient
import Synchronization

/// A running cycle's stop switch, thrown from another thread (``Monitor/interrupt()``): it
/// cancels the statements the cycle has on the monitored cluster and the vault, and tells the
/// cycle to write nothing more.
final class Interruption: Sendable {
    private struct State {
        var interrupted = false
        var target: QueryCanceller?
        var vault: QueryCanceller?
    }
    private let state = Mutex(State())

    /// A cycle starts: not interrupted, with the connections it has now.
    func begin(target: QueryCanceller?, vault: QueryCanceller?) {
        state.withLock { $0 = State(interrupted: false, target: target, vault: vault) }
    }

    /// The cycle is over: an interruption from now on is the next cycle's business.
    func end() {
        state.withLock { $0.target = nil; $0.vault = nil }
    }

    /// The connections the cycle uses now (one may have been opened since it began).
    func watch(target: QueryCanceller? = nil, vault: QueryCanceller? = nil) {
        state.withLock { s in
            if let target { s.target = target }
            if let vault { s.vault = vault }
        }
        // Interrupted before the connection was known: cancel what it is about to run.
        if isInterrupted { target?.cancel(); vault?.cancel() }
    }

    func interrupt() {
        let (target, vault) = state.withLock { s in
            s.interrupted = true
            return (s.target, s.vault)
        }
        target?.cancel()
        vault?.cancel()
    }

    var isInterrupted: Bool { state.withLock { $0.interrupted } }

    /// Throws when interrupted: checked before a statement starts, which a cancel request sent
    /// earlier would not reach.
    func check() throws(PostgresError) {
        if isInterrupted { throw PostgresError(code: .queryFailed, sqlState: "57014", message: "lockvault is stopping") }
    }
}
