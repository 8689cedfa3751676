import Foundation
import Testing
@testable import LockvaultCore

@Suite struct ResolvePolicyTests {
    static func assessments(state: BackendState = .idleInTransaction, superuser: Bool = false, user: String = "app", since: Double = 400) -> [BlockerAssessment] {
        var blocker = Fixture.session(1, state: state, user: user, superuser: superuser)
        blocker.applicationName = "web"
        let s = Fixture.snapshot(sessions: [blocker], waiters: [Fixture.waits(2, on: [1], since: since)], locks: [Fixture.holds(1)])
        return BlockerAssessment.assess(s, policy: SeverityPolicy())
    }

    func policy(_ tweak: (inout ResolvePolicy) -> Void = { _ in }) -> ResolvePolicy {
        var p = ResolvePolicy()
        p.enabled = true
        tweak(&p)
        return p
    }

    @Test func exclusionPatterns() {
        #expect(ExclusionPattern("etl").matches("etl"))
        #expect(!ExclusionPattern("etl").matches("etl_nightly"))
        #expect(ExclusionPattern("/^etl_/").matches("etl_nightly"))
        #expect(!ExclusionPattern("/^etl_/").matches("my_etl_"))
        #expect(!ExclusionPattern("x").matches(nil))
        #expect(ExclusionPattern("/").matches("/") && !ExclusionPattern("/").matches("etl"), "a lone slash is a name")
    }

    @Test func aBadRegexIsRefusedWhenThePatternIsMadeNotWhenMatched() {
        let bad = "/[unclosed/", name = "[unclosed"   // not literals: a literal is a pattern in code, trusted
        #expect(throws: ExclusionPattern.InvalidPattern(expression: "[unclosed")) { try ExclusionPattern(bad) }
        #expect((try? ExclusionPattern(name))?.matches("[unclosed") == true, "without slashes it is an exact name")
    }

    @Test func patternsSurviveEncodingAsTheirText() throws {
        let policy = policy { $0.excludeRoles = ["/^etl_/", "replicator"] }
        let data = try JSONEncoder().encode(policy)
        #expect(String(decoding: data, as: UTF8.self).contains(#""excludeRoles":["\/^etl_\/","replicator"]"#))
        let decoded = try JSONDecoder().decode(ResolvePolicy.self, from: data)
        #expect(decoded == policy && decoded.excludeRoles[0].matches("etl_x"))
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([ExclusionPattern].self, from: Data(#"["/(/"]"#.utf8)) }
    }

    @Test func safeDefaults() {
        let p = ResolvePolicy()
        #expect(!p.enabled && p.dryRun && p.minSeverity == .critical && p.killThresholdSeconds == 300 && !p.allowSuperuser)
    }

    @Test func idleInTransactionIsTerminatedActiveIsCancelledFirst() {
        let idle = policy().decide(Self.assessments(), scope: SignalScope(ownPids: []), memory: .init(), now: Fixture.now)
        #expect(idle.map(\.decision) == ["would_terminate"])
        let active = policy { $0.dryRun = false }.decide(Self.assessments(state: .active, since: 400), scope: SignalScope(ownPids: []), memory: .init(), now: Fixture.now)
        #expect(active.map(\.decision) == ["cancel"])
        var memory = ResolverMemory()
        memory.recordCancel(SessionID(pid: 1, backendStart: Fixture.now.addingTimeInterval(-3600)), at: Fixture.now.addingTimeInterval(-10))
        let waiting = policy { $0.dryRun = false }.decide(Self.assessments(state: .active), scope: SignalScope(ownPids: []), memory: memory, now: Fixture.now)
        #expect(waiting.first?.verdict == .skip && waiting.first?.reason.contains("cancel_grace_seconds") == true)
        let later = policy { $0.dryRun = false }.decide(Self.assessments(state: .active), scope: SignalScope(ownPids: []), memory: memory, now: Fixture.now.addingTimeInterval(25))
        #expect(later.map(\.decision) == ["terminate"])
    }

    @Test func everyRefusalSaysWhy() {
        let high = policy().decide(Self.assessments(since: 5), scope: SignalScope(ownPids: []), memory: .init(), now: Fixture.now)
        #expect(high.map(\.verdict) == [.ignore] && high.first?.isCandidate == false, "HIGH, not a candidate")
        #expect(high.first?.eligibility == .ineligible(.belowMinSeverity(.critical)))
        #expect(policy { $0.minSeverity = .high }.decide(Self.assessments(since: 5), scope: SignalScope(ownPids: []), memory: .init(), now: Fixture.now).first?.reason.contains("below kill_threshold_seconds") == true)
        #expect(policy().decide(Self.assessments(superuser: true), scope: SignalScope(ownPids: []), memory: .init(), now: Fixture.now).first?.reason.contains("superuser") == true)
        #expect(policy().decide(Self.assessments(), scope: SignalScope(ownPids: [1]), memory: .init(), now: Fixture.now).first?.reason == "lockvault's own session")
        #expect(policy { $0.excludeRoles = ["/^ap/"] }.decide(Self.assessments(), scope: SignalScope(ownPids: []), memory: .init(), now: Fixture.now).first?.reason.contains("excluded role") == true)
        #expect(policy { $0.excludeApplications = ["web"] }.decide(Self.assessments(), scope: SignalScope(ownPids: []), memory: .init(), now: Fixture.now).first?.reason.contains("excluded application") == true)
        #expect(policy { $0.excludeDatabases = ["shop"] }.decide(Self.assessments(), scope: SignalScope(ownPids: []), memory: .init(), now: Fixture.now).first?.reason.contains("excluded database") == true)
    }

    @Test func theRateLimitCountsTheLastMinute() {
        var memory = ResolverMemory()
        memory.recordTermination(at: Fixture.now.addingTimeInterval(-30))
        let limited = policy { $0.dryRun = false; $0.maxTerminationsPerMinute = 1 }.decide(Self.assessments(), scope: SignalScope(ownPids: []), memory: memory, now: Fixture.now)
        #expect(limited.first?.reason.contains("rate limit") == true)
        let later = policy { $0.dryRun = false; $0.maxTerminationsPerMinute = 1 }.decide(Self.assessments(), scope: SignalScope(ownPids: []), memory: memory, now: Fixture.now.addingTimeInterval(31))
        #expect(later.map(\.decision) == ["terminate"])
    }
}
