public import Foundation

/// Time and chance, injected: the state machines never read a clock or draw a random number
/// themselves, so tests can run a five-minute outage in microseconds and jump the clock at will.
public struct MonitorClock: Sendable {
    /// Monotonic time, for backoff and the flush budget.
    public var now: @Sendable () -> ContinuousClock.Instant
    /// Wall-clock time, for a gap that starts before any sample was taken.
    public var date: @Sendable () -> Date
    /// Uniform in [0, 1): the jitter of reconnect backoff.
    public var random: @Sendable () -> Double

    public init(now: @escaping @Sendable () -> ContinuousClock.Instant, date: @escaping @Sendable () -> Date,
                random: @escaping @Sendable () -> Double) {
        self.now = now
        self.date = date
        self.random = random
    }

    public static let system = MonitorClock(now: { .now }, date: { Date() }, random: { Double.random(in: 0..<1) })
}
