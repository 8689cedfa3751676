public import Foundation

/// The I/O a ``VaultStateMachine``'s actions need, and the one loop that carries them out.
///
/// The Engine's VaultWriter conforms with libpq and spool files; the Core's tests conform with
/// a simulated vault and spool directory. Both run ``drive(_:)``, so the tests exercise the
/// loop the daemon runs, not a copy of it.
public protocol VaultDriver {
    associatedtype Rows
    associatedtype Key: Hashable & Sendable
    typealias Machine = VaultStateMachine<Rows, Key>

    var machine: Machine { get set }
    /// Monotonic time, read before each action and after each vault call.
    var driverNow: ContinuousClock.Instant { get }

    /// Opens (and checks) a vault connection; nil when it is open.
    mutating func openVault() -> MonitorFailure?
    /// Writes `cycle` in a transaction of its own, as `plan` says, carrying `gap`.
    mutating func writeVault(_ cycle: Machine.Cycle, plan: VaultChanges<Key>.Plan, gap: ObservationGap?) -> VaultWriteOutcome
    /// Writes (or rewrites) the spool file of `cycle`, durably, if it takes at most `room` bytes.
    mutating func spoolCycle(_ cycle: Machine.Cycle, room: Int) -> VaultSpoolOutcome
    /// Removes the spool file of `sequence` (a failure is the conformer's to report: the file is forgotten either way).
    mutating func removeSpooled(sequence: UInt64)
    /// Closes the vault connection.
    mutating func closeVault()
    /// The machine waits: what it has to say is in `notices`.
    mutating func report(_ notices: [VaultNotice])
}

/// How a vault write ended, as the state machine's events take it.
public enum VaultWriteOutcome: Sendable {
    /// Committed; `summaryAt` is what record_cycle answered (nil: not answered).
    case written(summaryAt: Date?)
    case failed(MonitorFailure, facts: PostgresFailureFacts?, connectionHealthy: Bool)
    /// The cycle could not be encoded (it is skipped and recorded as a gap).
    case unencodable(reason: String)
}

/// How a spool write ended.
public enum VaultSpoolOutcome: Sendable {
    case spooled(bytes: Int)
    /// It would not fit in the room left.
    case full
    case failed(reason: String)
}

extension VaultDriver {
    /// Does what the state machine asks until it waits.
    public mutating func drive(_ first: Machine.Action) {
        var action = first
        while true {
            let now = driverNow
            switch action {
            case .wait:
                report(machine.takeNotices())
                return
            case .connect:
                if let failure = openVault() {
                    action = machine.connectFailed(failure, at: driverNow)
                } else {
                    action = machine.connected(at: driverNow)
                }
            case .write(let cycle, let plan, let gap):
                switch writeVault(cycle, plan: plan, gap: gap) {
                case .written(let summaryAt):
                    action = machine.written(summaryAt: summaryAt, at: driverNow)
                case .failed(let failure, let facts, let healthy):
                    action = machine.writeFailed(failure, facts: facts, connectionHealthy: healthy, at: driverNow)
                case .unencodable(let reason):
                    action = machine.unencodable(reason: reason, at: driverNow)
                }
            case .spool(let cycle, let room):
                switch spoolCycle(cycle, room: room) {
                case .spooled(let bytes): action = machine.spooled(sequence: cycle.sequence, bytes: bytes)
                case .full: action = machine.spoolFull()
                case .failed(let reason): action = machine.spoolFailed(reason: reason)
                }
            case .unspool(let sequence):
                removeSpooled(sequence: sequence)
                action = machine.unspooled(sequence: sequence, at: now)
            case .disconnect:
                closeVault()
                action = machine.disconnected(at: now)
            }
        }
    }
}
