import Testing
import LockvaultCore

@Suite struct ServerRequirementsTests {
    @Test(arguments: [130000, 130014, 140011, 150018, 160004, 170000, 180006])
    func thirteenAndNewerAreAccepted(_ num: Int) {
        #expect(ServerRequirements.unsupportedReason(serverVersionNum: num) == nil)
    }

    @Test func olderServersAreRefusedWithTheVersionNamed() throws {
        let twelve = try #require(ServerRequirements.unsupportedReason(serverVersionNum: 120016))
        #expect(twelve.contains("PostgreSQL 12.16"))
        #expect(twelve.contains("needs PostgreSQL 13 or newer"))
        let nineSix = try #require(ServerRequirements.unsupportedReason(serverVersionNum: 90624))
        #expect(nineSix.contains("PostgreSQL 9.6.24"))
        #expect(ServerRequirements.unsupportedReason(serverVersionNum: 129999) != nil)
    }

    /// What a 16 or a 17 does differently from 15 is named, and applies from its version on.
    @Test func theDifferencesPerVersionAreNamed() {
        func named(_ num: Int) -> [String] { ServerRequirements.differences(serverVersionNum: num).map(\.what) }
        #expect(named(130014).isEmpty)
        #expect(named(150018).count == 1 && named(150018)[0].hasPrefix("pg_locks.waitstart"))
        #expect(named(160002).contains { $0.hasPrefix("CREATEROLE") } && !named(160002).contains { $0.hasPrefix("MAINTAIN") })
        #expect(named(170010).contains { $0.hasPrefix("MAINTAIN") })
        #expect(named(180006) == named(170010), "18 brings nothing lockvault handles differently")
    }

    @Test(arguments: [(130014, false), (140011, false), (150018, true), (160002, true), (170010, true), (180006, true), (190000, false)])
    func fifteenToEighteenAreTested(_ num: Int, _ tested: Bool) {
        #expect(ServerRequirements.isTested(serverVersionNum: num) == tested)
        #expect(ServerRequirements.unsupportedReason(serverVersionNum: num) == nil, "tested or not, it is accepted")
    }
}
