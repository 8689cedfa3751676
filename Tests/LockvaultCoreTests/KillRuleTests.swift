import Foundation
import Testing
@testable import LockvaultCore

/// The one kill rule (`ResolvePolicy.decide`): every blocker gets an answer, eligible or the
/// typed reason not, and the protections are the same list the signalling SQL is built from.
@Suite struct KillRuleTests {
    /// Blocker 1 (root, idle in transaction, 400 s) ← 2; blocker 3 (active, itself waiting for 1) ← 4.
    static func chain(blocker: BackendActivity = Fixture.session(1, state: .idleInTransaction), since: Double = 400,
                      mode: LockMode = .accessExclusive) -> [BlockerAssessment] {
        let s = Fixture.snapshot(sessions: [blocker], waiters: [Fixture.waits(2, on: [1], since: since), Fixture.waits(3, on: [1], since: since),
                                                                Fixture.waits(4, on: [3], since: since)],
                                 locks: [Fixture.holds(1, mode)])
        return BlockerAssessment.assess(s, policy: SeverityPolicy())
    }

    static func on(_ tweak: (inout ResolvePolicy) -> Void = { _ in }) -> ResolvePolicy {
        var p = ResolvePolicy()
        p.enabled = true
        p.maxActionsPerCycle = 10
        tweak(&p)
        return p
    }

    static func rule(_ policy: ResolvePolicy, _ assessments: [BlockerAssessment], scope: SignalScope = SignalScope(),
                     memory: ResolverMemory = .init(), at now: Date = Fixture.now) -> [Int32: KillEligibility] {
        Dictionary(uniqueKeysWithValues: policy.decide(assessments, scope: scope, memory: memory, now: now).map { ($0.assessment.pid!, $0.eligibility) })
    }

    @Test func everyBlockerGetsAnAnswerRootOrNot() {
        let answers = Self.rule(Self.on(), Self.chain())
        #expect(answers.keys.sorted() == [1, 3])
        #expect(answers[1] == .eligible(.terminateIdle(.idleInTransaction)))
        #expect(answers[3] == .ineligible(.notRoot(roots: [.session(1)])))
        #expect(answers[3]?.description.contains("not the root") == true)
    }

    @Test func theResolverOffMeansNothingIsEligible() {
        let decisions = ResolvePolicy().decide(Self.chain(), scope: SignalScope(), memory: .init(), now: Fixture.now)
        #expect(decisions.map(\.eligibility) == [.ineligible(.resolverOff), .ineligible(.resolverOff)])
        #expect(decisions.allSatisfy { !$0.isCandidate }, "nothing to record in resolve_decision_s")
        #expect(decisions[0].reason == "the resolver is off (resolve.enabled is false)")
    }

    @Test func minSeverityAndThresholdAreTheResolversOwn() {
        // CRITICAL after 150 s idle (factor 0.5), so 100 s is HIGH (without ACCESS EXCLUSIVE).
        let high = Self.chain(since: 100, mode: .rowExclusive)
        #expect(high.first?.severity == .high)
        #expect(Self.rule(Self.on(), high)[1] == .ineligible(.belowMinSeverity(.critical)))
        #expect(Self.rule(Self.on { $0.minSeverity = .high }, high)[1] == .ineligible(.belowKillThreshold(300)))
        #expect(Self.rule(Self.on { $0.minSeverity = .high; $0.killThresholdSeconds = 60 }, high)[1] == .eligible(.terminateIdle(.idleInTransaction)),
                "HIGH is enough when resolve.min_severity says so: the old dashboard copy demanded CRITICAL")
        #expect(Self.rule(Self.on { $0.minSeverity = .low; $0.killThresholdSeconds = 1 }, Self.chain(since: 0.5))[1] == .ineligible(.belowKillThreshold(1)))
        #expect(KillIneligibility.belowKillThreshold(0.5).description == "below kill_threshold_seconds (0.5 s)", "not rounded to 0")
    }

    @Test func theReasonStaysTheSameWhileTheSituationDoes() {
        // The vault keeps a satellite row while its hash_diff holds: a reason quoting a running
        // duration would write a row every cycle, or show a stale number.
        let policy = Self.on { $0.minSeverity = .low }
        let early = Self.rule(policy, Self.chain(since: 10)), later = Self.rule(policy, Self.chain(since: 20), at: Fixture.now)
        #expect(early[1] == later[1])
        #expect(early[1]?.reason == "below kill_threshold_seconds (300 s)")
    }

    @Test func protectedSessionsComeFromTheOneList() {
        let policy = Self.on()
        #expect(Self.rule(policy, Self.chain(blocker: Fixture.session(1, state: .idleInTransaction, type: "autovacuum worker")))[1] == .ineligible(.protected(.notClientBackend)))
        #expect(Self.rule(policy, Self.chain(), scope: SignalScope(ownPids: [1]))[1] == .ineligible(.protected(.lockvault)))
        var named = Fixture.session(1, state: .idleInTransaction)
        named.applicationName = "lockvault"
        #expect(Self.rule(policy, Self.chain(blocker: named))[1] == .ineligible(.protected(.lockvault)), "another lockvault, by application_name")
        let superuser = Self.chain(blocker: Fixture.session(1, state: .idleInTransaction, superuser: true))
        #expect(Self.rule(policy, superuser)[1] == .ineligible(.protected(.superuser)))
        #expect(Self.rule(Self.on { $0.allowSuperuser = true }, superuser)[1] == .eligible(.terminateIdle(.idleInTransaction)))
        #expect(Self.rule(policy, superuser, scope: SignalScope(allowSuperuser: true))[1] == .ineligible(.protected(.superuser)),
                "the policy's allow_superuser decides, not the caller's scope")
    }

    @Test func everyProtectionHasItsSQLGuard() {
        let p = SignalScope.SQLParameters(ownPids: "$7::int[]", ownApplicationName: "$6::text", allowSuperuser: "$5::bool")
        let any = ProtectedSession.sqlAnyCondition(p)
        for protection in ProtectedSession.allCases { #expect(any.contains(protection.sqlCondition(p))) }
        #expect(ProtectedSession.lockvault.sqlCondition(p).contains("$6::text") && ProtectedSession.lockvault.sqlCondition(p).contains("$7::int[]"))
        #expect(ProtectedSession.superuser.sqlCondition(p).contains("$5::bool"))
    }

    @Test func exclusionsByRoleApplicationDatabaseAndAddress() {
        var fromAddress = Fixture.session(1, state: .idleInTransaction)
        fromAddress.clientAddress = "10.1.2.3"
        let a = Self.chain(blocker: fromAddress)
        #expect(Self.rule(Self.on { $0.excludeRoles = ["/^ap/"] }, a)[1] == .ineligible(.excluded(.role, "/^ap/")))
        #expect(Self.rule(Self.on { $0.excludeApplications = ["web"] }, a)[1] == .ineligible(.excluded(.application, "web")))
        #expect(Self.rule(Self.on { $0.excludeDatabases = ["shop"] }, a)[1] == .ineligible(.excluded(.database, "shop")))
        #expect(Self.rule(Self.on { $0.excludeClientAddresses = ["/^10\\./"] }, a)[1] == .ineligible(.excluded(.clientAddress, "/^10\\./")))
        #expect(Self.rule(Self.on { $0.excludeClientAddresses = ["/^10\\./"] }, Self.chain())[1] == .eligible(.terminateIdle(.idleInTransaction)),
                "no address (a Unix-socket session) matches no address pattern")
        #expect(Self.rule(Self.on { $0.excludeClientAddresses = ["/^10\\./"] }, a)[1]?.reason == "excluded client address (/^10\\./)")
    }

    @Test func preparedTransactionsAreRecommendedAtAnySeverity() {
        let prepared = PreparedTransaction(gid: "batch-42", transactionID: "777", owner: "etl", database: "shop", prepared: Fixture.now)
        let locks = [LockRecord(pid: nil, lockType: .transactionid, mode: .exclusive, granted: true, transactionID: "777", virtualTransaction: "-1/777")]
        let s = Fixture.snapshot(sessions: [], waiters: [Fixture.waits(5, on: [0], since: 1)], locks: locks, prepared: [prepared])
        let d = Self.on().decide(BlockerAssessment.assess(s, policy: SeverityPolicy()), scope: SignalScope(), memory: .init(), now: Fixture.now)
        #expect(d.map(\.eligibility) == [.ineligible(.preparedTransaction(gid: "batch-42"))])
        #expect(d.map(\.verdict) == [.recommend] && d[0].reason.contains("ROLLBACK PREPARED"))
    }

    @Test func theCapsAreTheRulesToo() {
        let two = BlockerAssessment.assess(Fixture.snapshot(
            sessions: [Fixture.session(1, state: .idleInTransaction), Fixture.session(5, state: .idleInTransaction)],
            waiters: [Fixture.waits(2, on: [1], since: 500), Fixture.waits(6, on: [5], since: 400)], locks: [Fixture.holds(1)]), policy: SeverityPolicy())
        let capped = Self.rule(Self.on { $0.maxActionsPerCycle = 1 }, two)
        #expect(capped[1]?.isEligible == true)
        #expect(capped[5] == .ineligible(.perCycleCap(1)), "a dry run reports the cap too")
        var memory = ResolverMemory()
        memory.recordTermination(at: Fixture.now.addingTimeInterval(-10))
        let limited = Self.rule(Self.on { $0.dryRun = false; $0.maxTerminationsPerMinute = 2 }, two, memory: memory)
        #expect(limited[1]?.isEligible == true)
        #expect(limited[5] == .ineligible(.rateLimited(2)))
    }

    @Test func anActiveBlockerIsCancelledThenGivenGraceThenTerminated() {
        let active = Self.chain(blocker: Fixture.session(1, state: .active))
        #expect(Self.rule(Self.on(), active)[1] == .eligible(.cancelActive))
        var memory = ResolverMemory()
        memory.recordCancel(SessionID(pid: 1, backendStart: Fixture.now.addingTimeInterval(-3600)), at: Fixture.now.addingTimeInterval(-10))
        #expect(Self.rule(Self.on(), active, memory: memory)[1] == .ineligible(.awaitingCancelGrace(30)))
        #expect(Self.rule(Self.on(), active, memory: memory, at: Fixture.now.addingTimeInterval(25))[1] == .eligible(.terminateAfterCancel(graceSeconds: 30)))
    }

    @Test func theDecisionIsTheEligibility() {
        for d in Self.on({ $0.minSeverity = .low }).decide(Self.chain(), scope: SignalScope(), memory: .init(), now: Fixture.now) {
            #expect((d.verdict == .act) == d.eligibility.isEligible)
            #expect(d.reason == d.eligibility.reason)
            #expect(d.action == d.eligibility.action)
        }
    }
}
