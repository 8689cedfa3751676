import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient

/// `lockvault episodes`: the blocking episodes the vault recorded, newest first.
struct EpisodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "episodes",
        abstract: "List the blocking episodes recorded in the vault, newest first: root, waiters, wait-seconds, severity, how each ended.",
        discussion: """
            An episode is one root blocker's incident, from the first wait behind it to the moment nobody waits \
            any more (lock_monitoring.blocking_episodes_dashboard). Without --since or --from: the last 24 hours. An \
            episode is listed when it overlaps the period. Times without a zone are this machine's local time. \
            --json prints each episode's story (as `lockvault episode ID --json`). \
            \(LockvaultExit.help(success: "listed (also when there are none)", .badTimeOrID, .notMigrated, .cannotConnect, .readVault))
            """
    )

    @Option(name: .long, help: "Vault conninfo or URI; default: libpq environment.")
    var dsn: String = ""

    @Option(name: .long, help: "Episodes of the last DURATION: 90m, 24h, 7d, 1h30m (default 24h).")
    var since: String?

    @Option(name: .long, help: "Episodes from this moment: '2025-06-01 03:00' (local time) or with a zone, '2025-06-01 03:00+00'.")
    var from: String?

    @Option(name: .long, help: "… to this moment (default: now).")
    var to: String?

    @Option(name: .long, help: "Only this monitored cluster (its cluster_name).")
    var cluster: String?

    @Option(name: .long, help: "Only episodes that reached this severity: LOW, MEDIUM, HIGH or CRITICAL.")
    var minSeverity: String?

    @Option(name: .long, help: "At most this many episodes.")
    var limit: Int = 200

    @Flag(name: .long, help: "Print the episodes' stories as a JSON array.")
    var json = false

    func run() throws {
        let filter = try self.filter()
        let zone = TimeZone.current
        try VaultRead.run("episodes", dsn: dsn) { conn in
            let rows = try EpisodeVault.episodes(on: conn, filter)
            if rows.isEmpty, let cluster, case let names = try EpisodeVault.clusterNames(on: conn), !names.contains(cluster) {
                let known = names.isEmpty ? "none yet" : names.map { "'\(BlockingForestRenderer.clean($0, 40))'" }.joined(separator: ", ")
                throw usage("episodes", "no cluster '\(BlockingForestRenderer.clean(cluster, 40))' in this vault (it records: \(known))")
            }
            if json {
                print(try EpisodeStory.json(try EpisodeVault.stories(on: conn, ids: rows.map(\.episodeID))))
                return
            }
            print(EpisodeTable(zone: zone).render(rows), terminator: "")
            if rows.count >= filter.limit {
                print("(the newest \(filter.limit); narrow with --since or --from, or raise --limit)")
            }
            if let first = rows.first { print("\nThe story of one: lockvault episode \(first.episodeID)   (--svg FILE draws it)") }
        }
    }

    func filter() throws -> EpisodeVault.Filter {
        let zone = TimeZone.current
        var f = EpisodeVault.Filter(cluster: cluster, limit: limit)
        guard limit > 0 else { throw usage("episodes", "--limit must be at least 1, not \(limit)") }
        if let minSeverity {
            guard let s = BlockerSeverity(rawValue: minSeverity.uppercased()) else {
                throw usage("episodes", "--min-severity must be LOW, MEDIUM, HIGH or CRITICAL, not '\(minSeverity)'")
            }
            f.minSeverity = s
        }
        if since != nil && (from != nil || to != nil) { throw usage("episodes", "--since and --from/--to go not together: give one or the other") }
        if let since {
            guard let seconds = TimeText.parseDuration(since) else {
                throw usage("episodes", "--since '\(since)' is not a duration (e.g. 90m, 24h, 7d, 1h30m)")
            }
            f.sinceSeconds = seconds
        }
        if let from { f.from = try timestamp(from, option: "--from", verb: "episodes", zone: zone) }
        if let to {
            guard from != nil else { throw usage("episodes", "--to needs --from") }
            f.to = try timestamp(to, option: "--to", verb: "episodes", zone: zone)
        }
        if let a = f.from, let b = f.to, a > b {
            throw usage("episodes", "--from \(TimeText.format(a, zone: zone)) is later than --to \(TimeText.format(b, zone: zone))")
        }
        if f.from == nil && f.sinceSeconds == nil { f.sinceSeconds = 86_400 }
        return f
    }
}

/// `lockvault episode ID`: one episode's story, as text, JSON or a picture.
struct EpisodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "episode",
        abstract: "Tell one blocking episode: its timeline, the tree at its peak, how it ended, and what to change; --svg draws it.",
        discussion: """
            ID is an episode id as `lockvault episodes` lists it. --json prints the story (lock_monitoring.episode_story); \
            --svg FILE also writes its timeline as a picture: one lane per session, the root on top, waits red (for a \
            lock someone held) or amber (queued behind another's request), the end marked. \
            \(LockvaultExit.help(success: "told", .unknownEpisode, .notMigrated, .cannotConnect, .readVault,
                                 .init(LockvaultExit.cannotCreate, "the --svg file cannot be written")))
            """
    )

    @Argument(help: "The episode's id.")
    var id: String

    @Option(name: .long, help: "Vault conninfo or URI; default: libpq environment.")
    var dsn: String = ""

    @Flag(name: .long, help: "Print the story as JSON.")
    var json = false

    @Option(name: .long, help: "Write the timeline as an SVG picture to this file.")
    var svg: String?

    func run() throws {
        let zone = TimeZone.current
        try VaultRead.run("episode", dsn: dsn) { conn in
            guard let story = try EpisodeVault.story(on: conn, id: id) else {
                throw usage("episode", "no episode '\(BlockingForestRenderer.clean(id, 64))' in this vault (lockvault episodes lists them)")
            }
            if let svg {
                do {
                    try Data(EpisodeTimelineDrawing(zone: zone).svg(story).utf8).write(to: URL(fileURLWithPath: svg), options: .atomic)
                } catch {
                    printError("lockvault episode: cannot write \(svg): \((error as NSError).localizedDescription)")
                    throw ExitCode(LockvaultExit.cannotCreate)
                }
            }
            if json {
                print(try EpisodeStory.json(story))
            } else {
                print(EpisodeStoryRenderer(zone: zone).render(story), terminator: "")
                if let svg { print("\nThe timeline as a picture: \(svg)") }
            }
        }
    }
}

/// A timestamp option, or exit 64 naming it.
func timestamp(_ text: String, option: String, verb: String, zone: TimeZone) throws -> Date {
    guard let date = TimeText.parseTimestamp(text, zone: zone) else {
        throw usage(verb, "\(option) '\(BlockingForestRenderer.clean(text, 64))' is not a timestamp (e.g. '2025-06-01 03:12' in local time, or '2025-06-01 03:12:00+00')")
    }
    return date
}

/// One line on standard error, exit 64.
func usage(_ verb: String, _ message: String) -> ExitCode {
    printError("lockvault \(verb): \(message)")
    return ExitCode(LockvaultExit.usage)
}

/// The commands that read the vault: connect with `dsn`, run `body`, and turn what can go wrong
/// into one line and the exit code `status` uses for it; the vault's own refusals of a request
/// (SQLSTATE 22023: a moment outside the history, an unknown cluster) exit 64, "nothing was
/// observed then" (P0002) exits 1.
enum VaultRead {
    static func run(_ verb: String, dsn: String, _ body: (PostgresConnection) throws -> Void) throws {
        let conn: PostgresConnection
        do { conn = try PostgresConnection(conninfo: dsn) } catch {
            throw MonitorFailure.classify(error, side: .vault).exit(verb)
        }
        defer { conn.close() }
        do {
            try body(conn)
        } catch let exit as ExitCode {
            throw exit
        } catch let error as PostgresError {
            let role = conn.user
            switch error.sqlState {
            case "3F000", "42883", SQLState.undefinedTable:
                throw MonitorFailure(code: .vaultNotMigrated, message: "the vault is not migrated (\(error.message)); run `lockvault migrate` first").exit(verb)
            case SQLState.insufficientPrivilege:
                throw MonitorFailure(code: .insufficientPrivilege, message: "role \(role) may not read the vault (\(error.message)) — GRANT lock_monitoring_role TO \(role)").exit(verb)
            case "22023":
                throw usage(verb, error.message)
            case "P0002":
                printError("lockvault \(verb): \(error.message)")
                throw ExitCode(LockvaultExit.failure)
            default:
                throw MonitorFailure.classify(error, side: .vault, role: role).exit(verb)
            }
        } catch {
            throw MonitorFailure.classify(error, side: .vault, role: conn.user).exit(verb)
        }
    }
}

extension ExitMeaning {
    static let badTimeOrID = ExitMeaning(LockvaultExit.usage, "malformed DSN, or a --since/--from/--to that doesn't parse, --from later than --to")
    static let unknownEpisode = ExitMeaning(LockvaultExit.usage, "malformed DSN, or no episode with that id")
    static let readVault = ExitMeaning(LockvaultExit.noPermission, "authentication failed or the role may not read the vault (GRANT lock_monitoring_role)")
}
