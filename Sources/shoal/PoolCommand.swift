import ShoalClient
import ArgumentParser
import ShoalAPI
import ShoalRendering

/// `shoal pool`: the hosts of the shared pool and their slots.
struct PoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool",
        abstract: "Show the broker's pool: each host's slots, how many are used, and by which leases.",
        discussion: """
            A host drained with 'shoal drain' is marked cordoned, and one PVM lost is marked down; \
            neither has free slots. The last line totals the pool.

            Exit status: 0 ok, 1 the broker answered with an error, 3 the broker could not be reached.
            """
    )

    @Flag(help: "Print JSON (pretty-printed, sorted keys) instead of a table.") var json = false
    @OptionGroup var broker: BrokerOptions

    func run() async throws {
        try await broker.withClient { client in
            let pool = try await client.pool()
            Output.write(json ? try Output.json(pool) : render(pool: pool, width: Output.terminalWidth))
        }
    }
}
