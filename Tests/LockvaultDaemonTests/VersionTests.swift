import Foundation
import LockvaultEngine
import Testing

/// The version is written once (`LockvaultVersion.current`); the binary, the vault's
/// `daemon_version` and the package read it. What is written by hand beside it — the
/// changelogs DBAs and dpkg read — must name the same release.
@Suite struct VersionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func theVersionIsARealSemanticVersion() {
        let parts = LockvaultVersion.current.split(separator: ".")
        #expect(parts.count == 3 && parts.allSatisfy { Int($0) != nil }, "\(LockvaultVersion.current)")
        #expect(LockvaultVersion.current != "0.1.0", "a placeholder, not a release")
    }

    /// CHANGELOG.md (Keep a Changelog): an Unreleased section, then this version as the newest
    /// release, with its date.
    @Test func theChangelogsNewestReleaseIsThisVersion() throws {
        let headings = try Self.read("CHANGELOG.md").split(separator: "\n").filter { $0.hasPrefix("## [") }
        #expect(headings.first == "## [Unreleased]", "\(headings)")
        let newest = try #require(headings.dropFirst().first.map(String.init), "no release in CHANGELOG.md")
        #expect(newest.range(of: "^## \\[\(NSRegularExpression.escapedPattern(for: LockvaultVersion.current))\\] - [0-9]{4}-[0-9]{2}-[0-9]{2}$",
                             options: .regularExpression) != nil, "\(newest)")
    }

    /// The package's own changelog (dpkg, /usr/share/doc/lockvault/changelog.gz) starts at it too.
    @Test func thePackageChangelogStartsAtThisVersion() throws {
        let first = try Self.read("scripts/packaging/changelog").split(separator: "\n").first.map(String.init)
        #expect(first?.hasPrefix("lockvault (\(LockvaultVersion.current)) ") == true, "\(first ?? "")")
    }
}
