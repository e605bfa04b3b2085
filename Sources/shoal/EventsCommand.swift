import ShoalClient
import ArgumentParser
import ShoalAPI
import ShoalRendering

/// `shoal events`: the broker's event log, once or followed.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print the broker's event log: every request, grant, drain, preemption and revocation, with why.",
        discussion: """
            One line per event: '#ID TIME KIND LEASE SERVICE HOST from→to: reason', oldest first. \
            Without --follow, prints at most --limit events after --after and, if there may be \
            more, how to ask for them. With --follow, keeps printing events as they happen until \
            interrupted (Ctrl-C).

            Exit status: 0 ok, 1 the broker answered with an error, 3 the broker could not be reached.
            """
    )

    @Flag(help: "Keep printing new events as they happen, until interrupted (Ctrl-C).") var follow = false
    @Option(help: ArgumentHelp("Start after this event id (0: from the beginning).", valueName: "ID"))
    var after: Int64 = 0
    @Option(help: ArgumentHelp("At most this many events per request to the broker.", valueName: "N"))
    var limit = 100
    @Flag(help: "Print JSON (pretty-printed, sorted keys): the page of events, or with --follow each event.")
    var json = false
    @OptionGroup var broker: BrokerOptions

    /// How long one request waits at the broker for a new event while following.
    static let followWait = Duration.seconds(30)

    func validate() throws {
        guard after >= 0 else { throw ValidationError("--after must be an event id, 0 or more") }
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        try await broker.withClient { client in
            guard follow else {
                let page = try await client.events(after: after, limit: limit, wait: .zero)
                if json {
                    Output.write(try Output.json(page))
                    return
                }
                if page.events.isEmpty { Output.write("No events after #\(after).") }
                for event in page.events { Output.write(render(event: event)) }
                if page.events.count >= limit {
                    printError("(maybe more: shoal events --after \(page.next))")
                }
                return
            }
            Output.exitOnInterrupt()
            var cursor = after
            while true {
                let page = try await client.events(after: cursor, limit: limit, wait: Self.followWait)
                for event in page.events {
                    Output.write(json ? try Output.json(event) : render(event: event))
                }
                cursor = max(cursor, page.next)
            }
        }
    }
}
