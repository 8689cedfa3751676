import Foundation

/// blocking_session_h (sql/functions/record_sessions.sql): every session or prepared
/// transaction named anywhere in the cycle, so other rows can refer to it.
struct SessionRow: Encodable, Sendable {
    var blocking_session: SessionKey
    /// For the hub's tenant.
    var database_name: String?
}
