import Foundation
import LockvaultDaemon
import Testing

/// The vault's maintenance schedules, on a clock the test moves.
@Suite struct VaultMaintenanceTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func settings(analyze: Double = 3600, cleanup: Double = 86_400) -> VaultMaintenance.Settings {
        var settings = VaultMaintenance.Settings()
        settings.analyzeIntervalSeconds = analyze
        settings.cleanupIntervalSeconds = cleanup
        settings.retentionDays = 7
        settings.retentionStatementTimeoutMs = 1000
        return settings
    }

    @Test func partitionsAtTheFirstCycleThenEachJobAtItsInterval() {
        var m = VaultMaintenance(settings: Self.settings(), start: Self.t0)
        #expect(m.due(at: Self.t0) == [.partitions], "partitions at once; analysis and retention an interval after the start")
        #expect(m.due(at: Self.t0.addingTimeInterval(1800)).isEmpty)
        #expect(m.due(at: Self.t0.addingTimeInterval(3600)) == [.partitions, .analyze(from: Self.t0, to: Self.t0.addingTimeInterval(3600))])
        #expect(m.due(at: Self.t0.addingTimeInterval(7200)) == [.partitions, .analyze(from: Self.t0.addingTimeInterval(3600), to: Self.t0.addingTimeInterval(7200))],
                "the analysis covers the time since the last one, without a hole")
        let day = Self.t0.addingTimeInterval(86_400)
        #expect(m.due(at: day).contains(.retention(days: 7, statementTimeoutMs: 1000)))
        #expect(!m.due(at: day.addingTimeInterval(60)).contains(.retention(days: 7, statementTimeoutMs: 1000)), "once a day, not every cycle")
    }

    @Test func zeroTurnsAJobOffAndAReloadTakesEffectAtTheNextTurn() {
        var m = VaultMaintenance(settings: Self.settings(analyze: 0, cleanup: 0), start: Self.t0)
        _ = m.due(at: Self.t0)
        #expect(m.due(at: Self.t0.addingTimeInterval(10 * 86_400)) == [.partitions], "analysis and retention off")
        m.settings = Self.settings(analyze: 60, cleanup: 0)
        #expect(m.due(at: Self.t0.addingTimeInterval(10 * 86_400 + 60)).contains { if case .analyze = $0 { return true }; return false })
    }
}
