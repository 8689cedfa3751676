import Testing
import LockvaultCore

@Suite struct ServerCapabilitiesTests {
    @Test(arguments: [140000, 140022, 150018, 160015, 170000, 180006])
    func fourteenAndNewerAreAccepted(_ num: Int) {
        #expect(ServerCapabilities(serverVersionNum: num).unsupportedReason == nil)
    }

    @Test func olderServersAreRefusedWithTheVersionNamed() throws {
        let thirteen = try #require(ServerCapabilities(serverVersionNum: 130022).unsupportedReason)
        #expect(thirteen.contains("PostgreSQL 13.22"))
        #expect(thirteen.contains("needs PostgreSQL 14 or newer"))
        #expect(thirteen.contains("end-of-life"), "a 13 is told why: \(thirteen)")
        let twelve = try #require(ServerCapabilities(serverVersionNum: 120016).unsupportedReason)
        #expect(twelve.contains("PostgreSQL 12.16") && !twelve.contains("end-of-life"))
        let nineSix = try #require(ServerCapabilities(serverVersionNum: 90624).unsupportedReason)
        #expect(nineSix.contains("PostgreSQL 9.6.24"))
        #expect(ServerCapabilities(serverVersionNum: 139999).unsupportedReason != nil)
    }

    /// What each tested major has, capability by capability: a new major that changes one shows
    /// up here first.
    @Test(arguments: [
        (140022, ["waitstart", "query_id"]),
        (150018, ["waitstart", "query_id", "jsonlog", "stat_force_next_flush"]),
        (160015, ["waitstart", "query_id", "jsonlog", "stat_force_next_flush", "createrole_needs_admin_option"]),
        (170010, ["waitstart", "query_id", "jsonlog", "stat_force_next_flush", "createrole_needs_admin_option", "maintain", "transaction_timeout"]),
        (180006, ["waitstart", "query_id", "jsonlog", "stat_force_next_flush", "createrole_needs_admin_option", "maintain", "transaction_timeout"]),
    ])
    func eachMajorHasWhatItBrought(_ num: Int, _ expected: [String]) {
        let server = ServerCapabilities(serverVersionNum: num)
        #expect(server.capabilities.map(\.rawValue) == expected, "\(server)")
        for capability in ServerCapabilities.Capability.allCases {
            #expect(server.has(capability) == expected.contains(capability.rawValue), "\(server): \(capability)")
        }
    }

    /// A capability is there from the first release of its major on, not from a later minor.
    @Test func aCapabilityStartsAtItsMajorsFirstRelease() {
        for capability in ServerCapabilities.Capability.allCases {
            #expect(capability.since % 10000 == 0, "\(capability)")
            #expect(ServerCapabilities(serverVersionNum: capability.since).has(capability))
            #expect(!ServerCapabilities(serverVersionNum: capability.since - 1).has(capability))
            #expect(!capability.what.isEmpty)
        }
    }

    @Test(arguments: [(130014, false), (140022, true), (150018, true), (160015, true), (170010, true), (180006, true), (190000, false)])
    func fourteenToEighteenAreTested(_ num: Int, _ tested: Bool) {
        let server = ServerCapabilities(serverVersionNum: num)
        #expect(server.isTested == tested)
        #expect(ServerCapabilities.testedMajorVersions.first == ServerCapabilities.minimumMajorVersion, "every supported major is tested")
    }

    @Test(arguments: [(150018, "15.18"), (120005, "12.5"), (90624, "9.6.24"), (180000, "18.0")])
    func versionNames(_ num: Int, _ name: String) {
        #expect(ServerCapabilities(serverVersionNum: num).versionName == name)
    }
}
