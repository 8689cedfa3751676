public import LockvaultCore

/// Why the daemon can't start. Its ``Kind`` says what went wrong; the command line maps it
/// to an exit code (one table, in the `lockvault` executable).
public struct StartupError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The configuration is wrong (a malformed DSN comes from the configuration too).
        case invalidConfiguration
        /// The cluster or vault refused in a way waiting can't fix.
        case failure(MonitorFailure.Kind)
    }

    public var kind: Kind
    public var message: String
    public var description: String { message }
}

extension StartupError {
    /// A failure waiting can't fix, found while the daemon starts.
    init(_ failure: MonitorFailure) {
        if failure.kind == .invalidConnectionString {
            self.init(kind: .invalidConfiguration, message: "invalid configuration: \(failure.message)")
        } else {
            self.init(kind: .failure(failure.kind), message: failure.message)
        }
    }
}
