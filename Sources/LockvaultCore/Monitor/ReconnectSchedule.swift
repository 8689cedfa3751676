/// When a side (the monitored cluster or the vault) may be tried again after a failure.
///
/// One failure is one backoff step: a failure reported while a retry is already scheduled
/// (a connect that failed, then the write that needed it) does not push the retry further
/// out. A deadline further away than the backoff cap can only mean the clock went back: it
/// is not waited out.
public struct ReconnectSchedule: Sendable {
    public private(set) var backoff: Backoff
    /// No attempt before this; nil when nothing failed since the last success.
    public private(set) var nextAttempt: ContinuousClock.Instant?

    public init(backoff: Backoff = Backoff()) {
        self.backoff = backoff
    }

    /// Whether an attempt may be made at `now`.
    public func isDue(at now: ContinuousClock.Instant) -> Bool {
        guard let next = nextAttempt else { return true }
        return now >= next || next - now > backoff.cap
    }

    /// Records a failure at `now` (`random` in [0, 1) draws the jitter); returns when to try again.
    @discardableResult
    public mutating func failed(at now: ContinuousClock.Instant, random: Double) -> ContinuousClock.Instant {
        if let next = nextAttempt, !isDue(at: now) { return next }
        let next = now + backoff.nextDelay(random: random)
        nextAttempt = next
        return next
    }

    /// The side answered: the next failure starts from the shortest delay again.
    public mutating func succeeded() {
        backoff.reset()
        nextAttempt = nil
    }

    /// The upper bound the next delay will be drawn under (for messages).
    public var ceiling: Duration { backoff.currentCeiling }

    /// Whether a connection may be opened at `now`.
    public func connectAction(at now: ContinuousClock.Instant) -> ConnectAction {
        if isDue(at: now) { return .connect }
        return .wait(until: nextAttempt ?? now, ceiling: ceiling)
    }
}

/// Whether a connection may be opened now.
public enum ConnectAction: Sendable, Equatable {
    case connect
    /// Backing off: no attempt before `until` (drawn under `ceiling`).
    case wait(until: ContinuousClock.Instant, ceiling: Duration)
}
