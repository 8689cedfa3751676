public import Foundation
import LockvaultCore
import PostgresClient
import Yams

/// A configuration problem, with where it is: `lockvault.yaml:12:3: resolve.kill_threshold_seconds:
/// must be between 1 and 86400, got 0`. Never echoes a DSN's value (it may carry a password).
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public static let unreadable = Code("unreadable")
        public static let syntax = Code("syntax")
        public static let notAMapping = Code("notAMapping")
        public static let unknownKey = Code("unknownKey")
        public static let duplicateKey = Code("duplicateKey")
        public static let wrongType = Code("wrongType")
        public static let outOfRange = Code("outOfRange")
        public static let invalidChoice = Code("invalidChoice")
        public static let invalidPattern = Code("invalidPattern")
        public static let inconsistent = Code("inconsistent")
        public static let unknownEnvironment = Code("unknownEnvironment")
        public var description: String { raw }
    }

    public var code: Code
    /// Where: a file path, or the environment variable's name.
    public var source: String
    public var keyPath: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public var description: String {
        var location = source
        if let line { location += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        return "\(location): \(keyPath.isEmpty ? "" : keyPath + ": ")\(message)"
    }
}

/// Reads and validates the YAML config, then applies `LOCKVAULT_*` environment overrides.
public enum ConfigLoader {
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> LockvaultConfig {
        let name = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ConfigError(code: .unreadable, source: path, keyPath: "", message: exists ? "cannot read the file (permissions?)" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(code: .unreadable, source: path, keyPath: "", message: "not UTF-8 text")
        }
        var config = try parse(text, source: name)
        try applyEnvironment(environment, to: &config)
        try checkConsistency(config, source: name)
        return config
    }

    /// Parses YAML text (no environment overrides).
    public static func parse(_ text: String, source: String = "config") throws(ConfigError) -> LockvaultConfig {
        var config = LockvaultConfig()
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw syntaxError(error, source: source)
        } catch {
            // Not echoed: a parser's message may quote the file, and the file may hold a DSN.
            throw ConfigError(code: .syntax, source: source, keyPath: "", message: "YAML syntax error (\(type(of: error)))")
        }
        guard let root else { return config }   // empty file: all defaults
        if case .scalar(let s) = root, s.string.isEmpty || s.tag.description.hasSuffix("null") { return config }
        guard case .mapping(let mapping) = root else {
            throw ConfigError(code: .notAMapping, source: source, keyPath: "", line: root.mark?.line, column: root.mark?.column,
                              message: "the top level must be a mapping of sections (see etc/lockvault.yaml)")
        }
        try walk(mapping, section: "", source: source, into: &config)
        return config
    }

    private static func walk(_ mapping: Node.Mapping, section: String, source: String, into config: inout LockvaultConfig) throws(ConfigError) {
        var seen: Set<String> = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                throw ConfigError(code: .wrongType, source: source, keyPath: section, line: keyNode.mark?.line, column: keyNode.mark?.column, message: "keys must be plain names")
            }
            let path = section.isEmpty ? key : "\(section).\(key)"
            guard seen.insert(key).inserted else {
                throw ConfigError(code: .duplicateKey, source: source, keyPath: path, line: keyNode.mark?.line, column: keyNode.mark?.column, message: "appears twice")
            }
            if ConfigSchema.sections.contains(path) {
                if case .mapping(let inner) = value {
                    try walk(inner, section: path, source: source, into: &config)
                } else if value.null == nil {
                    throw ConfigError(code: .wrongType, source: source, keyPath: path, line: value.mark?.line, column: value.mark?.column,
                                      message: "must be a mapping (a section), got \(describe(value))")
                }
            } else if let field = ConfigSchema.byPath[path] {
                try assign(value, to: field, source: source, line: value.mark?.line, column: value.mark?.column, into: &config)
            } else {
                let known = ConfigSchema.children(of: section)
                let hint = closest(key, in: known).map { " — did you mean '\($0)'?" } ?? ""
                throw ConfigError(code: .unknownKey, source: source, keyPath: path, line: keyNode.mark?.line, column: keyNode.mark?.column,
                                  message: "unknown key\(hint) (known here: \(known.joined(separator: ", ")))")
            }
        }
    }

    private static func assign(_ node: Node, to field: ConfigField, source: String, line: Int?, column: Int?, into config: inout LockvaultConfig) throws(ConfigError) {
        func fail(_ code: ConfigError.Code, _ message: String) -> ConfigError {
            ConfigError(code: code, source: source, keyPath: field.path, line: line, column: column, message: message)
        }
        let isDSN = field.path.hasSuffix("dsn")
        switch field.kind {
        case .string(let kp):
            guard let s = node.scalar else { throw fail(.wrongType, "must be a string, got \(describe(node))") }
            let value = node.null != nil && s.style == .plain ? "" : s.string
            if isDSN, let problem = Conninfo.syntaxError(value) { throw fail(.syntax, "is not a valid connection string: \(problem)") }
            config[keyPath: kp] = value
        case .optionalString(let kp):
            if node.null != nil { config[keyPath: kp] = nil; return }
            guard let s = node.scalar else { throw fail(.wrongType, "must be a string or null, got \(describe(node))") }
            if isDSN, let problem = Conninfo.syntaxError(s.string) { throw fail(.syntax, "is not a valid connection string: \(problem)") }
            config[keyPath: kp] = s.string
        case .double(let kp, let range):
            guard node.scalar != nil, let v = node.float, node.bool == nil, v.isFinite else {
                throw fail(.wrongType, "must be a number, got \(isDSN ? "a value" : describe(node))")
            }
            guard range.contains(v) else { throw fail(.outOfRange, "must be between \(format(range.lowerBound)) and \(format(range.upperBound)), got \(format(v))") }
            config[keyPath: kp] = v
        case .optionalDouble(let kp, let range):
            if node.null != nil { config[keyPath: kp] = nil; return }
            guard node.scalar != nil, let v = node.float, node.bool == nil, v.isFinite else {
                throw fail(.wrongType, "must be a number or null (off), got \(describe(node))")
            }
            guard range.contains(v) else { throw fail(.outOfRange, "must be between \(format(range.lowerBound)) and \(format(range.upperBound)), got \(format(v))") }
            config[keyPath: kp] = v
        case .int(let kp, let range):
            guard node.scalar != nil, node.bool == nil else { throw fail(.wrongType, "must be a whole number, got \(describe(node))") }
            guard let v = node.int else {
                if node.float != nil { throw fail(.wrongType, "must be a whole number, got \(node.scalar!.string)") }
                throw fail(.wrongType, "must be a whole number, got \(describe(node))")
            }
            guard range.contains(v) else { throw fail(.outOfRange, "must be between \(range.lowerBound) and \(range.upperBound), got \(v)") }
            config[keyPath: kp] = v
        case .bool(let kp):
            guard node.scalar != nil, let v = node.bool else { throw fail(.wrongType, "must be true or false, got \(describe(node))") }
            config[keyPath: kp] = v
        case .choice(let choices, let set):
            guard let s = node.scalar?.string else { throw fail(.wrongType, "must be one of \(choices.joined(separator: ", ")), got \(describe(node))") }
            guard choices.contains(s) else { throw fail(.invalidChoice, "must be one of \(choices.joined(separator: ", ")), got '\(s)'") }
            set(&config, s)
        case .patterns(let kp):
            if node.null != nil { config[keyPath: kp] = []; return }
            guard case .sequence(let seq) = node else { throw fail(.wrongType, "must be a list of names or /regex/ patterns, got \(describe(node))") }
            var values: [ExclusionPattern] = []
            for item in seq {
                guard let s = item.scalar?.string, !s.isEmpty else {
                    throw ConfigError(code: .wrongType, source: source, keyPath: field.path, line: item.mark?.line, column: item.mark?.column,
                                      message: "each entry must be a non-empty name or /regex/, got \(describe(item))")
                }
                do {
                    values.append(try ExclusionPattern(s))   // compiled here, once, not per match
                } catch {
                    throw ConfigError(code: .invalidPattern, source: source, keyPath: field.path, line: item.mark?.line, column: item.mark?.column,
                                      message: error.description)
                }
            }
            config[keyPath: kp] = values
        case .sinks(let kp):
            if node.null != nil { config[keyPath: kp] = []; return }
            guard case .sequence(let seq) = node else { throw fail(.wrongType, "must be a list of sinks (each with name and type), got \(describe(node))") }
            var sinks: [AlertSinkSettings] = []
            for (index, item) in seq.enumerated() {
                let sink = try parseSink(item, path: "\(field.path)[\(index)]", source: source)
                if sinks.contains(where: { $0.name == sink.name }) {
                    throw ConfigError(code: .duplicateKey, source: source, keyPath: "\(field.path)[\(index)].name", line: item.mark?.line, column: item.mark?.column,
                                      message: "sink name '\(sink.name)' is used twice (names label metrics and audit rows)")
                }
                sinks.append(sink)
            }
            config[keyPath: kp] = sinks
        case .listenAddress(let kp):
            if node.null != nil { config[keyPath: kp] = nil; return }
            guard let s = node.scalar?.string else { throw fail(.wrongType, "must be host:port, a port, or null, got \(describe(node))") }
            guard let address = ListenAddress(s), address.port != 0 else {
                throw fail(.wrongType, "must be host:port or a port (1–65535; a bare port listens on 127.0.0.1), e.g. 9187, 127.0.0.1:9187 or [::1]:9187, got '\(s)'")
            }
            config[keyPath: kp] = s
        }
    }

    /// One `alerts.sinks` entry, key by key as ``ConfigSchema/sinkFields`` lists them:
    /// `{name, type: command, command: [argv…]}` or `{name, type: webhook, url, headers}`, plus
    /// `timeout_ms`, `retries`, `queue_capacity`.
    private static func parseSink(_ node: Node, path: String, source: String) throws(ConfigError) -> AlertSinkSettings {
        func fail(_ code: ConfigError.Code, _ key: String, _ n: Node, _ message: String) -> ConfigError {
            ConfigError(code: code, source: source, keyPath: key.isEmpty ? path : "\(path).\(key)", line: n.mark?.line, column: n.mark?.column, message: message)
        }
        guard case .mapping(let m) = node else { throw fail(.wrongType, "", node, "each sink must be a mapping with name and type, got \(describe(node))") }
        let known = ConfigSchema.sinkFields.map(\.key)
        var values: [String: Node] = [:]
        for (k, v) in m {
            guard let key = k.scalar?.string else { throw fail(.wrongType, "", k, "keys must be plain names") }
            guard known.contains(key) else {
                let hint = closest(key, in: known).map { " — did you mean '\($0)'?" } ?? ""
                throw fail(.unknownKey, key, k, "unknown key\(hint) (known here: \(known.joined(separator: ", ")))")
            }
            guard values.updateValue(v, forKey: key) == nil else { throw fail(.duplicateKey, key, k, "appears twice") }
        }
        guard let nameNode = values["name"], let name = nameNode.scalar?.string, !name.isEmpty else {
            throw fail(.wrongType, "name", values["name"] ?? node, "is required: a short name for logs, metrics and the audit trail")
        }
        guard let typeNode = values["type"], let typeName = typeNode.scalar?.string else {
            throw fail(.wrongType, "type", values["type"] ?? node, "is required: \(AlertSinkSettings.Kind.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        guard let kind = AlertSinkSettings.Kind(rawValue: typeName) else {
            throw fail(.invalidChoice, "type", typeNode, "must be one of \(AlertSinkSettings.Kind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(typeName)'")
        }
        var sink = AlertSinkSettings(name: name, kind: kind)
        for field in ConfigSchema.sinkFields {
            guard let n = values[field.key] else {
                if field.required, field.only == kind { throw fail(.wrongType, field.key, node, field.help) }
                continue
            }
            if let only = field.only, only != kind {
                throw fail(.inconsistent, field.key, n, "is for \(only.rawValue) sinks; this sink's type is \(kind.rawValue)")
            }
            try parseSinkValue(n, field: field, into: &sink) { code, message, at in fail(code, field.key, at, message) }
        }
        return sink
    }

    /// One key of a sink, checked as its ``SinkField/Kind`` says.
    private static func parseSinkValue(_ n: Node, field: SinkField, into sink: inout AlertSinkSettings,
                                       fail: (ConfigError.Code, String, Node) -> ConfigError) throws(ConfigError) {
        switch field.kind {
        case .name:
            let name = sink.name
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }), name.count <= 64 else {
                throw fail(.wrongType, "must be letters, digits, '_' or '-' (at most 64), got '\(name)'", n)
            }
        case .type:
            break   // read above: the other keys depend on it
        case .int(let kp, let range):
            guard n.scalar != nil, n.bool == nil, let v = n.int else { throw fail(.wrongType, "must be a whole number, got \(describe(n))", n) }
            guard range.contains(v) else { throw fail(.outOfRange, "must be between \(range.lowerBound) and \(range.upperBound), got \(v)", n) }
            sink[keyPath: kp] = v
        case .argv(let kp):
            guard case .sequence(let argv) = n, !argv.isEmpty else { throw fail(.wrongType, field.help, n) }
            var args: [String] = []
            for item in argv {
                guard let arg = item.scalar?.string else { throw fail(.wrongType, "each argument must be a string, got \(describe(item))", item) }
                args.append(arg)
            }
            guard args[0].hasPrefix("/") else {
                throw fail(.wrongType, "the program must be an absolute path (the daemon has no PATH to search), got '\(args[0])'", n)
            }
            sink[keyPath: kp] = args
        case .url(let kp):
            guard let text = n.scalar?.string else { throw fail(.wrongType, field.help, n) }
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
                throw fail(.wrongType, "must be an http:// or https:// URL", n)
            }
            sink[keyPath: kp] = text
        case .headers(let kp):
            if n.null != nil { return }
            guard case .mapping(let headers) = n else { throw fail(.wrongType, "must be a mapping of header names to values", n) }
            for (k, v) in headers {
                guard let key = k.scalar?.string, !key.isEmpty, let value = v.scalar?.string else {
                    throw fail(.wrongType, "each header must be name: value (strings)", k)
                }
                sink[keyPath: kp][key] = value
            }
        }
    }

    /// `LOCKVAULT_SECTION_KEY=value` overrides, validated like the file.
    static func applyEnvironment(_ environment: [String: String], to config: inout LockvaultConfig) throws(ConfigError) {
        let byName = Dictionary(uniqueKeysWithValues: ConfigSchema.fields.map { ($0.environmentName, $0) })
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("LOCKVAULT_") {
            if ConfigSchema.nonConfigEnvironment.contains(name) || ConfigSchema.nonConfigPrefixes.contains(where: name.hasPrefix) { continue }
            guard let field = byName[name] else {
                let hint = closest(name, in: Array(byName.keys)).map { " — did you mean \($0)?" } ?? ""
                throw ConfigError(code: .unknownEnvironment, source: name, keyPath: "", message: "not a lockvault setting\(hint)")
            }
            if case .sinks = field.kind {
                throw ConfigError(code: .unknownEnvironment, source: name, keyPath: field.path, message: "alert sinks can only be set in the config file")
            }
            let node: Node
            switch field.kind {
            case .string, .optionalString, .choice, .listenAddress:
                node = Node(value)
            default:
                do {
                    guard let parsed = try Yams.compose(yaml: value) else { throw ConfigError(code: .wrongType, source: name, keyPath: field.path, message: "is empty") }
                    node = parsed
                } catch let e as ConfigError {
                    throw e
                } catch {
                    throw ConfigError(code: .syntax, source: name, keyPath: field.path, message: "cannot parse the value")
                }
            }
            try assign(node, to: field, source: name, line: nil, column: nil, into: &config)
        }
    }

    static func checkConsistency(_ c: LockvaultConfig, source: String) throws(ConfigError) {
        let s = c.monitor.severity
        guard s.mediumAfterSeconds < s.highAfterSeconds, s.highAfterSeconds < s.criticalAfterSeconds else {
            throw ConfigError(code: .inconsistent, source: source, keyPath: "severity",
                              message: "medium_after_seconds < high_after_seconds < critical_after_seconds must hold (got \(format(s.mediumAfterSeconds)), \(format(s.highAfterSeconds)), \(format(s.criticalAfterSeconds)))")
        }
        guard s.highBlockedSessions < s.criticalBlockedSessions else {
            throw ConfigError(code: .inconsistent, source: source, keyPath: "severity",
                              message: "high_blocked_sessions must be less than critical_blocked_sessions (got \(s.highBlockedSessions) and \(s.criticalBlockedSessions))")
        }
        if c.monitor.resolve.enabled && !c.monitor.resolve.dryRun && c.monitor.resolve.maxTerminationsPerMinute == 0 {
            throw ConfigError(code: .inconsistent, source: source, keyPath: "resolve.max_terminations_per_minute",
                              message: "is 0 while resolve is enabled and not a dry run: nothing could ever be resolved; set dry_run: true or a limit ≥ 1")
        }
    }

    private static func syntaxError(_ error: YamlError, source: String) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ConfigError(code: .syntax, source: source, keyPath: "", line: mark.line, column: mark.column, message: "YAML syntax: \(problem)")
        default:
            return ConfigError(code: .syntax, source: source, keyPath: "", message: "YAML syntax error")
        }
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s):
            if node.null != nil { return "null" }
            let text = s.string.count > 40 ? String(s.string.prefix(40)) + "…" : s.string
            return "'\(text)'"
        }
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    /// The known name nearest to `name` (edit distance ≤ 3), for "did you mean".
    static func closest(_ name: String, in candidates: [String]) -> String? {
        if let extended = candidates.filter({ $0.hasPrefix(name) }).min(by: { $0.count < $1.count }) { return extended }
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for (i, ca) in a.enumerated() {
                var prev = row[0]
                row[0] = i + 1
                for (j, cb) in b.enumerated() {
                    let cur = row[j + 1]
                    row[j + 1] = min(row[j + 1] + 1, row[j] + 1, prev + (ca == cb ? 0 : 1))
                    prev = cur
                }
            }
            return row[b.count]
        }
        let best = candidates.map { ($0, distance(Array(name.lowercased()), Array($0.lowercased()))) }.min { $0.1 < $1.1 }
        return best.flatMap { $0.1 <= 3 ? $0.0 : nil }
    }
}
