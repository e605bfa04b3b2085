import ShoalClient
import ArgumentParser
import ShoalAPI

/// `shoal drain HOST`: maintenance on one pool host.
struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Take a host out of the pool for maintenance: no new grants there, and its leases drain.",
        discussion: """
            The host is cordoned: the broker grants no new lease on it. Every lease it holds drains \
            gracefully (its front-end stops routing to it and in-flight requests finish), and the \
            front-ends may ask for back-ends elsewhere. Follow it with 'shoal pool' or 'shoal events --follow'. \
            The drain is kept across broker restarts; 'shoal drain HOST --undo' ends it.

            Needs the broker's token: $SHOAL_TOKEN, else the token file in the broker's state directory.

            Exit status: 0 ok, 1 the broker refused (e.g. no such host, bad token) or the token \
            could not be read, 3 the broker could not be reached.
            """
    )

    @Argument(help: ArgumentHelp("The host's name, as 'shoal pool' shows it.", valueName: "HOST"))
    var host: String
    @Flag(help: "Maintenance is over: the host takes new leases again.") var undo = false
    @OptionGroup var broker: BrokerOptions

    func run() async throws {
        let token = try broker.token()
        try await broker.withClient(token: token) { client in
            if undo {
                _ = try await client.undrainHost(host)
                Output.write("\(host) is back in the pool: new leases may go there.")
            } else {
                Output.write(Self.summary(try await client.drainHost(host)))
            }
        }
    }

    /// `Draining 2 leases on c1: L-000001, L-000003. No new leases go to c1.`
    static func summary(_ result: HostDrainResult) -> String {
        let cordoned = "No new leases go to \(result.host)."
        switch result.draining.count {
        case 0: return "No leases to drain on \(result.host). \(cordoned)"
        case 1: return "Draining 1 lease on \(result.host): \(result.draining[0]). \(cordoned)"
        default: return "Draining \(result.draining.count) leases on \(result.host): \(result.draining.joined(separator: ", ")). \(cordoned)"
        }
    }
}
