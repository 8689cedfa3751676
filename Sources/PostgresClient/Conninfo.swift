internal import CLibPQ
import Foundation

/// Conninfo helpers. A conninfo may carry a password (`password=…` or `postgresql://u:pw@h/db`);
/// nothing that derives from one may reach a log or an error without going through here.
public enum Conninfo {
    static let mask = "********"

    /// The conninfo with any password replaced by `********`, in keyword=value form.
    ///
    /// libpq parses it (so URIs and quoting are handled exactly as when connecting). A string libpq
    /// cannot parse is not echoed at all, since we can't tell where a password would be in it.
    public static func redacted(_ conninfo: String) -> String {
        guard let options = parse(conninfo) else { return "<unparseable conninfo>" }
        if options.isEmpty { return "<libpq defaults>" }
        return options.map { key, value in
            let shown = key == "password" ? mask : value
            return "\(key)=\(quote(shown))"
        }.joined(separator: " ")
    }

    /// Why libpq rejects this conninfo (nil when it parses), with any password masked — libpq
    /// quotes a malformed URI whole in its message, password included.
    public static func syntaxError(_ conninfo: String) -> String? {
        var errmsg: UnsafeMutablePointer<CChar>?
        if let options = PQconninfoParse(conninfo, &errmsg) {
            PQconninfoFree(options)
            return nil
        }
        defer { if let errmsg { PQfreemem(errmsg) } }
        let text = errmsg.map { String(cString: $0) } ?? "malformed connection string"
        return scrub(text, secrets: secrets(in: conninfo, environment: [:])).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Keyword/value pairs set in the conninfo, in libpq's order; nil when libpq rejects it.
    static func parse(_ conninfo: String) -> [(String, String)]? {
        var errmsg: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errmsg) else {
            if let errmsg { PQfreemem(errmsg) }
            return nil
        }
        defer { PQconninfoFree(options) }
        var result: [(String, String)] = []
        var cursor = options
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                result.append((String(cString: keyword), String(cString: value)))
            }
            cursor += 1
        }
        return result
    }

    /// Passwords that could appear in text derived from this conninfo: the one in it, and
    /// `PGPASSWORD` from the environment. A conninfo libpq cannot parse is searched by hand
    /// (`password=…` and a URI's `user:password@`), so a typo elsewhere doesn't expose it.
    static func secrets(in conninfo: String, environment: [String: String]) -> [String] {
        var secrets: [String] = []
        if let options = parse(conninfo), let pw = options.first(where: { $0.0 == "password" })?.1, !pw.isEmpty {
            secrets.append(pw)
        }
        secrets += lexicalSecrets(conninfo)
        if let pw = environment["PGPASSWORD"], !pw.isEmpty { secrets.append(pw) }
        // Longest first, so a password containing another is masked whole.
        return Array(Set(secrets)).sorted { $0.count > $1.count }
    }

    /// Password-looking parts found without parsing: the value after `password` `=` (quoted or
    /// not) and the part of a URI's user info after the first `:`, raw and percent-decoded.
    static func lexicalSecrets(_ conninfo: String) -> [String] {
        var found: [String] = []
        let chars = Array(conninfo)
        var i = 0
        let key = Array("password")
        while i + key.count <= chars.count {
            if String(chars[i..<i + key.count]).lowercased() == "password" {
                var j = i + key.count
                while j < chars.count, chars[j] == " " || chars[j] == "\t" { j += 1 }
                if j < chars.count, chars[j] == "=" {
                    j += 1
                    while j < chars.count, chars[j] == " " || chars[j] == "\t" { j += 1 }
                    var value = ""
                    if j < chars.count, chars[j] == "'" {
                        j += 1
                        while j < chars.count, chars[j] != "'" {
                            if chars[j] == "\\", j + 1 < chars.count { j += 1 }
                            value.append(chars[j]); j += 1
                        }
                    } else {
                        while j < chars.count, chars[j] != " ", chars[j] != "&", chars[j] != "\t" { value.append(chars[j]); j += 1 }
                    }
                    if !value.isEmpty { found.append(value) }
                    i = j
                    continue
                }
            }
            i += 1
        }
        if let scheme = conninfo.range(of: "://") {
            let rest = conninfo[scheme.upperBound...]
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                let pw = String(authority[authority.index(after: colon)..<at])
                if !pw.isEmpty {
                    found.append(pw)
                    if let decoded = pw.removingPercentEncoding, decoded != pw { found.append(decoded) }
                }
            }
        }
        return found
    }

    /// `text` with every occurrence of each secret masked.
    static func scrub(_ text: String, secrets: [String]) -> String {
        var text = text
        for secret in secrets where !secret.isEmpty {
            text = text.replacingAll(secret, with: mask)
        }
        return text
    }

    private static func quote(_ value: String) -> String {
        if !value.isEmpty, !value.contains(where: { $0 == " " || $0 == "'" || $0 == "\\" }) { return value }
        var out = "'"
        for ch in value {
            if ch == "'" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out + "'"
    }
}

extension String {
    /// Replace every occurrence of `target` (no Foundation needed).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
