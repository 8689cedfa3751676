/// When sampling cycles run: on a fixed grid `start + k × interval`, so the rate doesn't drift
/// with cycle duration.
///
/// A cycle that overruns its slot delays the next one to the next free grid point; cycles never
/// overlap and missed slots are skipped, not replayed in a burst.
public struct CycleSchedule: Sendable, Equatable {
    public let start: ContinuousClock.Instant
    public let interval: Duration

    public init(start: ContinuousClock.Instant, interval: Duration) {
        precondition(interval > .zero, "interval must be positive")
        self.start = start
        self.interval = interval
    }

    /// The first grid point strictly after `finished` (the moment the last cycle ended).
    public func nextTick(after finished: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let elapsed = finished - start
        guard elapsed >= .zero else { return start }
        let slots = Int64((elapsed / interval).rounded(.down)) + 1
        return start + interval * Double(slots)
    }

    /// How many grid points were skipped between a cycle that started at `began` and the next
    /// tick (0 when the cycle fit in its slot).
    public func skippedSlots(began: ContinuousClock.Instant, next: ContinuousClock.Instant) -> Int {
        max(0, Int(((next - began) / interval).rounded(.down)) - 1)
    }
}

/// Capped exponential backoff with full jitter, for reconnecting.
///
/// Jitter spreads reconnects of many lockvault instances after a server restart, so they
/// don't arrive together; the cap keeps the gap in the record short once the server is back.
public struct Backoff: Sendable {
    public let base: Duration
    public let cap: Duration
    public private(set) var attempt = 0

    public init(base: Duration = .milliseconds(250), cap: Duration = .seconds(15)) {
        self.base = base
        self.cap = cap
    }

    /// The delay before the next attempt; `random` is in [0, 1).
    public mutating func nextDelay(random: Double = Double.random(in: 0..<1)) -> Duration {
        let exponent = min(attempt, 30)
        attempt += 1
        let ceiling = min(cap, base * Double(1 << exponent))
        return ceiling * max(0, min(random, 1))
    }

    /// The upper bound the next delay will be drawn under (for logs and tests).
    public var currentCeiling: Duration { min(cap, base * Double(1 << min(attempt, 30))) }

    public mutating func reset() { attempt = 0 }
}
