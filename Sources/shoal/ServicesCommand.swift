import ShoalClient
import ArgumentParser
import ShoalAPI
import ShoalRendering

/// `shoal services`: each registered service's claim on the pool.
struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "services",
        abstract: "Show the services registered with the broker and how the pool is shared among them.",
        discussion: """
            MIN and MAX are the manifest's backends range, PRIORITY and WEIGHT its claim when slots \
            are scarce; HELD counts granted, active and draining leases, WAITING queued requests, \
            and SHARE the service's weighted max-min fair share of the pool now.

            Exit status: 0 ok, 1 the broker answered with an error, 3 the broker could not be reached.
            """
    )

    @Flag(help: "Print JSON (pretty-printed, sorted keys) instead of a table.") var json = false
    @OptionGroup var broker: BrokerOptions

    func run() async throws {
        try await broker.withClient { client in
            let services = try await client.services()
            Output.write(json ? try Output.json(services) : render(services: services, width: Output.terminalWidth))
        }
    }
}
