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
}
