import Foundation
import Testing
@testable import PostgresClient

@Suite struct TimestampTextTests {
    @Test func parsesUTCWithMicroseconds() throws {
        let date = try #require(PostgresTimestamp.parse("2026-11-23 03:11:48.123456+00"))
        #expect(abs(date.timeIntervalSince1970 - 1_795_403_508.123456) < 0.000_001)
    }

    @Test func honoursOffsetsAndShortFractions() throws {
        let a = try #require(PostgresTimestamp.parse("2026-11-23 05:11:48.5+02"))
        let b = try #require(PostgresTimestamp.parse("2026-11-23 03:11:48.500000+00"))
        #expect(a == b)
        let c = try #require(PostgresTimestamp.parse("2026-11-23 03:41:48+00:30"))
        #expect(c.timeIntervalSince1970 == 1_795_403_508)
    }

    @Test(arguments: ["infinity", "-infinity", "", "2026-13-01 00:00:00+00", "2026-11-23", "garbage", "2026-11-23 03:11:48+00 extra"])
    func rejectsWhatItCannotRepresent(_ text: String) {
        #expect(PostgresTimestamp.parse(text) == nil)
    }

    @Test func formatRoundTripsMicroseconds() throws {
        for seconds in [0.0, 1_795_403_508.000_001, -86_400.25, 946_684_800.999_999, 4_102_444_800.5] {
            let date = Date(timeIntervalSince1970: seconds)
            let text = PostgresTimestamp.format(date)
            let back = try #require(PostgresTimestamp.parse(text), "\(text)")
            #expect(abs(back.timeIntervalSince1970 - seconds) < 0.000_001, "\(text)")
        }
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01 00:00:00.000000+00")
    }
}

@Suite struct ValueTextTests {
    @Test func intArraysIncludingEmptyAndBounds() {
        #expect([Int32].decode(postgresText: "{}") == [])
        #expect([Int32].decode(postgresText: "{4711,42}") == [4711, 42])
        #expect([Int32].decode(postgresText: "[0:1]={1,2}") == [1, 2])
        #expect([Int32].decode(postgresText: "{1,NULL}") == nil)
        #expect([Int64].decode(postgresText: "{9223372036854775807}") == [Int64.max])
    }

    @Test func textArraysWithQuotingRoundTrip() {
        let values = ["plain", "with space", "quote\"d", "back\\slash", "NULL", "", "comma,inside", "{brace}"]
        let text = String.encodeArray(values)
        #expect([String].decode(postgresText: text) == values)
    }

    @Test func byteaHex() {
        #expect([UInt8].decode(postgresText: "\\x00ff10") == [0x00, 0xff, 0x10])
        #expect([UInt8].decode(postgresText: "00ff") == nil)
        #expect([UInt8]([1, 2, 254]).postgresText == "\\x0102fe")
    }

    @Test func isoIntervals() {
        #expect(PostgresInterval.decode(postgresText: "PT0S")?.seconds == 0)
        #expect(PostgresInterval.decode(postgresText: "PT5M12.25S")?.seconds == 312.25)
        #expect(PostgresInterval.decode(postgresText: "P1DT-1H")?.seconds == 82_800)
        #expect(PostgresInterval.decode(postgresText: "P1Y2M") == PostgresInterval(months: 14))
        #expect(PostgresInterval.decode(postgresText: "5 minutes") == nil)
    }

    @Test func boolsAndNumbers() {
        #expect(Bool.decode(postgresText: "t") == true)
        #expect(Bool.decode(postgresText: "f") == false)
        #expect(Bool.decode(postgresText: "maybe") == nil)
        #expect(UInt32.decode(postgresText: "4294967295") == UInt32.max)
        #expect(Double.decode(postgresText: "NaN")?.isNaN == true)
    }
}

@Suite struct ConninfoRedactionTests {
    @Test(arguments: [
        "host=db.example user=alice password=s3cr3t-pw dbname=prod",
        "postgresql://alice:s3cr3t-pw@db.example:5432/prod",
        "postgres://alice:s3cr3t-pw@db.example/prod?sslmode=require",
        "host=db.example password='s3cr3t-pw' user=alice",
    ])
    func passwordNeverShown(_ conninfo: String) {
        let redacted = Conninfo.redacted(conninfo)
        #expect(!redacted.contains("s3cr3t-pw"))
        #expect(redacted.contains("password=********"))
        #expect(redacted.contains("user=alice"))
    }

    @Test func unparseableIsNotEchoed() {
        let redacted = Conninfo.redacted("host=x password='unterminated s3cr3t")
        #expect(!redacted.contains("s3cr3t"))
        #expect(redacted == "<unparseable conninfo>")
    }

    /// libpq quotes a malformed URI whole in its parse error; the password must not survive.
    @Test(arguments: [
        "postgresql://alice:s3cr3t-pw@[::1/prod",
        "postgresql://alice:s3cr3t%2Dpw@[/prod",
        "postgres://alice:s3cr3t-pw@host:5432/prod?sslmode",
        "host=x password=s3cr3t-pw bogus",
        "host=x password = 's3cr3t-pw' nokey",
        "host=x password='s3cr3t-pw",
    ])
    func syntaxErrorsNeverShowThePassword(_ conninfo: String) throws {
        let message = try #require(Conninfo.syntaxError(conninfo))
        #expect(!message.contains("s3cr3t"), "\(message)")
        #expect(!message.isEmpty)
    }

    @Test func wellFormedConninfoHasNoSyntaxError() {
        for ok in ["", "dbname=x", "postgresql:///x?host=/tmp", "service=prod", "host=a,b port=1,2"] {
            #expect(Conninfo.syntaxError(ok) == nil, "\(ok)")
        }
    }

    @Test func scrubMasksEveryOccurrence() {
        #expect(Conninfo.scrub("a pw b pw", secrets: ["pw"]) == "a ******** b ********")
    }
}
