internal import CLibPQ

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
    /// `PGPASSWORD` from the environment.
    static func secrets(in conninfo: String, environment: [String: String]) -> [String] {
        var secrets: [String] = []
        if let options = parse(conninfo), let pw = options.first(where: { $0.0 == "password" })?.1, !pw.isEmpty {
            secrets.append(pw)
        }
        if let pw = environment["PGPASSWORD"], !pw.isEmpty { secrets.append(pw) }
        return secrets
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
