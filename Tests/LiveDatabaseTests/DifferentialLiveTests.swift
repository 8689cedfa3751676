import Foundation
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// lockvault against the server itself: random, seeded lock scenarios (row locks, LOCK TABLE
    /// in all eight modes, advisory locks, DDL, VACUUM FULL, parallel queries, a prepared
    /// transaction), and at every point where the waits are stable, lockvault's edges
    /// `(waiter, blocker, kind)` must be `pg_blocking_pids()`'s, with the kinds pg_locks gives —
    /// for each way a cycle may learn a new wait (``LockReadPlan``): a reader forced to the
    /// pg_locks pass and one forced to `pg_blocking_pids()` are compared at every point.
    ///
    /// `LOCKVAULT_TEST_DIFFERENTIAL_SCENARIOS` (default 200) scenarios from seed
    /// `LOCKVAULT_TEST_DIFFERENTIAL_SEED` (default 1) on; each difference is printed with its
    /// seed, the scenario's statements and the command that replays it alone.
    @Suite struct DifferentialLiveTests {
        static var scenarioCount: Int {
            ProcessInfo.processInfo.environment["LOCKVAULT_TEST_DIFFERENTIAL_SCENARIOS"].flatMap(Int.init) ?? 200
        }
        static var firstSeed: UInt64 {
            ProcessInfo.processInfo.environment["LOCKVAULT_TEST_DIFFERENTIAL_SEED"].flatMap(UInt64.init) ?? 1
        }

        @Test func lockvaultSeesTheServersWaits() async throws {
            try DifferentialRunner.rollBackLeftovers()
            try await LiveDatabase.withTemporaryDatabase { database in
                let setup = try LiveDatabase.connect(database: database)
                try setup.executeScript(DifferentialScenario.setupSQL)
                setup.close()
                let runner = try DifferentialRunner(database: database)
                var tally = DifferentialTally()
                let started = ContinuousClock.now
                do {
                    for i in 0..<Self.scenarioCount {
                        try await runner.run(seed: Self.firstSeed &+ UInt64(i), into: &tally)
                    }
                } catch {
                    await runner.close()
                    throw error
                }
                await runner.close()
                let elapsed = ContinuousClock.now - started
                print("""
                    differential: PostgreSQL \(runner.serverVersion), seeds \(Self.firstSeed)…\(Self.firstSeed &+ UInt64(Self.scenarioCount) &- 1): \
                    \(tally.scenarios) scenarios, \(tally.pointsCompared) points compared (\(tally.edgesCompared) server edges, \(tally.softEdges) soft, \
                    \(tally.preparedEdges) to a prepared transaction; \(tally.pointsWithWorkers) points with a parallel query waiting), \
                    both ways compared at each (the blocking_pids way answered \(tally.answeredWithoutPass) points without a pass, \
                    \(tally.answeredWithPass) with one), \
                    \(tally.pointsUnstable) unstable points skipped, \
                    \(tally.unsettled) unsettled steps, \(tally.differences.count) scenarios with a difference, in \(elapsed)
                    """)
                for (kind, n) in tally.kinds.sorted(by: { $0.key < $1.key }) { print("differential:   \(n) × \(kind)") }
                for d in tally.differences { print(d.report) }
                if !tally.differences.isEmpty {
                    Issue.record("""
                        lockvault's edges differ from the server's in \(tally.differences.count) of \(tally.scenarios) scenarios \
                        (seeds \(tally.differences.map { String($0.seed) }.joined(separator: ", "))); kinds: \
                        \(tally.kinds.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: "; ")). First:
                        \(tally.differences[0].report)
                        """)
                }
                // A run that compares almost nothing proves nothing.
                #expect(tally.pointsCompared >= tally.scenarios, "\(tally.pointsCompared) points compared in \(tally.scenarios) scenarios")
                #expect(tally.pointsUnstable * 20 <= tally.pointsCompared, "too many unstable points: \(tally.pointsUnstable) of \(tally.pointsCompared + tally.pointsUnstable)")
            }
        }
    }
}
