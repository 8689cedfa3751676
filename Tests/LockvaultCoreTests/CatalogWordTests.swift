import Foundation
@testable import LockvaultCore
import Testing

@Suite struct CatalogWordTests {
    @Test func everyKnownWordParsesToItsCaseAndPrintsBack() {
        for (word, value) in LockType.known { #expect(LockType(word) == value && value.description == word) }
        for (word, value) in LockMode.known { #expect(LockMode(word) == value && value.description == word) }
        for (word, value) in BackendState.known { #expect(BackendState(word) == value && value.description == word) }
        #expect(LockType.known.count == 12 && LockMode.known.count == 8 && BackendState.known.count == 6)
    }

    @Test func anUnknownWordIsKeptAsTheServerWroteIt() throws {
        #expect(LockMode("SIReadLock") == .other("SIReadLock"))
        #expect(LockType("newkind") == .unknown("newkind"))
        #expect(BackendState("starting").description == "starting")
        let encoded = try JSONEncoder().encode([LockMode.accessExclusive, .other("SIReadLock")])
        #expect(String(decoding: encoded, as: UTF8.self) == #"["AccessExclusiveLock","SIReadLock"]"#)
        #expect(try JSONDecoder().decode([LockMode].self, from: encoded) == [.accessExclusive, .other("SIReadLock")])
    }
}
