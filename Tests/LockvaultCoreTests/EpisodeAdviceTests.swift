import Foundation
import Testing
@testable import LockvaultCore

@Suite struct EpisodeAdviceTests {
    typealias F = StoryFixture

    @Test func aQueuedMigrationGetsLockTimeoutAndTheIdleRootItsTimeout() {
        let advice = EpisodeAdvice.advise(F.pileUp)
        #expect(advice.map(\.setting) == ["lock_timeout", "idle_in_transaction_session_timeout"], "\(advice)")
        #expect(advice[0].why.contains("pid 4712 (demo-deploy), running ALTER TABLE products ADD COLUMN sku text, queued for AccessExclusiveLock on relation public.products behind pid 4711 (demo-analytics)"), "\(advice[0].why)")
        #expect(advice[0].why.contains("and 2 sessions queued behind its request"))
        #expect(advice[0].fix.contains("SET lock_timeout = '2s'") && advice[0].fix.contains("ALTER ROLE demo_app SET lock_timeout = '2s';"))
        // Shorter than the 7.2 s it lasted, so it would have ended this one.
        #expect(advice[1].fix.contains("ALTER ROLE demo_app SET idle_in_transaction_session_timeout = '5s';"), "\(advice[1].fix)")
    }

    @Test func theTimeoutSuggestedIsBelowTheEpisode() {
        #expect(EpisodeAdvice.timeoutBelow(7) == "5s")
        #expect(EpisodeAdvice.timeoutBelow(45) == "30s")
        #expect(EpisodeAdvice.timeoutBelow(95) == "1min")
        #expect(EpisodeAdvice.timeoutBelow(4000) == "1h")
    }

    @Test func anActiveRootGetsStatementTimeoutAndDDLAsRootGetsLockTimeout() {
        let active = F.story(root: .init(pid: 1, user: "etl", application: "nightly", state: "active", query: "UPDATE orders SET x = 1"),
                             waiters: [F.waiter(2, behind: 1)], duration: 400)
        let a = EpisodeAdvice.advise(active)
        #expect(a.first?.setting == "statement_timeout" && a.first?.fix.contains("ALTER ROLE etl SET statement_timeout = '5min';") == true, "\(a)")
        let ddl = F.story(root: .init(pid: 1, user: "Deploy User", state: "active", query: "  alter table orders add column y int"),
                          waiters: [F.waiter(2, behind: 1)])
        let d = EpisodeAdvice.advise(ddl)
        #expect(d.first?.setting == "lock_timeout" && d.first?.fix.contains("CONCURRENTLY") == true, "\(d)")
    }

    @Test func aPreparedRootIsFinishedNotKilled() {
        let s = F.story(root: .init(pid: 0, gid: "tx-42", user: "app"), waiters: [F.waiter(2, behind: 0)])
        let a = EpisodeAdvice.advise(s)
        #expect(a.first?.setting == nil)
        #expect(a.first?.fix.contains("COMMIT PREPARED 'tx-42'") == true && a.first?.fix.contains("max_prepared_transactions = 0") == true, "\(a)")
    }

    @Test func aDeadlockGetsOneLockOrder() {
        let s = F.story(root: .init(pid: 1, state: "active"), waiters: [F.waiter(2, behind: 1)], endedBy: "deadlock")
        #expect(EpisodeAdvice.advise(s).first?.fix.contains("40P01") == true)
    }

    @Test func theResolversActIsNotTheFix() {
        let s = F.story(root: .init(pid: 1, user: "app", state: "idle in transaction"), waiters: [F.waiter(2, behind: 1)], endedBy: "root_terminated",
                        decisions: [.init(at: F.at(5), action: "terminated", pid: 1, executed: true)])
        let a = EpisodeAdvice.advise(s)
        #expect(a.map(\.setting) == ["idle_in_transaction_session_timeout", nil], "\(a)")
        #expect(a[1].why.contains("lockvault's resolver ended it (terminated pid 1)"))
    }

    @Test func advisoryQueuesAndUnobservedEndsAreSaid() {
        let s = F.story(root: .init(pid: 1, state: "idle"), waiters: [F.waiter(2, behind: 1)], endedBy: "unobserved", targets: ["advisory key 42"])
        let a = EpisodeAdvice.advise(s)
        #expect(a.contains { $0.fix.contains("pg_try_advisory_lock") })
        #expect(a.contains { $0.fix.contains("monitor_gap_s") })
    }

    @Test func somethingIsAlwaysAdvised() {
        let s = F.story(root: .init(pid: 1, state: "idle"), waiters: [F.waiter(2, behind: 1)])
        #expect(EpisodeAdvice.advise(s).first?.setting == "lock_timeout")
    }

    @Test func roleNamesAreQuotedWhenTheyMustBe() {
        #expect(EpisodeAdvice.ident("app") == "app")
        #expect(EpisodeAdvice.ident("Deploy \"x\"") == "\"Deploy \"\"x\"\"\"")
        #expect(EpisodeAdvice.ident("1st") == "\"1st\"")
    }
}
