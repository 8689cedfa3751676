import Foundation
import Testing
@testable import LockvaultCore

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func fipsVectors(_ input: String, _ expected: String) {
        #expect(VaultHash.hex(SHA256.hash(Array(input.utf8))) == expected)
    }

    @Test func millionAs() {
        #expect(VaultHash.hex(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000))) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

@Suite struct VaultHashRuleTests {
    @Test func escapingKeepsDifferentPartsApart() {
        #expect(VaultHash.canonical(["a;", "b"]) == #"a\;;b"#)
        #expect(VaultHash.canonical(["a", ";b"]) == #"a;\;b"#)
        #expect(VaultHash.hashKey(["a;", "b"]) != VaultHash.hashKey(["a", ";b"]))
        #expect(VaultHash.hashKey([nil]) != VaultHash.hashKey(["\\N"]))
        #expect(VaultHash.hashKey([""]) != VaultHash.hashKey([nil]))
        #expect(VaultHash.hashKey(["Orders"]) != VaultHash.hashKey(["orders"]))
    }

    @Test func timestampsAreUTCWithMicroseconds() {
        #expect(VaultHash.timestamp(Date(timeIntervalSince1970: 1_795_403_508.123456)) == "2026-11-23T03:11:48.123456Z")
        #expect(VaultHash.timestamp(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000000Z")
    }
}
