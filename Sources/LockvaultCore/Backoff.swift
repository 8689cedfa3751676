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
