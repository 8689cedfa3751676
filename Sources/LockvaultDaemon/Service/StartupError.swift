public import LockvaultCore

/// Why the daemon can't start. Its ``Code`` says what went wrong and, for a refusal,
/// ``failure`` which one; the command line maps them to an exit code (one table, in the
/// `lockvault` executable). The description is the classified failure's message, which names
/// the side and the server's reason and never a DSN's password.
public struct StartupError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, extensible without breaking a `switch` (postgres-nio's PSQLError style).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        /// The configuration is wrong (a malformed DSN comes from the configuration too).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The cluster or vault refused in a way waiting can't fix (``failure`` says how).
        public static let refused = Code("refused")
        public var description: String { raw }
    }

    public var code: Code
    /// The classified failure's kind, when the cluster or vault refused.
    public var failure: MonitorFailure.Code?
    public var message: String
    public var description: String { message }
}

extension StartupError {
    /// A failure waiting can't fix, found while the daemon starts.
    init(_ failure: MonitorFailure) {
        if failure.code == .invalidConnectionString {
            self.init(code: .invalidConfiguration, failure: nil, message: "invalid configuration: \(failure.message)")
        } else {
            self.init(code: .refused, failure: failure.code, message: failure.message)
        }
    }
}
