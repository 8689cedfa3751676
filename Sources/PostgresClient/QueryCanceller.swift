internal import CLibPQ
import Synchronization

/// Cancels the statement a connection is running, from any thread: libpq's cancel request
/// (`PQcancel`), which asks the server, on a connection of its own, to cancel what the backend
/// is doing; the blocked call on the connection's own thread then returns with SQLSTATE 57014.
///
/// Why: a daemon told to stop (SIGTERM) must not wait for a statement that may run for a long
/// time; its thread is blocked in libpq and cannot be interrupted any other way.
public final class QueryCanceller: Sendable {
    /// libpq's `PGcancel *` (as its address: a pointer is not Sendable, and libpq allows using
    /// it from any thread), freed when the connection closes; 0 then, and cancelling does nothing.
    private let handle: Mutex<Int>

    init(_ connection: OpaquePointer) {
        handle = Mutex(Int(bitPattern: PQgetCancel(connection)))
    }

    deinit { invalidate() }

    /// Asks the server to cancel the connection's running statement, if any (one that starts
    /// afterwards runs as usual). Returns whether the request was delivered.
    @discardableResult
    public func cancel() -> Bool {
        handle.withLock { address in
            guard let cancel = OpaquePointer(bitPattern: address) else { return false }
            var message = [CChar](repeating: 0, count: 256)
            return PQcancel(cancel, &message, Int32(message.count)) == 1
        }
    }

    /// The connection closed: nothing to cancel any more.
    func invalidate() {
        handle.withLock { address in
            if let cancel = OpaquePointer(bitPattern: address) { PQfreeCancel(cancel) }
            address = 0
        }
    }
}
