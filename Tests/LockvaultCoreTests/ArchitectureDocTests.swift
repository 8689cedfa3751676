import Foundation
import Testing

/// docs/architecture.md is where a new maintainer starts, so what it names must exist: every
/// backticked file or folder, type, member, config key, SQL or shell function, and every target
/// of the package. A rename that forgets the page fails here, naming what is gone.
@Suite struct ArchitectureDocTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Names the page may use that the repository does not declare: other packages' types.
    static let external: Set<String> = ["ParsableCommand"]

    /// Every file of the repository (relative paths), without build output, caches and clusters.
    static let files: [String] = {
        var out: [String] = []
        let skipped: Set<String> = [".build", ".git", ".cache", ".swiftpm", "dist"]
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isDirectoryKey]) else { return [] }
        for case let url as URL in walker {
            let name = url.lastPathComponent
            if (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true {
                if skipped.contains(name) || name.hasPrefix(".pgdata") { walker.skipDescendants() }
                continue
            }
            out.append(String(url.path.dropFirst(root.path.count + 1)))
        }
        return out
    }()

    static func text(of paths: [String]) -> String {
        paths.compactMap { try? String(contentsOf: root.appendingPathComponent($0), encoding: .utf8) }.joined(separator: "\n")
    }

    static let swift = text(of: files.filter { $0.hasSuffix(".swift") && !$0.hasSuffix("EmbeddedMigrations.swift") && !$0.hasPrefix("Tests/Fixtures/") })
    static let sqlAndScripts = text(of: files.filter { ($0.hasPrefix("sql/") && $0.hasSuffix(".sql")) || $0.hasPrefix("scripts/") || $0.hasPrefix(".ci/") })
    static let configSchema = text(of: ["Sources/LockvaultDaemon/Config/ConfigSchema.swift"])

    static func contains(_ haystack: String, _ pattern: String) -> Bool {
        haystack.range(of: pattern, options: .regularExpression) != nil
    }

    static func escaped(_ s: String) -> String { NSRegularExpression.escapedPattern(for: s) }

    /// A repository path that ends with `pattern` at a path boundary (`*` any characters but `/`,
    /// `NNN` digits); a folder (`…/`) when some file lies under it.
    static func pathExists(_ pattern: String) -> Bool {
        var regex = escaped(pattern).replacingOccurrences(of: "\\*", with: "[^/]*").replacingOccurrences(of: "NNN", with: "[0-9]{3}")
        regex = "(^|/)" + regex + (pattern.hasSuffix("/") ? "" : "$")
        return files.contains { contains($0, regex) }
    }

    /// `struct Name`, `enum Name`, … anywhere in the package's Swift, or a Swift file of that
    /// name (`SeverityTests`, `ExitCodes`).
    static func typeExists(_ name: String) -> Bool {
        external.contains(name) || contains(swift, "\\b(struct|class|enum|actor|protocol|typealias)\\s+\(escaped(name))\\b")
            || files.contains { $0.hasSuffix("/\(name).swift") }
    }

    /// A `case`, `func`, `var` or `let` of that name (a case may be one of several on a line).
    static func memberExists(_ name: String) -> Bool {
        contains(swift, "\\b(case|func|var|let)\\b[^\\n]*\\b\(escaped(name))\\b")
    }

    static var backticked: [String] {
        let page = text(of: ["docs/architecture.md"])
        let regex = try! NSRegularExpression(pattern: "`([^`\\n]+)`")
        let ns = page as NSString
        return Array(Set(regex.matches(in: page, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 1)) })).sorted()
    }

    static let targets: [String] = {
        let manifest = text(of: ["Package.swift"])
        let regex = try! NSRegularExpression(pattern: "\\.(target|executableTarget|testTarget|systemLibrary)\\(\\s*name:\\s*\"([^\"]+)\"")
        let ns = manifest as NSString
        return regex.matches(in: manifest, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 2)) }
    }()

    /// What a backticked name is, and whether it exists; nil for what is not a name (prose,
    /// commands, SQL text, templates like `record_<family>`).
    static func check(_ token: String) -> Bool? {
        if token.contains(" ") || token.contains("<") || token.hasPrefix("-") || token.hasPrefix("(") || token.isEmpty { return nil }
        if targets.contains(token) { return true }
        let looksLikePath = token.contains("/") || contains(token, "\\.(swift|sql|sh|md|yaml|json)$")
        if looksLikePath { return pathExists(token) }
        // `name(…)`: a Swift member or, with an underscore, an SQL function.
        let bare = token.split(separator: "(").first.map(String.init) ?? token
        let parts = bare.split(separator: ".").map(String.init)
        if parts.count == 2, parts[0] == "lock_monitoring" {
            return contains(sqlAndScripts, "FUNCTION lock_monitoring\\.\(escaped(parts[1]))\\b")
        }
        if parts.count == 2, parts.allSatisfy({ contains($0, "^[a-z][a-z0-9_]*$") }), bare.contains("_") {
            return configSchema.contains("path: \"\(bare)\"")   // a config key
        }
        if let first = parts.first, first.first?.isUppercase == true {
            guard typeExists(first) else { return false }
            return parts.dropFirst().allSatisfy(memberExists)
        }
        if parts.count == 1, bare.contains("_") {
            // An SQL function (`record_cycle`), or a shell function or variable of the scripts.
            return contains(sqlAndScripts, "\\b\(escaped(bare))\\b")
        }
        if parts.count == 1 { return memberExists(bare) }
        // `conn.capabilities.has`: its members.
        return parts.dropFirst().allSatisfy(memberExists)
    }

    @Test func everyNameItMentionsExists() {
        let missing = Self.backticked.filter { Self.check($0) == false }
        #expect(missing.isEmpty, "docs/architecture.md names what the repository does not have: \(missing)")
    }

    @Test func itNamesEveryTarget() {
        #expect(Self.targets.count >= 10, "the manifest's targets were read: \(Self.targets)")
        let named = Set(Self.backticked)
        let unnamed = Self.targets.filter { !named.contains($0) }
        #expect(unnamed.isEmpty, "targets docs/architecture.md does not name: \(unnamed)")
    }

    /// The checker itself: a name that is not there is caught, whatever its kind.
    @Test func theCheckerCatchesWhatIsGone() {
        for gone in ["Sources/LockvaultCore/NoSuchFile.swift", "NoSuchType", "VaultWriter.noSuchMember", "sampling.no_such_key",
                     "no_such_sql_function", "lock_monitoring.no_such_function()", "noSuchCase"] {
            #expect(Self.check(gone) == false, "\(gone)")
        }
        for there in ["Sources/LockvaultCore/WaitGraph.swift", "sql/NNN_*.sql", "LockvaultEngine/Vault/Rows/", "VaultStateMachine", "ResolvePolicy.decide",
                      "sampling.min_wait_seconds", "record_cycle", "lock_monitoring.server_has('name')", "cycleBuilt"] {
            #expect(Self.check(there) == true, "\(there)")
        }
    }
}
