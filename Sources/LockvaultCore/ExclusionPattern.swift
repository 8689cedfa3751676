import Foundation

/// One entry of a `resolve.exclude.*` list: an exact name, or a regular expression written
/// `/like this/` (unanchored: write `^…$` to anchor).
///
/// The expression is compiled once, when the entry is made (config load, command line), never
/// per match: the resolver checks every exclusion against every blocker every cycle. A bad
/// expression is refused right there, so a pattern that exists always compiles.
public struct ExclusionPattern: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// What the operator wrote, slashes included: shown in skip reasons and error messages.
    public let text: String
    private let regex: CompiledRegex?

    /// The entry is not a valid regular expression.
    public struct InvalidPattern: Error, Sendable, Equatable, CustomStringConvertible {
        /// The expression between the slashes.
        public var expression: String
        public var description: String { "invalid regular expression /\(expression)/" }
    }

    public init(_ text: String) throws(InvalidPattern) {
        self.text = text
        if let body = Self.regexBody(text) {
            do {
                regex = CompiledRegex(try NSRegularExpression(pattern: body))
            } catch {
                throw InvalidPattern(expression: body)
            }
        } else {
            regex = nil
        }
    }

    /// For literals in code and tests; a literal that is not a valid expression is a bug.
    public init(stringLiteral text: String) {
        do { try self.init(text) } catch { preconditionFailure("\(error)") }
    }

    public var description: String { text }

    public func matches(_ value: String?) -> Bool {
        guard let value else { return false }
        guard let regex else { return text == value }
        return regex.expression.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
    }

    /// The regular expression of a `/…/` entry; nil for an exact name.
    public static func regexBody(_ text: String) -> String? {
        text.count >= 2 && text.hasPrefix("/") && text.hasSuffix("/") ? String(text.dropFirst().dropLast()) : nil
    }

    public static func == (a: Self, b: Self) -> Bool { a.text == b.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(text)
    }
}

/// A compiled expression. NSRegularExpression is immutable once built and safe to use from any
/// thread (Foundation documents it so), hence the unchecked conformance.
private final class CompiledRegex: @unchecked Sendable {
    let expression: NSRegularExpression
    init(_ expression: NSRegularExpression) { self.expression = expression }
}
