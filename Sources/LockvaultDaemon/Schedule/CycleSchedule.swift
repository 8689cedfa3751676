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
