import Testing
@testable import LockvaultCore

@Suite struct BackoffTests {
    @Test func growsExponentiallyUpToTheCap() {
        var backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
        let ceilings = (0..<8).map { _ in backoff.nextDelay(random: 0.999_999) }
        #expect(ceilings[0] < .milliseconds(101) && ceilings[0] > .milliseconds(99))
        #expect(ceilings[1] > .milliseconds(199))
        #expect(ceilings.allSatisfy { $0 <= .seconds(2) })
        #expect(ceilings[7] > .milliseconds(1999))
    }

    @Test func jitterScalesTheDelayAndResetStartsOver() {
        var backoff = Backoff(base: .seconds(1), cap: .seconds(10))
        #expect(backoff.nextDelay(random: 0) == .zero)
        #expect(backoff.nextDelay(random: 0.5) == .seconds(1))
        backoff.reset()
        #expect(backoff.currentCeiling == .seconds(1))
    }
}
